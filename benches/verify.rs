//! Verification cost: the bare signature check per algorithm against the engine's full verify of
//! a licence in the matching cryptosuite (parse, canonicalise, hash, certificate window, status
//! read, report). Run: `cargo bench --bench verify`. Prints criterion's figures, then the ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, Criterion};
use support::{open_engine, tempdir, ALGS};
use zhengyin_crypto::{Cryptosuite, FileKey, Signer};
use zhengyin_engine::{Engine, RegisterAuthority};
use zhengyin_model::{ReceivedLicence, SigningInput, Uscc, Verdict};
use zhengyin_store::SledStore;

// The allocator the server runs with (crates/server/src/main.rs), so the engine is measured as
// it runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Case {
    alg: &'static str,
    licence: Vec<u8>,
    key: FileKey,
    suite: Cryptosuite,
    hash_data: [u8; 64],
    signature: Vec<u8>,
}

/// A seal of the SM2 authority registered in `engine`, and sealed signatures of distinct
/// documents: more than the benchmark verifies, so that every verification meets a new signature
/// (made here directly with the SM2 authority's key; verification needs no log entry).
fn sealed_signatures(rt: &tokio::runtime::Runtime, engine: &Engine) -> Vec<Vec<u8>> {
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    let read = |p: &str| std::fs::read_to_string(keys.join(p)).unwrap();
    let seal = rt.block_on(engine.make_seal(support::seal_request())).unwrap();
    let signer = zhengyin_crypto::Certificate::all_from_pem(&read("authority-sm2.pem"))
        .unwrap()
        .remove(0);
    let key = FileKey::from_pem_file(&keys.join("authority-sm2.key")).unwrap();
    (0..SES_SIGNATURES as u32)
        .map(|i| {
            zhengyin_ses::write::apply_seal(
                &seal.der,
                time::OffsetDateTime::now_utc(),
                &zhengyin_crypto::hash::sm3(&i.to_be_bytes()),
                "/Doc_0/Signs/Sign_0/Signature.xml",
                signer.der(),
                &key,
            )
            .unwrap()
        })
        .collect()
}

/// Sealed signatures made for the benchmark: at least the calls of `per_call_pair`.
const SES_SIGNATURES: usize = ROUNDS * CALLS as usize + 64;

impl Case {
    /// The bare signature check, as the engine makes it.
    fn bare_verify(&self) {
        self.suite
            .verify(
                self.key.public_key(),
                black_box(&self.hash_data),
                black_box(&self.signature),
            )
            .unwrap();
    }
}

/// Returns the engine without a signature cache (every verification checks the signature), the
/// same engine with the cache (licences verified before), the cases, sealed signatures, and the
/// temporary store.
fn setup() -> (Engine, Engine, Vec<Case>, Vec<Vec<u8>>, tempdir::Dir) {
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    let read = |p: &str| std::fs::read_to_string(keys.join(p)).unwrap();
    let dir = tempdir::Dir::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(SledStore::open(&dir.0).unwrap());
    let engine = open_engine(&rt, Arc::clone(&store));
    let licence_type = support::licence_type();
    rt.block_on(engine.register_licence_type(licence_type)).unwrap();
    let mut cases = Vec::new();
    for (alg, uscc) in ALGS {
        rt.block_on(engine.register_authority(RegisterAuthority {
            uscc: uscc.to_owned(),
            name: format!("示例发证机构 {alg}"),
            level: "city".to_owned(),
            region_code: "220100".to_owned(),
            certificates: vec![read(&format!("authority-{alg}.pem")) + &read("issuing-ca.pem")],
        }))
        .unwrap();
        let req = support::issue_request("JL2026000001");
        let licence = rt
            .block_on(engine.issue(&Uscc::parse(uscc).unwrap(), req))
            .unwrap()
            .bytes;
        assert_eq!(engine.verify(&licence, None).verdict, Verdict::Valid);
        let key = FileKey::from_pem_file(&keys.join(format!("authority-{alg}.key"))).unwrap();
        let suite = Cryptosuite::for_algorithm(key.algorithm()).unwrap();
        let received = ReceivedLicence::parse(&licence).unwrap();
        let input = SigningInput::from_values(&received.document, &received.proof).unwrap();
        let hash_data = suite.hash_data(&input.proof_config, &input.document);
        let signature = key.sign(&hash_data).unwrap();
        cases.push(Case {
            alg,
            licence,
            key,
            suite,
            hash_data,
            signature,
        });
    }
    let sealed = sealed_signatures(&rt, &engine);
    drop(engine);
    let cold = open_engine(&rt, Arc::clone(&store))
        .with_signature_cache(0)
        .with_prepared_cache(0);
    let warm = open_engine(&rt, store);
    (cold, warm, cases, sealed, dir)
}

/// Seconds per call of `bare` and `full`, measured in alternating rounds on the same core; the
/// fastest round of each counts, so that noise from the other core does not decide the ratio.
const ROUNDS: usize = 15;
const CALLS: u32 = 400;

fn per_call_pair(mut bare: impl FnMut(), mut full: impl FnMut()) -> (f64, f64) {
    let round = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..CALLS {
            f();
        }
        start.elapsed().as_secs_f64() / f64::from(CALLS)
    };
    let (mut best_bare, mut best_full) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        best_bare = best_bare.min(round(&mut bare));
        best_full = best_full.min(round(&mut full));
    }
    (best_bare, best_full)
}

fn main() {
    let (engine, warm, cases, signatures, _dir) = setup();
    let mut c = Criterion::default().configure_from_args();
    for case in &cases {
        let mut group = c.benchmark_group(case.alg);
        group.bench_function("bare signature verify", |b| b.iter(|| case.bare_verify()));
        group.bench_function("engine verify licence", |b| {
            b.iter(|| engine.verify(black_box(&case.licence), None))
        });
        group.bench_function("engine verify licence, signature cached", |b| {
            b.iter(|| warm.verify(black_box(&case.licence), None))
        });
        group.finish();
    }
    c.final_summary();

    println!("\nratio engine verify / bare signature verify (same core, best of 15 alternating rounds):");
    let mut sm2_engine = None;
    for case in &cases {
        let (bare, full) = per_call_pair(
            || case.bare_verify(),
            || {
                black_box(engine.verify(black_box(&case.licence), None));
            },
        );
        println!(
            "  {:<8} {:<15} bare {:>7.1} µs   engine {:>7.1} µs   ratio {:.2}",
            case.alg,
            case.suite.name(),
            bare * 1e6,
            full * 1e6,
            full / bare
        );
        if case.suite == Cryptosuite::Sm2Jcs2026 {
            sm2_engine = Some(full);
        }
    }
    // SES_Signature: the engine's whole GB/T 38540 verification of a sealed signature of a new
    // document (the seal's maker signature, certificates and chains remembered from earlier
    // documents; the signer signature checked) against the bare SM2 check it contains.
    let parsed: Vec<_> = signatures
        .iter()
        .map(|s| zhengyin_ses::parse_signature(s).unwrap())
        .collect();
    let signer_key = zhengyin_crypto::Certificate::from_der(parsed[0].signer_certificate)
        .unwrap()
        .public_key()
        .unwrap()
        .clone();
    let (mut i, mut j) = (0usize, 0usize);
    let (bare, ses) = per_call_pair(
        || {
            let p = &parsed[i % parsed.len()];
            i += 1;
            signer_key
                .verify(
                    zhengyin_crypto::SignatureScheme::Sm2Sm3Der,
                    black_box(p.to_sign.raw),
                    p.signature,
                )
                .unwrap();
        },
        || {
            let report = warm.verify_sealed(
                black_box(&signatures[j % signatures.len()]),
                zhengyin_engine::Protected::Absent,
            );
            j += 1;
            assert_eq!(report.verdict, Verdict::Indeterminate); // no data given; everything else passes
        },
    );
    println!(
        "  {:<8} {:<15} bare {:>7.1} µs   ses    {:>7.1} µs   ratio {:.2} (aim <= 1.10)",
        "sm2",
        "SES_Signature",
        bare * 1e6,
        ses * 1e6,
        ses / bare
    );
    match (openssl_sm2_verify_seconds(), sm2_engine) {
        (Some(openssl), Some(ours)) => println!(
            "\nSM2 next to `openssl speed sm2` verify ({:.1} µs): sm2-jcs-2026 licence {:.1} µs, OpenSSL / ours = {:.2}; \
             SES_Signature {:.1} µs, OpenSSL / ours = {:.2} (aim >= 1.2)",
            openssl * 1e6,
            ours * 1e6,
            openssl / ours,
            ses * 1e6,
            openssl / ses
        ),
        _ => println!("\nSM2: `openssl speed sm2` not available here; no comparison"),
    }
}

/// Seconds per SM2 verification by `openssl speed` on this machine (one core), if installed.
fn openssl_sm2_verify_seconds() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "3", "sm2"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    // "256 bits SM2 (CurveSM2)   0.0005s   0.0003s   2193.5   3144.2": the last column is verify/s.
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("SM2 (CurveSM2)"))?;
    let per_second: f64 = line.split_whitespace().last()?.parse().ok()?;
    Some(1.0 / per_second)
}
