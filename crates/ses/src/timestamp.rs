//! Time-stamp tokens (RFC 3161; GM/T 0033 uses the same structure with SM2/SM3) as v5 seals
//! and signatures carry them: what a token says, and whether it holds.
//!
//! # Structure read
//!
//! ```text
//! ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
//! SignedData  ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo SEQUENCE {
//!                   eContentType id-ct-TSTInfo, eContent [0] EXPLICIT OCTET STRING (TSTInfo) },
//!                   certificates [0] IMPLICIT SET OPTIONAL, crls [1] IMPLICIT OPTIONAL,
//!                   signerInfos SET (exactly one) }
//! SignerInfo  ::= SEQUENCE { version, sid (IssuerAndSerialNumber | [0] SubjectKeyIdentifier),
//!                   digestAlgorithm, signedAttrs [0] IMPLICIT SET, signatureAlgorithm,
//!                   signature OCTET STRING, unsignedAttrs [1] IMPLICIT OPTIONAL }
//! TSTInfo     ::= SEQUENCE { version 1, policy, messageImprint SEQUENCE { hashAlgorithm,
//!                   hashedMessage }, serialNumber, genTime GeneralizedTime, … }
//! ```
//!
//! # What [`verify_token`] checks
//!
//! The signed attributes hold the content type TSTInfo, the message digest of the eContent (by
//! the signer's digest algorithm) and the signing certificate (ESSCertIDv2, or the legacy
//! ESSCertID) naming the TSA's certificate by hash; the signature over the DER of the signed
//! attributes (as a SET) verifies with that certificate's key; the certificate's extended key
//! usage is critical and only timeStamping; the message imprint (SHA-256 or SM3) is the hash of
//! the protected bytes. The TSA certificate's chain is the caller's to validate (at `genTime`,
//! with its anchors). Every length is bounded by the input; nothing recurses on input.

use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, Tag, TagNumber};
use time::OffsetDateTime;
use zhengyin_crypto::{hash, Certificate, SignatureScheme};

use crate::der_read::{Der, Origin};
use crate::format::read_time;
use crate::SesError;

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SIGNING_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const SIGNING_CERTIFICATE_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SM2_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
const SM2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301.1");

/// The two hash algorithms a message imprint or a message digest may use here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// SHA-256.
    Sha256,
    /// SM3 (GB/T 32905).
    Sm3,
}

impl Digest {
    fn of(oid: ObjectIdentifier) -> Result<Self, SesError> {
        match oid {
            SHA256 => Ok(Self::Sha256),
            SM3 => Ok(Self::Sm3),
            other => Err(SesError::Unsupported(format!("hash algorithm {other}"))),
        }
    }

    /// The hash of `data`.
    pub fn hash(self, data: &[u8]) -> [u8; 32] {
        match self {
            Self::Sha256 => hash::sha256(data),
            Self::Sm3 => hash::sm3(data),
        }
    }
}

/// A time-stamp token, read but not yet checked.
#[derive(Debug, Clone)]
pub struct TimeStampToken<'a> {
    /// When the TSA says the imprint existed.
    pub gen_time: OffsetDateTime,
    /// The imprint's hash algorithm.
    pub imprint_algorithm: Digest,
    /// The hash of the time-stamped data.
    pub imprint: &'a [u8],
    /// The certificates the token carries (DER).
    pub certificates: Vec<&'a [u8]>,
    signer: SignerInfo<'a>,
    /// The eContent (DER TSTInfo).
    tst_info: &'a [u8],
    /// The token's bytes, where errors in its parts are placed.
    origin: Origin,
}

#[derive(Debug, Clone)]
enum SignerId<'a> {
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    KeyId(&'a [u8]),
}

#[derive(Debug, Clone)]
struct SignerInfo<'a> {
    id: SignerId<'a>,
    digest: Digest,
    /// The signed attributes' TLV as received (`[0] IMPLICIT`); signed as a SET.
    attributes: &'a [u8],
    signature_algorithm: ObjectIdentifier,
    signature: &'a [u8],
}

/// Why a token does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// Not a token, or not one read here.
    #[error("{0}")]
    Format(String),
    /// The imprint is not the hash of the protected bytes.
    #[error("the token's imprint is not the hash of the time-stamped bytes")]
    Imprint,
    /// The signed attributes do not match the token or the TSA certificate.
    #[error("{0}")]
    Attributes(&'static str),
    /// No certificate in the token or given matches the signer.
    #[error("the TSA's certificate is missing")]
    NoCertificate,
    /// The certificate may not sign time stamps.
    #[error("the TSA certificate's extended key usage is not timeStamping alone (critical)")]
    NotTimeStamping,
    /// The TSA's signature does not verify.
    #[error("the TSA's signature does not verify")]
    Signature,
}

impl From<SesError> for TimestampError {
    fn from(e: SesError) -> Self {
        Self::Format(e.to_string())
    }
}

fn context(number: u8, constructed: bool) -> Tag {
    Tag::ContextSpecific {
        constructed,
        number: TagNumber::new(number),
    }
}

/// `AlgorithmIdentifier`'s OID; its parameters must be absent or NULL (none of the algorithms
/// read here has others).
fn algorithm(r: &mut Der<'_>) -> Result<ObjectIdentifier, SesError> {
    let mut a = r.sequence()?;
    let oid = a.decode::<ObjectIdentifier>()?;
    if !a.is_finished() && a.tlv_bytes()? != [0x05, 0x00] {
        return Err(SesError::Malformed(format!("algorithm {oid} with parameters")));
    }
    a.finish(oid)
}

/// An INTEGER that must be `expected` (a structure's version).
fn version(r: &mut Der<'_>, expected: u8, what: &str) -> Result<(), SesError> {
    if r.expect(Tag::Integer)? != [expected] {
        return Err(SesError::Unsupported(format!("{what} version other than {expected}")));
    }
    Ok(())
}

/// Reads a `TimeStampToken` (DER `ContentInfo`).
pub fn parse_token(der: &[u8]) -> Result<TimeStampToken<'_>, SesError> {
    let origin = Origin::of(der);
    let mut info = origin.contents(der)?;
    if info.decode::<ObjectIdentifier>()? != SIGNED_DATA {
        return Err(SesError::Unsupported("a token that is not CMS SignedData".to_owned()));
    }
    let mut explicit = info.open(context(0, true))?;
    info.finish(())?;
    let mut signed = explicit.sequence()?;
    explicit.finish(())?;
    // Version 3: the content is not id-data (RFC 5652 §5.1).
    version(&mut signed, 3, "SignedData")?;
    let mut digest_algorithms = signed.open(Tag::Set)?;
    let mut digests = Vec::new();
    while !digest_algorithms.is_finished() {
        digests.push(algorithm(&mut digest_algorithms)?);
    }
    let mut encap = signed.sequence()?;
    if encap.decode::<ObjectIdentifier>()? != TST_INFO {
        return Err(SesError::Unsupported("SignedData that is not a TSTInfo".to_owned()));
    }
    let mut e_content = encap.open(context(0, true))?;
    encap.finish(())?;
    let tst_info = e_content.decode::<OctetStringRef<'_>>()?.as_bytes();
    e_content.finish(())?;

    let mut certificates = Vec::new();
    if signed.peek_tag()? == context(0, true) {
        let mut set = signed.open(context(0, true))?;
        while !set.is_finished() {
            certificates.push(set.tlv_bytes()?);
        }
    }
    if signed.peek_tag()? == context(1, true) {
        let _crls = signed.tlv_bytes()?;
    }
    let mut signer_infos = signed.open(Tag::Set)?;
    signed.finish(())?;
    let (signer, signer_digest) = read_signer_info(signer_infos.tlv_bytes()?, origin)?;
    if !signer_infos.is_finished() {
        return Err(SesError::Unsupported("a token with more than one signer".to_owned()));
    }
    if !digests.contains(&signer_digest) {
        return Err(SesError::Malformed(
            "the signer's digest algorithm is not among the token's".to_owned(),
        ));
    }

    let mut tst = origin.contents(tst_info)?;
    version(&mut tst, 1, "TSTInfo")?;
    let _policy = tst.decode::<ObjectIdentifier>()?;
    let mut imprint = tst.sequence()?;
    let imprint_algorithm = Digest::of(algorithm(&mut imprint)?)?;
    let imprint_hash = imprint.decode::<OctetStringRef<'_>>()?.as_bytes();
    imprint.finish(())?;
    let _serial = tst.tlv_bytes()?;
    if tst.peek_tag()? != Tag::GeneralizedTime {
        return Err(SesError::Malformed("genTime must be a GeneralizedTime".to_owned()));
    }
    let gen_time = read_time(&mut tst)?;
    // accuracy, ordering, nonce, tsa, extensions: not needed to trust genTime.
    Ok(TimeStampToken {
        gen_time,
        imprint_algorithm,
        imprint: imprint_hash,
        certificates,
        signer,
        tst_info,
        origin,
    })
}

/// The signer and the OID of its digest algorithm.
fn read_signer_info(tlv: &[u8], origin: Origin) -> Result<(SignerInfo<'_>, ObjectIdentifier), SesError> {
    let mut s = origin.contents(tlv)?;
    let version_tlv = s.tlv_bytes()?;
    let by_key_id = s.peek_tag()? != Tag::Sequence;
    // Version 1 names the signer by issuer and serial, version 3 by key identifier.
    version(
        &mut origin.reader(version_tlv)?,
        if by_key_id { 3 } else { 1 },
        "SignerInfo",
    )?;
    let id = if by_key_id {
        SignerId::KeyId(s.expect(context(0, false))?)
    } else {
        let mut issuer_serial = s.sequence()?;
        let issuer = issuer_serial.tlv_bytes()?;
        let serial = issuer_serial.expect(Tag::Integer)?;
        issuer_serial.finish(())?;
        SignerId::IssuerSerial { issuer, serial }
    };
    let digest_oid = algorithm(&mut s)?;
    let digest = Digest::of(digest_oid)?;
    if s.peek_tag()? != context(0, true) {
        return Err(SesError::Malformed(
            "a token's signer has no signed attributes".to_owned(),
        ));
    }
    let attributes = s.tlv_bytes()?;
    let signature_algorithm = algorithm(&mut s)?;
    let signature = s.decode::<OctetStringRef<'_>>()?.as_bytes();
    if !s.is_finished() {
        let _unsigned = s.expect(context(1, true))?;
    }
    s.finish(())?;
    Ok((
        SignerInfo {
            id,
            digest,
            attributes,
            signature_algorithm,
            signature,
        },
        digest_oid,
    ))
}

/// The signed attributes: `(type, the single value's TLV)`.
fn attributes(tlv: &[u8], origin: Origin) -> Result<Vec<(ObjectIdentifier, &[u8])>, SesError> {
    let mut outer = origin.reader(tlv)?;
    let mut set = outer.open(context(0, true))?;
    outer.finish(())?;
    let mut out = Vec::new();
    while !set.is_finished() {
        let mut attribute = set.sequence()?;
        let kind = attribute.decode::<ObjectIdentifier>()?;
        let mut values = attribute.open(Tag::Set)?;
        attribute.finish(())?;
        let value = values.tlv_bytes()?;
        if !values.is_finished() {
            return Err(SesError::Malformed(format!("attribute {kind} has more than one value")));
        }
        if out.iter().any(|(k, _)| *k == kind) {
            return Err(SesError::Malformed(format!("attribute {kind} twice")));
        }
        out.push((kind, value));
    }
    Ok(out)
}

/// The certificate hash a signing-certificate attribute names: `(algorithm, hash)` of its first
/// `ESSCertID(v2)`.
fn signing_certificate_hash(
    kind: ObjectIdentifier,
    value: &[u8],
    origin: Origin,
) -> Result<(Option<Digest>, &[u8]), SesError> {
    let mut signing = origin.contents(value)?;
    let mut certs = signing.sequence()?;
    let mut first = certs.sequence()?;
    if kind == SIGNING_CERTIFICATE {
        // ESSCertID ::= SEQUENCE { certHash OCTET STRING (SHA-1), issuerSerial OPTIONAL }
        return Ok((None, first.decode::<OctetStringRef<'_>>()?.as_bytes()));
    }
    // ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash, issuerSerial OPTIONAL }
    let algorithm = if first.peek_tag()? == Tag::Sequence {
        Digest::of(algorithm(&mut first)?)?
    } else {
        Digest::Sha256
    };
    Ok((Some(algorithm), first.decode::<OctetStringRef<'_>>()?.as_bytes()))
}

impl TimeStampToken<'_> {
    /// The TSA's certificate: among the token's certificates and `extra`, the one its signer
    /// names.
    pub fn signer_certificate(&self, extra: &[Certificate]) -> Result<Certificate, TimestampError> {
        let carried = self
            .certificates
            .iter()
            .filter_map(|der| Certificate::from_der(der).ok());
        carried
            .chain(extra.iter().cloned())
            .find(|c| match &self.signer.id {
                SignerId::IssuerSerial { issuer, serial } => {
                    // The Name TLV as in the token; the certificate keeps the Name's DER.
                    c.issuer_name() == *issuer && c.serial() == *serial
                }
                SignerId::KeyId(id) => c.subject_key_id() == Some(*id),
            })
            .ok_or(TimestampError::NoCertificate)
    }

    /// Checks the token over `data` (see the module docs); returns the TSA's certificate, whose
    /// chain the caller validates at [`Self::gen_time`].
    pub fn verify(&self, data: &[u8], extra: &[Certificate]) -> Result<Certificate, TimestampError> {
        if self.imprint_algorithm.hash(data).as_slice() != self.imprint {
            return Err(TimestampError::Imprint);
        }
        let cert = self.signer_certificate(extra)?;
        let attributes = attributes(self.signer.attributes, self.origin)?;
        let get = |kind| attributes.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v);
        let content_type = get(CONTENT_TYPE).ok_or(TimestampError::Attributes("no content-type attribute"))?;
        if ObjectIdentifier::from_der(content_type).ok() != Some(TST_INFO) {
            return Err(TimestampError::Attributes("the content-type attribute is not TSTInfo"));
        }
        let digest = get(MESSAGE_DIGEST).ok_or(TimestampError::Attributes("no message-digest attribute"))?;
        let digest = OctetStringRef::from_der(digest).map_err(|e| TimestampError::Format(e.to_string()))?;
        if digest.as_bytes() != self.signer.digest.hash(self.tst_info).as_slice() {
            return Err(TimestampError::Attributes(
                "the message digest is not that of the TSTInfo",
            ));
        }
        let (kind, value) = [SIGNING_CERTIFICATE_V2, SIGNING_CERTIFICATE]
            .into_iter()
            .find_map(|k| get(k).map(|v| (k, v)))
            .ok_or(TimestampError::Attributes("no signing-certificate attribute"))?;
        let named = match signing_certificate_hash(kind, value, self.origin)? {
            (Some(d), h) => d.hash(cert.der()).as_slice() == h,
            (None, h) => hash::sha1_for_legacy_use(cert.der()).as_slice() == h,
        };
        if !named {
            return Err(TimestampError::Attributes(
                "the signing-certificate attribute names another certificate",
            ));
        }
        if !cert.is_time_stamping_only() {
            return Err(TimestampError::NotTimeStamping);
        }
        let scheme = match (self.signer.signature_algorithm, self.signer.digest) {
            (ECDSA_SHA256, _) => SignatureScheme::EcdsaSha256Der,
            (RSA_SHA256, _) | (RSA, Digest::Sha256) => SignatureScheme::RsaPkcs1Sha256,
            (SM2_SM3 | SM2, Digest::Sm3) => SignatureScheme::Sm2Sm3Der,
            (other, _) => {
                return Err(TimestampError::Format(format!(
                    "TSA signature algorithm {other} is not supported"
                )))
            }
        };
        // The signature covers the attributes as a SET (RFC 5652 §5.4): the same bytes with the
        // universal SET tag in place of [0].
        let mut signed = self.signer.attributes.to_vec();
        if let Some(first) = signed.first_mut() {
            *first = 0x31;
        }
        let key = cert.public_key().map_err(|_| TimestampError::Signature)?;
        key.verify(scheme, &signed, self.signer.signature)
            .map_err(|_| TimestampError::Signature)?;
        Ok(cert)
    }
}

/// Reads and checks a token over `data`: its time and the TSA's certificate.
pub fn verify_token(
    der: &[u8],
    data: &[u8],
    extra: &[Certificate],
) -> Result<(OffsetDateTime, Certificate), TimestampError> {
    let token = parse_token(der)?;
    let cert = token.verify(data, extra)?;
    Ok((token.gen_time, cert))
}
