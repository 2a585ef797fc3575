//! Public keys parsed from SubjectPublicKeyInfo, key ids, and signature verification.
//!
//! A [`PublicKey`] is parsed once and kept (the engine caches them by key id); verifying with it
//! costs only the signature check. Verification errors are deliberately opaque: a signature is
//! good or it is not.

use ring::signature as rs;
use sm2::elliptic_curve::sec1::FromEncodedPoint as _;
use sm2::elliptic_curve::sec1::ToEncodedPoint as _;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::{hash, CryptoError};

/// The SM2 distinguishing identifier (user ID) used everywhere: GM/T 0009 default `1234567812345678`.
pub const SM2_DISTID: &str = "1234567812345678";

pub(crate) mod oid {
    pub const ED25519: &str = "1.3.101.112";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const P256: &str = "1.2.840.10045.3.1.7";
    pub const P384: &str = "1.3.132.0.34";
    pub const SM2_CURVE: &str = "1.2.156.10197.1.301";
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    pub const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
    pub const SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
    pub const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
    pub const SM2_SM3: &str = "1.2.156.10197.1.501";
}

/// The key algorithms the service signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over NIST P-256.
    EcdsaP256,
    /// ECDSA over NIST P-384 (verification only, for certificates).
    EcdsaP384,
    /// RSA, at least 2048 bits.
    Rsa,
    /// SM2 (GB/T 32918).
    Sm2,
}

/// How a signature is computed and encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// Ed25519, strict verification (canonical S and A, no small-order points).
    Ed25519,
    /// ECDSA P-256 SHA-256, IEEE P1363 `r‖s` (64 bytes).
    EcdsaP256Sha256Fixed,
    /// ECDSA with SHA-256, DER `Ecdsa-Sig-Value`.
    EcdsaSha256Der,
    /// ECDSA with SHA-384, DER.
    EcdsaSha384Der,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32.
    RsaPssSha256,
    /// SM2 with SM3 and [`SM2_DISTID`], raw `r‖s` (64 bytes).
    Sm2Sm3Raw,
    /// SM2 with SM3 and [`SM2_DISTID`], DER `SEQUENCE { r INTEGER, s INTEGER }`.
    Sm2Sm3Der,
}

/// A key id: SHA-256 of the key's SubjectPublicKeyInfo DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// The key id of a SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(hash::sha256(spki_der))
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

/// A parsed public key.
#[derive(Clone)]
pub struct PublicKey {
    id: KeyId,
    spki: Vec<u8>,
    material: Material,
}

#[derive(Clone)]
enum Material {
    Ed25519(ed25519_dalek::VerifyingKey),
    /// Uncompressed SEC1 point, as ring takes it.
    P256(Vec<u8>),
    P384(Vec<u8>),
    /// PKCS#1 RSAPublicKey DER, as ring takes it.
    Rsa(Vec<u8>),
    /// The SM2 key with its Z value precomputed.
    Sm2(Box<crate::sm2_tables::Sm2Key>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("id", &self.id)
            .finish()
    }
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo. Refuses unknown algorithms, unknown curves,
    /// parameters that break RFC 3279 / RFC 5480, and invalid points.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|_| CryptoError::MalformedKey)?;
        if !rest.is_empty() || spki.subject_public_key.unused_bits != 0 {
            return Err(CryptoError::MalformedKey);
        }
        let bits: &[u8] = &spki.subject_public_key.data;
        let alg = spki.algorithm.algorithm.to_id_string();
        let params = spki.algorithm.parameters.as_ref();
        let material = match alg.as_str() {
            oid::ED25519 => {
                if params.is_some() {
                    return Err(CryptoError::MalformedKey);
                }
                let bytes: [u8; 32] = bits.try_into().map_err(|_| CryptoError::MalformedKey)?;
                Material::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| CryptoError::MalformedKey)?,
                )
            }
            oid::EC_PUBLIC_KEY => {
                let curve = params
                    .and_then(|p| p.clone().oid().ok())
                    .ok_or(CryptoError::MalformedKey)?
                    .to_id_string();
                match curve.as_str() {
                    oid::P256 => Material::P256(check_uncompressed(bits, 65)?),
                    oid::P384 => Material::P384(check_uncompressed(bits, 97)?),
                    oid::SM2_CURVE => Material::Sm2(Box::new(sm2_key_from_sec1(bits)?)),
                    _ => return Err(CryptoError::UnsupportedAlgorithm(format!("curve {curve}"))),
                }
            }
            oid::RSA_ENCRYPTION => {
                let null = params.is_some_and(|p| {
                    p.header.tag() == x509_parser::der_parser::asn1_rs::Tag::Null && p.data.is_empty()
                });
                if !null {
                    return Err(CryptoError::MalformedKey);
                }
                check_rsa_public_key(bits)?;
                Material::Rsa(bits.to_vec())
            }
            _ => return Err(CryptoError::UnsupportedAlgorithm(format!("key algorithm {alg}"))),
        };
        Ok(Self {
            id: KeyId::of_spki(der),
            spki: der.to_vec(),
            material,
        })
    }

    /// An Ed25519 key from its 32-byte encoding (as signed notes carry it).
    pub fn from_ed25519_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        Self::from_spki_der(&crate::signer::ed25519_spki_der(bytes))
    }

    /// An elliptic-curve key from its SEC1 uncompressed point (as PKCS#11 `CKA_EC_POINT` holds
    /// it): P-256 or SM2 (65 bytes), Ed25519 (32 bytes, RFC 8032).
    pub fn from_ec_point(algorithm: Algorithm, point: &[u8]) -> Result<Self, CryptoError> {
        let alg: &[&str] = match algorithm {
            Algorithm::Ed25519 => {
                let bytes: &[u8; 32] = point.try_into().map_err(|_| CryptoError::MalformedKey)?;
                return Self::from_ed25519_bytes(bytes);
            }
            Algorithm::EcdsaP256 => &[oid::EC_PUBLIC_KEY, oid::P256],
            Algorithm::EcdsaP384 => &[oid::EC_PUBLIC_KEY, oid::P384],
            Algorithm::Sm2 => &[oid::EC_PUBLIC_KEY, oid::SM2_CURVE],
            Algorithm::Rsa => return Err(CryptoError::MalformedKey),
        };
        let identifier: Vec<u8> = alg.iter().filter_map(|o| crate::der::oid(o)).flatten().collect();
        Self::from_spki_der(&crate::der::spki(&identifier, point))
    }

    /// An RSA key from its modulus and public exponent (big-endian magnitudes, as PKCS#11
    /// `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT` hold them).
    pub fn from_rsa_components(modulus: &[u8], exponent: &[u8]) -> Result<Self, CryptoError> {
        let mut numbers = crate::der::unsigned(modulus);
        numbers.extend(crate::der::unsigned(exponent));
        let pkcs1 = crate::der::tlv(0x30, &numbers);
        let mut identifier = crate::der::oid(oid::RSA_ENCRYPTION).ok_or(CryptoError::MalformedKey)?;
        identifier.extend([0x05, 0x00]);
        Self::from_spki_der(&crate::der::spki(&identifier, &pkcs1))
    }

    /// For an SM2 key, the digest `e = SM3(Z‖M)` its signature over `message` signs (with
    /// [`SM2_DISTID`]): what a device's "sign a digest" call (GM/T 0018 `SDF_InternalSign_ECC`)
    /// takes. `None` for other algorithms.
    pub fn sm2_digest(&self, message: &[u8]) -> Option<[u8; 32]> {
        match &self.material {
            Material::Sm2(key) => Some(key.digest(message)),
            _ => None,
        }
    }

    /// The 32-byte encoding of an Ed25519 key; `None` for other algorithms.
    pub fn ed25519_bytes(&self) -> Option<[u8; 32]> {
        match &self.material {
            Material::Ed25519(k) => Some(k.to_bytes()),
            _ => None,
        }
    }

    /// The key id (SHA-256 of the SPKI).
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::Ed25519(_) => Algorithm::Ed25519,
            Material::P256(_) => Algorithm::EcdsaP256,
            Material::P384(_) => Algorithm::EcdsaP384,
            Material::Rsa(_) => Algorithm::Rsa,
            Material::Sm2(_) => Algorithm::Sm2,
        }
    }

    /// The Ed25519 key, for batch verification.
    pub(crate) fn ed25519_key(&self) -> Option<&ed25519_dalek::VerifyingKey> {
        match &self.material {
            Material::Ed25519(key) => Some(key),
            _ => None,
        }
    }

    /// Verifies `signature` over `message` under `scheme`. A scheme that does not fit the key's
    /// algorithm fails like a bad signature.
    pub fn verify(&self, scheme: SignatureScheme, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        use SignatureScheme as S;
        let ring_alg: &dyn rs::VerificationAlgorithm = match (&self.material, scheme) {
            (Material::Ed25519(key), S::Ed25519) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| CryptoError::BadSignature)?;
                return key.verify_strict(message, &sig).map_err(|_| CryptoError::BadSignature);
            }
            (Material::Sm2(key), S::Sm2Sm3Raw | S::Sm2Sm3Der) => {
                let raw;
                let bytes = if scheme == S::Sm2Sm3Der {
                    raw = sm2_der_to_raw(signature)?;
                    &raw[..]
                } else {
                    signature
                };
                let sig = sm2::dsa::Signature::from_slice(bytes).map_err(|_| CryptoError::BadSignature)?;
                return if key.verify(message, &sig) {
                    Ok(())
                } else {
                    Err(CryptoError::BadSignature)
                };
            }
            (Material::P256(_), S::EcdsaP256Sha256Fixed) => &rs::ECDSA_P256_SHA256_FIXED,
            (Material::P256(_), S::EcdsaSha256Der) => &rs::ECDSA_P256_SHA256_ASN1,
            (Material::P256(_), S::EcdsaSha384Der) => &rs::ECDSA_P256_SHA384_ASN1,
            (Material::P384(_), S::EcdsaSha256Der) => &rs::ECDSA_P384_SHA256_ASN1,
            (Material::P384(_), S::EcdsaSha384Der) => &rs::ECDSA_P384_SHA384_ASN1,
            (Material::Rsa(_), S::RsaPkcs1Sha256) => &rs::RSA_PKCS1_2048_8192_SHA256,
            (Material::Rsa(_), S::RsaPkcs1Sha384) => &rs::RSA_PKCS1_2048_8192_SHA384,
            (Material::Rsa(_), S::RsaPkcs1Sha512) => &rs::RSA_PKCS1_2048_8192_SHA512,
            (Material::Rsa(_), S::RsaPssSha256) => &rs::RSA_PSS_2048_8192_SHA256,
            _ => return Err(CryptoError::BadSignature),
        };
        let key_bytes = match &self.material {
            Material::P256(b) | Material::P384(b) | Material::Rsa(b) => b.as_slice(),
            Material::Ed25519(_) | Material::Sm2(_) => return Err(CryptoError::BadSignature),
        };
        rs::UnparsedPublicKey::new(ring_alg, key_bytes)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }
}

fn check_uncompressed(bits: &[u8], len: usize) -> Result<Vec<u8>, CryptoError> {
    // Compressed points are refused: ring verifies uncompressed points only.
    if bits.len() != len || bits.first() != Some(&0x04) {
        return Err(CryptoError::MalformedKey);
    }
    Ok(bits.to_vec())
}

fn sm2_key_from_sec1(bits: &[u8]) -> Result<crate::sm2_tables::Sm2Key, CryptoError> {
    let point = sm2::EncodedPoint::from_bytes(bits).map_err(|_| CryptoError::MalformedKey)?;
    let affine: Option<sm2::AffinePoint> = sm2::AffinePoint::from_encoded_point(&point).into();
    let affine = affine.ok_or(CryptoError::MalformedKey)?;
    // The same checks as the sm2 crate's own key (not the identity).
    sm2::dsa::VerifyingKey::from_affine(SM2_DISTID, affine).map_err(|_| CryptoError::MalformedKey)?;
    Ok(crate::sm2_tables::Sm2Key::new(affine))
}

/// The SEC1 uncompressed encoding of an SM2 verifying key.
pub(crate) fn sm2_sec1(key: &sm2::dsa::VerifyingKey) -> Vec<u8> {
    key.as_affine().to_encoded_point(false).as_bytes().to_vec()
}

/// Checks that an RSA public key is well-formed DER of at least 2048 bits (the rsa crate parses
/// it, so that a malformed or small key is refused at registration, not at first use).
fn check_rsa_public_key(pkcs1: &[u8]) -> Result<(), CryptoError> {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::RsaPublicKey::from_pkcs1_der(pkcs1).map_err(|_| CryptoError::MalformedKey)?;
    if key.n().bits() < 2048 {
        return Err(CryptoError::UnsupportedAlgorithm(
            "RSA keys must have at least 2048 bits".to_owned(),
        ));
    }
    Ok(())
}

/// Converts a DER `SEQUENCE { r INTEGER, s INTEGER }` SM2 signature into 64-byte `r‖s`,
/// refusing anything that is not strict DER.
pub fn sm2_der_to_raw(der: &[u8]) -> Result<[u8; 64], CryptoError> {
    let bad = CryptoError::BadSignature;
    let (content, rest) = der_take(der, 0x30).ok_or(CryptoError::BadSignature)?;
    if !rest.is_empty() {
        return Err(bad);
    }
    let (r, content) = der_take(content, 0x02).ok_or(CryptoError::BadSignature)?;
    let (s, content) = der_take(content, 0x02).ok_or(CryptoError::BadSignature)?;
    if !content.is_empty() {
        return Err(bad);
    }
    let mut out = [0u8; 64];
    let (r_slot, s_slot) = out.split_at_mut(32);
    for (int, slot) in [(r, r_slot), (s, s_slot)] {
        // Positive, minimal: no leading 0x00 unless the next byte has its top bit set.
        let minimal = match int {
            [] => false,
            [0x00] => true,
            [0x00, next, ..] => next & 0x80 != 0,
            [first, ..] => first & 0x80 == 0,
        };
        let digits = int.strip_prefix(&[0u8]).unwrap_or(int);
        if !minimal || digits.len() > 32 {
            return Err(CryptoError::BadSignature);
        }
        slot[32 - digits.len()..].copy_from_slice(digits);
    }
    Ok(out)
}

/// Reads one DER TLV with short or minimal long-form length; returns (content, rest).
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = match len0 {
        0..=0x7f => (usize::from(len0), rest),
        0x81 => {
            let (&l, rest) = rest.split_first()?;
            if l < 0x80 {
                return None;
            }
            (usize::from(l), rest)
        }
        _ => return None,
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_der_is_required_for_sm2_signatures() {
        let mut good = vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02];
        let raw = sm2_der_to_raw(&good).unwrap();
        assert_eq!(raw[31], 1);
        assert_eq!(raw[63], 2);
        good.push(0);
        assert!(sm2_der_to_raw(&good).is_err(), "trailing byte");
        assert!(
            sm2_der_to_raw(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02]).is_err(),
            "non-minimal"
        );
        assert!(
            sm2_der_to_raw(&[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x02]).is_err(),
            "negative"
        );
        assert!(
            sm2_der_to_raw(&[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]).is_err(),
            "long form"
        );
    }

    #[test]
    fn garbage_keys_are_refused() {
        assert!(PublicKey::from_spki_der(b"").is_err());
        assert!(PublicKey::from_spki_der(&[0x30, 0x00]).is_err());
    }
}

/// Low-level operations for test vectors and interoperability checks.
///
/// **Danger**: these skip the safeguards of [`PublicKey::verify`] (for SM2, the binding of the
/// signer's identity through Z). Nothing on a verification path may call them.
pub mod hazmat {
    use super::{sm2_der_to_raw, Material, PublicKey};
    use crate::CryptoError;

    /// An SM2 public key (SEC1 point) bound to a user ID other than the default one.
    pub fn sm2_key_with_distid_danger(sec1: &[u8], distid: &str) -> Result<PublicKey, CryptoError> {
        let mut key = PublicKey::from_spki_der(&crate::signer::sm2_spki_der(sec1))?;
        let Material::Sm2(k) = &key.material else {
            return Err(CryptoError::MalformedKey);
        };
        let bound = crate::sm2_tables::Sm2Key::with_distid(*k.point(), distid).ok_or(CryptoError::MalformedKey)?;
        key.material = Material::Sm2(Box::new(bound));
        Ok(key)
    }

    /// Verifies an SM2 DER signature over an already computed `e = SM3(Z‖M)` (32 bytes).
    /// Any other length of `e` is refused.
    pub fn sm2_verify_prehash_danger(key: &PublicKey, e: &[u8], der_signature: &[u8]) -> Result<(), CryptoError> {
        let Material::Sm2(key) = &key.material else {
            return Err(CryptoError::BadSignature);
        };
        let e: &[u8; 32] = e.try_into().map_err(|_| CryptoError::BadSignature)?;
        let sig =
            sm2::dsa::Signature::from_slice(&sm2_der_to_raw(der_signature)?).map_err(|_| CryptoError::BadSignature)?;
        if key.verify_prehash(e, &sig) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}
