//! RFC 9162 §2.1 Merkle tree hashing, and the hashes a log stores.
//!
//! ```text
//! leaf hash   = SHA-256(0x00 || entry)
//! node hash   = SHA-256(0x01 || left || right)
//! MTH({})     = SHA-256("")
//! MTH(D[n])   = node(MTH(D[0:k]), MTH(D[k:n]))   k = largest power of two < n
//! ```
//!
//! A log stores the hash of every *complete* subtree: node `(level, index)` covers leaves
//! `[index·2^level, (index+1)·2^level)`. Appending leaf `n` adds the node `(0, n)` and one node on
//! each level where the new leaf completes a subtree; any range hash, root or proof then costs
//! O(log n) reads through [`HashReader`].

use zhengyin_crypto::hash::sha256;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Domain separation prefix of leaf hashes (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain separation prefix of interior node hashes.
pub const NODE_PREFIX: u8 = 0x01;

/// The index of a leaf (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeafIndex(pub u64);

/// The number of leaves in a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreeSize(pub u64);

/// A stored complete subtree: `level` 0 is a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u8,
    /// Position among the nodes of that level.
    pub index: u64,
}

/// The hash of a leaf entry.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut buf = Vec::with_capacity(1 + entry.len());
    buf.push(LEAF_PREFIX);
    buf.extend_from_slice(entry);
    sha256(&buf)
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    sha256(&buf)
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// Reads stored subtree hashes. Storage implements this; the tree math never writes.
pub trait HashReader {
    /// The error of the storage.
    type Error;
    /// The hash of a stored complete subtree.
    fn read_hash(&self, node: NodeId) -> Result<Hash, Self::Error>;
}

/// Errors of reading a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError<E> {
    /// A request outside the tree (index ≥ size, first > second, an empty range).
    #[error("out of range: {0}")]
    OutOfRange(&'static str),
    /// The storage failed.
    #[error("storage: {0:?}")]
    Storage(E),
}

fn largest_power_of_two_below(n: u64) -> u64 {
    // n ≥ 2 here; the result k satisfies k < n ≤ 2k.
    1 << (63 - (n - 1).leading_zeros())
}

/// The nodes to store when leaf `size` (the tree's current size, i.e. the new leaf's index) with
/// hash `leaf` is appended: `(0, size)` and every subtree the new leaf completes.
pub fn nodes_for_append<R: HashReader>(
    size: TreeSize,
    leaf: Hash,
    reader: &R,
) -> Result<Vec<(NodeId, Hash)>, TreeError<R::Error>> {
    let mut nodes = vec![(
        NodeId {
            level: 0,
            index: size.0,
        },
        leaf,
    )];
    let (mut index, mut hash, mut level) = (size.0, leaf, 0u8);
    while index & 1 == 1 {
        let left = reader
            .read_hash(NodeId {
                level,
                index: index - 1,
            })
            .map_err(TreeError::Storage)?;
        hash = node_hash(&left, &hash);
        index >>= 1;
        level += 1;
        nodes.push((NodeId { level, index }, hash));
    }
    Ok(nodes)
}

/// MTH of leaves `[lo, hi)`, from stored complete subtrees.
fn range_hash<R: HashReader>(lo: u64, hi: u64, reader: &R) -> Result<Hash, TreeError<R::Error>> {
    let width = hi - lo;
    if width == 0 {
        return Err(TreeError::OutOfRange("empty range"));
    }
    if width.is_power_of_two() && lo.is_multiple_of(width) {
        let node = NodeId {
            level: width.trailing_zeros() as u8,
            index: lo >> width.trailing_zeros(),
        };
        return reader.read_hash(node).map_err(TreeError::Storage);
    }
    let k = largest_power_of_two_below(width);
    Ok(node_hash(
        &range_hash(lo, lo + k, reader)?,
        &range_hash(lo + k, hi, reader)?,
    ))
}

/// The root hash of the tree of `size` leaves.
pub fn root<R: HashReader>(size: TreeSize, reader: &R) -> Result<Hash, TreeError<R::Error>> {
    if size.0 == 0 {
        return Ok(empty_root());
    }
    range_hash(0, size.0, reader)
}

/// RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<R: HashReader>(
    index: LeafIndex,
    size: TreeSize,
    reader: &R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if index.0 >= size.0 {
        return Err(TreeError::OutOfRange("leaf index must be below the tree size"));
    }
    let mut proof = Vec::new();
    path(index.0, 0, size.0, reader, &mut proof)?;
    Ok(proof)
}

/// PATH(m, D[lo:hi]), appended bottom-up to `out`.
fn path<R: HashReader>(m: u64, lo: u64, hi: u64, reader: &R, out: &mut Vec<Hash>) -> Result<(), TreeError<R::Error>> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(m, lo, lo + k, reader, out)?;
        out.push(range_hash(lo + k, hi, reader)?);
    } else {
        path(m - k, lo + k, hi, reader, out)?;
        out.push(range_hash(lo, lo + k, reader)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1: the consistency proof from the tree of `first` leaves to the tree of
/// `second`. Empty when the sizes are equal; an error from size 0 or when `first > second`.
pub fn consistency_proof<R: HashReader>(
    first: TreeSize,
    second: TreeSize,
    reader: &R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if first.0 == 0 || first.0 > second.0 {
        return Err(TreeError::OutOfRange("need 0 < first ≤ second"));
    }
    let mut proof = Vec::new();
    subproof(first.0, 0, second.0, true, reader, &mut proof)?;
    Ok(proof)
}

/// SUBPROOF(m, D[lo:hi], b).
fn subproof<R: HashReader>(
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    reader: &R,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError<R::Error>> {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(range_hash(lo, hi, reader)?);
        }
        return Ok(());
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(m, lo, lo + k, complete, reader, out)?;
        out.push(range_hash(lo + k, hi, reader)?);
    } else {
        subproof(m - k, lo + k, hi, false, reader, out)?;
        out.push(range_hash(lo, lo + k, reader)?);
    }
    Ok(())
}

/// An in-memory tree (tests, the auditor's recomputation).
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    size: u64,
}

impl MemoryTree {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let nodes = match nodes_for_append(TreeSize(self.size), leaf, &*self) {
            Ok(nodes) => nodes,
            Err(TreeError::Storage(never)) => match never {},
            Err(TreeError::OutOfRange(_)) => return,
        };
        for (node, hash) in nodes {
            let level = usize::from(node.level);
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
        }
        self.size += 1;
    }

    /// The number of leaves.
    pub fn size(&self) -> TreeSize {
        TreeSize(self.size)
    }
}

impl HashReader for MemoryTree {
    type Error = std::convert::Infallible;

    fn read_hash(&self, node: NodeId) -> Result<Hash, Self::Error> {
        // Only nodes the tree math asks for exist; a miss would be a bug in it, not input.
        Ok(self
            .levels
            .get(usize::from(node.level))
            .and_then(|l| l.get(node.index as usize))
            .copied()
            .unwrap_or([0; 32]))
    }
}

/// The right edge of a tree: the roots of its perfect subtrees, largest first. Enough to append
/// leaves and compute roots without the rest of the tree, so an auditor can follow a log by
/// keeping only this (at most 64 hashes) between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, from the highest bit down.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// A frontier from its parts; `None` if the number of hashes does not match the size.
    pub fn from_parts(size: TreeSize, hashes: Vec<Hash>) -> Option<Self> {
        (size.0.count_ones() as usize == hashes.len()).then_some(Self { size: size.0, hashes })
    }

    /// The tree size.
    pub fn size(&self) -> TreeSize {
        TreeSize(self.size)
    }

    /// The perfect-subtree roots, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        // Merge with equal-sized subtrees: one per trailing set bit of the old size.
        for _ in 0..self.size.trailing_ones() {
            let left = self.hashes.pop().unwrap_or_default();
            hash = node_hash(&left, &hash);
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// Appends a leaf hash and returns the tree nodes the append completes (the leaf, then each
    /// perfect subtree it closes), as [`nodes_for_append`] would: what a store keeps to answer
    /// proofs, computed from the frontier alone.
    pub fn push_nodes(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let (mut index, mut level, mut hash) = (self.size, 0u8, leaf);
        let mut nodes = vec![(NodeId { level, index }, hash)];
        for _ in 0..self.size.trailing_ones() {
            let left = self.hashes.pop().unwrap_or_default();
            hash = node_hash(&left, &hash);
            index >>= 1;
            level += 1;
            nodes.push((NodeId { level, index }, hash));
        }
        self.hashes.push(hash);
        self.size += 1;
        nodes
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(&last) = iter.next() else {
            return empty_root();
        };
        iter.fold(last, |acc, h| node_hash(h, &acc))
    }
}
