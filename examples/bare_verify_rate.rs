//! The floor `benches/load.sh` compares against: bare Ed25519 signature checks per second on this
//! machine, with `verify_strict` on N threads and with the batch equation (64 per batch) on N
//! threads, over 64-byte messages like a licence's hashData.
//!
//!     cargo run --release --example bare_verify_rate -- [THREADS, default 2] [SECONDS, default 3]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zhengyin_crypto::batch::{ed25519_verify_batch, BatchItem};
use zhengyin_crypto::{FileKey, SignatureScheme, Signer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().map_or(2, |a| a.parse().unwrap());
    let seconds: u64 = args.get(1).map_or(3, |a| a.parse().unwrap());
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let key = FileKey::from_pem_file(&root.join("keys-example/authority-ed25519.key")).unwrap();
    let public = key.public_key().clone();
    let signed: Vec<([u8; 64], Vec<u8>)> = (0..64u8)
        .map(|i| {
            let message = [i; 64];
            let signature = key.sign(&message).unwrap();
            (message, signature)
        })
        .collect();
    let single = rate(threads, seconds, |n| {
        let (m, s) = &signed[n % signed.len()];
        public.verify(SignatureScheme::Ed25519, m, s).unwrap();
        1
    });
    let batched = rate(threads, seconds, |_| {
        let items: Vec<BatchItem<'_>> = signed
            .iter()
            .map(|(m, s)| BatchItem {
                key: &public,
                message: m,
                signature: s,
            })
            .collect();
        assert!(ed25519_verify_batch(&items));
        items.len() as u64
    });
    println!("BARE single {single:.0}/s batch64 {batched:.0}/s threads {threads}");
}

/// Signatures per second of `work` (which returns how many it checked) on `threads` threads.
fn rate(threads: usize, seconds: u64, work: impl Fn(usize) -> u64 + Sync) -> f64 {
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let (mut n, mut done) = (0usize, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    done += work(n);
                    n += 1;
                }
                total.fetch_add(done, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    total.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
