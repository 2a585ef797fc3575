//! X.509 certificates and chain validation (RFC 5280, the parts a signing service needs).
//!
//! A [`Certificate`] is parsed once into owned fields. [`validate_chain`] builds a path from a leaf
//! through candidate intermediates to a trust anchor and checks, for every certificate on it:
//! the signature (RSA PKCS#1 v1.5 and PSS, ECDSA P-256/P-384, Ed25519, SM2 with SM3), validity
//! at the given time, basic constraints (issuers must be CAs), key usage (issuers need
//! `keyCertSign`, the leaf `digitalSignature` or `nonRepudiation`), path length, and that no
//! critical extension is left unprocessed. Names are compared as DER bytes.
//!
//! What it does not do: revocation (CRL/OCSP: the engine keeps its own registry), name
//! constraints and policies (a certificate that marks them critical is refused), host names.
//! Trust anchors are held to the same rules as intermediates (validity, basic constraints,
//! extensions), which is stricter than RFC 5280 §6.1 and what x509-limbo expects.
//! Certificates that break RFC 5280's MUSTs (missing key identifiers, non-critical CA basic
//! constraints, zero or over-long serials, v1) are refused.

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer as _;

use crate::key::{oid, PublicKey, SignatureScheme};
use crate::{hash, pem, CryptoError};

/// Most certificates a path may hold, anchor included.
pub const MAX_PATH_LEN: usize = 8;

/// A parsed certificate.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    fingerprint: [u8; 32],
    subject: Vec<u8>,
    issuer: Vec<u8>,
    subject_text: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    public_key: Result<PublicKey, CryptoError>,
    tbs: Vec<u8>,
    signature_scheme: Option<SignatureScheme>,
    signature: Vec<u8>,
    ca: Option<(bool, Option<u32>)>,
    key_usage: Option<KeyUsage>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    unhandled_critical: Option<String>,
    /// RFC 5280 rules broken whatever the certificate's place on a path.
    defect: Option<&'static str>,
    /// The serial number's content octets.
    serial: Vec<u8>,
    /// Whether basic constraints were marked critical (RFC 5280 requires it of CAs).
    ca_critical: bool,
    /// The extended key usage is critical and says only timeStamping (RFC 3161 §2.3).
    time_stamping_only: bool,
}

#[derive(Clone, Copy, Debug)]
struct KeyUsage {
    digital_signature: bool,
    non_repudiation: bool,
    key_cert_sign: bool,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_text)
            .field("id", &self.id())
            .finish()
    }
}

/// Why a chain did not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// No path leads to a trust anchor.
    #[error("no path from `{0}` to a trust anchor")]
    UnknownIssuer(String),
    /// A certificate on the path was not yet valid.
    #[error("certificate `{0}` is not yet valid at the time checked")]
    NotYetValid(String),
    /// A certificate on the path had expired.
    #[error("certificate `{0}` had expired at the time checked")]
    Expired(String),
    /// A certificate's signature does not verify under its issuer's key.
    #[error("the signature on certificate `{0}` does not verify")]
    BadSignature(String),
    /// An issuer is not a CA, or lacks `keyCertSign`.
    #[error("certificate `{0}` may not issue certificates")]
    NotACa(String),
    /// An issuer's path length constraint is exceeded.
    #[error("the path length constraint of `{0}` is exceeded")]
    PathLenExceeded(String),
    /// The leaf may not sign documents (key usage, or it is a CA).
    #[error("certificate `{0}` may not sign documents (key usage or CA flag)")]
    LeafUsage(String),
    /// A critical extension the validator does not process.
    #[error("certificate `{0}` has an unsupported critical extension {1}")]
    UnhandledCritical(String, String),
    /// A key or signature algorithm the validator does not support.
    #[error("certificate `{0}` uses an unsupported algorithm")]
    Unsupported(String),
    /// The path would be longer than [`MAX_PATH_LEN`].
    #[error("path too long")]
    TooLong,
    /// A certificate breaks a rule of RFC 5280.
    #[error("certificate `{0}` is not conformant: {1}")]
    Nonconformant(String, &'static str),
    /// A certificate on the path is revoked (by a CRL the caller holds).
    #[error("{0}")]
    Revoked(String),
}

impl ChainError {
    /// Whether the chain could not be evaluated (rather than evaluated and found bad).
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, Self::UnknownIssuer(_) | Self::Unsupported(_))
    }
}

/// The scheme of a signature algorithm identifier we verify; `None` for any other (including a
/// known algorithm with unexpected parameters).
pub(crate) fn signature_scheme(alg: &x509_parser::x509::AlgorithmIdentifier<'_>) -> Option<SignatureScheme> {
    let sig_oid = alg.algorithm.to_id_string();
    let sig_params = alg.parameters.as_ref();
    let params_null_or_absent =
        sig_params.is_none_or(|p| p.header.tag() == x509_parser::der_parser::asn1_rs::Tag::Null && p.data.is_empty());
    match (sig_oid.as_str(), params_null_or_absent) {
        (oid::SHA256_WITH_RSA, true) => Some(SignatureScheme::RsaPkcs1Sha256),
        (oid::SHA384_WITH_RSA, true) => Some(SignatureScheme::RsaPkcs1Sha384),
        (oid::SHA512_WITH_RSA, true) => Some(SignatureScheme::RsaPkcs1Sha512),
        (oid::ECDSA_SHA256, _) if sig_params.is_none() => Some(SignatureScheme::EcdsaSha256Der),
        (oid::ECDSA_SHA384, _) if sig_params.is_none() => Some(SignatureScheme::EcdsaSha384Der),
        (oid::ED25519, _) if sig_params.is_none() => Some(SignatureScheme::Ed25519),
        (oid::SM2_SM3, true) => Some(SignatureScheme::Sm2Sm3Der),
        (oid::RSASSA_PSS, _) if sig_params.is_some_and(|p| p.as_bytes() == PSS_SHA256_PARAMS) => {
            Some(SignatureScheme::RsaPssSha256)
        }
        _ => None,
    }
}

impl Certificate {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        let bad = |m: &str| CryptoError::MalformedCertificate(m.to_owned());
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CryptoError::MalformedCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let subject_text = cert.subject().to_string();
        let mut ca = None;
        let mut key_usage = None;
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        let mut unhandled_critical = None;
        let mut defect = None;
        let mut ca_critical = false;
        let mut time_stamping_only = false;
        let mut seen = Vec::new();
        for ext in cert.extensions() {
            let id = ext.oid.to_id_string();
            if seen.contains(&id) {
                return Err(bad("duplicate extension"));
            }
            seen.push(id.clone());
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => {
                    ca = Some((bc.ca, bc.path_len_constraint));
                    ca_critical = ext.critical;
                }
                ParsedExtension::KeyUsage(ku) => {
                    key_usage = Some(KeyUsage {
                        digital_signature: ku.digital_signature(),
                        non_repudiation: ku.non_repudiation(),
                        key_cert_sign: ku.key_cert_sign(),
                    })
                }
                ParsedExtension::SubjectKeyIdentifier(k) => subject_key_id = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    if ext.critical {
                        defect = Some("authority key identifier marked critical");
                    } else if a.authority_cert_issuer.is_some() || a.authority_cert_serial.is_some() {
                        defect = Some("authority key identifier by issuer and serial is not supported");
                    }
                    authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                    if authority_key_id.is_none() {
                        defect = Some("authority key identifier without keyIdentifier");
                    }
                }
                ParsedExtension::AuthorityInfoAccess(_) if ext.critical => {
                    defect = Some("authority information access marked critical")
                }
                // Name constraints are not enforced, so a certificate carrying them is refused
                // rather than trusted beyond its constraints.
                ParsedExtension::NameConstraints(_) => unhandled_critical = Some(id),
                ParsedExtension::ParseError { .. } => return Err(bad("malformed extension")),
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    time_stamping_only = ext.critical
                        && eku.time_stamping
                        && eku.other.is_empty()
                        && !(eku.any
                            || eku.server_auth
                            || eku.client_auth
                            || eku.code_signing
                            || eku.email_protection
                            || eku.ocsp_signing);
                }
                ParsedExtension::SubjectAlternativeName(_)
                | ParsedExtension::CertificatePolicies(_)
                | ParsedExtension::CRLDistributionPoints(_)
                | ParsedExtension::AuthorityInfoAccess(_) => {}
                _ if ext.critical => unhandled_critical = Some(id),
                _ => {}
            }
        }
        if cert.signature_algorithm != cert.tbs_certificate.signature {
            return Err(bad("signature algorithm differs from the one in the signed part"));
        }
        let signature_scheme = signature_scheme(&cert.signature_algorithm);
        if cert.signature_value.unused_bits != 0 {
            return Err(bad("signature bit string has unused bits"));
        }
        let serial = cert.raw_serial();
        if cert.version() != x509_parser::x509::X509Version::V3 {
            defect = Some("not a version 3 certificate");
        } else if serial.iter().all(|&b| b == 0) || serial.len() > 20 {
            defect = Some("serial number must be positive and at most 20 octets");
        } else if cert.issuer().as_raw().len() <= 2 {
            defect = Some("empty issuer name");
        }
        Ok(Self {
            der: der.to_vec(),
            fingerprint: hash::sha256(der),
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            subject_text,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            public_key: PublicKey::from_spki_der(cert.public_key().raw),
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            signature_scheme,
            signature: cert.signature_value.data.to_vec(),
            ca,
            key_usage,
            subject_key_id,
            authority_key_id,
            unhandled_critical,
            defect,
            serial: serial.to_vec(),
            ca_critical,
            time_stamping_only,
        })
    }

    /// Whether this may be a time-stamping authority's certificate: a critical extended key
    /// usage naming timeStamping and nothing else (RFC 3161 §2.3).
    pub fn is_time_stamping_only(&self) -> bool {
        self.time_stamping_only
    }

    /// The subject key identifier, if the certificate has one.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.subject_key_id.as_deref()
    }

    /// The serial number's content octets.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The issuer's name, DER.
    pub fn issuer_name(&self) -> &[u8] {
        &self.issuer
    }

    /// The subject's name, DER.
    pub fn subject_name(&self) -> &[u8] {
        &self.subject
    }

    /// Parses every `CERTIFICATE` block of PEM text, in order.
    pub fn all_from_pem(text: &str) -> Result<Vec<Self>, CryptoError> {
        pem::decode_label(text, "CERTIFICATE")?
            .iter()
            .map(|der| Self::from_der(der))
            .collect()
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding.
    pub fn to_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.der)
    }

    /// SHA-256 of the DER encoding.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The certificate id used as a licence proof's `verificationMethod`:
    /// `urn:zhengyin:cert:sha256:<hex of SHA-256 of the DER>`.
    pub fn id(&self) -> String {
        format!("urn:zhengyin:cert:sha256:{}", hex::encode(self.fingerprint))
    }

    /// The subject distinguished name, as text.
    pub fn subject(&self) -> &str {
        &self.subject_text
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the validity period.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The subject public key, if its algorithm is supported.
    pub fn public_key(&self) -> Result<&PublicKey, CryptoError> {
        self.public_key.as_ref().map_err(Clone::clone)
    }

    fn valid_at(&self, at: OffsetDateTime) -> Result<(), ChainError> {
        if at < self.not_before {
            return Err(ChainError::NotYetValid(self.subject_text.clone()));
        }
        if at > self.not_after {
            return Err(ChainError::Expired(self.subject_text.clone()));
        }
        Ok(())
    }

    fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    /// Whether `issuer` could have issued `self`: names match and key identifiers do not
    /// contradict each other.
    fn may_be_issued_by(&self, issuer: &Certificate) -> bool {
        self.issuer == issuer.subject
            && match (&self.authority_key_id, &issuer.subject_key_id) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            }
    }

    fn signed_by(&self, issuer: &Certificate) -> Result<(), ChainError> {
        let unsupported = || ChainError::Unsupported(self.subject_text.clone());
        let scheme = self.signature_scheme.ok_or_else(unsupported)?;
        let key = issuer
            .public_key
            .as_ref()
            .map_err(|_| ChainError::Unsupported(issuer.subject_text.clone()))?;
        key.verify(scheme, &self.tbs, &self.signature)
            .map_err(|_| ChainError::BadSignature(self.subject_text.clone()))
    }

    /// Checks what holds for a certificate anywhere on a path: no unprocessed critical
    /// extension, no RFC 5280 defect, an authority key identifier unless self-issued.
    fn check_common(&self) -> Result<(), ChainError> {
        let nonconformant = |why| Err(ChainError::Nonconformant(self.subject_text.clone(), why));
        if let Some(oid) = &self.unhandled_critical {
            return Err(ChainError::UnhandledCritical(self.subject_text.clone(), oid.clone()));
        }
        if let Some(why) = self.defect {
            return nonconformant(why);
        }
        if !self.self_issued() && self.authority_key_id.is_none() {
            return nonconformant("no authority key identifier");
        }
        Ok(())
    }

    /// Checks that this certificate may issue certificates with `below` non-self-issued
    /// intermediates beneath it.
    fn check_issuer(&self, below: usize) -> Result<(), ChainError> {
        let not_ca = || ChainError::NotACa(self.subject_text.clone());
        let (is_ca, path_len) = self.ca.ok_or_else(not_ca)?;
        if !is_ca || self.key_usage.is_some_and(|ku| !ku.key_cert_sign) {
            return Err(not_ca());
        }
        self.check_common()?;
        let nonconformant = |why| Err(ChainError::Nonconformant(self.subject_text.clone(), why));
        if !self.ca_critical {
            return nonconformant("basic constraints of a CA must be critical");
        }
        if self.subject_key_id.is_none() {
            return nonconformant("a CA needs a subject key identifier");
        }
        if self.subject.len() <= 2 {
            return nonconformant("a CA needs a subject name");
        }
        if path_len.is_some_and(|max| below > max as usize) {
            return Err(ChainError::PathLenExceeded(self.subject_text.clone()));
        }
        Ok(())
    }

    /// A self-signed anchor's key identifiers must name the same key.
    fn check_anchor_key_ids(&self) -> Result<(), ChainError> {
        match (&self.authority_key_id, &self.subject_key_id) {
            (Some(aki), Some(ski)) if self.self_issued() && aki != ski => Err(ChainError::Nonconformant(
                self.subject_text.clone(),
                "self-signed, but its key identifiers differ",
            )),
            _ => Ok(()),
        }
    }

    fn check_leaf(&self) -> Result<(), ChainError> {
        let may_sign = self
            .key_usage
            .is_none_or(|ku| (ku.digital_signature || ku.non_repudiation) && !ku.key_cert_sign);
        if !may_sign || self.ca.is_some_and(|(ca, _)| ca) {
            return Err(ChainError::LeafUsage(self.subject_text.clone()));
        }
        if self.public_key.is_err() {
            return Err(ChainError::Unsupported(self.subject_text.clone()));
        }
        self.check_common()
    }
}

/// DER of RSASSA-PSS-params for SHA-256, MGF1 with SHA-256, salt length 32 (RFC 4055), the only
/// PSS parameters accepted in certificates.
const PSS_SHA256_PARAMS: &[u8] = &[
    0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
];

/// A set of trust anchors.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    anchors: Vec<Certificate>,
}

impl TrustAnchors {
    /// Anchors from certificates.
    pub fn new(anchors: Vec<Certificate>) -> Self {
        Self { anchors }
    }

    /// Anchors from every certificate of PEM text.
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        Ok(Self::new(Certificate::all_from_pem(text)?))
    }

    /// The anchors.
    pub fn certificates(&self) -> &[Certificate] {
        &self.anchors
    }
}

/// A path that validated: leaf first, anchor last.
#[derive(Debug, Clone)]
pub struct ValidatedChain {
    /// Fingerprints of the certificates, leaf first, anchor last.
    pub path: Vec<[u8; 32]>,
    /// Latest `notBefore` on the path.
    pub not_before: OffsetDateTime,
    /// Earliest `notAfter` on the path.
    pub not_after: OffsetDateTime,
    /// The anchor's subject.
    pub anchor: String,
}

impl ValidatedChain {
    /// Whether `at` lies inside every certificate's validity period on the path.
    pub fn covers(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// Validates `leaf` at time `at` through `intermediates` to one of `anchors`.
pub fn validate_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &TrustAnchors,
    at: OffsetDateTime,
) -> Result<ValidatedChain, ChainError> {
    leaf.check_leaf()?;
    leaf.valid_at(at)?;
    let mut path = vec![leaf];
    extend_path(&mut path, intermediates, anchors, at)
}

fn extend_path<'a>(
    path: &mut Vec<&'a Certificate>,
    intermediates: &'a [Certificate],
    anchors: &'a TrustAnchors,
    at: OffsetDateTime,
) -> Result<ValidatedChain, ChainError> {
    let Some(&child) = path.last() else {
        return Err(ChainError::TooLong);
    };
    if path.len() >= MAX_PATH_LEN {
        return Err(ChainError::TooLong);
    }
    // Non-self-issued intermediates beneath the next issuer (RFC 5280 §6.1.4 (l)).
    let below = path.iter().skip(1).filter(|c| !c.self_issued()).count();
    let mut error = None;
    for anchor in anchors.anchors.iter().filter(|a| child.may_be_issued_by(a)) {
        let checked = anchor
            .check_anchor_key_ids()
            .and_then(|()| anchor.check_issuer(below))
            .and_then(|()| anchor.valid_at(at))
            .and_then(|()| child.signed_by(anchor));
        match checked {
            Ok(()) => {
                let full = path.iter().copied().chain([anchor]);
                return Ok(ValidatedChain {
                    path: full.clone().map(|c| c.fingerprint).collect(),
                    not_before: full.clone().map(|c| c.not_before).max().unwrap_or(at),
                    not_after: full.map(|c| c.not_after).min().unwrap_or(at),
                    anchor: anchor.subject_text.clone(),
                });
            }
            Err(e) => error = Some(e),
        }
    }
    for issuer in intermediates.iter().filter(|c| child.may_be_issued_by(c)) {
        if path.iter().any(|c| c.fingerprint == issuer.fingerprint) {
            continue;
        }
        let checked = issuer
            .check_issuer(below)
            .and_then(|()| issuer.valid_at(at))
            .and_then(|()| child.signed_by(issuer));
        if let Err(e) = checked {
            error = Some(e);
            continue;
        }
        path.push(issuer);
        match extend_path(path, intermediates, anchors, at) {
            Ok(chain) => return Ok(chain),
            Err(e) => error = Some(e),
        }
        path.pop();
    }
    Err(error.unwrap_or_else(|| ChainError::UnknownIssuer(child.subject_text.clone())))
}
