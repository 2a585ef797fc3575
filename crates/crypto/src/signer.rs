//! Signing: the [`Signer`] trait and file-based private keys.
//!
//! The engine signs only through [`Signer`], so a key in a hardware security module (the
//! `zhengyin-keys` crate) takes the place of a [`FileKey`] without the engine knowing. Private
//! keys are read from PKCS#8 PEM files the operator controls; the PEM text and the decoded DER
//! are zeroized after parsing, and no key type prints its secret.

use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};
use zeroize::Zeroizing;

use crate::key::{oid, Algorithm, PublicKey, SignatureScheme, SM2_DISTID};
use crate::{pem, CryptoError};

/// Something that signs with one private key.
pub trait Signer: Send + Sync {
    /// The key's algorithm.
    fn algorithm(&self) -> Algorithm;
    /// The matching public key.
    fn public_key(&self) -> &PublicKey;
    /// Signs `message`. The encoding is the licence one: Ed25519 raw, ECDSA P1363 `r‖s`,
    /// RSA PKCS#1 v1.5 SHA-256, SM2 raw `r‖s` with SM3 and [`SM2_DISTID`].
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// The scheme [`Signer::sign`] produces, for verification.
    fn scheme(&self) -> SignatureScheme {
        scheme_for(self.algorithm())
    }
}

/// The licence signature scheme of each key algorithm.
pub fn scheme_for(algorithm: Algorithm) -> SignatureScheme {
    match algorithm {
        Algorithm::Ed25519 => SignatureScheme::Ed25519,
        Algorithm::EcdsaP256 | Algorithm::EcdsaP384 => SignatureScheme::EcdsaP256Sha256Fixed,
        Algorithm::Rsa => SignatureScheme::RsaPkcs1Sha256,
        Algorithm::Sm2 => SignatureScheme::Sm2Sm3Raw,
    }
}

/// A private key held in memory, loaded from a PKCS#8 file.
pub struct FileKey {
    public: PublicKey,
    secret: Secret,
}

enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    P256(rs::EcdsaKeyPair, SystemRandom),
    Rsa(rs::RsaKeyPair, SystemRandom),
    Sm2(Box<sm2::dsa::SigningKey>),
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKey")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl FileKey {
    /// Reads the first `PRIVATE KEY` block of a PEM file.
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, CryptoError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| CryptoError::Io(format!("{}: {e}", path.display())))?,
        );
        Self::from_pem(&text)
    }

    /// Parses the first `PRIVATE KEY` block of PEM text.
    pub fn from_pem(text: &str) -> Result<Self, CryptoError> {
        let blocks = pem::decode_label(text, "PRIVATE KEY")?;
        let der = blocks
            .first()
            .ok_or_else(|| CryptoError::Pem("no PRIVATE KEY block".to_owned()))?;
        Self::from_pkcs8_der(der)
    }

    /// Parses a PKCS#8 PrivateKeyInfo (Ed25519, ECDSA P-256, RSA ≥ 2048, SM2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let info = sm2::pkcs8::PrivateKeyInfo::try_from(der).map_err(|_| CryptoError::MalformedKey)?;
        let alg = info.algorithm.oid.to_string();
        let curve = info.algorithm.parameters_oid().ok().map(|o| o.to_string());
        let rng = SystemRandom::new();
        let (secret, spki) = match (alg.as_str(), curve.as_deref()) {
            (oid::ED25519, _) => {
                use ed25519_dalek::pkcs8::DecodePrivateKey as _;
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|_| CryptoError::MalformedKey)?;
                let spki = crate::der::spki(&ED25519_ALG, key.verifying_key().as_bytes());
                (Secret::Ed25519(key), spki)
            }
            (oid::EC_PUBLIC_KEY, Some(oid::P256)) => {
                let key = rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(|_| CryptoError::MalformedKey)?;
                let spki = crate::der::spki(&P256_ALG, key.public_key().as_ref());
                (Secret::P256(key, rng), spki)
            }
            (oid::EC_PUBLIC_KEY, Some(oid::SM2_CURVE)) => {
                let secret = sm2::SecretKey::try_from(info).map_err(|_| CryptoError::MalformedKey)?;
                let key = sm2::dsa::SigningKey::new(SM2_DISTID, &secret).map_err(|_| CryptoError::MalformedKey)?;
                let spki = crate::der::spki(&SM2_ALG, &crate::key::sm2_sec1(key.verifying_key()));
                (Secret::Sm2(Box::new(key)), spki)
            }
            (oid::RSA_ENCRYPTION, _) => {
                let key = rs::RsaKeyPair::from_pkcs8(der).map_err(|_| CryptoError::MalformedKey)?;
                let spki = crate::der::spki(&RSA_ALG, key.public_key().as_ref());
                (Secret::Rsa(key, rng), spki)
            }
            _ => {
                return Err(CryptoError::UnsupportedAlgorithm(format!(
                    "private key algorithm {alg}"
                )))
            }
        };
        Ok(Self {
            public: PublicKey::from_spki_der(&spki)?,
            secret,
        })
    }
}

impl FileKey {
    /// A new random key and its PKCS#8 PEM (for `zhengyin keys generate` and the demo). RSA keys
    /// are made in a device or by OpenSSL: ring cannot generate them.
    pub fn generate(algorithm: Algorithm) -> Result<(Self, Zeroizing<String>), CryptoError> {
        let rng = SystemRandom::new();
        let der: Zeroizing<Vec<u8>> = match algorithm {
            Algorithm::Ed25519 => Zeroizing::new(
                rs::Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| CryptoError::SigningFailed)?
                    .as_ref()
                    .to_vec(),
            ),
            Algorithm::EcdsaP256 => Zeroizing::new(
                rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| CryptoError::SigningFailed)?
                    .as_ref()
                    .to_vec(),
            ),
            Algorithm::Sm2 => {
                use ring::rand::SecureRandom as _;
                use sm2::pkcs8::EncodePrivateKey as _;
                // A scalar from the OS generator; out-of-range draws (≈2⁻³²) are drawn again.
                let secret = loop {
                    let mut bytes = Zeroizing::new([0u8; 32]);
                    rng.fill(bytes.as_mut()).map_err(|_| CryptoError::SigningFailed)?;
                    if let Ok(secret) = sm2::SecretKey::from_slice(bytes.as_ref()) {
                        break secret;
                    }
                };
                let document = secret.to_pkcs8_der().map_err(|_| CryptoError::MalformedKey)?;
                Zeroizing::new(document.as_bytes().to_vec())
            }
            Algorithm::Rsa | Algorithm::EcdsaP384 => {
                return Err(CryptoError::UnsupportedAlgorithm(format!(
                    "{algorithm:?} file keys are not generated here (make RSA keys in the device or with OpenSSL)"
                )))
            }
        };
        let key = Self::from_pkcs8_der(&der)?;
        Ok((key, Zeroizing::new(pem::encode("PRIVATE KEY", &der))))
    }
}

impl Signer for FileKey {
    fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.secret {
            Secret::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(message).to_bytes().to_vec())
            }
            Secret::P256(key, rng) => key
                .sign(rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::SigningFailed),
            Secret::Rsa(key, rng) => {
                let mut sig = vec![0u8; key.public().modulus_len()];
                key.sign(&rs::RSA_PKCS1_SHA256, rng, message, &mut sig)
                    .map_err(|_| CryptoError::SigningFailed)?;
                Ok(sig)
            }
            Secret::Sm2(key) => {
                use sm2::dsa::signature::Signer as _;
                let sig: sm2::dsa::Signature = key.try_sign(message).map_err(|_| CryptoError::SigningFailed)?;
                Ok(sig.to_bytes().to_vec())
            }
        }
    }
}

// AlgorithmIdentifier contents (OID and parameters, DER).
const ED25519_ALG: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const P256_ALG: [u8; 19] = [
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
];
const SM2_ALG: [u8; 19] = [
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d,
];
const RSA_ALG: [u8; 13] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// DER SubjectPublicKeyInfo of a 32-byte Ed25519 key.
pub(crate) fn ed25519_spki_der(key: &[u8; 32]) -> Vec<u8> {
    crate::der::spki(&ED25519_ALG, key)
}

/// DER SubjectPublicKeyInfo of an SM2 SEC1 point.
pub(crate) fn sm2_spki_der(sec1: &[u8]) -> Vec<u8> {
    crate::der::spki(&SM2_ALG, sec1)
}
