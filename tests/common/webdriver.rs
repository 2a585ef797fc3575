//! A real browser for the tests: Debian's headless Chromium, driven over the W3C WebDriver
//! protocol by chromedriver (both installed by tests/browser/install-chromium.sh when missing).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
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
    pub async fn start() -> Driver {
        Self::start_with(&[]).await
    }

    /// Starts Chromium with `extra` command-line switches too (a fake camera, say).
    pub async fn start_with(extra: &[String]) -> Driver {
        let install = Command::new("bash")
            .arg(super::common::root().join("tests/browser/install-chromium.sh"))
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
        let args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain(extra.iter().cloned())
        .collect();
        let session = driver
            .call(
                "POST",
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": args
                    }
                }}}),
            )
            .await;
        driver.session = session["sessionId"].as_str().expect("a session").to_owned();
        driver
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
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

    pub async fn session(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
            .await
    }

    pub async fn element(&self, css: &str) -> String {
        let found = self
            .session("POST", "/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.session("POST", &format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.session("POST", &format!("/element/{id}/click"), json!({})).await;
    }

    /// Waits (at most 20 s) until the element's text contains `wanted`; the text.
    pub async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Through a script, so that a page still loading (no such element yet) is waited for.
            let text = self
                .session(
                    "POST",
                    "/execute/sync",
                    json!({"script": "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
                           "args": [css]}),
                )
                .await;
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

impl Driver {
    /// Runs `script` (a function body) in the page; what it returns.
    pub async fn execute(&self, script: &str) -> Value {
        self.session("POST", "/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// Emulates a viewport of exactly `width` × `height` CSS pixels (a phone's when `mobile`),
    /// through Chromium's DevTools protocol.
    pub async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.session(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride",
                   "params": {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}}),
        )
        .await;
    }

    /// A PNG of the viewport as it is.
    pub async fn capture(&self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self.session("GET", "/screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap())
            .unwrap()
    }

    /// A PNG of the window, at `width` × `height` pixels.
    pub async fn screenshot(&self, width: u32, height: u32) -> Vec<u8> {
        use base64::Engine as _;
        self.session("POST", "/window/rect", json!({"width": width, "height": height}))
            .await;
        let shot = self.session("GET", "/screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap())
            .unwrap()
    }
}
