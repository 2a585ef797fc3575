//! Starting the real `zhengyin` binary for end-to-end tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod nodes;
pub mod ofd;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `zhengyin` binary, built once per test process with the same profile as the tests.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build
            .current_dir(root())
            .args(["build", "--quiet", "-p", "zhengyin", "--bin", "zhengyin"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "building zhengyin failed");
        profile_dir.join("zhengyin")
    })
}

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `zhengyin serve --demo` on a free loopback port with its database in `data_dir`.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_demo(data_dir, &[])
    }

    /// Starts `zhengyin serve --demo` with its database in `data_dir` and `extra` arguments.
    pub fn start_demo(data_dir: &Path, extra: &[&str]) -> Server {
        let args = Self::demo_args(data_dir, extra);
        Self::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The arguments of `zhengyin serve --demo` with its database in `data_dir`, then `extra`.
    pub fn demo_args(data_dir: &Path, extra: &[&str]) -> Vec<String> {
        let keys = root().join("keys-example");
        let mut args: Vec<String> = ["serve", "--demo", "--keys-dir", keys.to_str().unwrap(), "--data-dir"]
            .map(str::to_owned)
            .to_vec();
        args.push(data_dir.to_str().unwrap().to_owned());
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Starts `zhengyin` with `args` (plus `--listen 127.0.0.1:0`).
    pub fn start_with(args: &[&str]) -> Server {
        Self::start_listening(args, "127.0.0.1:0")
    }

    /// Starts `zhengyin` with `args` listening on `listen` (e.g. to restart a node on its port).
    /// Under the PostgreSQL backend, a `serve` gets the database standing for its data folder.
    pub fn start_listening(args: &[&str], listen: &str) -> Server {
        Self::spawn(args, listen, |command| {
            command.env("RUST_LOG", "warn");
        })
    }

    /// Starts `zhengyin` with `args` on a free port, its environment adjusted by `configure`
    /// (no `RUST_LOG` unless it sets one); every line it prints is kept in `lines`.
    pub fn spawn(args: &[&str], listen: &str, configure: impl FnOnce(&mut Command)) -> Server {
        let mut command = Command::new(binary());
        if postgres() && args.first() == Some(&"serve") {
            command.env("ZHENGYIN_DATABASE", database_for(&data_key(args)));
        }
        command
            .args(args)
            .args(["--listen", listen])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        let mut child = command.spawn().expect("starting zhengyin");
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("zhengyin listening on ") {
                    let _ = tx.send(url.to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server did not start listening");
        Server { child, url, lines }
    }

    /// The lines the server printed so far.
    pub fn printed(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether end-to-end servers run on PostgreSQL (`ZHENGYIN_TEST_BACKEND=postgres`, as `.ci/run`
/// does in its second pass) rather than the embedded sled store.
pub fn postgres() -> bool {
    std::env::var("ZHENGYIN_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// What identifies a server's data between restarts: its `--data-dir`, or its `--config` file's
/// folder; else nothing it shares with another start.
fn data_key(args: &[&str]) -> PathBuf {
    let after = |flag: &str| args.iter().position(|a| *a == flag).and_then(|i| args.get(i + 1));
    match (after("--data-dir"), after("--config")) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(config)) => Path::new(config).parent().unwrap_or(Path::new("")).to_path_buf(),
        (None, None) => PathBuf::from(format!("fresh-{}", free_port())),
    }
}

/// The throwaway cluster of this test process (PostgreSQL backend).
pub fn cluster() -> &'static zhengyin_testdb::Cluster {
    zhengyin_testdb::Cluster::shared().unwrap()
}

/// The database standing for a data folder under the PostgreSQL backend: the same one each
/// time, so that a restarted server finds what it acknowledged.
pub fn database_for(key: &Path) -> String {
    static DATABASES: OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, String>>> = OnceLock::new();
    let mut databases = DATABASES.get_or_init(Default::default).lock().unwrap();
    databases
        .entry(key.to_path_buf())
        .or_insert_with(|| cluster().database().unwrap())
        .clone()
}

/// Replaces `from` by `to` in log entry `index` of the stopped node whose data is in `data`,
/// behind the service's back (what an attacker with the disk or the database could do): the
/// entry unpacked, changed and stored packed again, as the store would have written it.
pub fn rewrite_log_entry(data: &Path, index: u64, from: &str, to: &str) {
    use zhengyin_store::packed;
    let rewrite = |stored: &[u8]| {
        let entry = String::from_utf8(packed::unpack(stored).unwrap()).unwrap();
        assert!(entry.contains(from), "entry {index} has no {from}: {entry}");
        packed::pack_log_entry(entry.replace(from, to).as_bytes())
    };
    if postgres() {
        let url = database_for(data);
        let name = url.rsplit('/').next().unwrap();
        let stored = cluster()
            .sql(
                name,
                &format!("SELECT encode(entry, 'hex') FROM log_entries WHERE idx = {index}"),
            )
            .unwrap();
        let rewritten = hex::encode(rewrite(&hex::decode(stored).unwrap()));
        let sql = format!("UPDATE log_entries SET entry = '\\x{rewritten}' WHERE idx = {index}");
        cluster().sql(name, &sql).unwrap();
        return;
    }
    let db = sled::open(data).unwrap();
    let log = db.open_tree("log").unwrap();
    let mut k = vec![b'e'];
    k.extend_from_slice(&index.to_be_bytes());
    let stored = log.get(&k).unwrap().unwrap();
    log.insert(&k, rewrite(&stored)).unwrap();
    db.flush().unwrap();
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("zhengyin-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A business-licence issue request for the demo catalogue.
pub fn business_licence(number: &str) -> serde_json::Value {
    serde_json::json!({
        "type_code": "11100000000013338W032",
        "number": number,
        "holder": {"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
        "valid_until": "2046-11-21",
        "face": {
            "company_name": "吉林示例科技有限公司",
            "company_form": "有限责任公司",
            "legal_representative": "张三",
            "registered_capital": 500,
            "established": "2020-02-29",
            "address": "长春市示例路1号"
        }
    })
}

/// Every face field of the demo business licence and every grantable metadata field: a grant of
/// these may fetch the signed licence.
pub const EVERY_FIELD: &[&str] = &[
    "company_name",
    "company_form",
    "legal_representative",
    "registered_capital",
    "established",
    "address",
    "business_scope",
    "number",
    "holder.name",
    "holder.code",
];

/// The purpose a department states when it verifies (query parameters): a demo service item and
/// the use cause 核验.
pub const PURPOSE: &str = "service_item=220100-FOOD-001&use_cause=%E6%A0%B8%E9%AA%8C";

/// What `scripts/<script>` installs (once per machine or checkout): the path it prints.
pub fn installed(script: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts").join(script))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The font the demo's licence files embed (installed by scripts/test-deps.sh).
pub const LICENCE_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

pub const ALGORITHMS: [&str; 4] = ["ed25519", "p256", "rsa2048", "sm2"];

/// A licence's signed bytes, as its reader gets them.
pub async fn licence_bytes(http: &reqwest::Client, server: &Server, id: &str, token: &str) -> Vec<u8> {
    let r = http
        .get(server.at(&format!("/v1/licences/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "reading licence {id}");
    r.bytes().await.unwrap().to_vec()
}

/// `POST path` (a verification, with its query) with the licence's bytes as `token`: the report.
pub async fn verify_at(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    token: &str,
    licence: &[u8],
) -> serde_json::Value {
    http.post(server.at(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(licence.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs JSON with a bearer token and returns the JSON answer.
pub async fn post_json(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    http.post(server.at(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GETs with a bearer token and returns the JSON answer.
pub async fn get_json(http: &reqwest::Client, server: &Server, path: &str, token: &str) -> serde_json::Value {
    http.get(server.at(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The size of the node's latest checkpoint (the signature log as last published).
pub async fn log_size(http: &reqwest::Client, server: &Server) -> u64 {
    let note = http
        .get(server.at("/v1/log/checkpoint"))
        .bearer_auth("demo-auditor")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// The node's whole log (as far as it is stored), each entry decoded as JSON.
pub async fn log_entries(http: &reqwest::Client, server: &Server) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    let mut all = Vec::new();
    loop {
        let start = all.len();
        let (_, page) = get(
            http,
            server,
            &format!("/v1/log/entries?start={start}&end={}", start + 1000),
            "demo-auditor",
        )
        .await;
        let entries = page["entries"].as_array().unwrap();
        if entries.is_empty() {
            return all;
        }
        for e in entries {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(e.as_str().unwrap())
                .unwrap();
            all.push(serde_json::from_slice(&bytes).unwrap());
        }
    }
}

/// Asserts that the server answered no request with a 5xx, from its own metrics.
pub async fn assert_no_server_errors(server: &Server) {
    let metrics = reqwest::get(server.at("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("zhengyin_http_requests_total"), "{metrics}");
    let failures: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("zhengyin_http_requests_total") && l.contains("status=\"5"))
        .collect();
    assert!(failures.is_empty(), "server errors: {failures:?}");
}

/// GETs with a bearer token; the status and the JSON answer (null if none).
pub async fn get(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    token: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    let r = http.get(server.at(path)).bearer_auth(token).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Follows a listing's cursor: GETs `path` (with its query, if any) `limit` at a time, passing
/// the last item's `id` (or `key`'s `id`) as `after`, until a page comes back empty; every item,
/// in order. Each page must answer 200 and hold at most `limit` items.
pub async fn every_page(
    http: &reqwest::Client,
    server: &Server,
    (path, list, key): (&str, &str, Option<&str>),
    token: &str,
    limit: usize,
) -> Vec<serde_json::Value> {
    let (mut items, mut after) = (Vec::new(), String::new());
    let join = if path.contains('?') { '&' } else { '?' };
    loop {
        let url = format!("{path}{join}limit={limit}&after={after}");
        let (status, page) = get(http, server, &url, token).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{url}: {page}");
        let page = page[list].as_array().unwrap().clone();
        assert!(page.len() <= limit, "{url}: {} items", page.len());
        let Some(last) = page.last() else { return items };
        let last = key.map_or(last, |k| &last[k]);
        after = last["id"].as_str().unwrap().to_owned();
        items.extend(page);
    }
}

/// POSTs JSON with a bearer token; the status and the JSON answer (null if none).
pub async fn send(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> (reqwest::StatusCode, serde_json::Value) {
    let r = http
        .post(server.at(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The `iss` of the demo identity platform.
pub const DEMO_ISSUER: &str = "https://id.example.gov.cn/demo";

/// The EXAMPLE identity platform's key (keys-example/).
pub fn identity_key() -> zhengyin_crypto::FileKey {
    zhengyin_crypto::FileKey::from_pem_file(&root().join("keys-example/identity-platform-ed25519.key")).unwrap()
}

/// A holder token (USCC `code`) signed by `key` as `issuer`, issued at `issued_at`.
pub fn holder_token_with(
    key: &zhengyin_crypto::FileKey,
    issuer: &str,
    code: &str,
    issued_at: time::OffsetDateTime,
    seconds: i64,
) -> String {
    zhengyin_engine::identity::mint_holder_token(
        key,
        &zhengyin_engine::identity::HolderTokenClaims {
            issuer,
            audience: "zhengyin",
            holder: &zhengyin_model::HolderRef {
                code_type: zhengyin_model::HolderCodeType::Uscc,
                code: code.to_owned(),
            },
            issued_at,
            lifetime: time::Duration::seconds(seconds),
            nonce: None,
        },
    )
    .unwrap()
}

/// A fresh ten-minute token of the demo identity platform for holder `code` (a USCC).
pub fn holder_token(code: &str) -> String {
    holder_token_with(&identity_key(), DEMO_ISSUER, code, time::OffsetDateTime::now_utc(), 600)
}

/// The check `code` of a verification report (JSON).
pub fn report_check<'a>(report: &'a serde_json::Value, code: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["code"] == code))
        .unwrap_or_else(|| panic!("no {code} check in {report}"))
}

/// The node's log verifier key (`<origin>+<hash>+<key>`), as an auditor gets it out of band.
pub async fn log_verifier_key(http: &reqwest::Client, server: &Server) -> String {
    let key = get_json(http, server, "/v1/log/key", "demo-auditor").await;
    key["verifier_key"].as_str().unwrap().to_owned()
}

/// Waits (≤ 10 s) until the node serves a checkpoint of at least `size` entries.
pub async fn wait_for_checkpoint(http: &reqwest::Client, server: &Server, size: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let note = http
            .get(server.at("/v1/log/checkpoint"))
            .bearer_auth("demo-auditor")
            .send()
            .await
            .unwrap();
        let note = note.text().await.unwrap();
        let published: u64 = note.lines().nth(1).unwrap().parse().unwrap();
        if published >= size {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of size {size} within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs `zhengyin audit` against `server` with the log's verifier key and the auditor's state
/// file: its exit code and what it printed.
pub fn audit(server: &Server, key: &str, state: &Path) -> (i32, String) {
    let out = std::process::Command::new(binary())
        .args(["audit", "--url", &server.url, "--key", key, "--state"])
        .arg(state)
        .env("ZHENGYIN_TOKEN", "demo-auditor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

/// A request for the demo SM2 authority's (示例事业单位) e-seal, applied with a key whose
/// certificate chain (PEM, leaf first) is `signer_chain`; the picture is a PNG signature only.
pub fn seal_request(holder: &str, signer_chain: &str) -> serde_json::Value {
    serde_json::json!({
        "name": "示例事业单位电子公章", "seal_type": 1,
        "holder": {"name": "示例事业单位", "code": holder, "code_type": "001"},
        "valid_start": "2026-01-01T00:00:00Z", "valid_end": "2034-01-01T00:00:00Z",
        "signer_certificates": [signer_chain],
        "picture": {"kind": "PNG", "data_base64": "iVBORw0KGgpleGFtcGxl", "width": 40, "height": 40}
    })
}

/// Runs one of the independent checkers (tests/independent/`script`, its pinned Python installed
/// by scripts/independent.sh) on `args`: whether it said VALID, and what it said.
pub fn independent(script: &str, args: &[&Path]) -> (bool, String) {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let python = PYTHON.get_or_init(|| installed("independent.sh"));
    let out = Command::new(python)
        .arg(root().join("tests/independent").join(script))
        .args(args)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.starts_with("VALID") || said.starts_with("INVALID"),
        "the independent checker failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && said.starts_with("VALID"), said)
}

/// A seal's picture as an official seal looks (a red ring round a five-pointed star, the rest
/// transparent): a real 240×240 PNG, so that renderers draw it.
pub fn seal_picture_png() -> Vec<u8> {
    const SIDE: u32 = 240;
    let centre = f64::from(SIDE) / 2.0;
    // The star's ten corners, alternately outer and inner, the first pointing up.
    let corners: Vec<(f64, f64)> = (0..10)
        .map(|i| {
            let radius = if i % 2 == 0 { 46.0 } else { 18.0 };
            let angle = std::f64::consts::PI * (f64::from(i) / 5.0 - 0.5);
            (centre + radius * angle.cos(), centre + radius * angle.sin())
        })
        .collect();
    let in_star = |x: f64, y: f64| {
        let mut inside = false;
        for i in 0..corners.len() {
            let (a, b) = (corners[i], corners[(i + 1) % corners.len()]);
            if (a.1 > y) != (b.1 > y) && x < a.0 + (y - a.1) * (b.0 - a.0) / (b.1 - a.1) {
                inside = !inside;
            }
        }
        inside
    };
    let mut pixels = Vec::with_capacity((SIDE * SIDE * 4) as usize);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let distance = ((fx - centre).powi(2) + (fy - centre).powi(2)).sqrt();
            let red = (104.0..=116.0).contains(&distance) || in_star(fx, fy);
            pixels.extend_from_slice(if red { &[204, 0, 0, 255] } else { &[0, 0, 0, 0] });
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    out
}
