//! Licence files and sealed OFD documents: laying out and sealing a licence's file, verifying a
//! sealed licence file (its seal, every file it protects, and the licence bound to it), and
//! verifying a real two-page sealed document (tests/vectors/ofd-ofdrw/v4signed.ofd), with the
//! seal and certificate caches warm. Licence files embed their font's subset (WenQuanYi Micro
//! Hei, installed by scripts/test-deps.sh), as the demo's do. Run: `cargo bench --bench ofd`. Prints criterion's figures,
//! then files made per second on one core and on every core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, Criterion};
use zhengyin_crypto::{Certificate, FileKey};
use zhengyin_engine::{Engine, RegisterAuthority};
use zhengyin_licence_file::{lay_out, Font, Licence};
use zhengyin_model::{LicenceBody, LicenceType, ReceivedLicence, Uscc, Verdict};
use zhengyin_ses::ofd::Limits;
use zhengyin_ses::seal_ofd::{seal_ofd, Sealing};
use zhengyin_store::SledStore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SM2: &str = "12100000400010398P";

struct Setup {
    engine: Engine,
    licence: Vec<u8>,
    body: LicenceBody,
    licence_type: LicenceType,
    file: Vec<u8>,
    seal: Vec<u8>,
    signer_certificate: Certificate,
    key: FileKey,
    font: Arc<Font>,
}

const FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

fn font() -> Font {
    let bytes = std::fs::read(FONT).unwrap_or_else(|e| panic!("{FONT}: {e} (bash scripts/test-deps.sh installs it)"));
    Font::parse(bytes, 0).unwrap()
}

fn setup(rt: &tokio::runtime::Runtime, dir: &support::tempdir::Dir) -> Setup {
    let store = Arc::new(SledStore::open(&dir.0).unwrap());
    let engine = support::open_engine(rt, store).with_licence_font(font());
    let read = support::read_key_file;
    rt.block_on(engine.register_licence_type(support::licence_type()))
        .unwrap();
    rt.block_on(engine.register_authority(RegisterAuthority {
        uscc: SM2.to_owned(),
        name: "示例发证机构 sm2".to_owned(),
        level: "city".to_owned(),
        region_code: "220100".to_owned(),
        certificates: vec![read("authority-sm2.pem") + &read("issuing-ca.pem")],
    }))
    .unwrap();
    let seal = rt.block_on(engine.make_seal(support::seal_request())).unwrap();
    let issued = rt
        .block_on(engine.issue(&Uscc::parse(SM2).unwrap(), support::issue_request("JL2026000001")))
        .unwrap();
    let file = rt.block_on(engine.licence_file(&issued.id)).unwrap();
    let report = engine.verify_ofd(&file);
    assert_eq!(report.report.verdict, Verdict::Valid, "{:?}", report.report);
    Setup {
        licence_type: engine.licence_type(&issued.id.type_code().clone()).unwrap(),
        body: ReceivedLicence::typed(&issued.bytes).unwrap().0,
        licence: issued.bytes,
        engine,
        file,
        seal: seal.der,
        signer_certificate: Certificate::all_from_pem(&read("authority-sm2.pem")).unwrap().remove(0),
        key: FileKey::from_pem_file(&support::keys_dir().join("authority-sm2.key")).unwrap(),
        font: Arc::new(font()),
    }
}

impl Setup {
    /// A licence's file laid out and sealed, as issuance makes it (without the log and the store).
    fn make_file(&self) -> Vec<u8> {
        let laid = lay_out(&Licence {
            body: &self.body,
            licence_type: &self.licence_type,
            signed: &self.licence,
            code_text: self.body.id.as_str(),
            font: Some(&self.font),
        })
        .unwrap();
        let sealing = Sealing {
            seal: &self.seal,
            signer_certificate: self.signer_certificate.der(),
            signer: &self.key,
            time: time::OffsetDateTime::now_utc(),
            stamps: laid.seal_at.into(),
        };
        seal_ofd(&laid.package, &sealing, Limits::default()).unwrap()
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = support::tempdir::Dir::new();
    let s = setup(&rt, &dir);
    let vendor = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ofd-ofdrw/v4signed.ofd"
    ))
    .unwrap();
    println!(
        "licence file: {} bytes; v4signed.ofd verdict {:?} (its test chain fails strict checks)",
        s.file.len(),
        s.engine.verify_ofd(&vendor).report.verdict
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("ofd");
    group.bench_function("lay out and seal a licence file", |b| {
        b.iter(|| black_box(s.make_file()))
    });
    group.bench_function("verify a licence file (seal, files, bound licence)", |b| {
        b.iter(|| s.engine.verify_ofd(black_box(&s.file)))
    });
    group.bench_function("verify v4signed.ofd (2 pages, one seal)", |b| {
        b.iter(|| s.engine.verify_ofd(black_box(&vendor)))
    });
    group.finish();
    c.final_summary();

    // Files per second: one core, then one thread per core.
    let count = 400;
    let start = Instant::now();
    for _ in 0..count {
        black_box(s.make_file());
    }
    let one = f64::from(count) / start.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                for _ in 0..count {
                    black_box(s.make_file());
                }
            });
        }
    });
    let all = f64::from(count) * cores as f64 / start.elapsed().as_secs_f64();
    println!("licence files laid out and sealed: {one:.0}/s on one core, {all:.0}/s on {cores} cores");
}
