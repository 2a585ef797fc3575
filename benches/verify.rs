//! Verification cost: the bare signature check per algorithm against the engine's full verify of
//! a licence in the matching cryptosuite (parse, canonicalise, hash, certificate window, status
//! read, report). Run: `cargo bench --bench verify`. Prints criterion's figures, then the ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, Criterion};
use serde_json::json;
use zhengyin_crypto::{Cryptosuite, FileKey, Signer, TrustAnchors};
use zhengyin_engine::{Engine, IssueRequest, Keyring, LogConfig, RegisterAuthority, SystemClock, SystemRandom};
use zhengyin_model::{ReceivedLicence, SigningInput, Uscc, Verdict};
use zhengyin_store::SledStore;

const ALGS: [(&str, &str); 4] = [
    ("ed25519", "11220000013544541J"),
    ("p256", "11100000000013338W"),
    ("rsa2048", "91350100M000100Y43"),
    ("sm2", "12100000400010398P"),
];

struct Case {
    alg: &'static str,
    licence: Vec<u8>,
    key: FileKey,
    suite: Cryptosuite,
    hash_data: [u8; 64],
    signature: Vec<u8>,
}

/// An engine over `store` with the example keys.
fn open_engine(rt: &tokio::runtime::Runtime, store: Arc<SledStore>) -> Engine {
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    let read = |p: &str| std::fs::read_to_string(keys.join(p)).unwrap();
    let mut keyring = Keyring::default();
    for (alg, _) in ALGS {
        keyring.add(Arc::new(
            FileKey::from_pem_file(&keys.join(format!("authority-{alg}.key"))).unwrap(),
        ));
    }
    let anchors = TrustAnchors::from_pem(&read("root-ca.pem")).unwrap();
    let log = LogConfig {
        origin: "zhengyin.example/bench".to_owned(),
        signer: Arc::new(FileKey::from_pem_file(&keys.join("log-ed25519.key")).unwrap()),
    };
    rt.block_on(Engine::new(
        store,
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
        anchors,
        keyring,
        log,
    ))
    .unwrap()
}

/// Returns the engine without a signature cache (every verification checks the signature), the
/// same engine with the cache (licences verified before), the cases, and the temporary store.
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

fn setup() -> (Engine, Engine, Vec<Case>, tempdir::Dir) {
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    let read = |p: &str| std::fs::read_to_string(keys.join(p)).unwrap();
    let dir = tempdir::Dir::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(SledStore::open(&dir.0).unwrap());
    let engine = open_engine(&rt, Arc::clone(&store));
    let licence_type = serde_json::from_value(json!({
        "code": "11100000000013338W032", "name": "营业执照", "defining_authority": "11100000000013338W",
        "holder_code_types": ["001"],
        "face_schema": [
            {"name": "company_name", "label": "名称", "kind": "string", "required": true},
            {"name": "legal_representative", "label": "法定代表人", "kind": "string", "required": true},
            {"name": "registered_capital", "label": "注册资本", "kind": "integer"},
            {"name": "established", "label": "成立日期", "kind": "date", "required": true},
            {"name": "address", "label": "住所", "kind": "string"},
            {"name": "business_scope", "label": "经营范围", "kind": "string"}
        ]
    }))
    .unwrap();
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
        let req: IssueRequest = serde_json::from_value(json!({
            "type_code": "11100000000013338W032", "number": "JL2026000001",
            "holder": {"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
            "valid_until": "2046-11-21",
            "face": {"company_name": "吉林示例科技有限公司", "legal_representative": "张三", "registered_capital": 500,
                     "established": "2020-02-29", "address": "吉林省长春市示例区示例路1号",
                     "business_scope": "软件开发；信息技术咨询服务；数据处理和存储支持服务。"}
        }))
        .unwrap();
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
    drop(engine);
    let cold = open_engine(&rt, Arc::clone(&store)).with_signature_cache(0);
    let warm = open_engine(&rt, store);
    (cold, warm, cases, dir)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("zhengyin-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Seconds per call of `bare` and `full`, measured in alternating rounds on the same core; the
/// fastest round of each counts, so that noise from the other core does not decide the ratio.
fn per_call_pair(mut bare: impl FnMut(), mut full: impl FnMut()) -> (f64, f64) {
    const ROUNDS: usize = 15;
    const CALLS: u32 = 400;
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

/// Sealed signatures (GB/T 38540 v4) of one seal over distinct documents, and a verification
/// context that remembers certificate chains and verified SM2 signatures, as a node does: the
/// seal's maker signature is then checked once, each document's signer signature every time.
mod sealed {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use time::macros::datetime;
    use time::OffsetDateTime;
    use zhengyin_crypto::{hash, Certificate, ChainError, FileKey, PublicKey, SignatureScheme, TrustAnchors};
    use zhengyin_ses::format::SealPicture;
    use zhengyin_ses::verify::{Context, SealStatus};
    use zhengyin_ses::write::{apply_seal, make_seal, NewSeal};

    pub const NOW: OffsetDateTime = datetime!(2026-11-22 08:00 UTC);

    pub struct Node {
        anchors: TrustAnchors,
        intermediates: Vec<Certificate>,
        chains: Mutex<HashSet<Vec<u8>>>,
        certificates: Mutex<std::collections::HashMap<Vec<u8>, std::sync::Arc<Certificate>>>,
        /// Verified maker signatures (a seal is made once and applied many times).
        seals: Mutex<HashSet<[u8; 32]>>,
        maker: zhengyin_crypto::KeyId,
    }

    impl Context for Node {
        fn anchors(&self) -> &TrustAnchors {
            &self.anchors
        }
        fn intermediates(&self) -> &[Certificate] {
            &self.intermediates
        }
        fn seal_status(&self, _: &str, _: OffsetDateTime) -> SealStatus {
            SealStatus::Active
        }
        fn certificate(&self, der: &[u8]) -> Result<std::sync::Arc<Certificate>, zhengyin_crypto::CryptoError> {
            if let Some(cert) = self.certificates.lock().unwrap().get(der) {
                return Ok(cert.clone());
            }
            let cert = std::sync::Arc::new(Certificate::from_der(der)?);
            self.certificates.lock().unwrap().insert(der.to_vec(), cert.clone());
            Ok(cert)
        }
        fn check_chain(&self, cert: &Certificate, at: OffsetDateTime) -> Result<(), ChainError> {
            if self.chains.lock().unwrap().contains(cert.der()) {
                return Ok(());
            }
            zhengyin_crypto::validate_chain(cert, &self.intermediates, &self.anchors, at)?;
            self.chains.lock().unwrap().insert(cert.der().to_vec());
            Ok(())
        }
        fn check_sm2(&self, key: &PublicKey, scheme: SignatureScheme, covered: &[u8], signature: &[u8]) -> bool {
            if key.id() != self.maker {
                return key.verify(scheme, covered, signature).is_ok();
            }
            let id = hash::sha256(&[hash::sha256(covered).as_slice(), signature].concat());
            if self.seals.lock().unwrap().contains(&id) {
                return true;
            }
            let good = key.verify(scheme, covered, signature).is_ok();
            if good {
                self.seals.lock().unwrap().insert(id);
            }
            good
        }
    }

    /// The node, the signatures, the signer's key and the documents' SM3 hashes.
    pub fn setup(keys: &std::path::Path) -> (Node, Vec<Vec<u8>>, PublicKey) {
        let cert = |n: &str| {
            Certificate::all_from_pem(&std::fs::read_to_string(keys.join(n)).unwrap())
                .unwrap()
                .remove(0)
        };
        let key = |n: &str| FileKey::from_pem_file(&keys.join(n)).unwrap();
        let signer = cert("authority-sm2.pem");
        let seal = make_seal(
            &NewSeal {
                vendor_id: "Zhengyin",
                es_id: "22010000000000001",
                seal_type: 1,
                name: "吉林示例科技有限公司合同专用章",
                signer_certificates: vec![signer.der()],
                created: datetime!(2026-01-01 00:00 UTC),
                valid_start: datetime!(2026-01-01 00:00 UTC),
                valid_end: datetime!(2028-01-01 00:00 UTC),
                picture: SealPicture {
                    kind: "PNG",
                    data: &[0x89; 16 * 1024],
                    width: 40,
                    height: 40,
                },
            },
            cert("seal-maker.pem").der(),
            &key("seal-maker.key"),
        )
        .unwrap();
        let signer_key = key("authority-sm2.key");
        let signatures = (0..64u8)
            .map(|i| {
                apply_seal(
                    &seal,
                    datetime!(2026-06-01 09:30 UTC),
                    &hash::sm3(&[i]),
                    "/Doc_0/Signs/Sign_0/Signature.xml",
                    signer.der(),
                    &signer_key,
                )
                .unwrap()
            })
            .collect();
        let node = Node {
            anchors: TrustAnchors::new(vec![cert("root-ca.pem")]),
            intermediates: vec![cert("issuing-ca.pem")],
            chains: Mutex::default(),
            certificates: Mutex::default(),
            seals: Mutex::default(),
            maker: cert("seal-maker.pem").public_key().unwrap().id(),
        };
        (node, signatures, signer.public_key().unwrap().clone())
    }
}

fn main() {
    let (engine, warm, cases, _dir) = setup();
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
    // SES_Signature: the whole GB/T 38540 verification of a sealed signature (seal maker signature
    // and chains remembered, the signer signature checked) against the bare SM2 check it contains.
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    let (node, signatures, signer_key) = sealed::setup(&keys);
    let parsed: Vec<_> = signatures
        .iter()
        .map(|s| zhengyin_ses::parse_signature(s).unwrap())
        .collect();
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
            let report = zhengyin_ses::verify::verify_signature(
                &node,
                black_box(&signatures[j % signatures.len()]),
                zhengyin_ses::verify::Protected::Absent,
                sealed::NOW,
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
