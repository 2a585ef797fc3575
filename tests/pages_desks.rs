//! The journeys across desks, in headless Chromium on a really started node: a holder's
//! objection goes to the issuing authority, which asks for evidence, gets it and corrects the
//! licence, and the holder sees the outcome; a department looks a licence up through the one
//! interface with the holder's authorisation, and is refused once the holder withdraws it; an
//! authority issues and revokes from its page; an auditor's browser checks the log's
//! consistency itself and notices a root it was shown before that does not fit; an operator
//! reads the node. Each step is also checked through the API, and every page passes the
//! layout and axe checks at both sizes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pages_kit.rs"]
mod pages_kit;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{assert_no_server_errors, Server, TempDir};
use pages_kit::{browser_holder_sign_in, check_here, issue_licence, wait_for_path, COMPANY};
use reqwest::{Client, StatusCode};
use serde_json::json;
use webdriver::Driver;

/// The authority the demo business licences are issued by (ed25519).
const ISSUER: &str = "demo-authority-ed25519";

/// In the browser: signs out whoever is signed in, then in as staff with `token`; waits for
/// the desk it lands on.
async fn switch_to_staff(driver: &Driver, server: &Server, token: &str, desk: &str) {
    sign_out(driver, server).await;
    driver
        .session("POST", "/url", json!({ "url": server.at("/signin") }))
        .await;
    driver.type_into("#token", token).await;
    driver.click("form[action='/signin/token'] button").await;
    wait_for_path(driver, desk).await;
}

async fn sign_out(driver: &Driver, server: &Server) {
    driver.session("POST", "/url", json!({ "url": server.at("/") })).await;
    let signed_in = driver
        .execute("return document.querySelector(\"form[action='/signout'] button\") !== null")
        .await;
    if signed_in == true {
        driver.click("form[action='/signout'] button").await;
        // Already at `/`: wait for the page the sign-out answers with, signed out.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while driver
            .execute(
                "return document.readyState !== 'complete' \
                 || document.querySelector(\"form[action='/signout']\") !== null",
            )
            .await
            == true
        {
            assert!(std::time::Instant::now() < deadline, "signing out did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

async fn switch_to_holder(driver: &Driver, server: &Server) {
    sign_out(driver, server).await;
    browser_holder_sign_in(driver, server, 0, false).await;
}

async fn open(driver: &Driver, server: &Server, path: &str) {
    driver.session("POST", "/url", json!({ "url": server.at(path) })).await;
    wait_for_path(driver, path.split(['?', '#']).next().unwrap()).await;
}

/// Sets a form control's value by script (date controls take no typed text reliably).
async fn set_value(driver: &Driver, name: &str, value: &str) {
    driver
        .execute(&format!(
            "document.querySelector(\"[name='{name}']\").value = {}",
            json!(value)
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_objection_goes_from_the_holder_to_the_authority_and_back_corrected() {
    let dir = TempDir::new("desks-objection");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue_licence(&http, &server, "JL-DESK-0001").await;
    let driver = Driver::start().await;

    // The holder opens the licence and disputes its 住所, ticked on the licence itself.
    browser_holder_sign_in(&driver, &server, 0, false).await;
    open(&driver, &server, &format!("/holder/licences/{id}")).await;
    driver
        .click(&format!("a[href='/holder/licences/{id}/objection']"))
        .await;
    let form = driver.wait_for_text("form[action='/objections']", "住所").await;
    assert!(form.contains("长春市示例路1号") && !form.contains("address"), "{form}");
    check_here(&driver, "objection-new").await;
    driver.click("input[name='field'][value='address']").await;
    driver
        .type_into("#statement", "住所已迁至长春市示例路2号，证照未更新")
        .await;
    let evidence = dir.0.join("lease.txt");
    std::fs::write(&evidence, "租赁合同（示例）").unwrap();
    driver.type_into("#evidence", evidence.to_str().unwrap()).await;
    driver.click("form[action='/objections'] button").await;
    let state = driver.wait_for_text("#objection-state", "已提交").await;
    assert!(state.contains("待受理"), "{state}");
    let objection = driver
        .execute("return location.pathname.split('/').pop()")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(objection.starts_with("OB"), "{objection}");
    let shown = driver.wait_for_text("main", "lease.txt").await;
    assert!(shown.contains("住所") && shown.contains("信息有误"), "{shown}");
    check_here(&driver, "objection").await;

    // The authority sees it among its open objections, with its deadline, and takes it up.
    switch_to_staff(&driver, &server, ISSUER, "/authority").await;
    let listed = driver.wait_for_text("#objections", "JL-DESK-0001").await;
    assert!(listed.contains("办理期限"), "{listed}");
    check_here(&driver, "authority").await;
    driver.click(&format!("a[href='/objections/{objection}']")).await;
    driver.wait_for_text("#handle", "受理").await;
    driver.click("#step-action option[value='review']").await;
    driver.click("#handle button").await;
    driver.wait_for_text("#objection-state", "核查中").await;
    driver.click("#step-action option[value='request_evidence']").await;
    driver.type_into("#step-reason", "请补充新住所的租赁合同").await;
    driver.click("#handle button").await;
    driver.wait_for_text("#objection-state", "待补充材料").await;
    let history = driver.wait_for_text("#history", "要求补充材料").await;
    assert!(history.contains("请补充新住所的租赁合同"), "{history}");

    // The holder is told, and answers with the evidence asked for.
    switch_to_holder(&driver, &server).await;
    let told = driver.wait_for_text("#notifications", "要求补充材料").await;
    assert!(told.contains("请补充新住所的租赁合同"), "{told}");
    open(&driver, &server, &format!("/objections/{objection}")).await;
    driver.wait_for_text("#supply-title", "要求补充材料").await;
    check_here(&driver, "objection-evidence").await;
    let more = dir.0.join("lease-signed.txt");
    std::fs::write(&more, "签字盖章的租赁合同（示例）").unwrap();
    driver.type_into("#evidence-file", more.to_str().unwrap()).await;
    driver.click("form[action$='/evidence'] button").await;
    driver.wait_for_text("#objection-state", "核查中").await;
    driver.wait_for_text("#evidence", "lease-signed.txt").await;

    // The authority corrects the licence from the page: a new version with the new address.
    switch_to_staff(&driver, &server, ISSUER, "/authority").await;
    open(&driver, &server, &format!("/objections/{objection}")).await;
    let current = driver
        .execute("return document.querySelector(\"[name='face.address']\").value")
        .await;
    assert_eq!(current, "长春市示例路1号");
    check_here(&driver, "objection-correct").await;
    set_value(&driver, "face.address", "长春市示例路2号").await;
    driver
        .type_into("#correct-reason", "依持证人提供的租赁合同更正住所")
        .await;
    driver.click("#correct button").await;
    let outcome = driver.wait_for_text("#objection-state", "已更正").await;
    assert_eq!(outcome, "已更正");

    // The holder sees the outcome and the new version's face.
    switch_to_holder(&driver, &server).await;
    driver.wait_for_text("#notifications", "更正证照").await;
    open(&driver, &server, &format!("/objections/{objection}")).await;
    driver.click("a[href^='/holder/licences/']").await;
    let face = driver.wait_for_text(".face", "长春市示例路2号").await;
    assert!(face.contains("有效"), "{face}");

    // The API tells the same story.
    let holder_token = common::holder_token(COMPANY);
    let seen = common::get_json(&http, &server, &format!("/v1/objections/{objection}"), &holder_token).await;
    assert_eq!(seen["state"], "corrected", "{seen}");
    let new_version = seen["objection"]["workflow"]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["to"]["new_version"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = common::get_json(&http, &server, &format!("/v1/licences/{id}/status"), ISSUER).await;
    assert_eq!(status["state"], "superseded", "{status}");
    let licence = common::get_json(&http, &server, &format!("/v1/licences/{new_version}"), ISSUER).await;
    assert_eq!(licence["face"]["address"], "长春市示例路2号", "{licence}");
    assert_eq!(seen["objection"]["evidence"].as_array().unwrap().len(), 2, "{seen}");
    assert_no_server_errors(&server).await;
}

/// In the browser, as the department: looks up [`COMPANY`]'s business licences for the food
/// licence item.
async fn department_lookup(driver: &Driver) {
    driver.type_into("#lookup-code", COMPANY).await;
    driver.click("#lookup-item option[value='220100-FOOD-001']").await;
    driver.click("form[action='/department/lookup'] button").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_looks_up_with_the_holders_authorisation_until_it_is_withdrawn() {
    let dir = TempDir::new("desks-lookup");
    let server = Server::start(&dir.0);
    let http = Client::new();
    issue_licence(&http, &server, "JL-DESK-0002").await;
    // The department's grant requires the holder's authorisation (the defining authority approves).
    let until = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let grant = common::post_json(
        &http,
        &server,
        "/v1/grants",
        "demo-verifier",
        &json!({
            "type_code": "11100000000013338W032", "fields": ["company_name", "address"],
            "service_items": ["220100-FOOD-001"], "requires_authorisation": true,
            "purpose": "《食品经营许可和备案管理办法》",
            "until": zhengyin_model::licence::format_time(until)
        }),
    )
    .await;
    let grant_id = grant["id"].as_str().unwrap_or_else(|| panic!("{grant}"));
    let approved = common::post_json(
        &http,
        &server,
        &format!("/v1/grants/{grant_id}/approve"),
        "demo-authority-p256",
        &json!({}),
    )
    .await;
    assert_eq!(approved["state"], "approved", "{approved}");
    let driver = Driver::start().await;

    // The holder authorises the department for the food licence item.
    browser_holder_sign_in(&driver, &server, 0, false).await;
    driver.click("#auth-item option[value='220100-FOOD-001']").await;
    driver.type_into("#auth-department", "示例审批系统").await;
    driver.click("form[action='/holder/authorisations'] button").await;
    driver.wait_for_text("#authorisations", "撤回授权").await;

    // The clerk looks the licence up through the one interface: the granted fields only.
    switch_to_staff(&driver, &server, "demo-verifier", "/department").await;
    department_lookup(&driver).await;
    let found = driver.wait_for_text("#found", "长春市示例路1号").await;
    assert!(
        found.contains("有效") && !found.contains("法定代表人"),
        "only the granted fields: {found}"
    );
    driver.wait_for_text("main", "按持证人的授权").await;
    check_here(&driver, "lookup").await;

    // The holder withdraws; the next lookup is refused, in words.
    switch_to_holder(&driver, &server).await;
    driver.click("#authorisations form[action$='/withdraw'] button").await;
    driver.wait_for_text("#authorisations", "已撤回").await;
    switch_to_staff(&driver, &server, "demo-verifier", "/department").await;
    department_lookup(&driver).await;
    driver.wait_for_text("h1", "此次用证需要持证人授权").await;

    // Both lookups are in the holder's use records: one answered, one refused is not a use.
    let uses = common::get_json(&http, &server, "/v1/me/use-records", &common::holder_token(COMPANY)).await;
    let lookups: Vec<_> = uses["use_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["operation"] == "lookup_by_holder")
        .collect();
    assert_eq!(lookups.len(), 1, "{uses}");
    assert_no_server_errors(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authority_issues_and_revokes_and_auditors_and_operators_read_the_node() {
    let dir = TempDir::new("desks-watch");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let driver = Driver::start().await;

    // The authority issues a business licence from the form the type's schema makes.
    switch_to_staff(&driver, &server, ISSUER, "/authority").await;
    open(&driver, &server, "/authority/issue?type=11100000000013338W032").await;
    let form = driver.wait_for_text("#issue", "法定代表人").await;
    assert!(!form.contains("legal_representative"), "{form}");
    check_here(&driver, "issue").await;
    driver.type_into("#number", "JL-DESK-0003").await;
    driver.type_into("#holder_name", "吉林示例科技有限公司").await;
    driver.type_into("#holder_code", COMPANY).await;
    for (name, value) in [
        ("face.company_name", "吉林示例科技有限公司"),
        ("face.legal_representative", "李四"),
        ("face.established", "2020-02-29"),
        ("face.address", "长春市示例路3号"),
        ("face.registered_capital", "100"),
    ] {
        set_value(&driver, name, value).await;
    }
    driver.click("#issue button").await;
    let issued = driver.wait_for_text("#issued", "1.2.156.3005.2.").await;
    let id = issued.split('：').nth(1).unwrap().trim().to_owned();
    let listed = driver.wait_for_text("#issued-licences", "JL-DESK-0003").await;
    assert!(listed.contains("有效"), "{listed}");
    let licence = common::get_json(&http, &server, &format!("/v1/licences/{id}"), ISSUER).await;
    assert_eq!(licence["face"]["registered_capital"], 100, "{licence}");

    // And revokes it (吊销), from the list.
    driver
        .click(&format!(
            "form[action='/authority/licences/{id}/revoke'] option[value='withdrawn']"
        ))
        .await;
    driver
        .click(&format!("form[action='/authority/licences/{id}/revoke'] button"))
        .await;
    driver.wait_for_text("#issued-licences", "已注销").await;
    let status = common::get_json(&http, &server, &format!("/v1/licences/{id}/status"), ISSUER).await;
    assert_eq!(status["state"], "revoked", "{status}");

    // The auditor's browser records the checkpoint it sees, then checks the next one against it.
    switch_to_staff(&driver, &server, "demo-auditor", "/auditor").await;
    let first = driver.wait_for_text("#consistency", "首次记录").await;
    assert!(first.contains("大小"), "{first}");
    check_here(&driver, "auditor").await;
    issue_licence(&http, &server, "JL-DESK-0004").await;
    let size = common::log_size(&http, &server).await;
    common::wait_for_checkpoint(&http, &server, size).await;
    open(&driver, &server, "/auditor").await;
    let verdict = driver.wait_for_text("#consistency", "一致").await;
    assert!(
        verdict.starts_with("一致：") && verdict.contains("已由本浏览器验证"),
        "{verdict}"
    );
    // A root this browser saw that the log's history does not contain: the check fails.
    driver
        .execute(
            "const k = Object.keys(localStorage).find((k) => k.startsWith('zhengyin.checkpoint.'));\
             const seen = JSON.parse(localStorage.getItem(k)); seen.size -= 1;\
             localStorage.setItem(k, JSON.stringify(seen));",
        )
        .await;
    open(&driver, &server, "/auditor").await;
    let refused = driver.wait_for_text("#consistency", "不一致").await;
    assert!(refused.contains("一致性证明不成立"), "{refused}");
    // Use records searched by holder.
    open(&driver, &server, &format!("/auditor?holder=001:{COMPANY}#uses")).await;
    driver.wait_for_text("#uses", "暂无用证记录").await;

    // The operator's page: the node's numbers, tokens and CRLs.
    switch_to_staff(&driver, &server, "demo-operator", "/operator").await;
    let numbers = driver.wait_for_text("#numbers", "签名日志条目").await;
    assert!(numbers.contains("超期的异议"), "{numbers}");
    check_here(&driver, "operator").await;

    // Each desk is for its own people.
    let (status, _) = common::get(&http, &server, "/v1/log/checkpoint", "demo-auditor").await;
    assert_eq!(status, StatusCode::OK);
    open(&driver, &server, "/authority").await;
    driver.wait_for_text("h1", "此页面不属于您当前的登录身份").await;
    assert_no_server_errors(&server).await;
}

/// A Y4M video (the fake camera's format) of `png` on a white frame, 2 s at 10 frames/s.
fn camera_video(png: &[u8]) -> Vec<u8> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let (width, height) = (640usize, 480usize);
    // The code, scaled to fit 400 px, centred; Y is the grey level, U and V neutral.
    let side = frame.width.max(frame.height) as usize;
    let scale = 400.0 / side as f64;
    let (left, top) = ((width - 400) / 2, (height - 400) / 2);
    let mut luma = vec![255u8; width * height];
    for y in 0..400 {
        for x in 0..400 {
            let (sx, sy) = ((x as f64 / scale) as usize, (y as f64 / scale) as usize);
            if sx < frame.width as usize && sy < frame.height as usize {
                luma[(top + y) * width + left + x] = pixels[sy * frame.line_size + sx * channels];
            }
        }
    }
    let mut video = format!("YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..20 {
        video.extend_from_slice(b"FRAME\n");
        video.extend_from_slice(&luma);
        video.extend(std::iter::repeat_n(128u8, width * height / 2));
    }
    video
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clerk_scans_the_holders_code_with_the_camera() {
    use base64::Engine as _;
    let dir = TempDir::new("desks-camera");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue_licence(&http, &server, "JL-DESK-0005").await;
    let shown = common::post_json(
        &http,
        &server,
        "/v1/me/presentations",
        &common::holder_token(COMPANY),
        &json!({ "licence": id }),
    )
    .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shown["qr_png_base64"].as_str().unwrap_or_else(|| panic!("{shown}")))
        .unwrap();
    // Chromium's fake camera plays the holder's screen, as held up to the counter's camera.
    let video = dir.0.join("holder-screen.y4m");
    std::fs::write(&video, camera_video(&png)).unwrap();
    let driver = Driver::start_with(&[
        "--use-fake-ui-for-media-stream".to_owned(),
        "--use-fake-device-for-media-stream".to_owned(),
        format!("--use-file-for-fake-video-capture={}", video.display()),
    ])
    .await;
    switch_to_staff(&driver, &server, "demo-verifier", "/department").await;
    driver.click("#camera-start").await;
    wait_for_path(&driver, "/department/scan").await;
    let verdict = driver.wait_for_text("#verdict", "有效").await;
    assert_eq!(verdict, "有效");
    driver.wait_for_text("main", "JL-DESK-0005").await;
    let uses = common::get_json(&http, &server, "/v1/me/use-records", &common::holder_token(COMPANY)).await;
    assert!(
        uses["use_records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["operation"] == "scan"),
        "{uses}"
    );
    assert_no_server_errors(&server).await;
}
