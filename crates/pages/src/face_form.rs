//! A licence's face as a form, from its type's schema: one labelled control per field (the
//! catalogue's title, never the internal name), filled with the current values when there are
//! some, and read back into face data. One piece serves issuing a licence and correcting one.

use std::collections::HashMap;

use serde_json::{Map, Value};
use zhengyin_model::{FieldKind, LicenceType};

use crate::error::PageError;

/// One control of the face form.
pub(crate) struct FieldInput {
    /// The form's name for it: `face.<field>`.
    pub(crate) name: String,
    pub(crate) label: String,
    /// `text`, `date`, `number`, `select` or `textarea`.
    pub(crate) control: &'static str,
    pub(crate) values: Vec<String>,
    pub(crate) value: String,
    pub(crate) required: bool,
    pub(crate) max_chars: usize,
}

const PREFIX: &str = "face.";

/// The controls for `licence_type`'s face, filled from `current` where given.
pub(crate) fn inputs(licence_type: &LicenceType, current: Option<&Map<String, Value>>) -> Vec<FieldInput> {
    licence_type
        .face_schema
        .iter()
        .map(|field| {
            let value = match current.and_then(|face| face.get(&field.name)) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let long = field.multiline || field.max_chars.is_some_and(|m| m > 200);
            FieldInput {
                name: format!("{PREFIX}{}", field.name),
                label: field.label.clone(),
                control: match field.kind {
                    FieldKind::Date => "date",
                    FieldKind::Integer => "number",
                    FieldKind::Enum => "select",
                    FieldKind::String if long => "textarea",
                    FieldKind::String => "text",
                },
                values: field.values.clone().unwrap_or_default(),
                value,
                required: field.required,
                max_chars: field.max_chars.unwrap_or(512),
            }
        })
        .collect()
}

/// The face data a submitted form carries for `licence_type`; blank fields are left out (the
/// engine refuses a required one missing, in its own words).
pub(crate) fn read(
    licence_type: &LicenceType,
    form: &HashMap<String, String>,
) -> Result<Map<String, Value>, PageError> {
    let mut face = Map::new();
    for field in &licence_type.face_schema {
        let Some(text) = form
            .get(&format!("{PREFIX}{}", field.name))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        else {
            if field.required {
                return Err(PageError::BadRequest(format!("请填写「{}」。", field.label)));
            }
            continue;
        };
        let value = match field.kind {
            FieldKind::Integer => Value::from(
                text.parse::<i64>()
                    .map_err(|_| PageError::BadRequest(format!("「{}」须为整数。", field.label)))?,
            ),
            FieldKind::String | FieldKind::Date | FieldKind::Enum => Value::from(text),
        };
        face.insert(field.name.clone(), value);
    }
    Ok(face)
}
