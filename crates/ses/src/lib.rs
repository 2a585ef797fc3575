//! Electronic seals (电子印章) and sealed signatures (电子签章): GM/T 0031-2014 (v1), GB/T 38540-2020
//! (v4) and its revision with a timestamp (v5).
//!
//! What it holds: DER decoding of seals and signatures ([`format`]), keeping the exact bytes each
//! signature covers; the GB/T 38540 §7.3 verification steps ([`verify`]), each reported with a
//! stable code; writing v4 seals and signatures ([`write`]); verifying the seals of OFD documents
//! with every protected file ([`ofd`]), and sealing an OFD document ([`seal_ofd`]).
//!
//! What each signature covers:
//!
//! | signature | covers |
//! |---|---|
//! | seal maker, v4/v5 | DER(`SES_SealInfo`), exactly as stored in the seal |
//! | seal maker, v1 | DER(`SEQUENCE { esealInfo, cert, signatureAlgorithm }`), built from the stored parts |
//! | signer (v4/v5 `SES_Signature`) | DER(`TBS_Sign`), exactly as stored |
//! | `dataHash` in `TBS_Sign` | SM3 of the protected data (for OFD: of the `Signature.xml` it names) |
//!
//! Every signature is SM2 with SM3 (OID 1.2.156.10197.1.501) and the default user ID
//! `1234567812345678`, DER `SEQUENCE { r, s }`; raw 64-byte `r ‖ s` is accepted as a quirk.
//!
//! What it is not: it holds no registry and does no I/O; seal status comes from the caller
//! ([`verify::Context`]).

mod der_read;
pub mod format;
pub mod ofd;
pub mod seal_ofd;
pub mod stamps;
pub mod timestamp;
pub mod verify;
pub mod write;

pub use format::{parse_seal, parse_signature, Quirk, Seal, SealSignature, Version};

/// Why bytes are not a seal or signature we can read.
#[derive(Debug, thiserror::Error)]
pub enum SesError {
    /// Not DER, or not the structure expected.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A well-formed structure we do not read (e.g. an unknown version).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A value refused when writing.
    #[error("cannot write: {0}")]
    Write(String),
}

impl From<der::Error> for SesError {
    fn from(e: der::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}
