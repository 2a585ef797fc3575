//! JWS compact serialisation (RFC 7515 §7.1) for signed tokens: holder tokens from the identity
//! platform, and the presentation tokens this service issues.
//!
//! Bytes only: the caller builds and reads the JSON of the header and payload. The algorithm is
//! never taken from the header: the caller picks the key, and the key's algorithm decides the
//! scheme ([`alg_name`] says which `alg` value the header must then carry). `none` has no key and
//! so never verifies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::key::{Algorithm, PublicKey};
use crate::signer::{scheme_for, Signer};
use crate::CryptoError;

/// Longest token accepted, in bytes (tokens travel in headers and QR codes).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The JWS `alg` of each key algorithm, with the encodings [`Signer::sign`] produces:
/// `EdDSA` (RFC 8037), `ES256` (`r‖s`), `RS256` (PKCS#1 v1.5). `SM2` (SM3, default distinguishing
/// id, `r‖s`) has no registered name; `SM2` is the one Chinese identity platforms use.
pub fn alg_name(algorithm: Algorithm) -> Option<&'static str> {
    match algorithm {
        Algorithm::Ed25519 => Some("EdDSA"),
        Algorithm::EcdsaP256 => Some("ES256"),
        Algorithm::Rsa => Some("RS256"),
        Algorithm::Sm2 => Some("SM2"),
        Algorithm::EcdsaP384 => None,
    }
}

/// A compact JWS split into its parts, signature not yet checked.
#[derive(Debug)]
pub struct Compact<'a> {
    /// The decoded protected header (JSON bytes).
    pub header: Vec<u8>,
    /// The decoded payload.
    pub payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Splits and decodes a compact JWS. Refuses anything but three unpadded base64url parts within
/// [`MAX_TOKEN_LEN`].
pub fn parse_compact(token: &str) -> Result<Compact<'_>, CryptoError> {
    parse_compact_within(token, MAX_TOKEN_LEN)
}

/// [`parse_compact`] for documents larger than a token (a trust list), within `max_len` bytes.
pub fn parse_compact_within(token: &str, max_len: usize) -> Result<Compact<'_>, CryptoError> {
    let malformed = |why: &str| CryptoError::MalformedToken(why.to_owned());
    if token.len() > max_len {
        return Err(malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("a compact JWS has three parts"));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| malformed("a part is not base64url"))
    };
    Ok(Compact {
        header: decode(h)?,
        payload: decode(p)?,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature: decode(s)?,
    })
}

impl Compact<'_> {
    /// Checks the signature with `key`, in the scheme of the key's algorithm.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CryptoError> {
        key.verify(
            scheme_for(key.algorithm()),
            self.signing_input.as_bytes(),
            &self.signature,
        )
    }
}

/// Signs `header` and `payload` (JSON bytes) into a compact JWS.
pub fn sign_compact(signer: &dyn Signer, header: &[u8], payload: &[u8]) -> Result<String, CryptoError> {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = signer.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::FileKey;

    fn key() -> FileKey {
        // RFC 8037 Appendix A.1 private key.
        let d = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
        pkcs8.extend_from_slice(&d);
        FileKey::from_pkcs8_der(&pkcs8).unwrap()
    }

    #[test]
    fn rfc8037_a4_signature() {
        // RFC 8037 A.4: header {"alg":"EdDSA"}, payload "Example of Ed25519 signing".
        let token = sign_compact(&key(), br#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing").unwrap();
        assert_eq!(
            token,
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
             hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        let parsed = parse_compact(&token).unwrap();
        assert_eq!(parsed.payload, b"Example of Ed25519 signing");
        parsed.verify(key().public_key()).unwrap();
    }

    #[test]
    fn tampering_and_malformed_tokens_fail() {
        let token = sign_compact(&key(), br#"{"alg":"EdDSA"}"#, b"{}").unwrap();
        let (head, sig) = token.rsplit_once('.').unwrap();
        let other_payload = format!("{}.e30x.{sig}", head.split('.').next().unwrap());
        assert!(parse_compact(&other_payload)
            .unwrap()
            .verify(key().public_key())
            .is_err());
        for bad in [
            "a.b",
            "a.b.c.d",
            "e30.e30.e30=",
            "e3+.e30.e30",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(parse_compact(bad).is_err(), "{bad:.20}");
        }
        let mut flipped = token.into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(parse_compact(&flipped).unwrap().verify(key().public_key()).is_err());
    }
}
