//! E-seals over HTTP against a really started `zhengyin serve --demo`: make a seal, apply it as
//! its holder, verify seal and signature, break each, revoke, and every refusal a clear problem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::ofd::{b64, unzip};
use common::{assert_no_server_errors, send, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const HOLDER: &str = "12100000400010398P"; // the demo SM2 authority

fn seal_request() -> Value {
    common::seal_request(HOLDER, &common::ofd::sm2_signer_chain())
}

fn check<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == code)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn seals_are_made_applied_verified_and_revoked_over_http() {
    let dir = TempDir::new("seals");
    let server = Server::start(&dir.0);
    let http = Client::new();

    let (status, seal) = send(&http, &server, "/v1/seals", "demo-operator", &seal_request()).await;
    assert_eq!(status, StatusCode::CREATED, "{seal}");
    let es_id = seal["es_id"].as_str().unwrap().to_owned();
    assert_eq!(seal["state"], "active");
    let got = common::get_json(&http, &server, &format!("/v1/seals/{es_id}"), "demo-verifier").await;
    assert_eq!(got["seal"], seal["seal"]);

    let (status, report) = send(
        &http,
        &server,
        "/v1/seals/verify",
        "demo-verifier",
        &json!({"seal": seal["seal"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["verdict"], "VALID", "{report}");

    let document = b"<ofd:Signature>example</ofd:Signature>";
    let apply = json!({"data_base64": b64(document), "property_info": "/Doc_0/Signs/Sign_0/Signature.xml"});
    let path = format!("/v1/seals/{es_id}/apply");
    let (status, applied) = send(&http, &server, &path, "demo-authority-sm2", &apply).await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    let signature = applied["signature"].clone();

    // Offline, the CLI consults a CRL when given one: the later example CRL revokes the SM2
    // authority's certificate for key compromise, so the signature turns INVALID (exit 1).
    let keys = common::root().join("keys-example");
    let signed = dir.0.join("SignedValue.dat");
    std::fs::write(
        &signed,
        base64::engine::general_purpose::STANDARD
            .decode(signature.as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.0.join("Signature.xml"), document).unwrap();
    let offline = |crl: Option<&str>| {
        let mut cmd = std::process::Command::new(common::binary());
        cmd.args(["seal", "verify"])
            .arg(&signed)
            .arg("--anchors")
            .arg(keys.join("root-ca.pem"))
            .arg("--intermediates")
            .arg(keys.join("issuing-ca.pem"))
            .arg("--data")
            .arg(dir.0.join("Signature.xml"));
        if let Some(crl) = crl {
            cmd.arg("--crl").arg(keys.join("test-only").join(crl));
        }
        cmd.output().unwrap()
    };
    let without = offline(None);
    assert_eq!(
        without.status.code(),
        Some(3),
        "offline, a seal's registry status is unknown: INDETERMINATE {}",
        String::from_utf8_lossy(&without.stdout)
    );
    let with = offline(Some("issuing-ca-revocations-later.crl.pem"));
    assert_eq!(with.status.code(), Some(1), "{}", String::from_utf8_lossy(&with.stdout));
    assert!(String::from_utf8_lossy(&with.stdout).contains("revoked"));
    let unrelated = offline(Some("issuing-ca-revocations.crl.pem"));
    assert_eq!(
        unrelated.status.code(),
        Some(3),
        "that CRL does not list the SM2 authority"
    );

    let verify = |data: &[u8]| json!({"signature": signature, "data_base64": b64(data)});
    let (_, report) = send(
        &http,
        &server,
        "/v1/signatures/verify",
        "demo-verifier",
        &verify(document),
    )
    .await;
    assert_eq!(report["verdict"], "VALID", "{report}");
    let (_, report) = send(
        &http,
        &server,
        "/v1/signatures/verify",
        "demo-verifier",
        &verify(b"changed"),
    )
    .await;
    assert_eq!(report["verdict"], "INVALID");
    assert_eq!(check(&report, "data_hash")["outcome"], "failed");
    // null is not a value the spec allows for either data field.
    let (status, p) = send(
        &http,
        &server,
        "/v1/signatures/verify",
        "demo-verifier",
        &json!({"signature": signature, "data_sm3": null}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), p["code"].as_str()),
        (422, Some("request.invalid")),
        "{p}"
    );
    let (_, report) = send(
        &http,
        &server,
        "/v1/signatures/verify",
        "demo-verifier",
        &json!({"signature": signature}),
    )
    .await;
    assert_eq!(report["verdict"], "INDETERMINATE", "no data given");

    // Refusals, each with its code.
    let refusals = [
        (
            "/v1/seals",
            "demo-verifier",
            seal_request(),
            StatusCode::FORBIDDEN,
            "auth.forbidden",
        ),
        (
            path.as_str(),
            "demo-authority-ed25519",
            apply.clone(),
            StatusCode::FORBIDDEN,
            "auth.scope",
        ),
        (
            "/v1/seals/ZY0/apply",
            "demo-authority-sm2",
            apply.clone(),
            StatusCode::NOT_FOUND,
            "seal.not_found",
        ),
        (
            path.as_str(),
            "demo-authority-sm2",
            json!({"property_info": "/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid",
        ),
        (
            path.as_str(),
            "demo-authority-sm2",
            json!({"data_sm3": "00", "property_info": "/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid",
        ),
        (
            "/v1/seals/verify",
            "demo-verifier",
            json!({"seal": "%%%"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid",
        ),
        (
            "/v1/seals/verify",
            "demo-verifier",
            json!({"seal": "AA==", "x": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid",
        ),
    ];
    for (path, token, body, status, code) in refusals {
        let (got, problem) = send(&http, &server, path, token, &body).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{path} as {token}: {problem}"
        );
    }
    let mut bad = seal_request();
    bad["picture"]["kind"] = json!("GIF");
    let (status, problem) = send(&http, &server, "/v1/seals", "demo-operator", &bad).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("request.invalid"))
    );

    // Garbage as a seal is a report, not an error.
    let (_, report) = send(
        &http,
        &server,
        "/v1/seals/verify",
        "demo-verifier",
        &json!({"seal": b64(b"not DER")}),
    )
    .await;
    assert_eq!(report["verdict"], "INVALID");

    // Revoked: the signature is no longer VALID and the seal cannot be applied.
    let (status, revoked) = send(
        &http,
        &server,
        &format!("/v1/seals/{es_id}/revoke"),
        "demo-operator",
        &json!({"reason": "遗失"}),
    )
    .await;
    assert_eq!((status, revoked["state"].as_str()), (StatusCode::OK, Some("revoked")));
    let (_, report) = send(
        &http,
        &server,
        "/v1/signatures/verify",
        "demo-verifier",
        &verify(document),
    )
    .await;
    assert_eq!(report["verdict"], "INVALID");
    assert_eq!(check(&report, "seal_status")["outcome"], "failed");
    let (status, problem) = send(&http, &server, &path, "demo-authority-sm2", &apply).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("seal.status_conflict"))
    );
    let (status, problem) = send(
        &http,
        &server,
        &format!("/v1/seals/{es_id}/reinstate"),
        "demo-operator",
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("seal.status_conflict"))
    );

    // Made, applied, revoked: three signed events in the log.
    let entries = common::get_json(&http, &server, "/v1/log/entries?start=0&end=1000", "demo-auditor").await;
    let events: Vec<String> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let raw = base64::engine::general_purpose::STANDARD.decode(e.as_str()?).ok()?;
            serde_json::from_slice::<Value>(&raw).ok()?["event"]
                .as_str()
                .map(str::to_owned)
        })
        .filter(|e| e.starts_with("seal."))
        .collect();
    assert_eq!(events, ["seal.made", "seal.applied", "seal.revoked"]);
    assert_no_server_errors(&server).await;
}

/// An OFD document sealed through the API and verified through the API; then one page changed.
#[tokio::test(flavor = "multi_thread")]
async fn an_ofd_sealed_over_http_verifies_until_a_page_changes() {
    use std::io::Write as _;
    let dir = TempDir::new("ofd");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let (_, seal) = send(&http, &server, "/v1/seals", "demo-operator", &seal_request()).await;
    let es_id = seal["es_id"].as_str().unwrap();

    let page = b"<ofd:Page xmlns:ofd=\"http://www.ofdspec.org/2016\">1000 CNY</ofd:Page>".to_vec();
    let sm3 = |b: &[u8]| b64(&zhengyin_crypto::hash::sm3(b));
    let signature_xml = format!(
        r#"<ofd:Signature xmlns:ofd="http://www.ofdspec.org/2016"><ofd:SignedInfo><ofd:References CheckMethod="1.2.156.10197.1.401"><ofd:Reference FileRef="/Doc_0/Pages/Page_0/Content.xml"><ofd:CheckValue>{}</ofd:CheckValue></ofd:Reference></ofd:References></ofd:SignedInfo><ofd:SignedValue>SignedValue.dat</ofd:SignedValue></ofd:Signature>"#,
        sm3(&page)
    );
    let apply =
        json!({"data_base64": b64(signature_xml.as_bytes()), "property_info": "/Doc_0/Signs/Sign_0/Signature.xml"});
    let (status, applied) = send(
        &http,
        &server,
        &format!("/v1/seals/{es_id}/apply"),
        "demo-authority-sm2",
        &apply,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    let signed_value = base64::engine::general_purpose::STANDARD
        .decode(applied["signature"].as_str().unwrap())
        .unwrap();

    let package = |page: &[u8]| {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let files: [(&str, &[u8]); 5] = [
            ("OFD.xml", br#"<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>"#),
            ("Doc_0/Pages/Page_0/Content.xml", page),
            ("Doc_0/Signs/Signatures.xml", br#"<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Signature ID="1" Type="Seal" BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>"#),
            ("Doc_0/Signs/Sign_0/Signature.xml", signature_xml.as_bytes()),
            ("Doc_0/Signs/Sign_0/SignedValue.dat", &signed_value),
        ];
        for (name, bytes) in files {
            zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
        b64(&zip.finish().unwrap().into_inner())
    };
    let (status, result) = send(
        &http,
        &server,
        "/v1/ofd/verify",
        "demo-verifier",
        &json!({"ofd": package(&page)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["report"]["verdict"], "VALID", "{result}");
    let (_, result) = send(
        &http,
        &server,
        "/v1/ofd/verify",
        "demo-verifier",
        &json!({"ofd": package(b"<ofd:Page>9000 CNY</ofd:Page>")}),
    )
    .await;
    assert_eq!(result["report"]["verdict"], "INVALID");
    let report = &result["signatures"][0]["report"];
    assert!(
        report.to_string().contains("Content.xml changed after sealing"),
        "{report}"
    );
    let (_, result) = send(
        &http,
        &server,
        "/v1/ofd/verify",
        "demo-verifier",
        &json!({"ofd": b64(b"not a zip")}),
    )
    .await;
    assert_eq!(result["report"]["verdict"], "INVALID");
    assert_no_server_errors(&server).await;

    // `seal inspect` shows each signature the OFD carries (not a DER error); a zip that is not
    // an OFD package is a plain message and exit 2.
    let file = dir.0.join("sealed.ofd");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(package(&page))
        .unwrap();
    std::fs::write(&file, bytes).unwrap();
    let inspect = |file: &std::path::Path| {
        std::process::Command::new(common::binary())
            .args(["seal", "inspect"])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = inspect(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "OFD document, 1 signature(s)",
        "Doc_0/Signs/Sign_0/Signature.xml (Seal) in Doc_0/Signs/Signatures.xml",
        "SES_Signature version 4",
        "/Doc_0/Signs/Sign_0/Signature.xml",
        "示例事业单位电子公章",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let not_ofd = dir.0.join("not.ofd");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"hello").unwrap();
    std::fs::write(&not_ofd, zip.finish().unwrap().into_inner()).unwrap();
    let out = inspect(&not_ofd);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("OFD.xml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unsealed document sealed offline with `zhengyin ofd seal` (the seal made above, the
    // authority's key file): the node verifies it VALID, the stamp on the page asked for.
    let unsealed = dir.0.join("unsealed.ofd");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let files: [(&str, &[u8]); 3] = [
        ("OFD.xml", br#"<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"#),
        ("Doc_0/Document.xml", br#"<ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Pages><ofd:Page ID="3" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>"#),
        ("Doc_0/Pages/Page_0/Content.xml", &page),
    ];
    for (name, bytes) in files {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    std::fs::write(&unsealed, zip.finish().unwrap().into_inner()).unwrap();
    let seal_file = dir.0.join("seal.esl");
    std::fs::write(
        &seal_file,
        base64::engine::general_purpose::STANDARD
            .decode(seal["seal"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let keys = common::root().join("keys-example");
    let seal_ofd = |page: &str, out: &std::path::Path| {
        std::process::Command::new(common::binary())
            .args(["ofd", "seal"])
            .arg(&unsealed)
            .arg("--seal")
            .arg(&seal_file)
            .arg("--key")
            .arg(keys.join("authority-sm2.key"))
            .arg("--certificate")
            .arg(keys.join("authority-sm2.pem"))
            .args(["--page", page, "--at", "120,200.5", "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let sealed_file = dir.0.join("sealed-offline.ofd");
    let out = seal_ofd("1", &sealed_file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, result) = send(
        &http,
        &server,
        "/v1/ofd/verify",
        "demo-verifier",
        &json!({"ofd": b64(&std::fs::read(&sealed_file).unwrap())}),
    )
    .await;
    assert_eq!(result["report"]["verdict"], "VALID", "{result}");
    let out = inspect(&sealed_file);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Doc_0/Signs/Sign_0/Signature.xml (Seal)"));
    // The same through the API, as the seal's holder: 201 with the sealed document, VALID, and
    // the sealing in the log; refusals with their codes.
    let unsealed_b64 = b64(&std::fs::read(&unsealed).unwrap());
    let path = format!("/v1/seals/{es_id}/sign-ofd");
    let before = common::log_entries(&http, &server).await.len();
    let (status, sealed) = send(
        &http,
        &server,
        &path,
        "demo-authority-sm2",
        &json!({"ofd": unsealed_b64, "page": 1, "x": 120, "y": 200.5}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sealed}");
    let (_, result) = send(
        &http,
        &server,
        "/v1/ofd/verify",
        "demo-verifier",
        &json!({"ofd": sealed["ofd"]}),
    )
    .await;
    assert_eq!(result["report"]["verdict"], "VALID", "{result}");
    let entries = common::log_entries(&http, &server).await;
    assert_eq!(entries.len(), before + 1);
    assert_eq!(entries.last().unwrap()["event"], "seal.applied");
    for (token, body, expected) in [
        (
            "demo-authority-sm2",
            json!({"ofd": unsealed_b64, "page": 2, "x": 1, "y": 1}),
            (StatusCode::UNPROCESSABLE_ENTITY, "1 page(s); page 2"),
        ),
        (
            "demo-authority-sm2",
            json!({"ofd": b64(b"not a zip"), "x": 1, "y": 1}),
            (StatusCode::UNPROCESSABLE_ENTITY, "not a readable OFD package"),
        ),
        (
            "demo-authority-sm2",
            json!({"ofd": unsealed_b64, "x": -1, "y": 1}),
            (StatusCode::UNPROCESSABLE_ENTITY, "millimetres"),
        ),
        (
            "demo-authority-ed25519",
            json!({"ofd": unsealed_b64, "x": 1, "y": 1}),
            (StatusCode::FORBIDDEN, "holder"),
        ),
    ] {
        let (status, problem) = send(&http, &server, &path, token, &body).await;
        assert_eq!(status, expected.0, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap_or_default().contains(expected.1),
            "{problem}"
        );
    }

    // A page the document does not have, and an output that exists: exit 2, the reason said.
    for (page, out_file, expected) in [
        ("2", dir.0.join("never.ofd"), "1 page(s); page 2"),
        ("1", sealed_file.clone(), "exists"),
    ] {
        let out = seal_ofd(page, &out_file);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

/// The `StampAnnot` elements of a sealed package's first signature.
fn stamp_annots(package: &[u8]) -> Vec<String> {
    let files = unzip(package);
    let xml = String::from_utf8_lossy(common::ofd::entry(&files, "Doc_0/Signs/Sign_0/Signature.xml")).into_owned();
    xml.split("<ofd:StampAnnot ")
        .skip(1)
        .map(|a| a.split("/>").next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_are_sealed_on_a_keyword_and_across_their_pages() {
    let dir = TempDir::new("seal-stamps");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let (status, seal) = send(&http, &server, "/v1/seals", "demo-operator", &seal_request()).await;
    assert_eq!(status, StatusCode::CREATED, "{seal}");
    let path = format!("/v1/seals/{}/sign-ofd", seal["es_id"].as_str().unwrap());
    let vector = |name: &str| std::fs::read(common::root().join("tests/vectors/ofd-ofdrw").join(name)).unwrap();
    let (hello, five_pages) = (b64(&vector("helloworld.ofd")), b64(&vector("Page5.ofd")));

    // Each sealed document verifies here and in the independent checker.
    let sealed_as = |name: &'static str, body: Value| {
        let (http, server, path, dir) = (&http, &server, &path, &dir);
        async move {
            let (status, sealed) = send(http, server, path, "demo-authority-sm2", &body).await;
            assert_eq!(status, StatusCode::CREATED, "{name}: {sealed}");
            let package = base64::engine::general_purpose::STANDARD
                .decode(sealed["ofd"].as_str().unwrap())
                .unwrap();
            let (_, result) = send(
                http,
                server,
                "/v1/ofd/verify",
                "demo-verifier",
                &json!({"ofd": sealed["ofd"]}),
            )
            .await;
            assert_eq!(result["report"]["verdict"], "VALID", "{name}: {result}");
            let file = dir.0.join(format!("{name}.ofd"));
            std::fs::write(&file, &package).unwrap();
            let (valid, said) = common::independent("verify_ofd.py", &[&file]);
            assert!(valid, "{name}: {said}");
            stamp_annots(&package)
        }
    };

    // On the keyword: centred on "OFD" in "你好呀，OFD Reader&Writer！" (one stamp).
    let on_keyword = sealed_as("keyword", json!({"ofd": hello, "keyword": "OFD"})).await;
    assert_eq!(on_keyword.len(), 1, "{on_keyword:?}");
    // Across five pages: one slice of the picture per page, each at the right edge.
    let riding = sealed_as("riding", json!({"ofd": five_pages, "riding": true})).await;
    assert_eq!(riding.len(), 5, "{riding:?}");
    for (i, annot) in riding.iter().enumerate() {
        assert!(annot.contains(&format!(r#"Clip="{} 0 8 40""#, 8 * i)), "{annot}");
    }

    // What cannot be placed is refused with the reason.
    for (body, said) in [
        (json!({"ofd": hello, "keyword": "不存在的词"}), "does not occur"),
        (json!({"ofd": hello, "riding": true}), "at least two pages"),
        (json!({"ofd": hello, "keyword": "OFD", "x": 1, "y": 1}), "keyword"),
        (json!({"ofd": hello, "riding": true, "page": 2}), "riding"),
        (json!({"ofd": hello, "x": 1, "y": 1, "every": true}), "every"),
        (json!({"ofd": hello, "keyword": " "}), "1 to 100 characters"),
        (json!({"ofd": hello}), "x and y"),
    ] {
        let (status, problem) = send(&http, &server, &path, "demo-authority-sm2", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(said), "{said}: {problem}");
    }

    // The command line places stamps the same ways; it asks for exactly one of them.
    let (status, got) = common::get(
        &http,
        &server,
        &format!("/v1/seals/{}", seal["es_id"].as_str().unwrap()),
        "demo-verifier",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seal_file = dir.0.join("seal.esl");
    std::fs::write(
        &seal_file,
        base64::engine::general_purpose::STANDARD
            .decode(got["seal"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let keys = common::root().join("keys-example");
    let document = dir.0.join("page5.ofd");
    std::fs::write(&document, vector("Page5.ofd")).unwrap();
    let cli = |args: &[&str], out: &str| {
        std::process::Command::new(common::binary())
            .args(["ofd", "seal"])
            .arg(&document)
            .arg("--seal")
            .arg(&seal_file)
            .arg("--key")
            .arg(keys.join("authority-sm2.key"))
            .arg("--certificate")
            .arg(keys.join("authority-sm2.pem"))
            .args(args)
            .arg("--out")
            .arg(dir.0.join(out))
            .output()
            .unwrap()
    };
    let out = cli(&["--riding"], "riding-cli.ofd");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stamp_annots(&std::fs::read(dir.0.join("riding-cli.ofd")).unwrap()).len(),
        5
    );
    let out = cli(&["--riding", "--at", "1,1"], "never.ofd");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&["--keyword", "不存在"], "never.ofd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not occur"));
    assert_no_server_errors(&server).await;
}
