//! The licence cryptosuites (ARCHITECTURE §4.1).
//!
//! ```text
//! hashData   = H(JCS(proofConfig)) || H(JCS(document))       64 bytes
//! signature  = Sign(hashData)
//! proofValue = "z" || base58btc(signature)                   multibase
//! ```
//!
//! | cryptosuite      | H       | Sign                                                     |
//! |------------------|---------|----------------------------------------------------------|
//! | `eddsa-jcs-2022` | SHA-256 | Ed25519, verified with `verify_strict`                   |
//! | `ecdsa-jcs-2019` | SHA-256 | ECDSA P-256 with SHA-256 over hashData, P1363 `r‖s`       |
//! | `rsa-jcs-2026`   | SHA-256 | RSASSA-PKCS1-v1_5 with SHA-256 over hashData, ≥ 2048 bits |
//! | `sm2-jcs-2026`   | SM3     | SM2 with SM3 over hashData, distid `1234567812345678`, `r‖s` |
//!
//! The first two are the W3C standard suites; the last two are ours, built the same way.

use crate::key::{Algorithm, PublicKey, SignatureScheme};
use crate::{hash, CryptoError};

/// A licence cryptosuite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cryptosuite {
    /// `eddsa-jcs-2022` (W3C).
    EddsaJcs2022,
    /// `ecdsa-jcs-2019` (W3C), P-256 only.
    EcdsaJcs2019,
    /// `rsa-jcs-2026` (ours).
    RsaJcs2026,
    /// `sm2-jcs-2026` (ours).
    Sm2Jcs2026,
}

impl Cryptosuite {
    /// Every suite.
    pub const ALL: [Cryptosuite; 4] = [
        Self::EddsaJcs2022,
        Self::EcdsaJcs2019,
        Self::RsaJcs2026,
        Self::Sm2Jcs2026,
    ];

    /// The suite's name as written in `proof.cryptosuite`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EddsaJcs2022 => "eddsa-jcs-2022",
            Self::EcdsaJcs2019 => "ecdsa-jcs-2019",
            Self::RsaJcs2026 => "rsa-jcs-2026",
            Self::Sm2Jcs2026 => "sm2-jcs-2026",
        }
    }

    /// The suite of a name, if known.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The suite a key of `algorithm` signs with.
    pub fn for_algorithm(algorithm: Algorithm) -> Option<Self> {
        match algorithm {
            Algorithm::Ed25519 => Some(Self::EddsaJcs2022),
            Algorithm::EcdsaP256 => Some(Self::EcdsaJcs2019),
            Algorithm::Rsa => Some(Self::RsaJcs2026),
            Algorithm::Sm2 => Some(Self::Sm2Jcs2026),
            Algorithm::EcdsaP384 => None,
        }
    }

    /// The key algorithm of the suite.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::EddsaJcs2022 => Algorithm::Ed25519,
            Self::EcdsaJcs2019 => Algorithm::EcdsaP256,
            Self::RsaJcs2026 => Algorithm::Rsa,
            Self::Sm2Jcs2026 => Algorithm::Sm2,
        }
    }

    fn scheme(self) -> SignatureScheme {
        crate::signer::scheme_for(self.algorithm())
    }

    /// `H(proofConfig) || H(document)`.
    pub fn hash_data(self, proof_config: &[u8], document: &[u8]) -> [u8; 64] {
        let h = match self {
            Self::Sm2Jcs2026 => hash::sm3,
            _ => hash::sha256,
        };
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&h(proof_config));
        out[32..].copy_from_slice(&h(document));
        out
    }

    /// Verifies a signature over `hash_data` made with this suite. A key of another algorithm
    /// fails like a bad signature.
    pub fn verify(self, key: &PublicKey, hash_data: &[u8; 64], signature: &[u8]) -> Result<(), CryptoError> {
        if key.algorithm() != self.algorithm() {
            return Err(CryptoError::BadSignature);
        }
        key.verify(self.scheme(), hash_data, signature)
    }
}

/// Encodes a signature as a multibase base58-btc `proofValue` (`z…`).
pub fn encode_proof_value(signature: &[u8]) -> String {
    format!("z{}", bs58::encode(signature).into_string())
}

/// Decodes a multibase base58-btc `proofValue`, refusing other bases.
///
/// Base58-btc is a bijection between byte strings and strings over its alphabet (leading `1`s
/// are leading zero bytes), so every accepted text is the one canonical encoding of its bytes.
pub fn decode_proof_value(text: &str) -> Result<Vec<u8>, CryptoError> {
    let body = text.strip_prefix('z').ok_or(CryptoError::BadSignature)?;
    // The longest signature we make is RSA-8192 (1024 bytes, at most 1399 base58 characters).
    if body.len() > 1400 {
        return Err(CryptoError::BadSignature);
    }
    decode_base58(body).ok_or(CryptoError::BadSignature)
}

/// The value of each byte as a base58-btc (Bitcoin alphabet) digit, 0xFF if it is none.
const BASE58_DIGITS: [u8; 256] = {
    let alphabet = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Base58-btc decoding five digits at a time into 32-bit limbs (58^5 < 2^30): every verification
/// decodes a proof value, and digit-by-digit decoding (the bs58 crate) took about 2 % of it.
fn decode_base58(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    let zeros = digits.iter().take_while(|&&d| d == b'1').count();
    // The number after the leading `1`s, as little-endian limbs.
    let mut limbs: Vec<u32> = Vec::with_capacity(digits.len() / 5 + 1);
    for group in digits[zeros..].chunks(5) {
        let (mut value, mut scale) = (0u64, 1u64);
        for &d in group {
            let digit = BASE58_DIGITS[usize::from(d)];
            if digit == 0xFF {
                return None;
            }
            value = value * 58 + u64::from(digit);
            scale *= 58;
        }
        let mut carry = value;
        for limb in &mut limbs {
            let t = u64::from(*limb) * scale + carry;
            *limb = t as u32;
            carry = t >> 32;
        }
        while carry > 0 {
            limbs.push(carry as u32);
            carry >>= 32;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(
        limbs
            .iter()
            .rev()
            .flat_map(|limb| limb.to_be_bytes())
            .skip_while(|&b| b == 0),
    );
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Our decoder agrees with the bs58 crate on every encoding, leading zeros included,
        /// and on text that is not base58.
        #[test]
        fn base58_decoding_agrees_with_bs58(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                                            zeros in 0usize..4,
                                            text in "[0-9A-Za-z+/=]{0,40}") {
            let mut bytes = bytes;
            bytes.splice(0..0, std::iter::repeat_n(0u8, zeros));
            let encoded = bs58::encode(&bytes).into_string();
            proptest::prop_assert_eq!(decode_base58(&encoded), Some(bytes));
            proptest::prop_assert_eq!(decode_base58(&text), bs58::decode(&text).into_vec().ok());
        }
    }

    #[test]
    fn names_round_trip() {
        for s in Cryptosuite::ALL {
            assert_eq!(Cryptosuite::from_name(s.name()), Some(s));
            assert_eq!(Cryptosuite::for_algorithm(s.algorithm()), Some(s));
        }
        assert_eq!(Cryptosuite::from_name("eddsa-rdfc-2022"), None);
    }

    #[test]
    fn proof_values_are_strict_multibase() {
        let v = encode_proof_value(&[0, 0, 1, 2, 255]);
        assert_eq!(decode_proof_value(&v).unwrap(), vec![0, 0, 1, 2, 255]);
        assert!(decode_proof_value(&v[1..]).is_err(), "no multibase prefix");
        assert!(decode_proof_value("u AQID").is_err());
        assert!(decode_proof_value("z0OIl").is_err(), "not base58 alphabet");
        assert!(
            decode_proof_value(&format!("z{}", "2".repeat(1401))).is_err(),
            "too long"
        );
        // Bijective: every decodable text re-encodes to itself.
        for text in ["z1", "z11", "z1112", "zzz", "z2NEpo7TZRRrLZSi2U"] {
            assert_eq!(encode_proof_value(&decode_proof_value(text).unwrap()), text);
        }
    }

    #[test]
    fn sm2_suite_hashes_with_sm3() {
        let d = Cryptosuite::Sm2Jcs2026.hash_data(b"abc", b"abc");
        assert_eq!(&d[..32], &hash::sm3(b"abc"));
        let d = Cryptosuite::EddsaJcs2022.hash_data(b"abc", b"x");
        assert_eq!(&d[..32], &hash::sha256(b"abc"));
        assert_eq!(&d[32..], &hash::sha256(b"x"));
    }
}
