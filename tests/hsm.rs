//! Keys in a hardware security module (SoftHSM2), as an operator would set one up: keys made in
//! the token with `zhengyin keys generate`, their certificate requests checked by OpenSSL and
//! certified by the example issuing CA, a node whose authority keys and log key are all in the
//! token. Licences signed there (Ed25519, P-256, RSA) verify, here and in an independent verifier
//! (tests/independent, Python: JCS and the signatures from other people's libraries); the log
//! passes `zhengyin audit`;
//! a token that vanishes mid-burst gives 503 problem+json, never a licence stored unsigned or
//! signed unstored, and signing comes back without a restart; a wrong PIN or a key that is not
//! its certificate's stops the node at start with the reason. An SM2 authority key in a GM/T 0018
//! device (the stand-in SDF library), with the seal maker's key beside it: their certificate
//! requests from `zhengyin keys csr` pass OpenSSL, the authority's licences verify (here and in
//! the independent verifier), the e-seal made and applied with the two verifies, and a device that
//! stops answering gives 503 and comes back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../crates/keys/tests/common/sdf.rs"]
mod sdf;
#[path = "../crates/keys/tests/common/softhsm.rs"]
mod softhsm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{get, root, send, Server, TempDir, PURPOSE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use softhsm::{Tokens as Hsm, PIN};

const TYPE: &str = "11100000000013338W032";
/// The business licence's issuers, each given one algorithm's key in the token.
const AUTHORITIES: [(&str, &str); 3] = [
    ("ed25519", "11220000013544541J"),
    ("p256", "12100000400010398P"),
    ("rsa", "91350100M000100Y43"),
];

/// The command line with the test's SoftHSM2 configuration.
fn zhengyin(hsm: &Hsm, args: &[&str]) -> std::process::Output {
    Command::new(common::binary())
        .args(args)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .unwrap()
}

/// Makes the key in the token and its CSR; OpenSSL checks the CSR and the example issuing CA
/// certifies it. Returns the certificate chain (PEM, leaf then issuing CA).
fn make_authority_key(hsm: &Hsm, alg: &str, uscc: &str) -> String {
    let csr = hsm.dir.join(format!("{alg}.csr"));
    let out = zhengyin(
        hsm,
        &[
            "keys",
            "generate",
            "--key",
            &hsm.uri("authorities", &format!("sign-{alg}"), "pin"),
            "--algorithm",
            alg,
            "--subject",
            &subject(alg, uscc),
            "--csr",
            csr.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    certify(hsm, alg, &csr)
}

fn subject(alg: &str, uscc: &str) -> String {
    format!("/C=CN/O=HSM 发证机构 {alg}/serialNumber={uscc}/CN=HSM Authority ({alg}, TEST ONLY)")
}

/// OpenSSL checks the request's signature, then the example issuing CA certifies it into
/// `{alg}.pem`. Returns the chain (PEM, leaf then issuing CA).
fn certify(hsm: &Hsm, alg: &str, csr: &Path) -> String {
    // SM2 signatures cover the signer's identifier: GM/T 0009's default, which OpenSSL is told.
    let sm2_id: &[&str] = if alg.starts_with("sm2") {
        &["-vfyopt", "distid:1234567812345678"]
    } else {
        &[]
    };
    let verified = Command::new("openssl")
        .args(["req", "-verify", "-noout"])
        .args(sm2_id)
        .arg("-in")
        .arg(csr)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "openssl req -verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    let keys = root().join("keys-example");
    let ext = hsm.dir.join("authority.ext");
    std::fs::write(
        &ext,
        "basicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature, nonRepudiation\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    let certificate = hsm.dir.join(format!("{alg}.pem"));
    let signed = Command::new("openssl")
        .args([
            "x509",
            "-req",
            "-days",
            "365",
            "-sm3",
            "-sigopt",
            "distid:1234567812345678",
        ])
        .args(sm2_id)
        .arg("-in")
        .arg(csr)
        .arg("-CA")
        .arg(keys.join("issuing-ca.pem"))
        .arg("-CAkey")
        .arg(keys.join("issuing-ca.key"))
        .arg("-CAcreateserial")
        .arg("-CAserial")
        .arg(hsm.dir.join("issuing-ca.srl"))
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&certificate)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "openssl x509 -req: {}",
        String::from_utf8_lossy(&signed.stderr)
    );
    std::fs::read_to_string(&certificate).unwrap() + &std::fs::read_to_string(keys.join("issuing-ca.pem")).unwrap()
}

/// A configuration whose authority keys and log key are in the token.
fn config(hsm: &Hsm, data: &Path, authorities: &[(&str, &str)], authority_keys: &str, log_pin: &str) -> PathBuf {
    config_with(hsm, data, authorities, authority_keys, log_pin, "")
}

/// The same, with `extra` settings (before the tokens' tables).
fn config_with(
    hsm: &Hsm,
    data: &Path,
    authorities: &[(&str, &str)],
    authority_keys: &str,
    log_pin: &str,
    extra: &str,
) -> PathBuf {
    let keys = root().join("keys-example");
    let mut tokens = String::new();
    let mut roles = vec![
        ("demo-operator".to_owned(), "role = \"operator\"".to_owned()),
        (
            "demo-verifier".to_owned(),
            "role = \"verifier\"\ndepartment = \"示例审批系统\"".to_owned(),
        ),
        ("demo-auditor".to_owned(), "role = \"auditor\"".to_owned()),
    ];
    for (alg, uscc) in authorities {
        roles.push((
            format!("authority-{alg}"),
            format!("role = \"authority\"\nuscc = \"{uscc}\""),
        ));
    }
    for (token, role) in roles {
        let hash = zhengyin_crypto::hash::sha256_hex(token.as_bytes());
        tokens += &format!("\n[[tokens]]\nname = \"{token}\"\nsha256 = \"{hash}\"\n{role}\n");
    }
    let path = data.with_extension("toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"{}\"\ntrust_anchors = \"{}\"\nlog_origin = \"zhengyin.example/hsm\"\nlog_key = \"{}\"\nkeys = [{authority_keys}]\n{extra}\n{tokens}",
            data.display(),
            keys.join("root-ca.pem").display(),
            hsm.uri("log", "checkpoints", log_pin),
        ),
    )
    .unwrap();
    path
}

fn start(hsm: &Hsm, config: &Path) -> Server {
    let conf = hsm.conf.clone();
    Server::spawn(
        &["serve", "--config", config.to_str().unwrap()],
        "127.0.0.1:0",
        move |c| {
            c.env("SOFTHSM2_CONF", conf).env("RUST_LOG", "warn");
        },
    )
}

/// The demo's business licence type and service items, registered on `server` by its operator.
async fn copy_catalogue(http: &Client, from: &Server, to: &Server) {
    let (_, licence_type) = get(http, from, &format!("/v1/licence-types/{TYPE}"), "demo-verifier").await;
    let (status, body) = send(http, to, "/v1/licence-types", "demo-operator", &licence_type).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, items) = get(http, from, "/v1/service-items", "demo-verifier").await;
    for item in items["service_items"].as_array().unwrap() {
        let (status, body) = send(http, to, "/v1/service-items", "demo-operator", item).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// The verifier's report on a licence's bytes.
async fn verdict(http: &Client, server: &Server, licence: &[u8]) -> Value {
    common::verify_at(http, server, &format!("/v1/verify?{PURPOSE}"), "demo-verifier", licence).await
}

fn licence(number: &str) -> Value {
    common::business_licence(number)
}

async fn issue(http: &Client, server: &Server, alg: &str, number: &str) -> (StatusCode, Value) {
    send(
        http,
        server,
        "/v1/licences",
        &format!("authority-{alg}"),
        &licence(number),
    )
    .await
}

fn make_log_key(hsm: &Hsm) {
    let out = zhengyin(
        hsm,
        &[
            "keys",
            "generate",
            "--key",
            &hsm.uri("log", "checkpoints", "pin"),
            "--algorithm",
            "ed25519",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The node at `config` refuses to start, saying `expected`, without showing `secret`.
fn assert_start_refused(hsm: &Hsm, config: &Path, expected: &str, secret: &str) {
    let out = Command::new(common::binary())
        .args(["serve", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(expected),
        "{expected}: {stderr}"
    );
    assert!(!stderr.contains(secret), "the PIN leaked: {stderr}");
}

async fn register(http: &Client, server: &Server, alg: &str, uscc: &str, chain: &str) {
    let (status, body) = send(
        http,
        server,
        "/v1/authorities",
        "demo-operator",
        &json!({"uscc": uscc, "name": format!("HSM 发证机构 {alg}"), "level": "city", "region_code": "220100", "certificates": [chain]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Issues until the signer is back (503 until then, within 15 s); the licence issued.
async fn issue_once_back(http: &Client, server: &Server, alg: &str, number: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = issue(http, server, alg, number).await;
        if status == StatusCode::CREATED {
            return body;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "signing did not come back: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The independent verifier (tests/independent/verify_licence.py) on a licence and its signing
/// certificate: whether it says VALID.
fn independent_verdict(hsm: &Hsm, licence: &[u8], certificate: &Path) -> bool {
    let file = hsm.dir.join("licence-to-check.json");
    std::fs::write(&file, licence).unwrap();
    common::independent("verify_licence.py", &[&file, certificate]).0
}

/// Issues a licence with `alg`'s authority; it verifies VALID here and with the independent
/// verifier, and INVALID in both once a byte of its number is changed.
async fn assert_issued_licence_verifies(hsm: &Hsm, http: &Client, server: &Server, alg: &str, number: &str) {
    let (status, issued) = issue(http, server, alg, number).await;
    assert_eq!(status, StatusCode::CREATED, "{alg}: {issued}");
    let id = issued["id"].as_str().unwrap();
    let bytes = common::licence_bytes(http, server, id, &format!("authority-{alg}")).await;
    let report = verdict(http, server, &bytes).await;
    assert_eq!(report["verdict"], "VALID", "{alg}: {report}");
    let certificate = hsm.dir.join(format!("{alg}.pem"));
    assert!(
        independent_verdict(hsm, &bytes, &certificate),
        "{alg}: the independent verifier refused it"
    );
    let mut tampered = bytes.clone();
    let at = tampered
        .windows(number.len())
        .position(|w| w == number.as_bytes())
        .unwrap();
    tampered[at] ^= 0x01;
    let report = verdict(http, server, &tampered).await;
    assert_eq!(report["verdict"], "INVALID", "{alg} tampered: {report}");
    assert!(
        !independent_verdict(hsm, &tampered, &certificate),
        "{alg}: the independent verifier took a tampered licence"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_signs_with_keys_in_an_hsm() {
    let dir = TempDir::new("hsm");
    let hsm = Hsm::create(&dir.0.join("hsm"), &["authorities", "log"]);
    let chains: Vec<(&str, &str, String)> = AUTHORITIES
        .iter()
        .map(|&(alg, uscc)| (alg, uscc, make_authority_key(&hsm, alg, uscc)))
        .collect();
    make_log_key(&hsm);

    // Start-up refusals first: nothing runs, the reason is said.
    let ed = hsm.uri("authorities", "sign-ed25519", "pin");
    let mismatched = format!(
        "{{ key = \"{ed}\", certificate = \"{}\" }}",
        hsm.dir.join("p256.pem").display()
    );
    for (keys, log_pin, expected) in [
        (format!("\"{ed}\""), "wrong-pin", "PIN: C_Login: PinIncorrect"),
        (mismatched, "pin", "is Ed25519 but certificate"),
        (
            format!("\"{}\"", hsm.uri("authorities", "sign-missing", "pin")),
            "pin",
            "no private key matches",
        ),
    ] {
        let path = config(&hsm, &dir.0.join("refused"), &AUTHORITIES, &keys, log_pin);
        assert_start_refused(&hsm, &path, expected, PIN);
    }

    let keys = chains
        .iter()
        .map(|(alg, _, _)| {
            format!(
                "{{ key = \"{}\", certificate = \"{}\" }}",
                hsm.uri("authorities", &format!("sign-{alg}"), "pin"),
                hsm.dir.join(format!("{alg}.pem")).display()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let path = config(&hsm, &dir.0.join("node"), &AUTHORITIES, &keys, "pin");
    let server = start(&hsm, &path);
    let demo = Server::start(&dir.0.join("demo"));
    let http = Client::new();
    copy_catalogue(&http, &demo, &server).await;
    drop(demo);
    for (alg, uscc, chain) in &chains {
        register(&http, &server, alg, uscc, chain).await;
    }

    // A licence from each key in the token verifies, with the suite of its algorithm.
    for (alg, _, _) in &chains {
        assert_issued_licence_verifies(&hsm, &http, &server, alg, &format!("HSM-{alg}-1")).await;
    }

    // The token goes away mid-burst, and comes back.
    let token = hsm.token_dir("authorities");
    let away = hsm.dir.join("away");
    let burst: Vec<_> = (0..40)
        .map(|i| {
            let http = http.clone();
            let url = server.at("/v1/licences");
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth("authority-ed25519")
                    .json(&licence(&format!("HSM-BURST-{i}")))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
                (status, content_type, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    std::fs::rename(&token, &away).unwrap();
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for task in burst {
        let (status, content_type, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => acknowledged.push(body["id"].as_str().unwrap().to_owned()),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(content_type.as_deref(), Some("application/problem+json"));
                assert_eq!(body["code"], "signer.unavailable", "{body}");
                unavailable += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    // While it is away, issuing is refused as unavailable.
    let (status, body) = issue(&http, &server, "ed25519", "HSM-AWAY").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("signer.unavailable")),
        "{body}"
    );
    std::fs::rename(&away, &token).unwrap();
    let back = issue_once_back(&http, &server, "ed25519", "HSM-BACK").await;
    acknowledged.push(back["id"].as_str().unwrap().to_owned());
    assert!(
        unavailable > 0 || acknowledged.len() == 41,
        "the burst saw the token go"
    );
    // Every acknowledged licence is stored and VALID; the refused ones are nowhere.
    for id in &acknowledged {
        let bytes = common::licence_bytes(&http, &server, id, "authority-ed25519").await;
        let report = verdict(&http, &server, &bytes).await;
        assert_eq!(report["verdict"], "VALID", "{report}");
    }
    // One log entry per stored licence: the three first ones and those acknowledged.
    let issued = common::log_entries(&http, &server)
        .await
        .iter()
        .filter(|e| e["event"] == "licence.issued")
        .count();
    assert_eq!(
        issued,
        3 + acknowledged.len(),
        "log entries for licences not acknowledged"
    );
    let metrics = reqwest::get(server.at("/metrics")).await.unwrap().text().await.unwrap();
    let crashes: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("zhengyin_http_requests_total") && l.contains("status=\"5") && !l.contains("status=\"503\"")
        })
        .collect();
    assert!(crashes.is_empty(), "server errors other than 503: {crashes:?}");

    // The checkpoints, signed in the token, pass the auditor.
    let key = common::log_verifier_key(&http, &server).await;
    common::wait_for_checkpoint(&http, &server, common::log_size(&http, &server).await).await;
    let (code, text) = common::audit(&server, &key, &dir.0.join("audit.state"));
    assert_eq!(code, 0, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sm2_authority_signs_in_a_gmt0018_device() {
    const USCC: &str = "12100000400010398P";
    let dir = TempDir::new("sdf");
    let hsm = Hsm::create(&dir.0.join("hsm"), &["authorities", "log"]);
    make_log_key(&hsm);
    let device = sdf::standin(2);
    let key = device.uri(1, "password");
    let maker_key = device.uri(2, "password");

    // The keys were made with the device's tools; their requests come from `keys csr`.
    let request = |key: &str, name: &str, subject: &str| {
        let csr = hsm.dir.join(format!("{name}.csr"));
        let out = zhengyin(
            &hsm,
            &[
                "keys",
                "csr",
                "--key",
                key,
                "--subject",
                subject,
                "--csr",
                csr.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        certify(&hsm, name, &csr)
    };
    let chain = request(&key, "sm2", &subject("sm2", USCC));
    request(
        &maker_key,
        "sm2-seal-maker",
        "/C=CN/O=示例制章者/serialNumber=11100000000013338W/CN=Seal Maker (TEST ONLY)",
    );
    let seal_maker = format!(
        "seal_maker = {{ key = \"{maker_key}\", certificates = [\"{}\", \"{}\"] }}",
        hsm.dir.join("sm2-seal-maker.pem").display(),
        root().join("keys-example/issuing-ca.pem").display()
    );

    let authorities = [("sm2", USCC)];
    let entry = |key: &str| {
        format!(
            "{{ key = \"{key}\", certificate = \"{}\" }}",
            hsm.dir.join("sm2.pem").display()
        )
    };
    for (keys, expected) in [
        (
            entry(&device.uri(1, "wrong-password")),
            "access to the private key refused",
        ),
        (entry(&device.uri(7, "password")), "no such key"),
    ] {
        let path = config(&hsm, &dir.0.join("refused"), &authorities, &keys, "pin");
        assert_start_refused(&hsm, &path, expected, sdf::PASSWORD);
    }

    let path = config_with(
        &hsm,
        &dir.0.join("node"),
        &authorities,
        &entry(&key),
        "pin",
        &seal_maker,
    );
    let server = start(&hsm, &path);
    let demo = Server::start(&dir.0.join("demo"));
    let http = Client::new();
    copy_catalogue(&http, &demo, &server).await;
    drop(demo);
    register(&http, &server, "sm2", USCC, &chain).await;
    assert_issued_licence_verifies(&hsm, &http, &server, "sm2", "SDF-SM2-1").await;

    // The seal maker's key is in the device too: it makes the authority's e-seal, which the
    // authority applies with its own key in the device; both verify.
    let (status, seal) = send(
        &http,
        &server,
        "/v1/seals",
        "demo-operator",
        &common::seal_request(USCC, &chain),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{seal}");
    let (_, report) = send(
        &http,
        &server,
        "/v1/seals/verify",
        "demo-verifier",
        &json!({"seal": seal["seal"]}),
    )
    .await;
    assert_eq!(report["verdict"], "VALID", "{report}");
    let es_id = seal["es_id"].as_str().unwrap();
    let (status, applied) = send(
        &http,
        &server,
        &format!("/v1/seals/{es_id}/apply"),
        "authority-sm2",
        &json!({"data_base64": "PG9mZDpTaWduYXR1cmUvPg==", "property_info": "/Doc_0/Signs/Sign_0/Signature.xml"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    let (_, report) = send(
        &http,
        &server,
        "/v1/signatures/verify",
        "demo-verifier",
        &json!({"signature": applied["signature"], "data_base64": "PG9mZDpTaWduYXR1cmUvPg=="}),
    )
    .await;
    assert_eq!(report["verdict"], "VALID", "{report}");

    // The device stops answering, then answers again.
    device.unplug(true);
    let (status, body) = issue(&http, &server, "sm2", "SDF-AWAY").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("signer.unavailable")),
        "{body}"
    );
    device.unplug(false);
    let back = issue_once_back(&http, &server, "sm2", "SDF-BACK").await;
    let bytes = common::licence_bytes(&http, &server, back["id"].as_str().unwrap(), "authority-sm2").await;
    assert_eq!(verdict(&http, &server, &bytes).await["verdict"], "VALID");
}
