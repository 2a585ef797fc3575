//! Demo nodes as separate `zhengyin` processes for the sync and federation tests: start,
//! restart on the same port and data, kill; and the requests those tests repeat.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::{business_licence, free_port, get, root, send, Server, TempDir, PURPOSE};

pub const PROVINCE: &str = "zhengyin.example/province-220000";

/// A demo node: its arguments (to restart it on the same port and data) and the process.
pub struct Node {
    pub args: Vec<String>,
    pub listen: String,
    pub server: Option<Server>,
}

impl Node {
    pub fn start(dir: &TempDir, name: &str, origin: &str, extra: &[String]) -> Node {
        let mut node = Self::prepare(dir, name, origin, extra);
        node.restart();
        node
    }

    /// A node with its port chosen, not started yet (so others can be told its URL first).
    pub fn prepare(dir: &TempDir, name: &str, origin: &str, extra: &[String]) -> Node {
        let keys = root().join("keys-example");
        let mut args: Vec<String> = [
            "serve",
            "--demo",
            "--keys-dir",
            keys.to_str().unwrap(),
            "--data-dir",
            dir.0.join(name).to_str().unwrap(),
            "--origin",
            origin,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend_from_slice(extra);
        Node {
            args,
            listen: format!("127.0.0.1:{}", free_port()),
            server: None,
        }
    }

    pub fn city(dir: &TempDir, name: &str, origin: &str, authorities: &str) -> Node {
        Self::start(dir, name, origin, &["--demo-authorities".into(), authorities.into()])
    }

    pub fn province(dir: &TempDir, name: &str, sources: &[(&str, &str)], extra: &[&str]) -> Node {
        Self::province_of(dir, name, PROVINCE, sources, extra)
    }

    /// A node that aggregates `sources` and registers no authority of its own.
    pub fn province_of(dir: &TempDir, name: &str, origin: &str, sources: &[(&str, &str)], extra: &[&str]) -> Node {
        let mut args = vec!["--demo-authorities".to_owned(), "none".to_owned()];
        for (origin, url) in sources {
            args.push("--source".into());
            args.push(format!("{origin}={url}"));
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::start(dir, name, origin, &args)
    }

    pub fn restart(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.server = Some(Server::start_listening(&args, &self.listen));
    }

    pub fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill();
        }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }
}

pub async fn issue(http: &Client, city: &Node, alg: &str, number: &str) -> (String, Vec<u8>) {
    let token = format!("demo-authority-{alg}");
    let (status, issued) = send(http, city.server(), "/v1/licences", &token, &business_licence(number)).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let id = issued["id"].as_str().unwrap().to_owned();
    let bytes = http
        .get(city.server().at(&format!("/v1/licences/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    (id, bytes)
}

pub async fn revoke(http: &Client, city: &Node, alg: &str, id: &str) {
    let (status, body) = send(
        http,
        city.server(),
        &format!("/v1/licences/{id}/revoke"),
        &format!("demo-authority-{alg}"),
        &json!({"reason": "吊销", "note": "违法经营"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

pub async fn verify(http: &Client, node: &Node, licence: &[u8], fresh: bool) -> Value {
    let path = format!("/v1/verify?fresh={fresh}&{PURPOSE}");
    super::verify_at(http, node.server(), &path, "demo-verifier", licence).await
}

/// Polls `verify` until the verdict is `want` (at most `limit`); the time it took.
pub async fn until_verdict(http: &Client, node: &Node, licence: &[u8], want: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let report = verify(http, node, licence, true).await;
        if report["verdict"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still {} after {limit:?}: {report}",
            report["verdict"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn sources(http: &Client, node: &Node) -> Vec<Value> {
    let (status, body) = get(http, node.server(), "/v1/sync/sources", "demo-operator").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["sources"].as_array().unwrap().clone()
}

pub async fn source(http: &Client, node: &Node, origin: &str) -> Value {
    sources(http, node)
        .await
        .into_iter()
        .find(|s| s["origin"] == origin)
        .unwrap_or_else(|| panic!("no source {origin}"))
}

/// Polls the operator view until `done` holds for `origin` (at most 60 s).
pub async fn until_source(http: &Client, node: &Node, origin: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let s = source(http, node, origin).await;
        if done(&s) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "source never got there: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
