//! Strict JSON input and RFC 8785 (JCS) canonical output.
//!
//! Signatures are computed over canonical bytes, never over a serde serialisation of a struct.
//! Input that JCS cannot canonicalise unambiguously is refused here, before anything is hashed:
//! duplicate member names (RFC 8785 §3.1 requires I-JSON), integers beyond ±2^53 (see
//! [`BEYOND_2_53`]), and (by serde_json itself) lone surrogates and non-finite numbers. Every
//! canonical output parses back to the same value.
//!
//! The writer is ours, because it sits on the verification hot path: the `serde_json_canonicalizer`
//! crate took 25 µs for a 900-byte licence, more than half an Ed25519 verification; this one takes
//! a few. That crate stays as the oracle: a property test checks the two agree byte for byte on
//! arbitrary JSON, and RFC 8785's own examples are tested below. Numbers use `ryu-js`, the
//! ECMAScript `Number.prototype.toString` algorithm the RFC prescribes (§3.2.2.3).
//!
//! Verification does not build a [`Value`] at all: [`canonicalise`] and [`Members`] check the
//! same strictness and write the canonical form while the bytes are read, in one pass (each
//! object's members are written as they come, then put in order). Parsing into a value and
//! writing that ([`parse_strict`], [`to_canonical`]) is their oracle in the property tests.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;
use std::ops::Range;

use crate::licence_type::MAX_SAFE_INTEGER;

/// Why JSON input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// Not JSON, or JSON that cannot be canonicalised without doubt.
    #[error("malformed JSON: {0}")]
    Malformed(String),
}

/// Parses JSON, refusing duplicate member names and integers JCS cannot carry exactly.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, CanonicalError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize_from(&mut de).map_err(|e| CanonicalError::Malformed(e.to_string()))?;
    de.end().map_err(|e| CanonicalError::Malformed(e.to_string()))?;
    Ok(value)
}

/// The RFC 8785 canonical form of `value`.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(1024);
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sort_members(&mut sorted);
            out.push(b'{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, name);
                out.push(b':');
                write_value(out, member)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// §3.2.3: members sorted by the UTF-16 code units of their names. That is their byte order
/// (a map's, usually) unless a name holds a character at or above U+E000, whose UTF-8 starts
/// with 0xEE or more.
fn sort_members<K: AsRef<str>, V>(members: &mut [(K, V)]) {
    let in_utf16_order = members.windows(2).all(|w| w[0].0.as_ref() < w[1].0.as_ref())
        && members.iter().all(|(name, _)| name.as_ref().bytes().all(|b| b < 0xEE));
    if !in_utf16_order {
        members.sort_by(|a, b| a.0.as_ref().encode_utf16().cmp(b.0.as_ref().encode_utf16()));
    }
}

/// §3.2.2.3: numbers as ECMAScript writes them; integers beyond ±2^53 are refused.
fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), CanonicalError> {
    if let Some(i) = n.as_i64() {
        write_integer(out, i)
    } else if n.as_u64().is_some() {
        Err(CanonicalError::Malformed(BEYOND_2_53.to_owned()))
    } else {
        write_double(out, n.as_f64().unwrap_or(f64::NAN))
    }
}

fn write_integer(out: &mut Vec<u8>, i: i64) -> Result<(), CanonicalError> {
    if i.unsigned_abs() > MAX_SAFE_INTEGER.unsigned_abs() {
        return Err(CanonicalError::Malformed(BEYOND_2_53.to_owned()));
    }
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    Ok(())
}

fn write_double(out: &mut Vec<u8>, f: f64) -> Result<(), CanonicalError> {
    if !f.is_finite() {
        return Err(CanonicalError::Malformed("non-finite number".to_owned()));
    }
    if f.abs() > MAX_SAFE_INTEGER as f64 && f.abs() < 1e21 {
        return Err(CanonicalError::Malformed(BEYOND_2_53.to_owned()));
    }
    if f == 0.0 {
        out.push(b'0'); // -0 is written as 0
    } else {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
    }
    Ok(())
}

/// §3.2.2.2: strings as ECMAScript's JSON.stringify writes them.
fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Why numbers beyond ±2^53 are refused. Integers beyond ±2^53 mean different values in different
/// implementations (JavaScript rounds them to a double, others keep every digit), so integer
/// literals beyond it are refused on input, and doubles whose canonical text would be such a
/// literal (2^53 < |x| < 10^21, which ECMAScript writes as plain digits) are refused on output.
/// Every canonical output therefore parses back to the same value (I-JSON, RFC 7493 §2.2).
pub const BEYOND_2_53: &str = "integer beyond ±2^53 cannot be canonicalised without doubt";

/// The canonical form of JSON bytes, in one pass: the strictness of [`parse_strict`], the
/// output of [`to_canonical`], and no [`Value`] in between.
pub fn canonicalise(bytes: &[u8]) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Canonical(&mut out).deserialize(&mut de).map_err(malformed)?;
    de.end().map_err(malformed)?;
    Ok(out)
}

fn malformed(e: serde_json::Error) -> CanonicalError {
    CanonicalError::Malformed(e.to_string())
}

/// A JSON object's members in canonical order, each value already in canonical form, from one
/// pass over the bytes: for taking an object apart (a licence and its proof) without a [`Value`].
#[derive(Debug)]
pub struct Members {
    /// The members' canonical values, one after another.
    values: Vec<u8>,
    /// Names in canonical order (no two alike), with where their value lies in `values`.
    members: Vec<(String, Range<usize>)>,
}

impl Members {
    /// Parses a JSON object strictly (as [`parse_strict`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, CanonicalError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let members = de.deserialize_any(ObjectVisitor).map_err(malformed)?;
        de.end().map_err(malformed)?;
        Ok(members)
    }

    /// The canonical value of the member `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, range)| self.values.get(range.clone()))
    }

    /// The canonical form of the object without the members named in `leave_out`, and with
    /// `add` (a name and a canonical value) in its place among them.
    pub fn write_without(&self, out: &mut Vec<u8>, leave_out: &[&str], add: Option<(&str, &[u8])>) {
        let mut kept: Vec<(&str, &[u8])> = self
            .members
            .iter()
            .filter(|(name, _)| !leave_out.contains(&name.as_str()))
            .map(|(name, range)| (name.as_str(), self.values.get(range.clone()).unwrap_or_default()))
            .collect();
        kept.extend(add);
        sort_members(&mut kept);
        write_object(out, kept.into_iter());
    }
}

fn write_object<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a str, &'a [u8])>) {
    out.push(b'{');
    for (i, (name, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, name);
        out.push(b':');
        out.extend_from_slice(value);
    }
    out.push(b'}');
}

/// Reads an object's members, writing each value's canonical form to `out` as it comes; their
/// names, sorted, with where each value was written. Duplicate names are refused.
fn read_members<'de, A: MapAccess<'de>>(
    map: &mut A,
    out: &mut Vec<u8>,
) -> Result<Vec<(String, Range<usize>)>, A::Error> {
    let mut members = Vec::new();
    while let Some(name) = map.next_key::<String>()? {
        let start = out.len();
        map.next_value_seed(Canonical(out))?;
        members.push((name, start..out.len()));
    }
    sort_members(&mut members);
    if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(de::Error::custom(format!("duplicate member name `{}`", w[0].0)));
    }
    Ok(members)
}

/// Writes the canonical form of the value it reads (see [`canonicalise`]).
struct Canonical<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Canonical<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Canonical<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        write_integer(self.0, v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let v = i64::try_from(v).map_err(|_| E::custom(BEYOND_2_53))?;
        write_integer(self.0, v).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        write_double(self.0, v).map_err(E::custom)
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        write_string(self.0, v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Canonical(self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.0.len();
        let members = read_members(&mut map, self.0)?;
        let values = self.0.split_off(start);
        write_object(
            self.0,
            members.iter().map(|(name, range)| {
                (
                    name.as_str(),
                    values.get(range.start - start..range.end - start).unwrap_or_default(),
                )
            }),
        );
        Ok(())
    }
}

/// Reads an object into [`Members`]; anything else is refused.
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut values = Vec::new();
        let members = read_members(&mut map, &mut values)?;
        Ok(Members { values, members })
    }
}

struct StrictValue;

impl StrictValue {
    fn deserialize_from<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictSeed;

impl<'de> de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize_from(d)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER.unsigned_abs() {
            return Err(E::custom(BEYOND_2_53));
        }
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER.unsigned_abs() {
            return Err(E::custom(BEYOND_2_53));
        }
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed)?;
            if members.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate member name `{key}`")));
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(to_canonical(&parse_strict(s.as_bytes()).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_section_3_2_2_example() {
        // RFC 8785 §3.2.2 (whitespace and number forms); expected output from §3.2.3.
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn members_sort_by_utf16_code_units() {
        // U+10000 is D800 DC00 in UTF-16, which sorts before U+E000 (and after U+00E9).
        assert_eq!(
            canon("{\"\u{e000}\":1,\"\u{10000}\":2,\"\u{e9}\":3}"),
            "{\"\u{e9}\":3,\"\u{10000}\":2,\"\u{e000}\":1}"
        );
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(|i| Value::Number(i.into())),
            any::<f64>()
                .prop_filter("not written as an integer beyond 2^53", |f| {
                    f.abs() <= MAX_SAFE_INTEGER as f64 || f.abs() >= 1e21
                })
                .prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            ".*".prop_map(Value::String),
            "[\\u{0}-\\u{7f}\\u{e000}\\u{10000}\\u{2028}]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_reference_implementation(value in arbitrary_json()) {
            let ours = to_canonical(&value).unwrap();
            let reference = serde_json_canonicalizer::to_vec(&value).unwrap();
            proptest::prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&reference));
            // And canonical output parses back to the same value and is a fixed point.
            let reparsed = parse_strict(&ours).unwrap();
            proptest::prop_assert_eq!(to_canonical(&reparsed).unwrap(), ours.clone());
            // The one pass over the bytes writes the same, from compact and from pretty input.
            for text in [serde_json::to_vec(&value).unwrap(), serde_json::to_vec_pretty(&value).unwrap()] {
                proptest::prop_assert_eq!(canonicalise(&text).unwrap(), ours.clone());
            }
        }
    }

    #[test]
    fn one_pass_refuses_what_parse_strict_refuses_and_writes_what_it_writes() {
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"a":1,"a":1}}"#,
            r#"{"x":[{"b":1,"b":1}]}"#,
            r#"[9007199254740992]"#,
            r#"[-9007199254740992]"#,
            r#"[18446744073709551615]"#,
            r#"[1e17]"#,
            r#""\ud800""#,
            r#"{"a":1} trailing"#,
            r#"{"a":1"#,
            "",
            "[1,]",
            r#"{"b":[],"a":{},"c":[[],[1,{"z":null,"y":true}]]}"#,
            r#"[9007199254740991, -0.0, 1e21, "\u00e9\n"]"#,
        ] {
            let oracle = parse_strict(text.as_bytes()).and_then(|v| to_canonical(&v));
            assert_eq!(canonicalise(text.as_bytes()).is_ok(), oracle.is_ok(), "{text}");
            if let Ok(expected) = oracle {
                assert_eq!(canonicalise(text.as_bytes()).unwrap(), expected, "{text}");
            }
        }
    }

    #[test]
    fn members_take_an_object_apart_in_canonical_order() {
        let m =
            Members::parse(br#"{"z": [1, 2.50], "\u00e9": "x", "proofValue": "zabc", "a": {"d": 1, "c": 2}}"#).unwrap();
        assert_eq!(m.get("a"), Some(&br#"{"c":2,"d":1}"#[..]));
        assert_eq!(m.get("z"), Some(&b"[1,2.5]"[..]));
        assert_eq!(m.get("nothing"), None);
        let mut out = Vec::new();
        m.write_without(&mut out, &["proofValue"], Some(("@context", b"[\"x\"]")));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"@context":["x"],"a":{"c":2,"d":1},"z":[1,2.5],"é":"x"}"#
        );
        assert!(Members::parse(b"[1]").is_err(), "not an object");
        assert!(Members::parse(br#"{"a":1,"a":1}"#).is_err());
    }

    #[test]
    fn numbers_follow_ecmascript() {
        assert_eq!(
            canon("[0, -0, -0.0, 1.0, 1e15, 1e-7, 123456789.5, 0.1, 5e-324, -1.5e-300]"),
            "[0,0,0,1,1000000000000000,1e-7,123456789.5,0.1,5e-324,-1.5e-300]"
        );
    }

    #[test]
    fn doubtful_input_is_refused() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"a":1,"a":1}}"#,
            r#"[9007199254740992]"#,
            r#"[-9007199254740992]"#,
            r#""\ud800""#,
            r#"{"a":1} trailing"#,
            r#"{"a":1"#,
            "",
        ] {
            assert!(parse_strict(bad.as_bytes()).is_err(), "{bad} accepted");
        }
        assert!(parse_strict(b"[9007199254740991]").is_ok());
        // 1e17 is a double, but ECMAScript would write it as an ambiguous 18-digit integer.
        assert!(to_canonical(&parse_strict(b"[1e17]").unwrap()).is_err());
        assert_eq!(canon("[1e21]"), "[1e+21]");
    }
}
