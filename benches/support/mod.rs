//! What the benchmarks share: an engine over a store with the example keys, and the example
//! SM2 authority's e-seal.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use zhengyin_crypto::{FileKey, TrustAnchors};
use zhengyin_engine::{Engine, Keyring, LogConfig, MakeSealRequest, SealMaker, SystemClock, SystemRandom};
use zhengyin_store::SledStore;

pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example")
}

pub fn read_key_file(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name)).unwrap()
}

pub const ALGS: [(&str, &str); 4] = [
    ("ed25519", "11220000013544541J"),
    ("p256", "11100000000013338W"),
    ("rsa2048", "91350100M000100Y43"),
    ("sm2", "12100000400010398P"),
];

/// An engine over `store` with the example keys.
pub fn open_engine(rt: &tokio::runtime::Runtime, store: Arc<SledStore>) -> Engine {
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
        published: None,
    };
    let maker = SealMaker::new(
        &(read("seal-maker.pem") + &read("issuing-ca.pem")),
        Arc::new(FileKey::from_pem_file(&keys.join("seal-maker.key")).unwrap()),
        &anchors,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    rt.block_on(Engine::new(
        store,
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
        anchors,
        keyring,
        log,
    ))
    .unwrap()
    .with_seal_maker(maker)
}

/// A request for the SM2 authority's e-seal, applied with its own key (a 1 KiB picture).
pub fn seal_request() -> MakeSealRequest {
    use base64::Engine as _;
    let read = read_key_file;
    serde_json::from_value(json!({
        "name": "示例事业单位电子公章", "seal_type": 1,
        "holder": {"name": "示例事业单位", "code": "12100000400010398P", "code_type": "001"},
        "valid_start": "2026-01-01T00:00:00Z", "valid_end": "2034-01-01T00:00:00Z",
        "signer_certificates": [read("authority-sm2.pem") + &read("issuing-ca.pem")],
        "picture": {"kind": "PNG", "width": 40, "height": 40,
                    "data_base64": base64::engine::general_purpose::STANDARD.encode([b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 1024]].concat())}
    }))
    .unwrap()
}

pub mod tempdir {
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

/// The business licence type, issued by every example authority.
pub fn licence_type() -> zhengyin_model::LicenceType {
    serde_json::from_value(json!({
        "code": "11100000000013338W032", "name": "营业执照", "defining_authority": "11100000000013338W",
        "holder_code_types": ["001"],
        "issuers": ALGS.iter().map(|(_, uscc)| *uscc).collect::<Vec<_>>(),
        "face_schema": [
            {"name": "company_name", "label": "名称", "kind": "string", "required": true},
            {"name": "legal_representative", "label": "法定代表人", "kind": "string", "required": true},
            {"name": "registered_capital", "label": "注册资本", "kind": "integer"},
            {"name": "established", "label": "成立日期", "kind": "date", "required": true},
            {"name": "address", "label": "住所", "kind": "string"},
            {"name": "business_scope", "label": "经营范围", "kind": "string"}
        ]
    }))
    .unwrap()
}

/// A business licence numbered `number`.
pub fn issue_request(number: &str) -> zhengyin_engine::IssueRequest {
    serde_json::from_value(json!({
        "type_code": "11100000000013338W032", "number": number,
        "holder": {"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
        "valid_until": "2046-11-21",
        "face": {"company_name": "吉林示例科技有限公司", "legal_representative": "张三", "registered_capital": 500,
                 "established": "2020-02-29", "address": "吉林省长春市示例区示例路1号",
                 "business_scope": "软件开发；信息技术咨询服务；数据处理和存储支持服务。"}
    }))
    .unwrap()
}
