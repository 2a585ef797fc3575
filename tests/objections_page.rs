//! The holder's objection page in a real browser: Debian's headless Chromium, driven over the
//! W3C WebDriver protocol by chromedriver (both installed by tests/browser/install-chromium.sh
//! when missing). The holder pastes its token, files an objection, and sees it listed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::{business_licence, get, holder_token, send, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use webdriver::Driver;

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_files_an_objection_in_the_page_and_follows_it() {
    let dir = TempDir::new("page");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let (status, issued) = send(
        &http,
        &server,
        "/v1/licences",
        "demo-authority-ed25519",
        &business_licence("PAGE-1"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let licence = issued["id"].as_str().unwrap().to_owned();
    let token = holder_token("91350100M000100Y43");

    let driver = Driver::start().await;
    driver
        .session("POST", "/url", json!({"url": server.at("/objections")}))
        .await;
    // Without a token, the service refuses, and the page says so.
    driver.click("#refresh").await;
    driver.wait_for_text("#result", "auth.").await;

    driver.type_into("#token", &token).await;
    driver.type_into("#licence", &licence).await;
    driver.type_into("#fields", "address").await;
    driver.type_into("#statement", "住所已变更，证照未更新").await;
    driver.click("#file").await;
    let shown = driver.wait_for_text("#result", "filed OB").await;
    let objection = shown.split_whitespace().nth(1).unwrap().to_owned();
    assert!(shown.contains("state: filed"), "{shown}");
    let listed = driver.wait_for_text("#list", &objection).await;
    assert!(listed.contains(&licence), "{listed}");

    // A field the licence type does not have: the page shows the service's refusal.
    driver.type_into("#fields", ",colour").await;
    driver.click("#file").await;
    driver.wait_for_text("#result", "refused: request.invalid").await;

    // The objection the page filed is the holder's, through the API too.
    let (_, mine) = get(&http, &server, "/v1/objections", &token).await;
    assert!(mine["objections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["objection"]["id"] == objection.as_str()
            && o["objection"]["objector"] == "holder:001:91350100M000100Y43"));
    driver.session("DELETE", "", Value::Null).await;
}
