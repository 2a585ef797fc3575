//! The signature log: durable appends (batched by group commit), proof generation from a sled
//! store of 2^20 entries, and checkpoint signing. Run: `cargo bench --bench tlog`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, Criterion};
use time::macros::datetime;
use zhengyin_crypto::FileKey;
use zhengyin_model::{Authority, Uscc};
use zhengyin_store::prelude::*;
use zhengyin_store::{LogReader, SledStore};
use zhengyin_tlog::{consistency_proof, inclusion_proof, root, sign_checkpoint, Checkpoint, LeafIndex, TreeSize};

const ENTRIES: u64 = 1 << 20;

fn authority() -> Authority {
    Authority {
        uscc: Uscc::parse("11220000013544541J").unwrap(),
        name: "bench".to_owned(),
        level: "city".to_owned(),
        region_code: "220100".to_owned(),
        certificates: vec![],
        registered: datetime!(2026-01-01 0:00 UTC),
        origin: None,
        retired: Vec::new(),
    }
}

fn entry(i: u64) -> Vec<u8> {
    format!("{{\"event\":\"bench\",\"i\":{i},\"licence_sha256\":\"{:064x}\"}}", i).into_bytes()
}

/// Durable appends per second with `writers` threads, each waiting for its flush.
fn durable_appends(writers: usize, per_writer: u64) -> f64 {
    let dir = std::env::temp_dir().join(format!("zhengyin-bench-tlog-{}-{writers}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(SledStore::open(&dir).unwrap());
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..per_writer {
                    let logged = store
                        .put_authority(&authority(), &entry(w as u64 * per_writer + i))
                        .unwrap();
                    logged.durable.wait().unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let rate = (writers as u64 * per_writer) as f64 / start.elapsed().as_secs_f64();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn main() {
    for writers in [1, 16, 64] {
        println!(
            "durable appends, {writers:>2} writers: {:>8.0} /s",
            durable_appends(writers, 4000 / writers as u64 + 100)
        );
    }

    let store = SledStore::temporary().unwrap();
    let start = Instant::now();
    for i in 0..ENTRIES {
        let _ = store.put_authority(&authority(), &entry(i)).unwrap();
    }
    println!(
        "built a log of {ENTRIES} entries in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let reader = LogReader(&store);
    let size = TreeSize(ENTRIES);
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("inclusion proof at 2^20 (sled)", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = (i + 7919) % ENTRIES;
            black_box(inclusion_proof(LeafIndex(i), size, &reader).unwrap())
        })
    });
    c.bench_function("consistency proof at 2^20 (sled)", |b| {
        let mut m = 1u64;
        b.iter(|| {
            m = (m + 7919) % (ENTRIES - 1) + 1;
            black_box(consistency_proof(TreeSize(m), size, &reader).unwrap())
        })
    });
    c.bench_function("root at 2^20 - 1 (sled)", |b| {
        b.iter(|| black_box(root(TreeSize(ENTRIES - 1), &reader).unwrap()))
    });
    let key = FileKey::from_pem_file(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example/log-ed25519.key"),
    )
    .unwrap();
    let checkpoint = Checkpoint {
        origin: "zhengyin.example/bench".to_owned(),
        size,
        root: [1; 32],
    };
    c.bench_function("checkpoint signing", |b| {
        b.iter(|| black_box(sign_checkpoint(&checkpoint, "zhengyin.example/bench", &key).unwrap()))
    });
    c.final_summary();
}
