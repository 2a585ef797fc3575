//! Ed25519 batch verification: many signatures checked with one multiscalar multiplication.
//!
//! For signatures `(Rᵢ, sᵢ)` by keys `Aᵢ` over messages `Mᵢ`, with `hᵢ = SHA-512(Rᵢ ‖ Aᵢ ‖ Mᵢ)`
//! and fresh random 128-bit `zᵢ` from the operating system, the batch holds when
//!
//! ```text
//! [8] ( −(Σ zᵢsᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢhᵢ)·Aᵢ ) = 0
//! ```
//!
//! Terms of one key are summed first, so a batch from a few authorities costs little more than
//! its `Rᵢ`. A forged signature makes the batch fail except with probability 2⁻¹²⁷.
//!
//! **How it relates to the single check.** [`PublicKey::verify`] uses `verify_strict`: the
//! cofactorless equation, refusing small-order `A` and `R`. Before batching, every item must pass
//! the same refusals here (and canonical `s`, `R` and `A` encodings); any item that does not
//! fails the batch, and the caller checks items one by one. The batch equation is the cofactored
//! one (RFC 8032 §5.1.7 allows either): cofactorless randomised batching cannot be sound for
//! signatures with a torsion residue (it accepts them with probability up to ½), cofactored
//! batching accepts them always. So a batch accepts exactly what `verify_strict` accepts, plus
//! signatures whose equation only holds up to a small-order point — the C2SP CCTV vectors
//! flagged `low_order_residue` — which only the private key's holder can make. The tests run
//! every CCTV vector through both paths and name this difference.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
use ring::rand::SecureRandom as _;
use sha2::{Digest as _, Sha512};

use crate::PublicKey;

/// One signature of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The signer's key; anything but Ed25519 fails the batch.
    pub key: &'a PublicKey,
    /// The signed message.
    pub message: &'a [u8],
    /// The 64-byte signature `R ‖ s`.
    pub signature: &'a [u8],
}

/// True only when every item passes the single check's refusals and the batch equation holds.
/// False says "check them one by one", not which one failed. An empty batch is true.
pub fn ed25519_verify_batch(items: &[BatchItem<'_>]) -> bool {
    let Some(zs) = random_scalars(items.len()) else {
        return false;
    };
    let mut b_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(items.len() + 8);
    let mut points = Vec::with_capacity(items.len() + 8);
    // Distinct keys with the sum of their coefficients.
    let mut keys: Vec<(&[u8; 32], EdwardsPoint, Scalar)> = Vec::new();
    for (item, z) in items.iter().zip(zs) {
        let Some(key) = item.key.ed25519_key() else {
            return false;
        };
        let Some((r_bytes, r, s)) = parse_signature(item.signature) else {
            return false;
        };
        let a_bytes = key.as_bytes();
        let a = key.to_edwards();
        if r.is_small_order() || a.is_small_order() || a.compress().as_bytes() != a_bytes {
            return false;
        }
        let hram: [u8; 64] = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(a_bytes)
            .chain_update(item.message)
            .finalize()
            .into();
        let h = Scalar::from_bytes_mod_order_wide(&hram);
        b_coefficient += z * s;
        scalars.push(z);
        points.push(r);
        match keys.iter_mut().find(|(bytes, _, _)| *bytes == a_bytes) {
            Some((_, _, sum)) => *sum += z * h,
            None => keys.push((a_bytes, a, z * h)),
        }
    }
    scalars.push(-b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    for (_, a, sum) in keys {
        scalars.push(sum);
        points.push(a);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// `R` (canonically encoded, as a point) and `s` (canonical) of a 64-byte signature.
fn parse_signature(signature: &[u8]) -> Option<(&[u8], EdwardsPoint, Scalar)> {
    let (r_bytes, s_bytes) = signature.split_at_checked(32)?;
    let r_array: [u8; 32] = r_bytes.try_into().ok()?;
    let s_array: [u8; 32] = s_bytes.try_into().ok()?;
    let r = CompressedEdwardsY(r_array).decompress()?;
    if r.compress().as_bytes() != r_bytes {
        return None;
    }
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_array))?;
    Some((r_bytes, r, s))
}

/// `n` random non-zero 128-bit scalars, or `None` if the OS generator fails (never a weak batch).
fn random_scalars(n: usize) -> Option<Vec<Scalar>> {
    let mut bytes = vec![0u8; n * 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(
        bytes
            .chunks_exact(16)
            .map(|c| {
                let mut z = [0u8; 16];
                z.copy_from_slice(c);
                z[0] |= 1; // never zero, which would leave an item unchecked
                Scalar::from(u128::from_le_bytes(z))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;

    struct Signed {
        key: PublicKey,
        message: Vec<u8>,
        signature: Vec<u8>,
    }

    fn sign(seed: u8, message: &[u8]) -> Signed {
        let secret = SigningKey::from_bytes(&[seed; 32]);
        Signed {
            key: PublicKey::from_ed25519_bytes(secret.verifying_key().as_bytes()).unwrap(),
            message: message.to_vec(),
            signature: secret.sign(message).to_bytes().to_vec(),
        }
    }

    fn batch(signed: &[Signed]) -> bool {
        let items: Vec<BatchItem<'_>> = signed
            .iter()
            .map(|s| BatchItem {
                key: &s.key,
                message: &s.message,
                signature: &s.signature,
            })
            .collect();
        ed25519_verify_batch(&items)
    }

    fn hex_literal(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    fn many() -> Vec<Signed> {
        (0..64u8).map(|i| sign(i % 3, &[i; 40])).collect()
    }

    #[test]
    fn good_signatures_from_several_keys_pass_together() {
        assert!(batch(&many()));
        assert!(batch(&many()[..1]));
        assert!(batch(&[]));
    }

    #[test]
    fn one_bad_item_anywhere_fails_the_batch() {
        for at in [0, 31, 63] {
            for change in 0..3 {
                let mut signed = many();
                match change {
                    0 => signed[at].message[0] ^= 1,
                    1 => signed[at].signature[5] ^= 1,
                    _ => signed[at].key = sign(9, b"x").key,
                }
                assert!(!batch(&signed), "item {at}, change {change}");
            }
        }
    }

    #[test]
    fn wrong_lengths_non_canonical_s_and_other_algorithms_fail() {
        let mut signed = many();
        signed[3].signature.pop();
        assert!(!batch(&signed));

        let mut signed = many();
        // s + ℓ: the same scalar mod ℓ, not canonical; verify_strict refuses it too.
        let order = hex_literal("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"); // ℓ, little-endian
        let mut carry = 0u16;
        for (i, byte) in order.iter().enumerate() {
            let sum = u16::from(signed[0].signature[32 + i]) + u16::from(*byte) + carry;
            signed[0].signature[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert!(signed[0]
            .key
            .verify(
                crate::SignatureScheme::Ed25519,
                &signed[0].message,
                &signed[0].signature
            )
            .is_err());
        assert!(!batch(&signed));

        let p256 = crate::Certificate::all_from_pem(include_str!("../../../keys-example/authority-p256.pem")).unwrap();
        let mut signed = many();
        signed[0].key = p256[0].public_key().unwrap().clone();
        assert!(!batch(&signed));
    }
}
