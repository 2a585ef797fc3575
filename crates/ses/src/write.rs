//! Writing GB/T 38540 v4 seals and signatures.
//!
//! The encoders take the same types the decoder returns (ignoring their `raw` fields), so every
//! structure we write decodes to the same value and re-encodes to the same bytes. Signatures are
//! written as DER `SEQUENCE { r, s }`, as the standard asks.

use der::asn1::{
    BitStringRef, GeneralizedTime, Ia5StringRef, ObjectIdentifier, OctetStringRef, PrintableStringRef, UintRef,
    Utf8StringRef,
};
use der::{Encode, Header, Length};
use time::OffsetDateTime;
use zhengyin_crypto::{Algorithm, Signer};

use crate::format::{
    context, sequence_of, CertList, Extension, SealHeader, SealInfo, SealPicture, SealProperty, SM2_WITH_SM3,
};
use crate::SesError;

/// What a new seal says (the maker's certificate and signature are added by [`make_seal`]).
#[derive(Debug, Clone)]
pub struct NewSeal<'a> {
    /// The vendor identifier written in the header.
    pub vendor_id: &'a str,
    /// The seal's identifier (esID).
    pub es_id: &'a str,
    /// 1 legal-entity seal, 2 personal seal, 3 other.
    pub seal_type: i64,
    /// The seal's name, e.g. `吉林示例科技有限公司合同专用章`.
    pub name: &'a str,
    /// DER certificates of the signers allowed to apply it.
    pub signer_certificates: Vec<&'a [u8]>,
    /// When it is made.
    pub created: OffsetDateTime,
    /// Start of validity.
    pub valid_start: OffsetDateTime,
    /// End of validity.
    pub valid_end: OffsetDateTime,
    /// The image.
    pub picture: SealPicture<'a>,
}

/// Makes a v4 seal: DER(`SES_SealInfo`) signed by the seal maker (SM2).
pub fn make_seal(seal: &NewSeal<'_>, maker_certificate: &[u8], maker: &dyn Signer) -> Result<Vec<u8>, SesError> {
    let info = SealInfo {
        raw: &[],
        header: SealHeader {
            id: "ES",
            version: 4,
            vendor_id: seal.vendor_id,
        },
        es_id: seal.es_id,
        property: SealProperty {
            seal_type: seal.seal_type,
            name: seal.name,
            cert_list: CertList::Certificates(seal.signer_certificates.clone()),
            created: seal.created,
            valid_start: seal.valid_start,
            valid_end: seal.valid_end,
        },
        picture: seal.picture.clone(),
        extensions: Vec::new(),
    };
    let info_der = encode_seal_info(&info)?;
    let signature = sm2_sign(maker, &info_der)?;
    encode_seal(&info_der, maker_certificate, &SM2_WITH_SM3, &signature, None)
}

/// Applies a seal: a v4 `SES_Signature` over `TBS_Sign { 4, seal, time, dataHash,
/// propertyInfo }`, signed by the signer (SM2), whose certificate must be in the seal's list.
pub fn apply_seal(
    seal: &[u8],
    time: OffsetDateTime,
    data_hash: &[u8; 32],
    property_info: &str,
    signer_certificate: &[u8],
    signer: &dyn Signer,
) -> Result<Vec<u8>, SesError> {
    let tbs = encode_to_sign(4, seal, time, data_hash, property_info, &[])?;
    let signature = sm2_sign(signer, &tbs)?;
    encode_signature(&tbs, signer_certificate, &SM2_WITH_SM3, &signature, None)
}

/// DER of `SES_SealInfo` (v4 shape: `certListType`, GeneralizedTime).
pub fn encode_seal_info(info: &SealInfo<'_>) -> Result<Vec<u8>, SesError> {
    let h = &info.header;
    let header = sequence_of(&[&ia5(h.id)?, &h.version.to_der()?, &ia5(h.vendor_id)?])?;
    let p = &info.property;
    let (list_type, list) = match &p.cert_list {
        CertList::Certificates(certs) => {
            let certs = certs.iter().map(|c| octets(c)).collect::<Result<Vec<_>, _>>()?;
            (1i64, sequence_of(&certs.iter().map(Vec::as_slice).collect::<Vec<_>>())?)
        }
        CertList::Digests(digests) => {
            let objs = digests
                .iter()
                .map(|d| sequence_of(&[&PrintableStringRef::new(d.algorithm)?.to_der()?, &octets(d.value)?]))
                .collect::<Result<Vec<_>, _>>()?;
            (2i64, sequence_of(&objs.iter().map(Vec::as_slice).collect::<Vec<_>>())?)
        }
        CertList::Text(_) => {
            return Err(SesError::Write(
                "a text certificate list (one vendor's v1 seals) is read, never written".to_owned(),
            ))
        }
    };
    let property = sequence_of(&[
        &p.seal_type.to_der()?,
        &Utf8StringRef::new(p.name)?.to_der()?,
        &list_type.to_der()?,
        &list,
        &time(p.created)?,
        &time(p.valid_start)?,
        &time(p.valid_end)?,
    ])?;
    let pic = &info.picture;
    let picture = sequence_of(&[
        &ia5(pic.kind)?,
        &octets(pic.data)?,
        &pic.width.to_der()?,
        &pic.height.to_der()?,
    ])?;
    let mut parts = vec![header, ia5(info.es_id)?, property, picture];
    if !info.extensions.is_empty() {
        parts.push(encode_extensions(&info.extensions)?);
    }
    sequence_of(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// DER of a v4/v5 `SESeal` from the DER of its `SES_SealInfo`.
pub fn encode_seal(
    info_der: &[u8],
    maker_certificate: &[u8],
    algorithm: &ObjectIdentifier,
    signature: &[u8],
    timestamp: Option<&[u8]>,
) -> Result<Vec<u8>, SesError> {
    let mut parts = vec![
        info_der.to_vec(),
        octets(maker_certificate)?,
        algorithm.to_der()?,
        BitStringRef::from_bytes(signature)?.to_der()?,
    ];
    if let Some(ts) = timestamp {
        parts.push(explicit(0, &BitStringRef::from_bytes(ts)?.to_der()?)?);
    }
    sequence_of(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// DER of a v4/v5 `TBS_Sign`.
pub fn encode_to_sign(
    version: i64,
    seal: &[u8],
    signed_at: OffsetDateTime,
    data_hash: &[u8],
    property_info: &str,
    extensions: &[Extension<'_>],
) -> Result<Vec<u8>, SesError> {
    let mut parts = vec![
        version.to_der()?,
        seal.to_vec(),
        time(signed_at)?,
        BitStringRef::from_bytes(data_hash)?.to_der()?,
        ia5(property_info)?,
    ];
    if !extensions.is_empty() {
        parts.push(explicit(0, &encode_extensions(extensions)?)?);
    }
    sequence_of(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// DER of a v4/v5 `SES_Signature` from the DER of its `TBS_Sign`.
pub fn encode_signature(
    to_sign: &[u8],
    signer_certificate: &[u8],
    algorithm: &ObjectIdentifier,
    signature: &[u8],
    timestamp: Option<&[u8]>,
) -> Result<Vec<u8>, SesError> {
    // The same shape as a v4 seal: body, certificate, algorithm, signature, optional [0].
    encode_seal(to_sign, signer_certificate, algorithm, signature, timestamp)
}

fn encode_extensions(extensions: &[Extension<'_>]) -> Result<Vec<u8>, SesError> {
    let items = extensions
        .iter()
        .map(|e| {
            let mut parts = vec![e.id.to_der()?];
            if e.critical {
                parts.push(true.to_der()?);
            }
            parts.push(OctetStringRef::new(e.value)?.to_der()?);
            sequence_of(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
        })
        .collect::<Result<Vec<_>, SesError>>()?;
    sequence_of(&items.iter().map(Vec::as_slice).collect::<Vec<_>>())
}

/// Signs with SM2 and returns DER `SEQUENCE { r, s }`.
fn sm2_sign(signer: &dyn Signer, message: &[u8]) -> Result<Vec<u8>, SesError> {
    if signer.algorithm() != Algorithm::Sm2 {
        return Err(SesError::Write("seals are signed with SM2 keys only".to_owned()));
    }
    let raw = signer
        .sign(message)
        .map_err(|e| SesError::Write(format!("signing failed: {e}")))?;
    let (r, s) = raw
        .split_at_checked(32)
        .ok_or_else(|| SesError::Write("SM2 signature of unexpected length".to_owned()))?;
    sequence_of(&[&UintRef::new(r)?.to_der()?, &UintRef::new(s)?.to_der()?])
}

fn time(t: OffsetDateTime) -> Result<Vec<u8>, SesError> {
    let seconds = u64::try_from(t.unix_timestamp()).map_err(|_| SesError::Write(format!("time {t} before 1970")))?;
    Ok(GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(seconds))?.to_der()?)
}

fn ia5(text: &str) -> Result<Vec<u8>, SesError> {
    Ok(Ia5StringRef::new(text)?.to_der()?)
}

fn octets(bytes: &[u8]) -> Result<Vec<u8>, SesError> {
    Ok(OctetStringRef::new(bytes)?.to_der()?)
}

/// `[number] EXPLICIT` around an encoded value.
fn explicit(number: u8, inner: &[u8]) -> Result<Vec<u8>, SesError> {
    let mut out = Vec::with_capacity(inner.len() + 6);
    Header::new(context(number), Length::try_from(inner.len())?)?.encode_to_vec(&mut out)?;
    out.extend_from_slice(inner);
    Ok(out)
}
