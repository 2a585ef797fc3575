//! Zhengyin's transparency log math: pure, no I/O, embeddable in an auditor's offline tool.
//!
//! What it holds: RFC 9162 tree hashing and the hashes a log stores ([`tree`]); inclusion and
//! consistency proofs, generated from stored hashes in O(log n) reads ([`tree`]) and verified
//! ([`proof`]); signed checkpoints in the C2SP checkpoint / signed-note formats ([`checkpoint`]).
//!
//! What it is not: it stores nothing (storage implements [`tree::HashReader`]) and reads no
//! clock. The proofs pass the transparency-dev/merkle test vectors.

pub mod checkpoint;
pub mod proof;
pub mod tree;

pub use checkpoint::{open_checkpoint, open_note, sign_checkpoint, sign_note, Checkpoint, NoteError, NoteVerifier};
pub use proof::{verify_consistency, verify_inclusion, ProofError};
pub use tree::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root, Frontier, Hash, HashReader, LeafIndex,
    MemoryTree, NodeId, TreeError, TreeSize,
};
