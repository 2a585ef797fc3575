//! SM2 signature verification with precomputed tables (GB/T 32918.2 §7.1, steps B1–B7).
//!
//! Verification computes `x1` of `[s]G + [t]P`. The `sm2` crate does two constant-time scalar
//! multiplications (256 doublings each). Here both are read from fixed-base tables instead —
//! the generator's, built once per process, and each key's, built the first time the key
//! verifies — so one verification is at most 128 mixed point additions and one inversion.
//! Verification handles only public values, so variable time is fine (OpenSSL and ring verify
//! the same way). The point arithmetic is the `sm2` crate's; this module only orders it. A
//! key's first verification multiplies by its point directly; its table is built at the second.
//!
//! A table holds `j·16^i·P` for the 64 four-bit windows `i` and `j` in 1..=15, affine: 960
//! points, 62 KiB, about 1 ms to build.

use std::sync::{Arc, OnceLock};

use sm2::elliptic_curve::bigint::U256;
use sm2::elliptic_curve::group::Group as _;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::point::AffineCoordinates as _;
use sm2::elliptic_curve::sec1::ToEncodedPoint as _;
use sm2::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use sm3::Digest as _;

use crate::key::SM2_DISTID;

const WINDOWS: usize = 64;

/// `j·16^i·P` for every window `i` and digit `j` (index `j - 1`).
struct Table(Box<[[AffinePoint; 15]; WINDOWS]>);

impl Table {
    fn new(point: ProjectivePoint) -> Self {
        let mut rows = Box::new([[AffinePoint::IDENTITY; 15]; WINDOWS]);
        let mut base = point;
        for row in rows.iter_mut() {
            let mut multiples = [ProjectivePoint::IDENTITY; 15];
            let mut acc = base;
            for m in &mut multiples {
                *m = acc;
                acc += base;
            }
            // One inversion per row (Montgomery's trick inside).
            *row = <ProjectivePoint as sm2::elliptic_curve::BatchNormalize<_>>::batch_normalize(&multiples);
            base = base.double().double().double().double();
        }
        Self(rows)
    }

    /// `[k]P`: one mixed addition per non-zero four-bit digit of `k`.
    fn mul(&self, k: &Scalar) -> ProjectivePoint {
        let bytes = k.to_bytes();
        let mut acc = ProjectivePoint::IDENTITY;
        for (i, row) in self.0.iter().enumerate() {
            let byte = bytes[31 - i / 2];
            let digit = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 };
            if digit != 0 {
                acc += &row[usize::from(digit) - 1];
            }
        }
        acc
    }
}

fn generator_table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::new(ProjectivePoint::generator()))
}

/// An SM2 public key ready to verify: its point, its `Z` (with [`SM2_DISTID`]) and, once it
/// has verified, its table (shared by clones).
#[derive(Clone)]
pub(crate) struct Sm2Key {
    point: AffinePoint,
    z: [u8; 32],
    table: Arc<KeyTable>,
}

/// A key's table, built at its second verification: a key seen once (a certificate read for a
/// single check) never pays for one.
#[derive(Default)]
struct KeyTable {
    table: OnceLock<Table>,
    used: std::sync::atomic::AtomicBool,
}

impl KeyTable {
    /// `[t]P`, from the table when the key has verified before.
    fn mul(&self, point: &AffinePoint, t: &Scalar) -> ProjectivePoint {
        if let Some(table) = self.table.get() {
            return table.mul(t);
        }
        if self.used.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return self
                .table
                .get_or_init(|| Table::new(ProjectivePoint::from(*point)))
                .mul(t);
        }
        ProjectivePoint::from(*point) * t
    }
}

/// The SM2 curve's `a`, `b`, `xG`, `yG` (GB/T 32918.5), as `Z` hashes them.
const CURVE: [[u8; 32]; 4] = [
    [
        0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc,
    ],
    [
        0x28, 0xe9, 0xfa, 0x9e, 0x9d, 0x9f, 0x5e, 0x34, 0x4d, 0x5a, 0x9e, 0x4b, 0xcf, 0x65, 0x09, 0xa7, 0xf3, 0x97,
        0x89, 0xf5, 0x15, 0xab, 0x8f, 0x92, 0xdd, 0xbc, 0xbd, 0x41, 0x4d, 0x94, 0x0e, 0x93,
    ],
    [
        0x32, 0xc4, 0xae, 0x2c, 0x1f, 0x19, 0x81, 0x19, 0x5f, 0x99, 0x04, 0x46, 0x6a, 0x39, 0xc9, 0x94, 0x8f, 0xe3,
        0x0b, 0xbf, 0xf2, 0x66, 0x0b, 0xe1, 0x71, 0x5a, 0x45, 0x89, 0x33, 0x4c, 0x74, 0xc7,
    ],
    [
        0xbc, 0x37, 0x36, 0xa2, 0xf4, 0xf6, 0x77, 0x9c, 0x59, 0xbd, 0xce, 0xe3, 0x6b, 0x69, 0x21, 0x53, 0xd0, 0xa9,
        0x87, 0x7c, 0xc6, 0x2a, 0x47, 0x40, 0x02, 0xdf, 0x32, 0xe5, 0x21, 0x39, 0xf0, 0xa0,
    ],
];

impl Sm2Key {
    /// The key with the default user ID ([`SM2_DISTID`]).
    pub(crate) fn new(point: AffinePoint) -> Self {
        Self::bound(point, SM2_DISTID, (SM2_DISTID.len() * 8) as u16)
    }

    /// The key bound to `distid` (at most 8191 bytes: its bit length is 16 bits in `Z`).
    pub(crate) fn with_distid(point: AffinePoint, distid: &str) -> Option<Self> {
        let bits = u16::try_from(distid.len().checked_mul(8)?).ok()?;
        Some(Self::bound(point, distid, bits))
    }

    /// `Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)` (GB/T 32918.2 §5.5).
    fn bound(point: AffinePoint, distid: &str, bits: u16) -> Self {
        let mut z = sm3::Sm3::new();
        z.update(bits.to_be_bytes());
        z.update(distid.as_bytes());
        for constant in CURVE {
            z.update(constant);
        }
        let encoded = point.to_encoded_point(false);
        z.update(&encoded.as_bytes()[1..]);
        Self {
            point,
            z: z.finalize().into(),
            table: Arc::default(),
        }
    }

    pub(crate) fn point(&self) -> &AffinePoint {
        &self.point
    }

    /// `e = SM3(Z‖M)`: what is signed of `message` (A2, B3).
    pub(crate) fn digest(&self, message: &[u8]) -> [u8; 32] {
        sm3::Sm3::new_with_prefix(self.z)
            .chain_update(message)
            .finalize()
            .into()
    }

    /// Verifies a signature over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &sm2::dsa::Signature) -> bool {
        self.verify_prehash(&self.digest(message), signature)
    }

    /// Verifies a signature over an already computed `e` (B4 onwards).
    pub(crate) fn verify_prehash(&self, e: &[u8; 32], signature: &sm2::dsa::Signature) -> bool {
        // B1, B2: r and s in [1, n-1] (checked when the signature was read).
        let (r, s) = (signature.r(), signature.s());
        let e = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*e));
        // B5
        let t = *r + *s;
        if bool::from(t.is_zero()) {
            return false;
        }
        // B6
        let point = generator_table().mul(&s) + self.table.mul(&self.point, &t);
        // B7
        let x = point.to_affine().x();
        *r == e + <Scalar as Reduce<U256>>::reduce_bytes(&x)
    }
}

#[cfg(test)]
mod tests {
    use sm2::dsa::signature::{Signer as _, Verifier as _};

    use super::*;

    /// Against the `sm2` crate's own verification, for good signatures and for each one altered.
    #[test]
    fn agrees_with_the_sm2_crate_on_good_and_bad_signatures() {
        let mut seed = [7u8; 32];
        for round in 0..24u8 {
            seed[0] = round.wrapping_add(1);
            let secret = sm2::SecretKey::from_slice(&seed).unwrap();
            let signing = sm2::dsa::SigningKey::new(SM2_DISTID, &secret).unwrap();
            let verifying = signing.verifying_key().clone();
            let ours = Sm2Key::new(*verifying.as_affine());
            let message = vec![round; usize::from(round) * 7];
            let signature: sm2::dsa::Signature = signing.sign(&message);
            assert!(verifying.verify(&message, &signature).is_ok());
            // The first check multiplies directly, the second builds and uses the table.
            assert!(ours.verify(&message, &signature), "round {round}");
            assert!(ours.verify(&message, &signature), "round {round}, with the table");
            // Another message, and every bit of the signature flipped in turn.
            assert!(!ours.verify(b"another message", &signature));
            let bytes = signature.to_bytes();
            for bit in (0..512).step_by(5) {
                let mut altered = bytes;
                altered[bit / 8] ^= 1 << (bit % 8);
                if let Ok(altered) = sm2::dsa::Signature::from_slice(&altered) {
                    assert_eq!(
                        ours.verify(&message, &altered),
                        verifying.verify(&message, &altered).is_ok(),
                        "round {round}, bit {bit}"
                    );
                }
            }
        }
    }
}
