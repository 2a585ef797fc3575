//! Zhengyin's cryptography: the only crate that touches key material.
//!
//! What it holds: SHA-256 and SM3 ([`hash`]); public keys parsed from SubjectPublicKeyInfo and
//! signature verification for Ed25519 (`verify_strict`), ECDSA P-256/P-384, RSA ≥ 2048 (PKCS#1
//! v1.5 and PSS) and SM2 with SM3 ([`key`]); the [`Signer`] trait and PKCS#8 file keys
//! ([`signer`]); compact JWS for tokens ([`jws`]); the licence cryptosuites and their multibase proof values ([`suite`]); PEM
//! ([`pem`]); X.509 parsing and chain validation ([`x509`]); certificate revocation lists ([`crl`]);
//! and PKCS#10 certification requests for new keys ([`csr`]).
//!
//! What it is not: it knows nothing of licences beyond the bytes it is asked to sign or verify,
//! and does no I/O except reading a key file the operator names. ring verifies and signs ECDSA and
//! RSA; ed25519-dalek does Ed25519; RustCrypto's sm2/sm3 do SM2 and SM3.

pub mod batch;
pub mod crl;
pub mod csr;
mod der;
mod error;
pub mod hash;
pub mod jws;
pub mod key;
pub mod pem;
pub mod signer;
mod sm2_tables;
pub mod suite;
pub mod x509;

pub use error::CryptoError;
pub use key::{Algorithm, KeyId, PublicKey, SignatureScheme, SM2_DISTID};
pub use signer::{FileKey, Signer};
pub use suite::Cryptosuite;
pub use x509::{validate_chain, Certificate, ChainError, TrustAnchors, ValidatedChain};

/// 32 random bytes from the operating system, for secrets (session cookies, sign-in states);
/// `None` if the generator fails, since a secret must never fall back to a guessable value.
pub fn random_secret() -> Option<[u8; 32]> {
    use ring::rand::SecureRandom as _;
    let mut buf = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut buf).ok()?;
    Some(buf)
}

/// A random 64-bit number from the operating system (ring's `SystemRandom`).
pub fn random_u64() -> u64 {
    use ring::rand::SecureRandom as _;
    let mut buf = [0u8; 8];
    // The OS generator does not fail on supported platforms; a zero fallback would only make
    // a serial suffix guessable, never reused (the counter part is unique).
    let _ = ring::rand::SystemRandom::new().fill(&mut buf);
    u64::from_le_bytes(buf)
}
