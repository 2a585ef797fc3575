//! Decoding seals (`SESeal`) and electronic signatures (`SES_Signature`) from DER.
//!
//! Every structure keeps the exact bytes it was read from (`raw`), so a signature is always
//! checked over the bytes that were signed, never over a re-encoding. Decoding is strict DER
//! (minimal lengths, canonical booleans and integers), bounded by the schema: nothing recurses
//! on input, so nesting cannot exhaust the stack. Deviations that real vendors produce and that
//! do not change what was signed are accepted and listed as [`Quirk`]s.

use std::borrow::Cow;

use der::asn1::{
    BitStringRef, GeneralizedTime, Ia5StringRef, ObjectIdentifier, OctetStringRef, PrintableStringRef, UtcTime,
    Utf8StringRef,
};
use der::{Encode, Header, Length, Tag, TagNumber};
use time::OffsetDateTime;

use crate::der_read::{Der, Origin};
use crate::SesError;

/// SM2 with SM3 (GB/T 33560: 1.2.156.10197.1.501), the only algorithm of real seals.
pub const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");

/// Which standard a structure follows, told by its structure and its header version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// GM/T 0031-2014 (header version 1, UTCTime, signature inside `SES_SignInfo`).
    V1,
    /// GB/T 38540-2020 (header version 4).
    V4,
    /// The revision after it (header version 5): as v4, plus an optional trailing timestamp.
    V5,
}

/// A vendor deviation that was accepted because it does not change the signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quirk {
    /// The signature is raw 64-byte `r ‖ s`, not a DER `SEQUENCE { r, s }`.
    RawSignature,
    /// The picture type is `ofd`, not one of the standard image types.
    OfdPicture,
    /// The seal type is outside the standard's values (1 legal-entity seal, 2 personal seal, 3 other).
    VendorSealType(i64),
    /// An extension encodes `critical = FALSE` explicitly, which DER leaves out.
    ExplicitDefaultCritical,
    /// A 6-field `TBS_Sign`: `extDatas` written as a plain SEQUENCE, without its `[0]` tag.
    UntaggedTbsExtensions,
    /// A v1 seal's certificate list is text (an `IA5String`), not certificates.
    TextCertList,
    /// The header version and the structure disagree; the structure decided.
    VersionMismatch {
        /// The header's version.
        header: i64,
        /// What the structure is.
        structure: Version,
    },
}

impl std::fmt::Display for Quirk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RawSignature => write!(f, "signature encoded as raw r||s instead of DER"),
            Self::OfdPicture => write!(f, "picture type `ofd` (not an image type of the standard)"),
            Self::VendorSealType(t) => write!(f, "vendor-defined seal type {t}"),
            Self::ExplicitDefaultCritical => write!(f, "extension encodes the default critical=FALSE"),
            Self::UntaggedTbsExtensions => write!(f, "6-field TBS_Sign: extDatas without its [0] tag"),
            Self::TextCertList => write!(f, "v1 certificate list is text (IA5String), not certificates"),
            Self::VersionMismatch { header, structure } => {
                write!(f, "header says version {header}, structure is {structure:?}")
            }
        }
    }
}

/// `SES_Header ::= SEQUENCE { ID IA5String ("ES"), version INTEGER, Vid IA5String }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealHeader<'a> {
    /// Always `ES`.
    pub id: &'a str,
    /// 1, 4 or 5.
    pub version: i64,
    /// The vendor's identifier.
    pub vendor_id: &'a str,
}

/// A certificate digest in a seal's certificate list (`CertDigestObj`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertDigest<'a> {
    /// The digest algorithm's name, e.g. `SM3`.
    pub algorithm: &'a str,
    /// The digest of the certificate's DER.
    pub value: &'a [u8],
}

/// The signer certificates a seal allows: by value (`certListType` 1) or by digest (2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertList<'a> {
    /// DER certificates.
    Certificates(Vec<&'a [u8]>),
    /// Digests of DER certificates.
    Digests(Vec<CertDigest<'a>>),
    /// Text where a v1 seal's certificate list goes (one vendor writes an `IA5String` there):
    /// which signers the seal allows is not said.
    Text(&'a str),
}

/// `SES_ESPropertyInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealProperty<'a> {
    /// 1 legal-entity seal, 2 personal seal, 3 other (vendors use more).
    pub seal_type: i64,
    /// The seal's name.
    pub name: &'a str,
    /// The signer certificates allowed to apply it.
    pub cert_list: CertList<'a>,
    /// When it was made.
    pub created: OffsetDateTime,
    /// Start of validity.
    pub valid_start: OffsetDateTime,
    /// End of validity.
    pub valid_end: OffsetDateTime,
}

/// `SES_ESPictureInfo ::= SEQUENCE { type IA5String, data OCTET STRING, width INTEGER, height INTEGER }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealPicture<'a> {
    /// `PNG`, `GIF`, `JPG`, `SVG`, `BMP` (vendors also write `ofd`).
    pub kind: &'a str,
    /// The image.
    pub data: &'a [u8],
    /// Width in millimetres.
    pub width: i64,
    /// Height in millimetres.
    pub height: i64,
}

/// `ExtData ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Its identifier.
    pub id: ObjectIdentifier,
    /// Whether a reader that does not know it must refuse the seal.
    pub critical: bool,
    /// Its value.
    pub value: &'a [u8],
}

/// `SES_SealInfo ::= SEQUENCE { header, esID IA5String, property, picture, extDatas OPTIONAL }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealInfo<'a> {
    /// The exact DER this was read from.
    pub raw: &'a [u8],
    /// The header.
    pub header: SealHeader<'a>,
    /// The seal's identifier (esID).
    pub es_id: &'a str,
    /// Type, name, allowed signers, dates.
    pub property: SealProperty<'a>,
    /// The image.
    pub picture: SealPicture<'a>,
    /// Extensions.
    pub extensions: Vec<Extension<'a>>,
}

/// A seal: what a seal maker signed.
///
/// v4/v5: `SESeal ::= SEQUENCE { eSealInfo, cert OCTET STRING, signatureAlgorithm OID,
/// signedValue BIT STRING, timeStamp [0] BIT STRING OPTIONAL (v5) }`; the maker signature covers
/// DER(`eSealInfo`). v1: `SESeal ::= SEQUENCE { esealInfo, signInfo SEQUENCE { cert OCTET STRING,
/// signatureAlgorithm OID, signData BIT STRING } }`; the maker signature covers
/// DER(`SEQUENCE { esealInfo, cert, signatureAlgorithm }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal<'a> {
    /// The exact DER this was read from.
    pub raw: &'a [u8],
    /// The standard it follows.
    pub version: Version,
    /// What the maker signed.
    pub info: SealInfo<'a>,
    /// The seal maker's certificate (DER).
    pub maker_certificate: &'a [u8],
    /// The maker signature's algorithm.
    pub algorithm: ObjectIdentifier,
    /// The maker signature as stored (DER, or raw r‖s with a quirk).
    pub signature: &'a [u8],
    /// The v5 timestamp, if any (the BIT STRING's bytes).
    pub timestamp: Option<&'a [u8]>,
    /// The exact bytes the maker signature covers.
    pub signed_bytes: Cow<'a, [u8]>,
    /// Accepted deviations.
    pub quirks: Vec<Quirk>,
}

/// `TBS_Sign` (v4/v5): `SEQUENCE { version INTEGER, eseal SESeal, timeInfo GeneralizedTime,
/// dataHash BIT STRING, propertyInfo IA5String, extDatas [0] ExtensionDatas OPTIONAL }`.
/// v1 (GM/T 0031-2014): `SEQUENCE { version INTEGER (1), eseal SESeal, timeInfo BIT STRING,
/// dataHash BIT STRING, propertyInfo IA5String, cert OCTET STRING, signatureAlgorithm OID }`,
/// and `SES_Signature ::= SEQUENCE { toSign TBS_Sign, signature BIT STRING }`; the signer
/// signature covers DER(`TBS_Sign`) in both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToSign<'a> {
    /// The exact DER this was read from: what the signer signed.
    pub raw: &'a [u8],
    /// 4 or 5.
    pub version: i64,
    /// The seal applied.
    pub seal: Seal<'a>,
    /// When the signer says it signed.
    pub time: OffsetDateTime,
    /// The hash of the protected data (SM3 for OFD: of `Signature.xml`).
    pub data_hash: &'a [u8],
    /// What was signed, e.g. `/Doc_0/Signs/Sign_0/Signature.xml`.
    pub property_info: &'a str,
    /// Extensions.
    pub extensions: Vec<Extension<'a>>,
    /// Accepted deviations of this structure.
    pub quirks: Vec<Quirk>,
}

/// `SES_Signature` (v4/v5): `SEQUENCE { toSign TBS_Sign, cert OCTET STRING, signatureAlgorithm
/// OID, signature BIT STRING, timeStamp [0] BIT STRING OPTIONAL }`; the signer signature covers
/// DER(`toSign`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSignature<'a> {
    /// The exact DER this was read from.
    pub raw: &'a [u8],
    /// What the signer signed.
    pub to_sign: ToSign<'a>,
    /// The signer's certificate (DER).
    pub signer_certificate: &'a [u8],
    /// The signature's algorithm.
    pub algorithm: ObjectIdentifier,
    /// The signature as stored.
    pub signature: &'a [u8],
    /// The timestamp token, if any.
    pub timestamp: Option<&'a [u8]>,
    /// Accepted deviations (the seal's own are in `to_sign.seal.quirks`).
    pub quirks: Vec<Quirk>,
}

/// Reads a seal file (`.esl`, a DER `SESeal`).
pub fn parse_seal(der: &[u8]) -> Result<Seal<'_>, SesError> {
    read_seal(der, Origin::of(der))
}

/// Reads an electronic signature (`SignedValue.dat`, a DER `SES_Signature`).
pub fn parse_signature(der: &[u8]) -> Result<SealSignature<'_>, SesError> {
    let origin = Origin::of(der);
    let mut r = origin.contents(der)?;
    let (to_sign, inner) = read_to_sign(r.tlv_bytes()?, origin)?;
    // v1 keeps the signer certificate and algorithm inside TBS_Sign; v4/v5 after it.
    let (signer_certificate, algorithm) = match inner {
        Some(inner) => inner,
        None => (
            r.decode::<OctetStringRef<'_>>()?.as_bytes(),
            r.decode::<ObjectIdentifier>()?,
        ),
    };
    let signature = bit_string(&mut r)?;
    let timestamp = if to_sign.version == 1 {
        None
    } else {
        read_timestamp(&mut r)?
    };
    r.finish(())?;
    let mut quirks = to_sign.quirks.clone();
    if signature.len() == 64 {
        quirks.push(Quirk::RawSignature);
    }
    Ok(SealSignature {
        raw: der,
        to_sign,
        signer_certificate,
        algorithm,
        signature,
        timestamp,
        quirks,
    })
}

/// `TBS_Sign`; for v1 also the signer certificate and algorithm it carries.
type ToSignAndInner<'a> = (ToSign<'a>, Option<(&'a [u8], ObjectIdentifier)>);

fn read_to_sign(raw: &[u8], origin: Origin) -> Result<ToSignAndInner<'_>, SesError> {
    let mut r = origin.contents(raw)?;
    let version = r.decode::<i64>()?;
    if !matches!(version, 1 | 4 | 5) {
        return Err(SesError::Unsupported(format!(
            "TBS_Sign version {version} (1, 4 and 5 are read)"
        )));
    }
    let seal = read_seal(r.tlv_bytes()?, origin)?;
    let time = if version == 1 {
        read_v1_time(&mut r)?
    } else {
        read_time(&mut r)?
    };
    let data_hash = bit_string(&mut r)?;
    let property_info = ia5(&mut r)?;
    let mut quirks = Vec::new();
    let (extensions, inner) = if version == 1 {
        // GM/T 0031-2014: … propertyInfo, cert OCTET STRING, signatureAlgorithm OID }
        let cert = r.decode::<OctetStringRef<'_>>()?.as_bytes();
        (Vec::new(), Some((cert, r.decode::<ObjectIdentifier>()?)))
    } else if r.is_finished() {
        (Vec::new(), None)
    } else if r.peek_tag()? == Tag::Sequence {
        quirks.push(Quirk::UntaggedTbsExtensions);
        (read_extensions(r.tlv_bytes()?, origin)?.0, None)
    } else {
        let tag = r.peek_tag()?;
        if tag != context(0) {
            return Err(SesError::Malformed(format!("unexpected {tag} after propertyInfo")));
        }
        (read_extensions(r.expect(tag)?, origin)?.0, None)
    };
    r.finish(())?;
    let to_sign = ToSign {
        raw,
        version,
        seal,
        time,
        data_hash,
        property_info,
        extensions,
        quirks,
    };
    Ok((to_sign, inner))
}

/// v1 `timeInfo`: a BIT STRING holding the time as text (`YYYYMMDDHHMMSSZ` or `YYMMDDHHMMSSZ`),
/// or, from some writers, a GeneralizedTime / UTCTime.
fn read_v1_time(r: &mut Der<'_>) -> Result<OffsetDateTime, SesError> {
    if r.peek_tag()? != Tag::BitString {
        return read_time(r);
    }
    let bytes = bit_string(r)?;
    let bad = || SesError::Malformed("v1 timeInfo is not a time".to_owned());
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let digits = text.strip_suffix('Z').ok_or_else(bad)?;
    let full = match digits.len() {
        14 => digits.to_owned(),
        // UTCTime years: 50–99 are 19xx, 00–49 are 20xx (RFC 5280).
        12 => format!("{}{digits}", if digits < "50" { "20" } else { "19" }),
        _ => return Err(bad()),
    };
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    time::PrimitiveDateTime::parse(&full, format)
        .map(|t| t.assume_utc())
        .map_err(|_| bad())
}

fn read_seal(raw: &[u8], origin: Origin) -> Result<Seal<'_>, SesError> {
    let mut r = origin.contents(raw)?;
    let info_raw = r.tlv_bytes()?;
    let mut quirks = Vec::new();
    let (info, v1) = read_seal_info(info_raw, origin, &mut quirks)?;
    let (version, maker_certificate, algorithm, signature, timestamp, signed_bytes) = if v1 {
        // signInfo SEQUENCE { cert OCTET STRING, signatureAlgorithm OID, signData BIT STRING }
        let mut s = r.sequence()?;
        let cert_tlv = s.tlv_bytes()?;
        let alg_tlv = s.tlv_bytes()?;
        let signature = bit_string(&mut s)?;
        s.finish(())?;
        let cert = origin.decode::<OctetStringRef<'_>>(cert_tlv)?.as_bytes();
        let algorithm = origin.decode::<ObjectIdentifier>(alg_tlv)?;
        let covered = sequence_of(&[info_raw, cert_tlv, alg_tlv])?;
        (Version::V1, cert, algorithm, signature, None, Cow::Owned(covered))
    } else {
        let cert = r.decode::<OctetStringRef<'_>>()?.as_bytes();
        let algorithm = r.decode::<ObjectIdentifier>()?;
        let signature = bit_string(&mut r)?;
        let timestamp = read_timestamp(&mut r)?;
        let version = if info.header.version == 5 || timestamp.is_some() {
            Version::V5
        } else {
            Version::V4
        };
        (version, cert, algorithm, signature, timestamp, Cow::Borrowed(info_raw))
    };
    r.finish(())?;
    if info.header.id != "ES" {
        return Err(SesError::Malformed(format!(
            "seal header ID is {:?}, not \"ES\"",
            info.header.id
        )));
    }
    let expected = match version {
        Version::V1 => 1,
        Version::V4 => 4,
        Version::V5 => 5,
    };
    if info.header.version != expected {
        quirks.push(Quirk::VersionMismatch {
            header: info.header.version,
            structure: version,
        });
    }
    if signature.len() == 64 {
        quirks.push(Quirk::RawSignature);
    }
    Ok(Seal {
        raw,
        version,
        info,
        maker_certificate,
        algorithm,
        signature,
        timestamp,
        signed_bytes,
        quirks,
    })
}

/// Reads `SES_SealInfo`; the flag is true when its property is v1-shaped.
fn read_seal_info<'a>(
    raw: &'a [u8],
    origin: Origin,
    quirks: &mut Vec<Quirk>,
) -> Result<(SealInfo<'a>, bool), SesError> {
    let mut r = origin.contents(raw)?;
    let mut h = r.sequence()?;
    let header = SealHeader {
        id: ia5(&mut h)?,
        version: h.decode::<i64>()?,
        vendor_id: ia5(&mut h)?,
    };
    h.finish(())?;
    let es_id = ia5(&mut r)?;
    let (property, v1) = read_property(r.tlv_bytes()?, origin)?;
    if matches!(property.cert_list, CertList::Text(_)) {
        quirks.push(Quirk::TextCertList);
    }
    if !(1..=3).contains(&property.seal_type) {
        quirks.push(Quirk::VendorSealType(property.seal_type));
    }
    let mut p = r.sequence()?;
    let picture = SealPicture {
        kind: ia5(&mut p)?,
        data: p.decode::<OctetStringRef<'_>>()?.as_bytes(),
        width: p.decode::<i64>()?,
        height: p.decode::<i64>()?,
    };
    p.finish(())?;
    if picture.kind.eq_ignore_ascii_case("ofd") {
        quirks.push(Quirk::OfdPicture);
    }
    let extensions = if r.is_finished() {
        Vec::new()
    } else {
        let (extensions, explicit_default) = read_extensions(r.tlv_bytes()?, origin)?;
        if explicit_default {
            quirks.push(Quirk::ExplicitDefaultCritical);
        }
        extensions
    };
    r.finish(())?;
    Ok((
        SealInfo {
            raw,
            header,
            es_id,
            property,
            picture,
            extensions,
        },
        v1,
    ))
}

/// `SES_ESPropertyInfo`, v4 (with `certListType`, GeneralizedTime) or v1 (without, UTCTime).
fn read_property(raw: &[u8], origin: Origin) -> Result<(SealProperty<'_>, bool), SesError> {
    let mut p = origin.contents(raw)?;
    let seal_type = p.decode::<i64>()?;
    let name = p.decode::<Utf8StringRef<'_>>()?.as_str();
    let v1 = p.peek_tag()? != Tag::Integer;
    let cert_list = if v1 && p.peek_tag()? == Tag::Ia5String {
        CertList::Text(ia5(&mut p)?)
    } else if v1 {
        CertList::Certificates(read_certificates(p.tlv_bytes()?, origin)?)
    } else {
        match p.decode::<i64>()? {
            1 => CertList::Certificates(read_certificates(p.tlv_bytes()?, origin)?),
            2 => {
                let mut d = p.sequence()?;
                let mut digests = Vec::new();
                while !d.is_finished() {
                    let mut o = d.sequence()?;
                    digests.push(CertDigest {
                        algorithm: o.decode::<PrintableStringRef<'_>>()?.as_str(),
                        value: o.decode::<OctetStringRef<'_>>()?.as_bytes(),
                    });
                    o.finish(())?;
                }
                CertList::Digests(digests)
            }
            other => return Err(SesError::Malformed(format!("certListType {other} (1 or 2)"))),
        }
    };
    let property = SealProperty {
        seal_type,
        name,
        cert_list,
        created: read_time(&mut p)?,
        valid_start: read_time(&mut p)?,
        valid_end: read_time(&mut p)?,
    };
    p.finish(())?;
    Ok((property, v1))
}

/// `ExtensionDatas`; the flag is true when some `critical = FALSE` was written out.
fn read_extensions(raw: &[u8], origin: Origin) -> Result<(Vec<Extension<'_>>, bool), SesError> {
    let mut e = origin.contents(raw)?;
    let mut out = Vec::new();
    let mut explicit_default = false;
    while !e.is_finished() {
        let mut x = e.sequence()?;
        let id = x.decode::<ObjectIdentifier>()?;
        let critical = if x.peek_tag()? == Tag::Boolean {
            let critical = x.decode::<bool>()?;
            explicit_default |= !critical;
            critical
        } else {
            false
        };
        out.push(Extension {
            id,
            critical,
            value: x.decode::<OctetStringRef<'_>>()?.as_bytes(),
        });
        x.finish(())?;
    }
    Ok((out, explicit_default))
}

fn read_certificates(raw: &[u8], origin: Origin) -> Result<Vec<&[u8]>, SesError> {
    let mut c = origin.contents(raw)?;
    let mut certs = Vec::new();
    while !c.is_finished() {
        certs.push(c.decode::<OctetStringRef<'_>>()?.as_bytes());
    }
    Ok(certs)
}

/// A trailing `[0] EXPLICIT BIT STRING` (v5 timestamp), if present.
fn read_timestamp<'a>(r: &mut Der<'a>) -> Result<Option<&'a [u8]>, SesError> {
    if r.is_finished() {
        return Ok(None);
    }
    let tag = r.peek_tag()?;
    if tag != context(0) {
        return Err(SesError::Malformed(format!(
            "unexpected {tag} where a timestamp may be"
        )));
    }
    let mut inner = r.open(tag)?;
    let bits = bit_string(&mut inner)?;
    inner.finish(())?;
    Ok(Some(bits))
}

/// GeneralizedTime (v4) or UTCTime (v1).
pub(crate) fn read_time(r: &mut Der<'_>) -> Result<OffsetDateTime, SesError> {
    let since_epoch = if r.peek_tag()? == Tag::UtcTime {
        r.decode::<UtcTime>()?.to_unix_duration()
    } else {
        r.decode::<GeneralizedTime>()?.to_unix_duration()
    };
    i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| SesError::Malformed("time out of range".to_owned()))
}

fn ia5<'a>(r: &mut Der<'a>) -> Result<&'a str, SesError> {
    Ok(r.decode::<Ia5StringRef<'a>>()?.as_str())
}

/// A BIT STRING's bytes; only whole octets are meaningful here.
fn bit_string<'a>(r: &mut Der<'a>) -> Result<&'a [u8], SesError> {
    r.decode::<BitStringRef<'a>>()?
        .as_bytes()
        .ok_or_else(|| SesError::Malformed("a BIT STRING with unused bits".to_owned()))
}

/// DER of `SEQUENCE { parts… }`, each part already a DER TLV.
pub(crate) fn sequence_of(parts: &[&[u8]]) -> Result<Vec<u8>, SesError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    Header::new(Tag::Sequence, Length::try_from(len)?)?.encode_to_vec(&mut out)?;
    for part in parts {
        out.extend_from_slice(part);
    }
    Ok(out)
}

pub(crate) fn context(number: u8) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::new(number),
    }
}
