//! A licence's face for people: each field under the catalogue's title (never the internal
//! name), in the schema's order, dates written out; fields the type no longer lists keep their
//! name, at the end.

use serde_json::{Map, Value};
use zhengyin_model::{FieldKind, LicenceType};

use crate::words;

/// One line of a face.
pub(crate) struct FaceRow {
    pub(crate) label: String,
    pub(crate) value: String,
}

fn value_in_words(value: &Value, kind: Option<&FieldKind>) -> String {
    match value {
        Value::String(s) if matches!(kind, Some(FieldKind::Date)) => {
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                .map_or_else(|_| s.clone(), words::date)
        }
        Value::String(s) => s.clone(),
        Value::Bool(true) => "是".to_owned(),
        Value::Bool(false) => "否".to_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The face data `face`, titled by `licence_type` (its type, when the catalogue holds it).
pub(crate) fn rows(face: &Map<String, Value>, licence_type: Option<&LicenceType>) -> Vec<FaceRow> {
    let schema = licence_type.map(|t| t.face_schema.as_slice()).unwrap_or_default();
    let titled = schema.iter().filter_map(|field| {
        face.get(&field.name).map(|value| FaceRow {
            label: field.label.clone(),
            value: value_in_words(value, Some(&field.kind)),
        })
    });
    let untitled = face
        .iter()
        .filter(|(name, _)| !schema.iter().any(|f| &f.name == *name))
        .map(|(name, value)| FaceRow {
            label: name.clone(),
            value: value_in_words(value, None),
        });
    titled.chain(untitled).collect()
}
