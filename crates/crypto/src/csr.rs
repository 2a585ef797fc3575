//! PKCS#10 certification requests (RFC 2986), signed through any [`Signer`]: how a new key, in
//! a file or in a device, asks the authority's CA for its certificate.
//!
//! Only what a CA needs: the subject, the public key, no attributes (extensions are the CA's
//! choice, by its profile). Signatures follow RFC 5758 (ECDSA with SHA-256), RFC 8410 (Ed25519),
//! RFC 4055 (RSA PKCS#1 v1.5 with SHA-256) and GM/T 0015 (SM2 with SM3 and the default
//! identifier), so that `openssl req -verify` accepts each.

use crate::key::{oid, Algorithm};
use crate::{der, CryptoError, Signer};

/// A subject distinguished name, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName {
    attributes: Vec<NameAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NameAttribute {
    oid: &'static str,
    string_tag: u8,
    value: String,
}

const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;

/// The attribute names the subject may use: (name, OID, string type).
const NAMES: &[(&str, &str, u8)] = &[
    ("C", "2.5.4.6", PRINTABLE_STRING),
    ("ST", "2.5.4.8", UTF8_STRING),
    ("L", "2.5.4.7", UTF8_STRING),
    ("O", "2.5.4.10", UTF8_STRING),
    ("OU", "2.5.4.11", UTF8_STRING),
    ("CN", "2.5.4.3", UTF8_STRING),
    ("serialNumber", "2.5.4.5", PRINTABLE_STRING),
    ("organizationIdentifier", "2.5.4.97", UTF8_STRING),
    ("emailAddress", "1.2.840.113549.1.9.1", IA5_STRING),
];

impl DistinguishedName {
    /// Parses OpenSSL's `-subj` form, `/C=CN/O=某市市场监督管理局/serialNumber=…/CN=…`, with `\/`
    /// for a slash inside a value. Names: C, ST, L, O, OU, CN, serialNumber,
    /// organizationIdentifier, emailAddress.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let invalid = |why: String| CryptoError::InvalidInput(format!("subject {text:?}: {why}"));
        let body = text
            .strip_prefix('/')
            .ok_or_else(|| invalid("starts with '/', as /C=CN/O=…/CN=…".to_owned()))?;
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.push(
                    chars
                        .next()
                        .ok_or_else(|| invalid("ends in a lone backslash".to_owned()))?,
                ),
                '/' => parts.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        parts.push(current);
        let mut attributes = Vec::new();
        for part in parts {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| invalid(format!("{part:?} is not NAME=value")))?;
            let &(_, oid, string_tag) = NAMES
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(|| invalid(format!("unknown attribute {name:?}")))?;
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(invalid(format!("{name} is empty or has control characters")));
            }
            let fits = match string_tag {
                PRINTABLE_STRING => value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c)),
                IA5_STRING => value.is_ascii(),
                _ => true,
            };
            if !fits || (name == "C" && value.len() != 2) {
                return Err(invalid(format!("{value:?} is not a valid {name}")));
            }
            attributes.push(NameAttribute {
                oid,
                string_tag,
                value: value.to_owned(),
            });
        }
        if !attributes.iter().any(|a| a.oid == "2.5.4.3") {
            return Err(invalid("names no CN".to_owned()));
        }
        Ok(Self { attributes })
    }

    /// The DER `Name`: one attribute per relative distinguished name.
    fn to_der(&self) -> Vec<u8> {
        let mut rdns = Vec::new();
        for a in &self.attributes {
            let mut pair = der::oid(a.oid).unwrap_or_default();
            pair.extend(der::tlv(a.string_tag, a.value.as_bytes()));
            rdns.extend(der::tlv(0x31, &der::tlv(0x30, &pair)));
        }
        der::tlv(0x30, &rdns)
    }
}

/// A DER certification request for `signer`'s key under `subject`, signed by it (and checked
/// against its public key before it is returned: a faulty device must not hand out garbage).
pub fn certification_request(subject: &DistinguishedName, signer: &dyn Signer) -> Result<Vec<u8>, CryptoError> {
    let mut info = der::unsigned(&[0]);
    info.extend(subject.to_der());
    info.extend_from_slice(signer.public_key().spki_der());
    info.extend([0xa0, 0x00]);
    let info = der::tlv(0x30, &info);
    let raw = signer.sign(&info)?;
    signer.public_key().verify(signer.scheme(), &info, &raw)?;
    let (algorithm, signature) = match signer.algorithm() {
        Algorithm::Ed25519 => (identifier(oid::ED25519, false), raw),
        Algorithm::EcdsaP256 => (identifier(oid::ECDSA_SHA256, false), der::signature_sequence(&raw)),
        Algorithm::Rsa => (identifier(oid::SHA256_WITH_RSA, true), raw),
        Algorithm::Sm2 => (identifier(oid::SM2_SM3, false), der::signature_sequence(&raw)),
        Algorithm::EcdsaP384 => {
            return Err(CryptoError::UnsupportedAlgorithm(
                "P-384 keys do not sign here".to_owned(),
            ))
        }
    };
    let mut bits = vec![0u8];
    bits.extend(signature);
    let mut request = info;
    request.extend(algorithm);
    request.extend(der::tlv(0x03, &bits));
    Ok(der::tlv(0x30, &request))
}

/// An AlgorithmIdentifier: the OID, and NULL parameters where the algorithm's RFC says so (RSA).
fn identifier(dotted: &str, null_parameters: bool) -> Vec<u8> {
    let mut content = der::oid(dotted).unwrap_or_default();
    if null_parameters {
        content.extend([0x05, 0x00]);
    }
    der::tlv(0x30, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_parse_in_openssl_form() {
        let name =
            DistinguishedName::parse("/C=CN/O=某市局\\/办公室/serialNumber=11100000000013338W/CN=Authority").unwrap();
        assert_eq!(name.attributes.len(), 4);
        assert_eq!(name.attributes[1].value, "某市局/办公室");
        for bad in [
            "C=CN/CN=x",
            "/C=CHN/CN=x",
            "/X=1/CN=x",
            "/O=no common name",
            "/CN=",
            "/CN=a\\",
            "/serialNumber=中文/CN=x",
            "/CN=tab\there",
        ] {
            assert!(DistinguishedName::parse(bad).is_err(), "{bad}");
        }
    }
}
