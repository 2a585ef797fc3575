//! Verifying inclusion and consistency proofs (RFC 9162 §2.1.3.2, §2.1.4.2), in the form used
//! by transparency-dev/merkle: a proof is split into an "inner" part (below the point where the
//! paths to the last leaf and to the proven leaf meet) and a "border" part (along the right edge).
//!
//! What a successful verification proves: the leaf hash is in the tree with that root (inclusion),
//! or the first tree is a prefix of the second (consistency). It does not prove that the root is
//! the one the log published: check the checkpoint's signature for that.

use crate::tree::{node_hash, Hash, LeafIndex, TreeSize};

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The index or sizes are impossible (index ≥ size, first > second, first = 0).
    #[error("invalid sizes: {0}")]
    BadSizes(&'static str),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("wrong proof length: got {got}, want {want}")]
    WrongLength {
        /// Hashes given.
        got: usize,
        /// Hashes expected.
        want: usize,
    },
    /// The proof does not lead to the given root(s).
    #[error("the proof does not match the root hash")]
    Mismatch,
}

/// (inner, border) proof lengths for `index` in a tree of `size`.
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

fn chain_inner(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        seed = if (index >> i) & 1 == 0 {
            node_hash(&seed, h)
        } else {
            node_hash(h, &seed)
        };
    }
    seed
}

fn chain_inner_right(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if (index >> i) & 1 == 1 {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

fn chain_border_right(mut seed: Hash, proof: &[Hash]) -> Hash {
    for h in proof {
        seed = node_hash(h, &seed);
    }
    seed
}

/// The root an inclusion proof leads to.
pub fn root_from_inclusion_proof(
    index: LeafIndex,
    size: TreeSize,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index.0 >= size.0 {
        return Err(ProofError::BadSizes("leaf index must be below the tree size"));
    }
    let (inner, border) = decompose(index.0, size.0);
    if proof.len() != inner + border {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    let res = chain_inner(*leaf_hash, &proof[..inner], index.0);
    Ok(chain_border_right(res, &proof[inner..]))
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    index: LeafIndex,
    size: TreeSize,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if &root_from_inclusion_proof(index, size, leaf_hash, proof)? == root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Verifies that the tree of `first` leaves with `first_root` is a prefix of the tree of `second`
/// leaves with `second_root`. A proof from size 0 is always refused (it would prove nothing).
pub fn verify_consistency(
    first: TreeSize,
    second: TreeSize,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    let (size1, size2) = (first.0, second.0);
    if size1 == 0 {
        return Err(ProofError::BadSizes(
            "a consistency proof from the empty tree proves nothing",
        ));
    }
    if size2 < size1 {
        return Err(ProofError::BadSizes("the second tree is smaller than the first"));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { got: 0, want: 1 });
    }
    let (inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    // size1 < size2, so the paths of leaves size1-1 and size2-1 meet above level `shift`.
    let inner = inner
        .checked_sub(shift)
        .ok_or(ProofError::BadSizes("inconsistent sizes"))?;
    // The proof starts with the root of the subtree of size 2^shift, unless that is the first tree.
    let (seed, rest) = if size1 == 1 << shift {
        (*first_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let want = proof.len() - rest.len() + inner + border;
    if proof.len() != want {
        return Err(ProofError::WrongLength { got: proof.len(), want });
    }
    let mask = (size1 - 1) >> shift;
    let hash1 = chain_border_right(chain_inner_right(seed, &rest[..inner], mask), &rest[inner..]);
    if &hash1 != first_root {
        return Err(ProofError::Mismatch);
    }
    let hash2 = chain_border_right(chain_inner(seed, &rest[..inner], mask), &rest[inner..]);
    if &hash2 != second_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}
