//! Identifiers: GB/T 36904 licence identifiers, GB 32100 unified social credit codes, GB 11643
//! citizen identity numbers, and the holder code types that say which of them a holder code is.
//!
//! Every type here is parsed, never merely validated: holding a [`LicenceId`] means its check
//! character was right.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::check;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The identifier does not have the shape its standard defines.
    #[error("{kind}: {reason}")]
    Malformed {
        /// Which identifier.
        kind: &'static str,
        /// What is wrong, in words.
        reason: &'static str,
    },
    /// Every character is allowed, but the check character is wrong.
    #[error("{kind}: wrong check character (expected {expected}, found {found})")]
    CheckCharacter {
        /// Which identifier.
        kind: &'static str,
        /// The check character the data calls for.
        expected: char,
        /// The check character given.
        found: char,
    },
}

fn malformed(kind: &'static str, reason: &'static str) -> IdError {
    IdError::Malformed { kind, reason }
}

/// Compares the given check character (`last`, one character) with the expected one.
fn check_character(kind: &'static str, last: &str, expected: char) -> Result<(), IdError> {
    let found = last.chars().next().unwrap_or(' ');
    if found == expected {
        Ok(())
    } else {
        Err(IdError::CheckCharacter { kind, expected, found })
    }
}

/// Implements `Display`, `FromStr`, `Serialize` and `Deserialize` through `as_str` / `parse`.
macro_rules! string_id {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters, the last a
/// weighted MOD 31 check character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

impl Uscc {
    const KIND: &'static str = "unified social credit code";

    /// Parses a USCC, checking its alphabet and check character.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 18 || !s.is_ascii() {
            return Err(malformed(Self::KIND, "must be 18 characters"));
        }
        let (body, last) = s.split_at(17);
        let expected = check::gb32100(body)
            .ok_or_else(|| malformed(Self::KIND, "character outside 0-9A-Y without I, O, S, V, Z"))?;
        check_character(Self::KIND, last, expected)?;
        Ok(Self(s.to_owned()))
    }

    /// Completes the first 17 characters of a code with the check character that fits them.
    pub fn with_check_character(first17: &str) -> Result<Self, IdError> {
        if first17.len() != 17 || !first17.is_ascii() {
            return Err(malformed(Self::KIND, "17 characters come before the check character"));
        }
        let check = check::gb32100(first17)
            .ok_or_else(|| malformed(Self::KIND, "character outside 0-9A-Y without I, O, S, V, Z"))?;
        Ok(Self(format!("{first17}{check}")))
    }

    /// The code as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_id!(Uscc);

/// A citizen identity number (公民身份号码, GB 11643-1999): 17 digits (region, birth date,
/// sequence) and an ISO 7064 MOD 11-2 check character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CitizenId(String);

impl CitizenId {
    const KIND: &'static str = "citizen identity number";

    /// Parses a citizen identity number, checking the birth date and the check character.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 18 || !s.is_ascii() {
            return Err(malformed(Self::KIND, "must be 18 characters"));
        }
        let (body, last) = s.split_at(17);
        let expected =
            check::iso7064_mod11_2(body).ok_or_else(|| malformed(Self::KIND, "first 17 characters must be digits"))?;
        let birth = &body[6..14];
        let date_ok = time::Date::parse(birth, time::macros::format_description!("[year][month][day]")).is_ok();
        if !date_ok {
            return Err(malformed(Self::KIND, "characters 7-14 are not a birth date"));
        }
        check_character(Self::KIND, last, expected)?;
        Ok(Self(s.to_owned()))
    }

    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_id!(CitizenId);

/// Which kind of code identifies a holder (证照持有主体代码类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HolderCodeType {
    /// `111`: citizen identity number.
    CitizenId,
    /// `001`: unified social credit code.
    Uscc,
}

impl HolderCodeType {
    /// Parses the catalogue code (`111`, `001`).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s {
            "111" => Ok(Self::CitizenId),
            "001" => Ok(Self::Uscc),
            _ => Err(malformed(
                "holder code type",
                "unknown (known: 111 citizen ID, 001 USCC)",
            )),
        }
    }

    /// The catalogue code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CitizenId => "111",
            Self::Uscc => "001",
        }
    }

    /// Checks that `code` is a valid code of this type.
    pub fn check_code(self, code: &str) -> Result<(), IdError> {
        match self {
            Self::CitizenId => CitizenId::parse(code).map(drop),
            Self::Uscc => Uscc::parse(code).map(drop),
        }
    }
}
string_id!(HolderCodeType);

/// A licence type code: the USCC of the authority that defines the type followed by a 3-digit
/// sequence, e.g. `11100000000013338W032`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeCode(String);

impl TypeCode {
    const KIND: &'static str = "licence type code";

    /// Parses a type code (21 characters: USCC + 3 digits).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 21 || !s.is_ascii() {
            return Err(malformed(Self::KIND, "must be 21 characters: a USCC and 3 digits"));
        }
        let (uscc, seq) = s.split_at(18);
        Uscc::parse(uscc)?;
        if !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(Self::KIND, "last 3 characters must be digits"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The USCC of the authority that defines the type.
    pub fn defining_authority(&self) -> Uscc {
        Uscc(self.0[..18].to_owned())
    }

    /// The code as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_id!(TypeCode);

/// A licence version: `001`, `002`, … (three digits, never `000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(u16);

impl Version {
    /// The first version, `001`.
    pub const FIRST: Version = Version(1);

    /// The version after this one, or `None` after `999`.
    pub fn next(self) -> Option<Version> {
        (self.0 < 999).then_some(Version(self.0 + 1))
    }

    /// The version number.
    pub fn number(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// A GB/T 36904 licence identifier:
/// `1.2.156.3005.2.<type code 21>.<issuer code 18>.<serial>.<version 3>.<check 1>`.
///
/// The check character is ISO/IEC 7064 MOD 37,36 over type code, issuer code, serial and
/// version with the dots removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenceId {
    text: String,
    type_code: TypeCode,
    issuer: Uscc,
    serial: String,
    version: Version,
}

/// The fixed OID arc every GB/T 36904 identifier starts with.
pub const LICENCE_ID_PREFIX: &str = "1.2.156.3005.2.";

impl LicenceId {
    const KIND: &'static str = "licence identifier";

    /// Builds an identifier and computes its check character.
    pub fn new(type_code: TypeCode, issuer: Uscc, serial: &str, version: Version) -> Result<Self, IdError> {
        check_serial(serial)?;
        let data = format!("{}{}{}{}", type_code, issuer, serial, version);
        let check = check::iso7064_mod37_36(&data).ok_or_else(|| malformed(Self::KIND, "bad characters"))?;
        let text = format!("{LICENCE_ID_PREFIX}{type_code}.{issuer}.{serial}.{version}.{check}");
        Ok(Self {
            text,
            type_code,
            issuer,
            serial: serial.to_owned(),
            version,
        })
    }

    /// Parses an identifier, refusing a wrong check character.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let rest = s
            .strip_prefix(LICENCE_ID_PREFIX)
            .ok_or_else(|| malformed(Self::KIND, "must start with 1.2.156.3005.2."))?;
        let parts: Vec<&str> = rest.split('.').collect();
        let [type_code, issuer, serial, version, check] = parts[..] else {
            return Err(malformed(
                Self::KIND,
                "must have type code, issuer, serial, version and check parts",
            ));
        };
        let type_code = TypeCode::parse(type_code)?;
        let issuer = Uscc::parse(issuer)?;
        if version.len() != 3 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(Self::KIND, "version must be 3 digits"));
        }
        let version = match version.parse::<u16>() {
            Ok(0) | Err(_) => return Err(malformed(Self::KIND, "version must be 001 to 999")),
            Ok(v) => Version(v),
        };
        let mut check_chars = check.chars();
        let (Some(found), None) = (check_chars.next(), check_chars.next()) else {
            return Err(malformed(Self::KIND, "check part must be one character"));
        };
        let id = Self::new(type_code, issuer, serial, version)?;
        let expected = id.check_character();
        if found != expected {
            return Err(IdError::CheckCharacter {
                kind: Self::KIND,
                expected,
                found,
            });
        }
        Ok(id)
    }

    /// The licence type code.
    pub fn type_code(&self) -> &TypeCode {
        &self.type_code
    }

    /// The issuing authority's USCC.
    pub fn issuer(&self) -> &Uscc {
        &self.issuer
    }

    /// The serial assigned by the issuing node.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The identifier of the next version of this licence.
    pub fn next_version(&self) -> Result<Self, IdError> {
        let next = self
            .version
            .next()
            .ok_or_else(|| malformed(Self::KIND, "no version after 999"))?;
        Self::new(self.type_code.clone(), self.issuer.clone(), &self.serial, next)
    }

    /// The identifier with the version part left out: the same for every version of a licence.
    pub fn lineage(&self) -> String {
        format!("{LICENCE_ID_PREFIX}{}.{}.{}", self.type_code, self.issuer, self.serial)
    }

    fn check_character(&self) -> char {
        self.text.chars().last().unwrap_or(' ')
    }

    /// The identifier as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}
string_id!(LicenceId);

fn check_serial(serial: &str) -> Result<(), IdError> {
    if serial.is_empty() || serial.len() > 32 {
        return Err(malformed(LicenceId::KIND, "serial must be 1 to 32 characters"));
    }
    if !serial.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return Err(malformed(
            LicenceId::KIND,
            "serial must be uppercase letters and digits",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F";

    #[test]
    fn the_real_identifier_parses_and_round_trips() {
        let id = LicenceId::parse(REAL).unwrap();
        assert_eq!(id.as_str(), REAL);
        assert_eq!(id.type_code().as_str(), "11100000000013338W032");
        assert_eq!(id.type_code().defining_authority().as_str(), "11100000000013338W");
        assert_eq!(id.issuer().as_str(), "11220000013544541J");
        assert_eq!(id.serial(), "2430599");
        assert_eq!(id.version().to_string(), "001");
    }

    #[test]
    fn every_wrong_check_character_is_refused() {
        for c in "0123456789ABCDEGHIJKLMNOPQRSTUVWXYZ".chars() {
            let bad = format!("{}{c}", &REAL[..REAL.len() - 1]);
            let err = LicenceId::parse(&bad).unwrap_err();
            assert!(
                matches!(err, IdError::CheckCharacter { expected: 'F', .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn malformed_identifiers_are_refused() {
        for bad in [
            "",
            "1.2.156.3005.2",
            "1.2.156.3005.3.11100000000013338W032.11220000013544541J.2430599.001.F",
            "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001",
            "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.000.F",
            "1.2.156.3005.2.11100000000013338W032.11220000013544541J.24305a9.001.F",
            "1.2.156.3005.2.11100000000013338W032.11220000013544541K.2430599.001.F",
            "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.FF",
            "1.2.156.3005.2.11100000000013338W032.11220000013544541J..001.F",
        ] {
            assert!(LicenceId::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn next_version_keeps_the_lineage() {
        let id = LicenceId::parse(REAL).unwrap();
        let next = id.next_version().unwrap();
        assert_eq!(next.version().to_string(), "002");
        assert_eq!(next.lineage(), id.lineage());
        assert_eq!(LicenceId::parse(next.as_str()).unwrap(), next);
    }

    #[test]
    fn citizen_ids_are_checked() {
        assert!(CitizenId::parse("11010519491231002X").is_ok());
        assert!(matches!(
            CitizenId::parse("110105194912310021"),
            Err(IdError::CheckCharacter { .. })
        ));
        assert!(CitizenId::parse("11010519491331002X").is_err(), "month 13");
        assert!(CitizenId::parse("1101051949123100X").is_err());
    }

    #[test]
    fn a_completed_uscc_parses() {
        let code = Uscc::with_check_character("91350100M000100Y4").unwrap();
        assert_eq!(code.as_str(), "91350100M000100Y43");
        assert!(Uscc::with_check_character("91350100M000100Y").is_err());
        assert!(Uscc::with_check_character("91350100M000100YI").is_err());
    }

    #[test]
    fn usccs_are_checked() {
        assert!(Uscc::parse("91350100M000100Y43").is_ok());
        assert!(Uscc::parse("91350100M000100Y44").is_err());
        assert!(Uscc::parse("91350100M000100Y4").is_err());
        assert!(Uscc::parse("91350100M000100I43").is_err());
    }

    #[test]
    fn holder_codes_follow_their_type() {
        assert!(HolderCodeType::parse("111")
            .unwrap()
            .check_code("11010519491231002X")
            .is_ok());
        assert!(HolderCodeType::parse("001")
            .unwrap()
            .check_code("11010519491231002X")
            .is_err());
        assert!(HolderCodeType::parse("999").is_err());
    }

    proptest::proptest! {
        #[test]
        fn built_identifiers_always_parse(serial in "[0-9A-Z]{1,12}", v in 1u16..999) {
            let id = LicenceId::new(
                TypeCode::parse("11100000000013338W032").unwrap(),
                Uscc::parse("11220000013544541J").unwrap(),
                &serial,
                Version(v),
            ).unwrap();
            proptest::prop_assert_eq!(LicenceId::parse(id.as_str()).unwrap(), id);
        }
    }
}
