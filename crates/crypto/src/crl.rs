//! Certificate revocation lists (RFC 5280 §5): parsed, their signature checked against the CA
//! that issued them, and asked whether a certificate was revoked, when, and why.
//!
//! Only complete CRLs are accepted: an unknown critical extension (a delta CRL, an issuing
//! distribution point) is refused rather than read as the whole truth.

use std::collections::HashMap;

use time::OffsetDateTime;
use x509_parser::prelude::FromDer as _;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::x509::{signature_scheme, Certificate};
use crate::{pem, CryptoError};

/// RFC 5280 reason code `keyCompromise`.
pub const KEY_COMPROMISE: u8 = 1;
/// RFC 5280 reason code `cACompromise`.
pub const CA_COMPROMISE: u8 = 2;

/// One revoked certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// When it was revoked.
    pub date: OffsetDateTime,
    /// The RFC 5280 reason code, when given.
    pub reason: Option<u8>,
}

impl Revocation {
    /// Whether the key itself is in doubt (key or CA compromise): signatures made before the
    /// revocation date cannot be trusted either.
    pub fn key_compromised(&self) -> bool {
        matches!(self.reason, Some(KEY_COMPROMISE | CA_COMPROMISE))
    }
}

/// A verified CRL.
#[derive(Debug, Clone)]
pub struct RevocationList {
    der: Vec<u8>,
    issuer: Vec<u8>,
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
    revoked: HashMap<Vec<u8>, Revocation>,
}

fn malformed(why: impl Into<String>) -> CryptoError {
    CryptoError::MalformedCertificate(format!("CRL: {}", why.into()))
}

impl RevocationList {
    /// Parses a DER CRL and checks that `issuer` (by name and key) signed it.
    pub fn from_der(der: &[u8], issuer: &Certificate) -> Result<Self, CryptoError> {
        let (rest, crl) = CertificateRevocationList::from_der(der).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        if crl.signature_algorithm != crl.tbs_cert_list.signature {
            return Err(malformed("signature algorithm differs from the one in the signed part"));
        }
        if crl.issuer().as_raw() != issuer.subject_name() {
            return Err(malformed("not issued by this CA"));
        }
        let scheme = signature_scheme(&crl.signature_algorithm).ok_or_else(|| malformed("unsupported signature"))?;
        issuer
            .public_key()?
            .verify(scheme, crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
            .map_err(|_| CryptoError::BadSignature)?;
        if let Some(ext) = crl.extensions().iter().find(|e| {
            e.critical
                && !matches!(
                    e.parsed_extension(),
                    x509_parser::extensions::ParsedExtension::CRLNumber(_)
                        | x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(_)
                )
        }) {
            return Err(malformed(format!("unsupported critical extension {}", ext.oid)));
        }
        let mut revoked = HashMap::new();
        for entry in crl.iter_revoked_certificates() {
            if entry.extensions().iter().any(|e| {
                e.critical
                    && !matches!(
                        e.parsed_extension(),
                        x509_parser::extensions::ParsedExtension::ReasonCode(_)
                    )
            }) {
                return Err(malformed("an entry has an unsupported critical extension"));
            }
            let reason = entry.reason_code().map(|(_, code)| code.0);
            revoked.insert(
                entry.raw_serial().to_vec(),
                Revocation {
                    date: entry.revocation_date.to_datetime(),
                    reason,
                },
            );
        }
        Ok(Self {
            der: der.to_vec(),
            issuer: crl.issuer().as_raw().to_vec(),
            this_update: crl.last_update().to_datetime(),
            next_update: crl.next_update().map(|t| t.to_datetime()),
            revoked,
        })
    }

    /// Parses the first `X509 CRL` block of PEM text (see [`Self::from_der`]).
    pub fn from_pem(text: &str, issuer: &Certificate) -> Result<Self, CryptoError> {
        let blocks = pem::decode_label(text, "X509 CRL")?;
        let der = blocks
            .first()
            .ok_or_else(|| CryptoError::Pem("no X509 CRL block".to_owned()))?;
        Self::from_der(der, issuer)
    }

    /// The CRL as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuing CA's name, DER.
    pub fn issuer_name(&self) -> &[u8] {
        &self.issuer
    }

    /// When it was issued.
    pub fn this_update(&self) -> OffsetDateTime {
        self.this_update
    }

    /// When the next one is due, if said.
    pub fn next_update(&self) -> Option<OffsetDateTime> {
        self.next_update
    }

    /// Whether `certificate` (issued by this CRL's CA) is listed, and how.
    pub fn revocation(&self, certificate: &Certificate) -> Option<Revocation> {
        if certificate.issuer_name() != self.issuer.as_slice() {
            return None;
        }
        self.revoked.get(certificate.serial()).copied()
    }

    /// How many certificates it lists.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

/// The first certificate of `path` (leaf first) one of `crls` revokes: its subject and how.
pub fn first_revoked<'a>(
    path: &[&Certificate],
    crls: impl IntoIterator<Item = &'a RevocationList> + Clone,
) -> Option<(String, Revocation)> {
    path.iter().find_map(|cert| {
        crls.clone()
            .into_iter()
            .find_map(|crl| crl.revocation(cert))
            .map(|revocation| (cert.subject().to_owned(), revocation))
    })
}

/// Parses a CRL from PEM or DER and checks it against the first of `cas` that signed it.
pub fn from_any(data: &[u8], cas: &[Certificate]) -> Result<RevocationList, CryptoError> {
    let der = match std::str::from_utf8(data) {
        Ok(text) if text.contains("-----BEGIN") => pem::decode_label(text, "X509 CRL")?
            .into_iter()
            .next()
            .map(|block| block.to_vec())
            .ok_or_else(|| CryptoError::Pem("no X509 CRL block".to_owned()))?,
        _ => data.to_vec(),
    };
    let mut last = malformed("no CA to check it against");
    for ca in cas {
        match RevocationList::from_der(&der, ca) {
            Ok(crl) => return Ok(crl),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../keys-example/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn cert(name: &str) -> Certificate {
        Certificate::all_from_pem(&keys(name)).unwrap().remove(0)
    }

    #[test]
    fn the_example_crl_lists_two_authorities_with_their_reasons() {
        let ca = cert("issuing-ca.pem");
        let crl = RevocationList::from_pem(&keys("test-only/issuing-ca-revocations.crl.pem"), &ca).unwrap();
        assert_eq!(crl.len(), 2);
        let ed = crl.revocation(&cert("authority-ed25519.pem")).unwrap();
        assert!(ed.key_compromised());
        let p256 = crl.revocation(&cert("authority-p256.pem")).unwrap();
        assert_eq!(p256.reason, Some(4), "superseded");
        assert!(!p256.key_compromised());
        assert!(crl.revocation(&cert("authority-sm2.pem")).is_none());
        assert!(crl.revocation(&ca).is_none(), "another issuer's serial space");
    }

    #[test]
    fn a_crl_from_another_ca_or_changed_is_refused() {
        let crl = keys("test-only/issuing-ca-revocations.crl.pem");
        assert!(
            RevocationList::from_pem(&crl, &cert("root-ca.pem")).is_err(),
            "not the root's CRL"
        );
        let der = pem::decode_label(&crl, "X509 CRL").unwrap().remove(0);
        // Flip a byte of the signed part (inside the revoked entries) and of the signature.
        for at in [der.len() / 2, der.len() - 3] {
            let mut changed = der.clone();
            changed[at] ^= 0x01;
            assert!(
                RevocationList::from_der(&changed, &cert("issuing-ca.pem")).is_err(),
                "byte {at}"
            );
        }
        assert!(RevocationList::from_der(&der[..der.len() - 1], &cert("issuing-ca.pem")).is_err());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(RevocationList::from_der(&trailing, &cert("issuing-ca.pem")).is_err());
    }
}
