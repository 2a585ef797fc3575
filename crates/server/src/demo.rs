//! `serve --demo`: the example authorities, licence types and tokens. EXAMPLES ONLY: the keys are
//! public (keys-example/) and the tokens are printed in the README.

use anyhow::Context as _;
use zhengyin_engine::{Engine, RegisterAuthority};
use zhengyin_http::{Role, TokenConfig};
use zhengyin_model::{LicenceType, Uscc};

/// Example authorities: key algorithm and USCC.
pub const ALGORITHMS: [(&str, &str); 4] = [
    ("ed25519", "11220000013544541J"),
    ("p256", "11100000000013338W"),
    ("rsa2048", "91350100M000100Y43"),
    ("sm2", "12100000400010398P"),
];

/// The demo tokens, with the role each stands for. EXAMPLE ONLY.
pub fn token_table() -> Vec<(String, Role)> {
    let mut t = vec![
        ("demo-operator".to_owned(), Role::Operator),
        (
            "demo-verifier".to_owned(),
            Role::Verifier {
                department: "示例审批系统".to_owned(),
            },
        ),
        ("demo-auditor".to_owned(), Role::Auditor),
        ("demo-node".to_owned(), Role::Node),
    ];
    for (alg, uscc) in ALGORITHMS {
        if let Ok(uscc) = Uscc::parse(uscc) {
            t.push((format!("demo-authority-{alg}"), Role::Authority { uscc }));
        }
    }
    t
}

pub fn tokens() -> Vec<TokenConfig> {
    token_table()
        .into_iter()
        .map(|(token, role)| TokenConfig::new(&token, zhengyin_crypto::hash::sha256_hex(token.as_bytes()), &role))
        .collect()
}

/// The holders one may sign in as on the demo identity page. EXAMPLE ONLY.
pub fn holders() -> Vec<zhengyin_pages::DemoHolder> {
    use zhengyin_model::{HolderCodeType, HolderRef};
    [
        ("吉林示例科技有限公司", HolderCodeType::Uscc, "91350100M000100Y43"),
        ("张三（示例居民）", HolderCodeType::CitizenId, "11010519491231002X"),
    ]
    .into_iter()
    .map(|(name, code_type, code)| zhengyin_pages::DemoHolder {
        name: name.to_owned(),
        holder: HolderRef {
            code_type,
            code: code.to_owned(),
        },
    })
    .collect()
}

/// Example service items (事项编码, 名称).
pub const SERVICE_ITEMS: [(&str, &str); 2] = [
    ("220100-FOOD-001", "食品经营许可（示例）"),
    ("220100-BANK-002", "企业银行开户核验（示例）"),
];

/// The example licence types.
pub fn licence_types() -> anyhow::Result<Vec<LicenceType>> {
    let types = serde_json::json!([
        {
            "code": "11100000000013338W032",
            "name": "营业执照",
            "defining_authority": "11100000000013338W",
            "issuers": ["11220000013544541J", "91350100M000100Y43", "12100000400010398P"],
            "holder_code_types": ["001"],
            "face_schema": [
                {"name": "company_name", "label": "名称", "kind": "string", "max_chars": 100, "required": true},
                {"name": "company_form", "label": "类型", "kind": "enum", "values": ["有限责任公司", "股份有限公司", "个人独资企业", "合伙企业"], "required": true},
                {"name": "legal_representative", "label": "法定代表人", "kind": "string", "max_chars": 50, "required": true},
                {"name": "registered_capital", "label": "注册资本（万元）", "kind": "integer"},
                {"name": "established", "label": "成立日期", "kind": "date", "required": true},
                {"name": "address", "label": "住所", "kind": "string", "max_chars": 200, "required": true},
                {"name": "business_scope", "label": "经营范围", "kind": "string", "max_chars": 2000}
            ]
        },
        {
            "code": "12100000400010398P001",
            "name": "医师执业证书",
            "defining_authority": "12100000400010398P",
            "holder_code_types": ["111"],
            "face_schema": [
                {"name": "practitioner_name", "label": "姓名", "kind": "string", "max_chars": 50, "required": true},
                {"name": "practice_category", "label": "执业类别", "kind": "enum", "values": ["临床", "中医", "口腔", "公共卫生"], "required": true},
                {"name": "practice_place", "label": "执业地点", "kind": "string", "max_chars": 200, "required": true}
            ]
        }
    ]);
    Ok(serde_json::from_value(types)?)
}

/// What `--demo` sets up.
pub struct DemoSettings {
    /// The example keys.
    pub keys_dir: std::path::PathBuf,
    /// The example authorities to register (by algorithm); empty: all; `none`: none.
    pub authorities: Vec<String>,
}

/// Registers the example authorities and licence types if they are not registered yet. Frontends
/// of one database started together seed one after the other, and the later ones find it done.
pub async fn seed(engine: &Engine, demo: &DemoSettings) -> anyhow::Result<()> {
    for wanted in &demo.authorities {
        anyhow::ensure!(
            wanted == "none" || ALGORITHMS.iter().any(|(alg, _)| alg == wanted),
            "--demo-authorities: `{wanted}` is not one of ed25519, p256, rsa2048, sm2, none"
        );
    }
    engine.exclusively("demo seed", || seed_missing(engine, demo)).await
}

async fn seed_missing(engine: &Engine, demo: &DemoSettings) -> anyhow::Result<()> {
    let keys_dir = demo.keys_dir.as_path();
    let issuing = std::fs::read_to_string(keys_dir.join("issuing-ca.pem")).context("reading issuing-ca.pem")?;
    for (alg, uscc) in ALGORITHMS {
        let chosen = demo.authorities.is_empty() || demo.authorities.iter().any(|a| a == alg);
        if !chosen || engine.authority(&Uscc::parse(uscc)?).is_some() {
            continue;
        }
        let leaf = std::fs::read_to_string(keys_dir.join(format!("authority-{alg}.pem")))
            .with_context(|| format!("reading authority-{alg}.pem"))?;
        engine
            .register_authority(RegisterAuthority {
                uscc: uscc.to_owned(),
                name: format!("示例发证机构（{alg}，仅供演示）"),
                level: "city".to_owned(),
                region_code: "220100".to_owned(),
                certificates: vec![leaf + &issuing],
            })
            .await
            .with_context(|| format!("registering the example {alg} authority"))?;
    }
    for t in licence_types()? {
        // Registered again when this build's example differs (e.g. an older demo data folder).
        if engine.licence_type(&t.code).as_ref() != Some(&t) {
            engine.register_licence_type(t).await?;
        }
    }
    for (code, name) in SERVICE_ITEMS {
        if !engine.service_items().iter().any(|i| i.code == code) {
            engine
                .register_service_item(zhengyin_model::ServiceItem {
                    code: code.to_owned(),
                    name: name.to_owned(),
                })
                .await?;
        }
    }
    Ok(())
}
