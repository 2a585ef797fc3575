//! transparency-dev/merkle vectors (98 inclusion, 98 consistency, the RFC 6962 reference tree),
//! copied into the workspace's tests/vectors/transparency-dev-merkle/ with their licence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use zhengyin_tlog::{leaf_hash, root, verify_consistency, verify_inclusion, Hash, LeafIndex, MemoryTree, TreeSize};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/transparency-dev-merkle")
}

fn files(sub: &str) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir().join("testdata").join(sub), &mut out);
    out.sort();
    out
}

/// A base64 hash; `None` when it is not exactly 32 bytes (upstream's strictness rule).
fn hash(v: &Value) -> Option<Hash> {
    B64.decode(v.as_str().unwrap_or_default()).ok()?.try_into().ok()
}

fn proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

#[test]
fn inclusion_vectors() {
    let files = files("inclusion");
    assert_eq!(files.len(), 98);
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let ok = match (hash(&v["leafHash"]), hash(&v["root"]), proof(&v["proof"])) {
            (Some(leaf), Some(r), Some(p)) => verify_inclusion(
                LeafIndex(v["leafIdx"].as_u64().unwrap()),
                TreeSize(v["treeSize"].as_u64().unwrap()),
                &leaf,
                &p,
                &r,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(!ok, v["wantErr"].as_bool().unwrap(), "{}: {}", f.display(), v["desc"]);
    }
}

/// Policy: every hash is exactly 32 bytes, roots included. Upstream compares roots of equal-size
/// trees as opaque bytes, so it accepts these vectors, whose "roots" are short placeholder strings;
/// we refuse them (issue 3: hashes of the wrong length are errors).
const SHORT_ROOT_VECTORS: [&str; 1] = ["sizes-are-equal-one-and-proof-is-empty.json"];

#[test]
fn consistency_vectors() {
    let files = files("consistency");
    assert_eq!(files.len(), 98);
    for f in files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let ok = match (hash(&v["root1"]), hash(&v["root2"]), proof(&v["proof"])) {
            (Some(r1), Some(r2), Some(p)) => verify_consistency(
                TreeSize(v["size1"].as_u64().unwrap()),
                TreeSize(v["size2"].as_u64().unwrap()),
                &p,
                &r1,
                &r2,
            )
            .is_ok(),
            _ => false,
        };
        let want_err = v["wantErr"].as_bool().unwrap() || SHORT_ROOT_VECTORS.contains(&name);
        assert_eq!(!ok, want_err, "{}: {}", f.display(), v["desc"]);
    }
}

#[test]
fn rfc6962_reference_tree() {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("reference_tree_rfc6962.json")).unwrap()).unwrap();
    let inputs: Vec<Vec<u8>> = v["leafInputsHex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
        .collect();
    let roots: Vec<&Value> = (0..=inputs.len())
        .map(|n| &v["rootHashesBySizeHex"][n.to_string()])
        .collect();
    let mut tree = MemoryTree::default();
    assert_eq!(
        hex::encode(root(TreeSize(0), &tree).unwrap()),
        roots[0].as_str().unwrap()
    );
    for (i, input) in inputs.iter().enumerate() {
        let leaf = leaf_hash(input);
        assert_eq!(hex::encode(leaf), v["leafHashesHex"][i].as_str().unwrap());
        tree.push(leaf);
        assert_eq!(
            hex::encode(root(tree.size(), &tree).unwrap()),
            roots[i + 1].as_str().unwrap(),
            "size {}",
            i + 1
        );
    }
}
