//! Shared set-up of the engine tests: a real sled store, the example PKI and real keys.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use zhengyin_crypto::{FileKey, TrustAnchors};
use zhengyin_engine::{
    Clock, Engine, FixedClock, IssueRequest, Keyring, LogConfig, RegisterAuthority, SealMaker, SeededRandom,
};
use zhengyin_model::{LicenceType, Uscc, VerificationReport};
use zhengyin_store::SledStore;

pub mod nodes;

pub const ALGS: [(&str, &str); 4] = [
    ("ed25519", "11220000013544541J"),
    ("p256", "11100000000013338W"),
    ("rsa2048", "91350100M000100Y43"),
    ("sm2", "12100000400010398P"),
];

pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../keys-example")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

pub struct World {
    pub engine: Engine,
    pub clock: Arc<FixedClock>,
    pub store: Arc<SledStore>,
    pub _dir: tempfile_dir::Dir,
}

pub mod tempfile_dir {
    /// A directory removed on drop (avoids a dev-dependency just for this).
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    pub fn new() -> Dir {
        let n: u64 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let p = std::env::temp_dir().join(format!("zhengyin-engine-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

pub fn keyring() -> Keyring {
    let mut k = Keyring::default();
    // The ed25519 authority's next key signs only once its certificate is registered.
    let names = ALGS
        .iter()
        .map(|(alg, _)| format!("authority-{alg}"))
        .chain(["authority-ed25519-next".to_owned()]);
    for name in names {
        k.add(Arc::new(
            FileKey::from_pem_file(&keys_dir().join(format!("{name}.key"))).unwrap(),
        ));
    }
    k
}

pub fn anchors() -> TrustAnchors {
    TrustAnchors::from_pem(&read(&keys_dir().join("root-ca.pem"))).unwrap()
}

pub fn chain_pem(alg: &str) -> String {
    chain_pem_of(&format!("authority-{alg}"))
}

pub fn chain_pem_of(name: &str) -> String {
    read(&keys_dir().join(format!("{name}.pem"))) + &read(&keys_dir().join("issuing-ca.pem"))
}

pub fn log_config() -> LogConfig {
    LogConfig {
        origin: "zhengyin.example/test-log".to_owned(),
        signer: Arc::new(FileKey::from_pem_file(&keys_dir().join("log-ed25519.key")).unwrap()),
        published: None,
    }
}

pub async fn engine_over(store: Arc<SledStore>, clock: Arc<FixedClock>) -> Engine {
    let now = clock.now();
    let maker = SealMaker::new(
        &chain_pem_of("seal-maker"),
        Arc::new(FileKey::from_pem_file(&keys_dir().join("seal-maker.key")).unwrap()),
        &anchors(),
        now,
    )
    .unwrap();
    Engine::new(
        store,
        clock,
        Arc::new(SeededRandom::new(7)),
        anchors(),
        keyring(),
        log_config(),
    )
    .await
    .unwrap()
    .with_seal_maker(maker)
    .with_token_key(Arc::new(
        FileKey::from_pem_file(&keys_dir().join("token-ed25519.key")).unwrap(),
    ))
}

pub async fn world() -> World {
    let dir = tempfile_dir::new();
    let store = Arc::new(SledStore::open(&dir.0.join("db")).unwrap());
    let clock = Arc::new(FixedClock::new(datetime!(2026-11-22 08:00 UTC)));
    let engine = engine_over(Arc::clone(&store), Arc::clone(&clock)).await;
    for (alg, uscc) in ALGS {
        register_example(&engine, alg, uscc).await;
    }
    engine.register_licence_type(business_licence_type()).await.unwrap();
    World {
        engine,
        clock,
        store,
        _dir: dir,
    }
}

pub fn business_licence_type() -> LicenceType {
    serde_json::from_value(json!({
        "code": "11100000000013338W032",
        "name": "营业执照",
        "defining_authority": "11100000000013338W",
        "issuers": ["11220000013544541J", "91350100M000100Y43", "12100000400010398P"],
        "holder_code_types": ["001"],
        "face_schema": [
            {"name": "company_name", "label": "名称", "kind": "string", "required": true},
            {"name": "established", "label": "成立日期", "kind": "date", "required": true},
            {"name": "capital", "label": "注册资本（万元）", "kind": "integer"},
            {"name": "form", "label": "类型", "kind": "enum", "values": ["有限责任公司", "股份有限公司"]}
        ]
    }))
    .unwrap()
}

/// The standard issue request, with a licence number no other request of the process carries
/// (numbers are unique per type and issuer).
pub fn issue_request() -> IssueRequest {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    serde_json::from_value(json!({
        "type_code": "11100000000013338W032",
        "number": format!("JL2026{n:06}"),
        "holder": {"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
        "valid_until": "2046-11-21",
        "face": {"company_name": "吉林示例科技有限公司", "established": "2020-02-29", "capital": 500, "form": "有限责任公司"}
    }))
    .unwrap()
}

/// Registers the example authority of algorithm `alg` under `uscc`.
pub async fn register_example(engine: &Engine, alg: &str, uscc: &str) {
    engine
        .register_authority(RegisterAuthority {
            uscc: uscc.to_owned(),
            name: format!("示例发证机构 {alg}"),
            level: "city".to_owned(),
            region_code: "220100".to_owned(),
            certificates: vec![chain_pem(alg)],
        })
        .await
        .unwrap();
}

/// Revokes licence `id` of `authority` as rescinded (撤销).
pub async fn rescind(engine: &Engine, authority: &str, id: &zhengyin_model::LicenceId) {
    engine
        .revoke(
            &uscc(authority),
            id,
            zhengyin_engine::RevokeRequest {
                reason: zhengyin_model::RevocationReason::Rescinded,
                effective: None,
                note: "撤销".into(),
            },
        )
        .await
        .unwrap();
}

pub fn uscc(s: &str) -> Uscc {
    Uscc::parse(s).unwrap()
}

/// Issues the standard request as `issuer`; the licence and its JSON.
pub async fn issued(w: &World, issuer: &str) -> (zhengyin_engine::SignedLicence, Value) {
    let licence = w.engine.issue(&uscc(issuer), issue_request()).await.unwrap();
    let value = serde_json::from_slice(&licence.bytes).unwrap();
    (licence, value)
}

pub fn check<'a>(report: &'a VerificationReport, code: &str) -> &'a zhengyin_model::Check {
    report
        .checks
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no {code} check in {report:#?}"))
}
