//! The pages for people, as a browser and a careful visitor see them, on a really started node:
//! every page answers with its security headers and working links, fits a 390 px phone screen
//! without sideways scrolling, passes axe-core (the pinned release scripts/axe.sh fetches) with
//! no serious or critical violation, and is photographed at 390×844 and 1280×900 under
//! target/pages/ for review.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pages_kit.rs"]
mod pages_kit;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{assert_no_server_errors, root, Server, TempDir};
use pages_kit::{
    browser_holder_sign_in, browser_staff_sign_in, check_here, check_in_browser, issue_licence, wait_for_path, Visitor,
    COMPANY,
};
use reqwest::{Client, StatusCode};
use serde_json::json;
use webdriver::Driver;

#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_says_what_the_node_is_and_sends_each_audience_on() {
    let dir = TempDir::new("pages");
    let server = Server::start(&dir.0);
    let http = Client::new();

    let r = http.get(server.at("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<html lang="zh-CN">"#));
    // What the node holds, from its registry: the demo's licence types by name, its authorities.
    for text in [
        "营业执照",
        "登记的发证机关",
        "持证人",
        "办事部门",
        "发证机关",
        "审计人员",
        "运维人员",
    ] {
        assert!(html.contains(text), "the landing page shows {text}");
    }
    let catalogue = common::get_json(&http, &server, "/v1/licence-types", "demo-operator").await;
    for licence_type in catalogue["licence_types"].as_array().unwrap() {
        assert!(html.contains(licence_type["name"].as_str().unwrap()), "{licence_type}");
    }
    // No inline script or style for the policy to block, and every link leads somewhere.
    assert!(
        html.matches("<script").count() == html.matches("<script src=\"/assets/").count() && !html.contains("style="),
        "{html}"
    );
    let links: Vec<&str> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(
        links.contains(&"/authority") && links.contains(&"/assets/site.css"),
        "{links:?}"
    );
    for link in links {
        let status = http.get(server.at(link)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "the link {link}");
    }

    let driver = Driver::start().await;
    check_in_browser(&driver, &server, "/", "home").await;
}

/// Waits (at most 20 s) until the browser is at a URL whose path is `path`.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_shows_a_licence_and_a_department_scans_it_then_the_holder_sees_the_use() {
    let dir = TempDir::new("pages-journey");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue_licence(&http, &server, "JL-PAGES-0001").await;
    let driver = Driver::start().await;

    // The holder signs in through the (demo) identity platform and sees the licence as a card.
    browser_holder_sign_in(&driver, &server, 0, true).await;
    driver.wait_for_text("#licences", "JL-PAGES-0001").await;
    let card = driver.wait_for_text("#licences .card", "营业执照").await;
    assert!(card.contains("有效") && card.contains("2046年11月21日"), "{card}");
    check_here(&driver, "holder").await;

    // Its face, under the catalogue's titles (never the internal field names).
    driver.click(&format!("a[href='/holder/licences/{id}']")).await;
    let face = driver.wait_for_text(".face", "住所").await;
    for shown in ["名称", "法定代表人", "长春市示例路1号", "注册资本（万元）", "第 1 版"] {
        assert!(
            face.contains(shown) || driver.wait_for_text("main", shown).await.contains(shown),
            "{face}"
        );
    }
    assert!(
        !face.contains("legal_representative") && !face.contains("company_name"),
        "{face}"
    );
    check_here(&driver, "licence").await;

    // 亮证: a QR code large enough to scan across a counter, with a countdown.
    driver.click(&format!("a[href='/holder/licences/{id}/show']")).await;
    wait_for_path(&driver, &format!("/holder/licences/{id}/show")).await;
    driver.wait_for_text(".countdown", "秒后失效").await;
    let size = driver
        .execute("const i = document.querySelector('img.qr'); return [i.naturalWidth, i.getBoundingClientRect().width]")
        .await;
    assert!(
        size[1].as_f64().unwrap() >= 300.0,
        "the QR code is drawn {size} px wide"
    );
    check_here(&driver, "show").await;
    let data_url = driver.execute("return document.querySelector('img.qr').src").await;
    let png = {
        use base64::Engine as _;
        let b64 = data_url
            .as_str()
            .unwrap()
            .strip_prefix("data:image/png;base64,")
            .unwrap();
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    };
    let qr_file = dir.0.join("shown-qr.png");
    std::fs::write(&qr_file, &png).unwrap();

    // A department's clerk signs in with its API token and uploads the QR image: VALID.
    browser_staff_sign_in(&driver, &server, "demo-verifier").await;
    wait_for_path(&driver, "/department").await;
    check_here(&driver, "department").await;
    driver
        .click("form[action='/department/scan'] option[value='220100-FOOD-001']")
        .await;
    driver
        .type_into(
            "form[action='/department/scan'] input[name='qr']",
            qr_file.to_str().unwrap(),
        )
        .await;
    driver
        .click("form[action='/department/scan'] button[type='submit']")
        .await;
    wait_for_path(&driver, "/department/scan").await;
    let verdict = driver.wait_for_text("#verdict", "有效").await;
    assert_eq!(verdict, "有效");
    let report = driver.wait_for_text("main", "逐项核验").await;
    assert!(
        report.contains("吉林示例科技有限公司") && report.contains("电子签名"),
        "{report}"
    );
    check_here(&driver, "scan-report").await;

    // The same code scanned twice is refused, in words.
    driver
        .session("POST", "/url", json!({ "url": server.at("/department") }))
        .await;
    driver
        .type_into(
            "form[action='/department/scan'] input[name='qr']",
            qr_file.to_str().unwrap(),
        )
        .await;
    driver
        .click("form[action='/department/scan'] button[type='submit']")
        .await;
    driver.wait_for_text("h1", "亮证码已被扫过一次").await;

    // Back as the holder: the scan is in the use records, with the department and the item.
    driver
        .session("POST", "/url", json!({ "url": server.at("/department") }))
        .await;
    driver.click("form[action='/signout'] button").await;
    wait_for_path(&driver, "/").await;
    browser_holder_sign_in(&driver, &server, 0, false).await;
    let uses = driver.wait_for_text("#uses", "扫码核验").await;
    assert!(
        uses.contains("示例审批系统") && uses.contains("220100-FOOD-001"),
        "{uses}"
    );
    assert_no_server_errors(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_authorises_a_department_and_withdraws_it_in_the_browser() {
    let dir = TempDir::new("pages-authorise");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue_licence(&http, &server, "JL-PAGES-0002").await;
    let driver = Driver::start().await;
    browser_holder_sign_in(&driver, &server, 0, false).await;

    driver.type_into("#auth-department", "示例审批系统").await;
    driver.click("form[action='/holder/authorisations'] button").await;
    let listed = driver.wait_for_text("#authorisations", "撤回授权").await;
    assert!(
        listed.contains("示例审批系统") && listed.contains("JL-PAGES-0002"),
        "{listed}"
    );
    let given = common::get_json(&http, &server, "/v1/me/authorisations", &common::holder_token(COMPANY)).await;
    let authorisation = &given["authorisations"][0];
    assert_eq!(authorisation["department"], "示例审批系统", "{given}");
    assert_eq!(authorisation["licence"], id.as_str());
    assert!(authorisation["withdrawn"].is_null(), "{given}");

    driver.click("#authorisations form[action$='/withdraw'] button").await;
    driver.wait_for_text("#authorisations", "已撤回").await;
    let after = common::get_json(&http, &server, "/v1/me/authorisations", &common::holder_token(COMPANY)).await;
    assert!(after["authorisations"][0]["withdrawn"].is_string(), "{after}");
    assert_no_server_errors(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_and_forms_are_guarded() {
    let dir = TempDir::new("pages-guards");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue_licence(&http, &server, "JL-PAGES-0003").await;

    // The session cookie: this origin only, never readable by script, never sent cross-site.
    let mut company = Visitor::new(&server);
    let r = company.send("GET", "/signin", None).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-zhengyin="), "{cookie}");
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let callback = company.sign_in_holder("0").await;
    for page in [
        "/holder",
        &format!("/holder/licences/{id}"),
        &format!("/holder/licences/{id}/show"),
    ] {
        let r = company.send("GET", page, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
            "{page}: {csp}"
        );
        assert_eq!(r.headers()["cache-control"], "no-store", "{page}");
    }
    let json = company
        .send("GET", &format!("/holder/licences/{id}/licence.json"), None)
        .await;
    assert_eq!(json.status(), StatusCode::OK);
    assert_eq!(
        json.bytes().await.unwrap(),
        common::licence_bytes(&http, &server, &id, "demo-operator").await
    );

    // The callback cannot be replayed: its code is spent, and its state belonged to a sign-in
    // that is over.
    let replay = company.send("GET", &callback, None).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    // A form without this session's CSRF token is refused, and nothing is done.
    let form = [
        ("licence", id.as_str()),
        ("department", "示例审批系统"),
        ("service_item", "220100-FOOD-001"),
        ("until", "2027-01-01"),
    ];
    for csrf in [None, Some("forged")] {
        let mut fields = form.to_vec();
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let r = company.send("POST", "/holder/authorisations", Some(&fields)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(r.text().await.unwrap().contains("表单已失效"));
    }
    let given = common::get_json(&http, &server, "/v1/me/authorisations", &common::holder_token(COMPANY)).await;
    assert_eq!(given["authorisations"], json!([]), "{given}");
    let csrf = company.csrf("/holder").await;
    let mut fields = form.to_vec();
    fields.push(("csrf", &csrf));
    let r = company.send("POST", "/holder/authorisations", Some(&fields)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Another holder: the company's licence does not exist for them.
    let mut citizen = Visitor::new(&server);
    citizen.sign_in_holder("1").await;
    for page in [
        format!("/holder/licences/{id}"),
        format!("/holder/licences/{id}/show"),
        format!("/holder/licences/{id}/licence.json"),
    ] {
        assert_eq!(
            citizen.send("GET", &page, None).await.status(),
            StatusCode::NOT_FOUND,
            "{page}"
        );
    }
    let home = citizen.send("GET", "/holder", None).await.text().await.unwrap();
    assert!(
        home.contains("我的证照（0）") && !home.contains("JL-PAGES-0003"),
        "{home}"
    );

    // A state that is not the session's is refused (a forged callback).
    let mut forged = Visitor::new(&server);
    forged.csrf("/signin").await;
    let r = forged.send("GET", "/signin/callback?code=x&state=forged", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Staff: a wrong token and a node's token sign no one in; the verifier's lands on its page,
    // and a holder's page is not theirs.
    let mut clerk = Visitor::new(&server);
    for token in ["not-a-token", "demo-node"] {
        let csrf = clerk.csrf("/signin").await;
        let r = clerk
            .send("POST", "/signin/token", Some(&[("csrf", &csrf), ("token", token)]))
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    let r = clerk
        .send("POST", "/signin/token", Some(&[("token", "demo-verifier")]))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a sign-in form without its CSRF token"
    );
    let csrf = clerk.csrf("/signin").await;
    let r = clerk
        .send(
            "POST",
            "/signin/token",
            Some(&[("csrf", &csrf), ("token", "demo-verifier")]),
        )
        .await;
    assert_eq!(r.headers()["location"], "/department");
    assert_eq!(clerk.send("GET", "/department", None).await.status(), StatusCode::OK);
    assert_eq!(clerk.send("GET", "/holder", None).await.status(), StatusCode::FORBIDDEN);

    // Signing out ends the session on the server: the old cookie opens nothing.
    let old = company.cookie.clone();
    let csrf = company.csrf("/holder").await;
    let r = company.send("POST", "/signout", Some(&[("csrf", &csrf)])).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    company.cookie = old;
    let r = company.send("GET", "/holder", None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/signin");
    assert_no_server_errors(&server).await;
}

/// The verdict a report page shows.
fn verdict_shown(html: &str) -> &str {
    html.split("id=\"verdict\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_else(|| panic!("{html}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_department_verifies_files_handed_in_and_the_page_agrees_with_the_api() {
    let dir = TempDir::new("pages-verify");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue_licence(&http, &server, "JL-PAGES-0004").await;
    let licence = common::licence_bytes(&http, &server, &id, "demo-operator").await;
    let mut clerk = Visitor::new(&server);
    clerk.sign_in_staff("demo-verifier").await;
    let purpose = [("service_item", "220100-FOOD-001"), ("use_cause", "核验")];

    let r = clerk
        .upload("/department", "/department/verify", &purpose, ("file", licence.clone()))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert_eq!(verdict_shown(&html), "有效");
    assert!(html.contains("用证记录") && html.contains(&id), "{html}");

    // One changed character of the face: invalid, and the page says which check failed.
    let tampered = String::from_utf8(licence.clone())
        .unwrap()
        .replace("长春市示例路1号", "长春市示例路2号");
    let r = clerk
        .upload(
            "/department",
            "/department/verify",
            &purpose,
            ("file", tampered.into_bytes()),
        )
        .await;
    let html = r.text().await.unwrap();
    assert_eq!(verdict_shown(&html), "无效：不可采信");
    assert!(html.contains("未通过"), "{html}");

    // A third party's sealed OFD document: the page says what the API says.
    let ofd = std::fs::read(root().join("tests/vectors/ofd-ofdrw/v4signed.ofd")).unwrap();
    let api = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&ofd);
        common::post_json(
            &http,
            &server,
            "/v1/ofd/verify",
            "demo-verifier",
            &json!({ "ofd": b64 }),
        )
        .await
    };
    let expected = match api["verdict"].as_str().or(api["report"]["verdict"].as_str()) {
        Some("VALID") => "有效",
        Some("INVALID") => "无效：不可采信",
        Some("INDETERMINATE") => "无法确定：请勿采信，稍后重试或联系发证机关",
        other => panic!("{other:?}: {api}"),
    };
    let r = clerk
        .upload("/department", "/department/verify", &purpose, ("file", ofd))
        .await;
    assert_eq!(verdict_shown(&r.text().await.unwrap()), expected);

    // Bad input: no purpose, a file too large, no file, a holder at a department's page.
    let r = clerk
        .upload("/department", "/department/verify", &[], ("file", licence.clone()))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("请选择办事事项"));
    let huge = vec![b' '; 11 * 1024 * 1024];
    let r = clerk
        .upload("/department", "/department/verify", &purpose, ("file", huge))
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = clerk
        .upload("/department", "/department/scan", &purpose, ("qr", Vec::new()))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = clerk
        .upload(
            "/department",
            "/department/scan",
            &purpose,
            ("qr", b"not an image".to_vec()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("无法从图片中读出二维码"));
    let mut holder = Visitor::new(&server);
    holder.sign_in_holder("0").await;
    let r = holder
        .upload("/holder", "/department/verify", &purpose, ("file", licence))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_no_server_errors(&server).await;
}
