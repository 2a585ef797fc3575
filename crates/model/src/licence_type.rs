//! The licence-type catalogue: each type's code, names, defining authority and face-data schema.
//!
//! Adding a type adds a catalogue entry, never code: issuing, lookup and verification are driven
//! by the schema here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::{HolderCodeType, TypeCode, Uscc};

/// A licence type (证照类型) as registered in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceType {
    /// Type code: defining authority's USCC + 3 digits.
    pub code: TypeCode,
    /// The definition's version: 1 at first, one more for each change of name, holder code
    /// types, face schema, review days or file layout. Assigned by the catalogue; a value sent is ignored.
    #[serde(default = "first_version")]
    pub version: u32,
    /// Name, e.g. 营业执照.
    pub name: String,
    /// The authority that defines the type (must match the first 18 characters of `code`).
    pub defining_authority: Uscc,
    /// Which holder code types a licence of this type may name.
    pub holder_code_types: Vec<HolderCodeType>,
    /// The face data (照面信息) every licence of this type carries.
    pub face_schema: Vec<FieldSpec>,
    /// Working days the issuer has to review an objection to a licence of this type (default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_days: Option<u32>,
    /// The authorities (发证机构) that may issue licences of this type besides the defining one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<Uscc>,
    /// How the type's licence files lay out the face; absent, the default layout (A4 portrait,
    /// every field in schema order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_layout: Option<FileLayout>,
}

/// A licence type's template for its licence files (OFD).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLayout {
    /// The A4 sheet's orientation.
    #[serde(default)]
    pub orientation: Orientation,
    /// The face fields shown, in this order; empty, every field in schema order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// A line under the title (e.g. 副本), at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
}

/// An A4 sheet's orientation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// 210 mm wide, 297 mm high.
    #[default]
    Portrait,
    /// 297 mm wide, 210 mm high.
    Landscape,
}

/// One field of a licence type's face data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Key in the `face` object (ASCII, snake_case).
    pub name: String,
    /// Chinese label printed on the licence.
    pub label: String,
    /// What values the field takes.
    pub kind: FieldKind,
    /// For `string`: the most characters allowed (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
    /// For `enum`: the allowed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// Whether every licence must carry the field.
    #[serde(default)]
    pub required: bool,
    /// For `string`: whether the text may span lines (line feeds and tabs allowed); other
    /// control and bidirectional formatting characters are refused in every text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiline: bool,
}

/// The kinds of face-data values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Text of at most `max_chars` characters.
    String,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An integer within ±2^53 (exactly representable in every JSON implementation).
    Integer,
    /// One of the strings in `values`.
    Enum,
}

const DEFAULT_MAX_CHARS: usize = 512;

/// Largest integer every JSON implementation represents exactly (I-JSON, RFC 7493).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Why a licence type or a licence's face data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The type definition itself is inconsistent.
    #[error("licence type: {0}")]
    BadType(String),
    /// A required field is missing.
    #[error("face field `{0}` is required")]
    Missing(String),
    /// A field not in the schema was given.
    #[error("face field `{0}` is not in the licence type's schema")]
    Unknown(String),
    /// A field's value does not fit its kind.
    #[error("face field `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}

fn first_version() -> u32 {
    1
}

impl LicenceType {
    /// Whether two definitions describe the same licences: everything but the version and the
    /// issuers (a binding change is not a new version) is equal.
    pub fn same_definition(&self, other: &LicenceType) -> bool {
        self.code == other.code
            && self.name == other.name
            && self.defining_authority == other.defining_authority
            && self.holder_code_types == other.holder_code_types
            && self.face_schema == other.face_schema
            && self.review_days == other.review_days
            && self.file_layout == other.file_layout
    }

    /// Whether `authority` may issue licences of this type: the defining authority, or one the
    /// catalogue lists in `issuers`.
    pub fn may_issue(&self, authority: &Uscc) -> bool {
        *authority == self.defining_authority || self.issuers.contains(authority)
    }

    /// Checks the definition: code and defining authority agree, field names are unique and
    /// well-formed, enums are non-empty.
    pub fn check(&self) -> Result<(), SchemaError> {
        let bad = |m: &str| Err(SchemaError::BadType(m.to_owned()));
        if self.code.defining_authority() != self.defining_authority {
            return bad("code must start with the defining authority's USCC");
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return bad("name must be 1 to 100 characters");
        }
        if self.holder_code_types.is_empty() {
            return bad("at least one holder code type is required");
        }
        if self.review_days.is_some_and(|d| d == 0 || d > 60) {
            return bad("review_days must be 1 to 60 working days");
        }
        let mut seen = BTreeMap::new();
        for f in &self.face_schema {
            let ok_name = !f.name.is_empty()
                && f.name.len() <= 64
                && f.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok_name {
                return bad("field names must be 1 to 64 of a-z, 0-9 and _");
            }
            if seen.insert(f.name.as_str(), ()).is_some() {
                return bad("field names must be unique");
            }
            match (f.kind, &f.values, f.max_chars) {
                (FieldKind::Enum, Some(values), None) if !values.is_empty() => {}
                (FieldKind::Enum, _, _) => return bad("an enum field needs `values` (and no `max_chars`)"),
                (FieldKind::String, None, _) => {}
                (_, None, None) => {}
                _ => return bad("`values` is for enum fields and `max_chars` for string fields"),
            }
        }
        if let Some(layout) = &self.file_layout {
            let mut shown = BTreeMap::new();
            for name in &layout.fields {
                if !seen.contains_key(name.as_str()) {
                    return Err(SchemaError::BadType(format!(
                        "file_layout.fields: {name} is not a field of the face schema"
                    )));
                }
                if shown.insert(name.as_str(), ()).is_some() {
                    return bad("file_layout.fields names each field once");
                }
            }
            if layout.subtitle.as_ref().is_some_and(|s| s.chars().count() > 100) {
                return bad("file_layout.subtitle is at most 100 characters");
            }
        }
        Ok(())
    }

    /// Checks face data against the schema: every required field present, no unknown field,
    /// every value of its kind.
    pub fn check_face(&self, face: &Map<String, Value>) -> Result<(), SchemaError> {
        for key in face.keys() {
            if !self.face_schema.iter().any(|f| &f.name == key) {
                return Err(SchemaError::Unknown(key.clone()));
            }
        }
        for spec in &self.face_schema {
            match face.get(&spec.name) {
                None | Some(Value::Null) if spec.required => return Err(SchemaError::Missing(spec.name.clone())),
                None | Some(Value::Null) => {}
                Some(v) => spec.check(v).map_err(|reason| SchemaError::Invalid {
                    field: spec.name.clone(),
                    reason,
                })?,
            }
        }
        Ok(())
    }
}

impl FieldSpec {
    fn check(&self, v: &Value) -> Result<(), String> {
        match (self.kind, v) {
            (FieldKind::String, Value::String(s)) => {
                let max = self.max_chars.unwrap_or(DEFAULT_MAX_CHARS);
                if s.chars().count() > max {
                    Err(format!("longer than {max} characters"))
                } else {
                    crate::text::check_plain(s, "the text", self.multiline)
                }
            }
            (FieldKind::Date, Value::String(s)) => crate::licence::parse_date(s)
                .map(drop)
                .map_err(|_| "must be a date YYYY-MM-DD".to_owned()),
            (FieldKind::Integer, Value::Number(n)) => match n.as_i64() {
                Some(i) if i.abs() <= MAX_SAFE_INTEGER => Ok(()),
                _ => Err(format!("must be an integer within ±{MAX_SAFE_INTEGER}")),
            },
            (FieldKind::Enum, Value::String(s)) => {
                let values = self.values.as_deref().unwrap_or_default();
                if values.iter().any(|allowed| allowed == s) {
                    Ok(())
                } else {
                    Err(format!("must be one of {}", values.join(", ")))
                }
            }
            (FieldKind::String | FieldKind::Enum, _) => Err("must be a string".to_owned()),
            (FieldKind::Date, _) => Err("must be a date string".to_owned()),
            (FieldKind::Integer, _) => Err("must be an integer".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn business_licence() -> LicenceType {
        serde_json::from_value(json!({
            "code": "11100000000013338W032",
            "name": "营业执照",
            "defining_authority": "11100000000013338W",
            "holder_code_types": ["001"],
            "face_schema": [
                {"name": "company_name", "label": "名称", "kind": "string", "max_chars": 10, "required": true},
                {"name": "established", "label": "成立日期", "kind": "date", "required": true},
                {"name": "capital", "label": "注册资本", "kind": "integer"},
                {"name": "form", "label": "类型", "kind": "enum", "values": ["有限责任公司", "股份有限公司"]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_good_type_and_face_pass() {
        let t = business_licence();
        t.check().unwrap();
        let face =
            json!({"company_name": "某某公司", "established": "2020-02-29", "capital": 100, "form": "股份有限公司"});
        t.check_face(face.as_object().unwrap()).unwrap();
    }

    #[test]
    fn bad_faces_are_refused_with_the_field_named() {
        let t = business_licence();
        let cases = [
            (json!({"established": "2020-01-01"}), "company_name"),
            (json!({"company_name": "x", "established": "2021-02-29"}), "established"),
            (
                json!({"company_name": "x", "established": "2020-01-01", "capital": 1.5}),
                "capital",
            ),
            (
                json!({"company_name": "x", "established": "2020-01-01", "capital": 9007199254740993u64}),
                "capital",
            ),
            (
                json!({"company_name": "x", "established": "2020-01-01", "form": "合伙"}),
                "form",
            ),
            (
                json!({"company_name": "一二三四五六七八九十一", "established": "2020-01-01"}),
                "company_name",
            ),
            (
                json!({"company_name": "x", "established": "2020-01-01", "colour": "red"}),
                "colour",
            ),
            (json!({"company_name": 5, "established": "2020-01-01"}), "company_name"),
        ];
        for (face, field) in cases {
            let err = t.check_face(face.as_object().unwrap()).unwrap_err();
            assert!(err.to_string().contains(field), "{face}: {err}");
        }
    }

    #[test]
    fn only_a_multiline_field_takes_line_breaks_and_no_field_takes_bidi_overrides() {
        let mut t = business_licence();
        t.face_schema.push(
            serde_json::from_value(json!({"name": "scope", "label": "经营范围", "kind": "string", "multiline": true}))
                .unwrap(),
        );
        let face = |name: &str, scope: &str| {
            json!({"company_name": name, "established": "2020-01-01", "scope": scope})
                .as_object()
                .cloned()
                .unwrap()
        };
        t.check_face(&face("某某公司", "一、批发\n二、零售\t（依法须经批准的项目）"))
            .unwrap();
        assert!(t.check_face(&face("某某\n公司", "x")).is_err());
        assert!(t.check_face(&face("某某公司", "批发\u{202E}售零")).is_err());
        assert!(t.check_face(&face("某某公司", "批发\r\n零售")).is_err());
    }

    #[test]
    fn inconsistent_types_are_refused() {
        let mut t = business_licence();
        t.defining_authority = Uscc::parse("91350100M000100Y43").unwrap();
        assert!(t.check().is_err());
        let mut t = business_licence();
        t.face_schema.push(t.face_schema[0].clone());
        assert!(t.check().is_err());
    }
}
