//! Property tests: every inclusion and consistency proof of every tree up to 300 leaves verifies,
//! and any change to a proof, a root or a size is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zhengyin_tlog::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion, LeafIndex, MemoryTree,
    TreeSize,
};

fn tree(n: u64) -> (MemoryTree, Vec<zhengyin_tlog::Hash>) {
    let mut t = MemoryTree::default();
    let mut roots = vec![root(TreeSize(0), &t).unwrap()];
    for i in 0..n {
        t.push(leaf_hash(&i.to_be_bytes()));
        roots.push(root(t.size(), &t).unwrap());
    }
    (t, roots)
}

#[test]
fn every_inclusion_proof_up_to_300_leaves_verifies() {
    let (t, roots) = tree(300);
    for n in 1..=300u64 {
        for i in 0..n {
            let p = inclusion_proof(LeafIndex(i), TreeSize(n), &t).unwrap();
            let leaf = leaf_hash(&i.to_be_bytes());
            verify_inclusion(LeafIndex(i), TreeSize(n), &leaf, &p, &roots[n as usize]).unwrap();
        }
    }
}

#[test]
fn every_consistency_proof_up_to_300_leaves_verifies() {
    let (t, roots) = tree(300);
    for n in 1..=300u64 {
        for m in 1..=n {
            let p = consistency_proof(TreeSize(m), TreeSize(n), &t).unwrap();
            verify_consistency(TreeSize(m), TreeSize(n), &p, &roots[m as usize], &roots[n as usize]).unwrap();
        }
    }
}

#[test]
fn out_of_range_requests_are_errors() {
    let (t, _) = tree(10);
    assert!(inclusion_proof(LeafIndex(10), TreeSize(10), &t).is_err());
    assert!(consistency_proof(TreeSize(0), TreeSize(5), &t).is_err());
    assert!(consistency_proof(TreeSize(6), TreeSize(5), &t).is_err());
}

proptest::proptest! {
    #[test]
    fn any_changed_bit_fails(n in 2u64..200, i_seed in 0u64..1000, bit in 0usize..256, which in 0usize..64) {
        let (t, roots) = tree(n);
        let i = i_seed % n;
        let leaf = leaf_hash(&i.to_be_bytes());
        let mut p = inclusion_proof(LeafIndex(i), TreeSize(n), &t).unwrap();
        if !p.is_empty() {
            let k = which % p.len();
            p[k][bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert!(verify_inclusion(LeafIndex(i), TreeSize(n), &leaf, &p, &roots[n as usize]).is_err());
        }
        let good = inclusion_proof(LeafIndex(i), TreeSize(n), &t).unwrap();
        let mut bad_root = roots[n as usize];
        bad_root[bit / 8] ^= 1 << (bit % 8);
        proptest::prop_assert!(verify_inclusion(LeafIndex(i), TreeSize(n), &leaf, &good, &bad_root).is_err());
        // (A proof does not always bind the size by itself: the checkpoint binds size and root.)
        proptest::prop_assert!(verify_inclusion(LeafIndex(n), TreeSize(n), &leaf, &good, &roots[n as usize]).is_err());

        let m = 1 + i % n;
        if m < n {
            let mut c = consistency_proof(TreeSize(m), TreeSize(n), &t).unwrap();
            let k = which % c.len();
            c[k][bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert!(verify_consistency(TreeSize(m), TreeSize(n), &c, &roots[m as usize], &roots[n as usize]).is_err());
        }
    }
}

#[test]
fn the_frontier_agrees_with_the_full_tree() {
    let (_, roots) = tree(300);
    let mut f = zhengyin_tlog::Frontier::default();
    assert_eq!(f.root(), roots[0]);
    for i in 0..300u64 {
        f.push(leaf_hash(&i.to_be_bytes()));
        assert_eq!(f.root(), roots[i as usize + 1], "size {}", i + 1);
        let again = zhengyin_tlog::Frontier::from_parts(f.size(), f.hashes().to_vec()).unwrap();
        assert_eq!(again, f);
    }
    assert!(zhengyin_tlog::Frontier::from_parts(TreeSize(3), vec![[0; 32]]).is_none());
}

#[test]
fn the_frontier_completes_the_same_nodes_as_the_full_tree() {
    let mut t = MemoryTree::default();
    let mut f = zhengyin_tlog::Frontier::default();
    for i in 0..300u64 {
        let leaf = leaf_hash(&i.to_be_bytes());
        let expected = zhengyin_tlog::tree::nodes_for_append(t.size(), leaf, &t).unwrap();
        assert_eq!(f.push_nodes(leaf), expected, "append at {i}");
        t.push(leaf);
        assert_eq!(f.root(), root(t.size(), &t).unwrap());
    }
}
