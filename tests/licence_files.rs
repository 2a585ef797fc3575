//! Licence files (电子证照文件) against a really started `zhengyin serve --demo`: issuing a licence
//! of an authority with an e-seal makes its sealed OFD file; the file carries the face, the
//! identifier, the metadata and the signed licence; it verifies as one report (seals, files,
//! binding, the licence itself) and its status is never baked in; every changed byte fails; who
//! may download it, and a department's download is a recorded use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::ofd::{b64, entry, make_sm2_seal, unzip as entries, zip as package};
use common::{assert_no_server_errors, business_licence, get, report_check, send, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const SM2_TOKEN: &str = "demo-authority-sm2";

async fn issue(http: &Client, server: &Server, token: &str, number: &str) -> String {
    let (status, body) = send(http, server, "/v1/licences", token, &business_licence(number)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// GETs a licence's file: the status, the content type and the bytes.
async fn file(http: &Client, server: &Server, id: &str, query: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
    let r = http
        .get(server.at(&format!("/v1/licences/{id}/file{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, r.bytes().await.unwrap().to_vec())
}

async fn verify(http: &Client, server: &Server, package: &[u8]) -> Value {
    let (status, answer) = send(
        http,
        server,
        "/v1/ofd/verify",
        "demo-verifier",
        &json!({"ofd": b64(package)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// Reads the 2D code back: the modules drawn as rectangles in the page, rasterised and decoded.
fn decode_code(content: &str) -> String {
    let start = content.find("<ofd:PathObject").unwrap();
    let object = &content[start..];
    let boundary: Vec<f64> = object
        .split("Boundary=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    let data = object
        .split("<ofd:AbbreviatedData>")
        .nth(1)
        .unwrap()
        .split("</ofd:AbbreviatedData>")
        .next()
        .unwrap();
    // 10 pixels per millimetre, a quiet zone of 4 mm around.
    let scale = 10.0;
    let side = ((boundary[2] + 8.0) * scale) as usize;
    let mut image = vec![255u8; side * side];
    for rect in data.split('C').filter(|r| !r.trim().is_empty()) {
        let numbers: Vec<f64> = rect
            .split_whitespace()
            .filter(|t| *t != "M" && *t != "L")
            .map(|t| t.parse().unwrap())
            .collect();
        let (x0, y0, x1, y1) = (numbers[0], numbers[1], numbers[4], numbers[5]);
        for y in ((y0 + 4.0) * scale) as usize..((y1 + 4.0) * scale) as usize {
            for x in ((x0 + 4.0) * scale) as usize..((x1 + 4.0) * scale) as usize {
                image[y * side + x] = 0;
            }
        }
    }
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| image[y * side + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one 2D code on the page");
    grids[0].decode().unwrap().1
}

/// The package's files with one byte of `name` changed, halfway in: for XML, the next digit
/// (made another digit, so the file stays well-formed and a digest is what catches it).
fn one_byte_changed(files: &[(String, Vec<u8>)], name: &str) -> Vec<(String, Vec<u8>)> {
    let mut changed = files.to_vec();
    let bytes = &mut changed.iter_mut().find(|(n, _)| n == name).unwrap().1;
    let mut at = bytes.len() / 2;
    if name.ends_with(".xml") {
        at += bytes[at..].iter().position(u8::is_ascii_digit).unwrap();
    }
    bytes[at] ^= 0x01;
    changed
}

#[tokio::test(flavor = "multi_thread")]
async fn issuing_makes_a_sealed_licence_file_that_verifies_with_its_licence() {
    let dir = TempDir::new("licence-files");
    let server = Server::start(&dir.0);
    let http = Client::new();

    // Before the authority has an e-seal, its licences have no file, and asking says why.
    let early = issue(&http, &server, SM2_TOKEN, "FILE-0001").await;
    let (status, _, body) = file(&http, &server, &early, "", SM2_TOKEN).await;
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("licence.no_file")),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("POST /v1/seals"),
        "{problem}"
    );

    let es_id = make_sm2_seal(&http, &server, None).await;

    // Now the early licence's file is made when asked for, and a new licence's at issue.
    let (status, kind, _) = file(&http, &server, &early, "", SM2_TOKEN).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/ofd"));
    let log_before = common::log_entries(&http, &server).await.len();
    let id = issue(&http, &server, SM2_TOKEN, "FILE-0002").await;
    let log = common::log_entries(&http, &server).await;
    assert_eq!(
        log.len(),
        log_before + 2,
        "the licence and its file's sealing are both logged"
    );
    let applied = log.last().unwrap();
    assert_eq!(
        (applied["event"].as_str(), applied["es_id"].as_str()),
        (Some("seal.applied"), Some(es_id.as_str()))
    );
    let (status, _, ofd) = file(&http, &server, &id, "", SM2_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, again) = file(&http, &server, &id, "", SM2_TOKEN).await;
    assert_eq!(ofd, again, "the file is made once and kept");

    // What the file carries: the signed licence byte for byte, the metadata, the face with the
    // catalogue's titles, and a 2D code with the identifier.
    let files = entries(&ofd);
    let signed = common::licence_bytes(&http, &server, &id, SM2_TOKEN).await;
    assert_eq!(entry(&files, "Doc_0/Attachs/licence.json"), &signed[..]);
    let ofd_xml = String::from_utf8(entry(&files, "OFD.xml").to_vec()).unwrap();
    assert!(
        ofd_xml.contains(&format!(r#"<ofd:CustomData Name="证照标识">{id}</ofd:CustomData>"#)),
        "{ofd_xml}"
    );
    assert!(ofd_xml.contains(r#"<ofd:CustomData Name="持证主体代码">91350100M000100Y43</ofd:CustomData>"#));
    let page = String::from_utf8(entry(&files, "Doc_0/Pages/Page_0/Content.xml").to_vec()).unwrap();
    for text in [
        "营业执照",
        "法定代表人",
        "张三",
        "住所",
        "长春市示例路1号",
        "2020年2月29日",
        "FILE-0002",
    ] {
        assert!(page.contains(text), "the face shows {text}");
    }
    assert!(
        !page.contains("legal_representative"),
        "no internal field name on the face"
    );
    assert_eq!(decode_code(&page), id);
    // The font: the subset of WenQuanYi Micro Hei the face needs, embedded and named; fontTools
    // reads it and finds every character of the face drawn as in the font it was cut from.
    let public_res = String::from_utf8(entry(&files, "Doc_0/PublicRes.xml").to_vec()).unwrap();
    assert!(
        public_res.contains(r#"FontName="WenQuanYi Micro Hei""#)
            && public_res.contains("<ofd:FontFile>font_1.ttf</ofd:FontFile>"),
        "{public_res}"
    );
    let font = entry(&files, "Doc_0/Res/font_1.ttf");
    assert!(
        (2_000..60_000).contains(&font.len()),
        "a subset, not the 5 MB font: {} bytes",
        font.len()
    );
    let ofd_path = dir.0.join("font.ofd");
    std::fs::write(&ofd_path, &ofd).unwrap();
    let (valid, said) = common::independent(
        "check_font.py",
        &[
            &ofd_path,
            std::path::Path::new(common::LICENCE_FONT),
            std::path::Path::new("0"),
        ],
    );
    assert!(valid, "{said}");
    // The referee can tell: the same characters cut from the font's other face (its monospaced
    // Latin letters are narrower) are not drawn as the original.
    let other_face = zhengyin_licence_file::Font::parse(std::fs::read(common::LICENCE_FONT).unwrap(), 1)
        .unwrap()
        .subset(&page)
        .unwrap()
        .bytes;
    let mut swapped = files.clone();
    swapped.iter_mut().find(|(n, _)| n == "Doc_0/Res/font_1.ttf").unwrap().1 = other_face;
    std::fs::write(&ofd_path, package(&swapped)).unwrap();
    let (valid, said) = common::independent(
        "check_font.py",
        &[
            &ofd_path,
            std::path::Path::new(common::LICENCE_FONT),
            std::path::Path::new("0"),
        ],
    );
    assert!(!valid && said.contains("drawn differently"), "{said}");
    let signature_xml = String::from_utf8(entry(&files, "Doc_0/Signs/Sign_0/Signature.xml").to_vec()).unwrap();
    for listed in [
        "/OFD.xml",
        "/Doc_0/Pages/Page_0/Content.xml",
        "/Doc_0/Attachs/licence.json",
        "/Doc_0/Res/font_1.ttf",
    ] {
        assert!(
            signature_xml.contains(&format!(r#"FileRef="{listed}""#)),
            "the seal protects {listed}"
        );
    }

    // One report: seals and files, the binding, the licence itself.
    let answer = verify(&http, &server, &ofd).await;
    assert_eq!(answer["report"]["verdict"], "VALID", "{answer}");
    assert_eq!(
        report_check(&answer["report"], "licence_bound")["outcome"],
        "passed",
        "{answer}"
    );
    assert_eq!(answer["licence"]["id"], id.as_str());
    assert_eq!(answer["licence"]["report"]["verdict"], "VALID");

    // The status is never baked in: once the licence is revoked, the same file verifies INVALID.
    let (status, _) = send(
        &http,
        &server,
        &format!("/v1/licences/{id}/revoke"),
        SM2_TOKEN,
        &json!({"reason": "cancelled"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer = verify(&http, &server, &ofd).await;
    assert_eq!(answer["report"]["verdict"], "INVALID", "{answer}");
    assert_eq!(answer["licence"]["report"]["verdict"], "INVALID");
    assert_eq!(report_check(&answer["report"], "licence")["outcome"], "failed");

    // One changed byte anywhere the seal protects fails, naming what changed.
    let good = {
        let (_, _, ofd) = file(&http, &server, &early, "", SM2_TOKEN).await;
        entries(&ofd)
    };
    for (name, said) in [
        ("Doc_0/Pages/Page_0/Content.xml", "Content.xml changed after sealing"),
        ("OFD.xml", "OFD.xml changed after sealing"),
        ("Doc_0/Attachs/licence.json", "licence.json changed after sealing"),
        ("Doc_0/Res/font_1.ttf", "font_1.ttf changed after sealing"),
        ("Doc_0/Signs/Sign_0/Signature.xml", "data_hash"),
        ("Doc_0/Signs/Sign_0/SignedValue.dat", "signer_signature"),
    ] {
        let changed = one_byte_changed(&good, name);
        let answer = verify(&http, &server, &package(&changed)).await;
        assert_eq!(answer["report"]["verdict"], "INVALID", "{name}: {answer}");
        assert!(answer.to_string().contains(said), "{name}: {said}: {answer}");
    }
    // The independent checker (tests/independent/verify_ofd.py, from the standards) agrees:
    // the file verifies, and each changed file fails with the step named.
    let checked = |files: &[(String, Vec<u8>)], name: &str| {
        let path = dir.0.join(name);
        std::fs::write(&path, package(files)).unwrap();
        common::independent("verify_ofd.py", &[&path])
    };
    let (valid, said) = checked(&good, "good.ofd");
    assert!(valid, "{said}");
    for (name, step) in [
        (
            "Doc_0/Pages/Page_0/Content.xml",
            "file: Doc_0/Pages/Page_0/Content.xml changed",
        ),
        ("Doc_0/Attachs/licence.json", "file: Doc_0/Attachs/licence.json changed"),
        ("Doc_0/Signs/Sign_0/Signature.xml", "data_hash"),
        ("Doc_0/Signs/Sign_0/SignedValue.dat", "signer_signature"),
    ] {
        let changed = one_byte_changed(&good, name);
        let (valid, said) = checked(&changed, "changed.ofd");
        assert!(!valid && said.contains(step), "{name}: {said}");
    }
    let mut removed = good.clone();
    removed.retain(|(n, _)| n != "Doc_0/Attachs/licence.json");
    let (valid, said) = checked(&removed, "removed.ofd");
    assert!(!valid && said.contains("licence.json is missing"), "{said}");

    // Sealed again by its issuer (a second signature appended): each signature verifies on its
    // own, here and independently, and the file stays bound to its licence.
    let (status, twice) = send(
        &http,
        &server,
        &format!("/v1/seals/{es_id}/sign-ofd"),
        SM2_TOKEN,
        &json!({"ofd": b64(&package(&good)), "page": 1, "x": 20, "y": 20}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{twice}");
    let twice = base64::engine::general_purpose::STANDARD
        .decode(twice["ofd"].as_str().unwrap())
        .unwrap();
    let answer = verify(&http, &server, &twice).await;
    assert_eq!(answer["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(answer["report"]["verdict"], "VALID", "{answer}");
    assert_eq!(answer["licence"]["report"]["verdict"], "VALID");
    let (valid, said) = checked(&entries(&twice), "twice.ofd");
    assert!(valid, "{said}");

    // Offline (`zhengyin verify ofd`, with the anchors and the licence's chain): the seals, the
    // files and the licence's signature check out, but neither its status nor whose seal it is
    // can be known without a node: INDETERMINATE (exit 3); a changed file is INVALID (exit 1).
    let chain = dir.0.join("chain.pem");
    std::fs::write(&chain, common::ofd::sm2_signer_chain()).unwrap();
    let offline = |file: &std::path::Path| {
        std::process::Command::new(common::binary())
            .args(["verify", "ofd"])
            .arg(file)
            .arg("--anchors")
            .arg(common::root().join("keys-example/root-ca.pem"))
            .arg("--chain")
            .arg(&chain)
            .args(["--format", "json"])
            .output()
            .unwrap()
    };
    let good_file = dir.0.join("offline.ofd");
    std::fs::write(&good_file, package(&good)).unwrap();
    let out = offline(&good_file);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("licence_bound") && said.contains("not known here"),
        "{said}"
    );
    assert!(!said.contains("\"failed\""), "{said}");
    let mut changed = good.clone();
    changed
        .iter_mut()
        .find(|(n, _)| n == "Doc_0/Attachs/licence.json")
        .unwrap()
        .1[10] ^= 1;
    std::fs::write(&good_file, package(&changed)).unwrap();
    assert_eq!(offline(&good_file).status.code(), Some(1));

    // A file whose attachment was swapped for another genuine licence is not bound to it.
    let mut swapped = good.clone();
    swapped
        .iter_mut()
        .find(|(n, _)| n == "Doc_0/Attachs/licence.json")
        .unwrap()
        .1 = signed.clone();
    let answer = verify(&http, &server, &package(&swapped)).await;
    assert_eq!(answer["report"]["verdict"], "INVALID");
    assert_eq!(
        report_check(&answer["report"], "licence_bound")["outcome"],
        "failed",
        "{answer}"
    );

    // Another authority's licences: no e-seal of theirs, no file.
    let ed = issue(&http, &server, "demo-authority-ed25519", "FILE-0003").await;
    let (status, _, _) = file(&http, &server, &ed, "", "demo-authority-ed25519").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_no_server_errors(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_goes_to_its_issuer_its_holder_and_a_department_under_a_grant_as_a_recorded_use() {
    let dir = TempDir::new("licence-file-access");
    let server = Server::start(&dir.0);
    let http = Client::new();
    make_sm2_seal(&http, &server, None).await;
    let id = issue(&http, &server, SM2_TOKEN, "FILE-0101").await;

    let (status, _, issuer_copy) = file(&http, &server, &id, "", SM2_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, operator_copy) = file(&http, &server, &id, "", "demo-operator").await;
    assert_eq!(status, StatusCode::OK);
    assert!(operator_copy == issuer_copy);
    let holder = common::holder_token("91350100M000100Y43");
    let (status, _, holder_copy) = file(&http, &server, &id, "", &holder).await;
    assert_eq!(status, StatusCode::OK);
    assert!(holder_copy == issuer_copy);

    // Refused: another holder (as not found), another authority, an auditor, a department
    // without a use cause or without a grant.
    let stranger = common::holder_token("91110000MA0000000H");
    for (token, query, want) in [
        (stranger.as_str(), "", StatusCode::NOT_FOUND),
        ("demo-authority-ed25519", "", StatusCode::FORBIDDEN),
        ("demo-auditor", "", StatusCode::FORBIDDEN),
        ("demo-verifier", "", StatusCode::UNPROCESSABLE_ENTITY),
        ("demo-verifier", &format!("?{}", common::PURPOSE), StatusCode::FORBIDDEN),
    ] {
        let (status, kind, body) = file(&http, &server, &id, query, token).await;
        assert_eq!(status, want, "{token}{query}: {}", String::from_utf8_lossy(&body));
        assert_eq!(kind, "application/problem+json");
    }
    let (status, _, _) = file(&http, &server, "not-an-id", "", SM2_TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Under a grant every field may be read: the department downloads it, and the use is recorded.
    let until = zhengyin_model::licence::format_time(time::OffsetDateTime::now_utc() + time::Duration::days(30));
    let (status, grant) = send(
        &http,
        &server,
        "/v1/grants",
        "demo-verifier",
        &json!({
            "type_code": "11100000000013338W032", "service_items": ["220100-FOOD-001"],
            "fields": common::EVERY_FIELD, "requires_authorisation": false, "purpose": "《食品经营许可和备案管理办法》", "until": until
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let approve = format!("/v1/grants/{}/approve", grant["id"].as_str().unwrap());
    let (status, _) = send(&http, &server, &approve, "demo-authority-p256", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, department_copy) =
        file(&http, &server, &id, &format!("?{}", common::PURPOSE), "demo-verifier").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&department_copy));
    assert!(department_copy == issuer_copy);
    let (_, records) = get(&http, &server, "/v1/me/use-records", &holder).await;
    assert!(
        records["use_records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["licences"][0] == id.as_str() && r["department"] == "示例审批系统" && r["operation"] == "fetch"),
        "{records}"
    );
    assert_no_server_errors(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_s_file_layout_in_the_catalogue_shapes_its_licences_files() {
    let dir = TempDir::new("licence-file-layout");
    let server = Server::start(&dir.0);
    let http = Client::new();
    make_sm2_seal(&http, &server, None).await;
    let path = "/v1/licence-types/11100000000013338W032";

    // A file layout names fields that are not in the schema: refused with the reason.
    let (_, mut definition) = get(&http, &server, path, "demo-operator").await;
    definition["file_layout"] = json!({"fields": ["company_name", "website"]});
    let (status, problem) = send(&http, &server, "/v1/licence-types", "demo-operator", &definition).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("website is not a field"),
        "{problem}"
    );

    // Landscape, a subtitle, and three fields in the template's order: a new version of the type
    // (no code), whose licences' files follow it.
    definition["file_layout"] = json!({
        "orientation": "landscape", "subtitle": "（副本）",
        "fields": ["legal_representative", "company_name", "address"]
    });
    let (status, registered) = send(&http, &server, "/v1/licence-types", "demo-operator", &definition).await;
    assert_eq!(
        (status, registered["version"].clone()),
        (StatusCode::CREATED, json!(2)),
        "{registered}"
    );
    let id = issue(&http, &server, SM2_TOKEN, "LAYOUT-1").await;
    let (status, _, ofd) = file(&http, &server, &id, "", SM2_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let files = entries(&ofd);
    let document = String::from_utf8_lossy(entry(&files, "Doc_0/Document.xml")).into_owned();
    assert!(
        document.contains("<ofd:PhysicalBox>0 0 297 210</ofd:PhysicalBox>"),
        "{document}"
    );
    let page = String::from_utf8_lossy(entry(&files, "Doc_0/Pages/Page_0/Content.xml")).into_owned();
    let at = |text: &str| {
        page.find(&format!(">{text}<"))
            .unwrap_or_else(|| panic!("{text} not on the face"))
    };
    assert!(at("（副本）") < at("法定代表人") && at("法定代表人") < at("名称") && at("名称") < at("住所"));
    assert!(
        !page.contains(">成立日期<"),
        "a field the template leaves out is not on the face"
    );
    let answer = verify(&http, &server, &ofd).await;
    assert_eq!(answer["report"]["verdict"], "VALID", "{answer}");
    assert_no_server_errors(&server).await;
}
