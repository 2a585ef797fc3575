//! The holder's objection page in a real browser: Debian's headless Chromium, driven over the
//! W3C WebDriver protocol by chromedriver (both installed by tests/browser/install-chromium.sh
//! when missing). The holder pastes its token, files an objection, and sees it listed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{business_licence, get, holder_token, send, Server, TempDir};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    url: String,
    http: Client,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let install = Command::new("bash")
            .arg(common::root().join("tests/browser/install-chromium.sh"))
            .status()
            .expect("running the chromium installer");
        assert!(install.success(), "installing chromium and chromium-driver failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{url}/status")).send().await.ok();
            if let Some(r) = ready {
                if r.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut driver = Driver {
            child,
            url,
            http,
            session: String::new(),
        };
        let session = driver
            .call(
                "POST",
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
                    }
                }}}),
            )
            .await;
        driver.session = session["sessionId"].as_str().expect("a session").to_owned();
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url));
        if method == "POST" {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let answer: Value = r.json().await.unwrap();
        assert!(status.is_success(), "WebDriver {method} {path}: {answer}");
        answer["value"].clone()
    }

    async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .session("POST", "/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.session("POST", &format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.session("POST", &format!("/element/{id}/click"), json!({})).await;
    }

    /// Waits (at most 20 s) until the element's text contains `wanted`; the text.
    async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let id = self.element(css).await;
            let text = self.session("GET", &format!("/element/{id}/text"), Value::Null).await;
            let text = text.as_str().unwrap_or_default().to_owned();
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {wanted:?}; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

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
