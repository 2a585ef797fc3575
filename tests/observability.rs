//! What an operator sees of a running node: its log lines (JSON or text, one access line per
//! request, domain events, never a token), its metrics (both expositions, checked by promtool)
//! and its readiness.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{business_licence, send, Server, TempDir, PURPOSE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const AUTHORITY: &str = "demo-authority-ed25519";
const AUTHORITY_USCC: &str = "11220000013544541J";

/// Starts a demo node without `RUST_LOG` (the node's own filter applies) and with `extra`.
fn node(dir: &TempDir, extra: &[&str]) -> Server {
    let args = Server::demo_args(&dir.0, extra);
    Server::spawn(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "127.0.0.1:0",
        |_| {},
    )
}

/// The JSON log lines printed so far, once they satisfy `done` (the log is written by
/// a thread of its own, a moment after the event).
async fn json_lines_when(server: &Server, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..100 {
        let lines: Vec<Value> = server
            .printed()
            .iter()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if done(&lines) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the log never showed what was expected: {:#?}", server.printed());
}

fn access_line<'a>(lines: &'a [Value], request_id: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["target"] == "access" && l["request_id"] == request_id)
}

#[tokio::test]
async fn the_log_is_json_off_a_terminal_with_one_access_line_per_request_and_no_token() {
    let dir = TempDir::new("obs-log");
    let server = node(&dir, &[]);
    let http = Client::new();
    // A department token issued through the API: its name is logged, its secret never.
    let (status, issued) = send(
        &http,
        &server,
        "/v1/tokens",
        "demo-operator",
        &json!({"name": "长春市审批系统", "role": "verifier", "department": "220100-approval"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let secret = issued["token"].as_str().unwrap().to_owned();

    let r = http
        .post(server.at("/v1/licences"))
        .bearer_auth(AUTHORITY)
        .json(&business_licence("OBS-LOG-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let issue_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let licence: Value = r.json().await.unwrap();
    let licence_id = licence["id"].as_str().unwrap().to_owned();
    let r = http
        .get(server.at("/v1/grants"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let grants_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let r = http.get(server.at("/v1/grants")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let anonymous_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();

    let lines = json_lines_when(&server, |lines| {
        [&issue_id, &grants_id, &anonymous_id]
            .iter()
            .all(|id| access_line(lines, id).is_some())
    })
    .await;
    let issue = access_line(&lines, &issue_id).unwrap();
    assert_eq!(
        (
            &issue["role"],
            &issue["caller"],
            &issue["method"],
            &issue["route"],
            &issue["status"]
        ),
        (
            &json!("authority"),
            &json!(AUTHORITY),
            &json!("POST"),
            &json!("/v1/licences"),
            &json!(201)
        ),
        "{issue}"
    );
    assert!(issue["ms"].as_f64().is_some_and(|ms| ms > 0.0), "{issue}");
    assert_eq!(issue["level"], "INFO");
    let grants = access_line(&lines, &grants_id).unwrap();
    assert_eq!(
        (&grants["role"], &grants["caller"]),
        (&json!("verifier"), &json!("长春市审批系统"))
    );
    let anonymous = access_line(&lines, &anonymous_id).unwrap();
    assert_eq!((&anonymous["role"], &anonymous["status"]), (&json!("-"), &json!(401)));
    // The domain event, at info, names the licence.
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "licence issued" && l["licence"] == licence_id.as_str()),
        "no 'licence issued' line"
    );
    for line in server.printed() {
        assert!(!line.contains(&secret), "a token reached the log: {line}");
        assert!(!line.contains('\u{1b}'), "colours off a terminal: {line}");
    }
}

#[tokio::test]
async fn text_logs_have_no_colours_off_a_terminal_and_other_crates_stay_at_warn() {
    let dir = TempDir::new("obs-text");
    let server = node(&dir, &["--log-format", "text", "--log-level", "debug"]);
    let r = reqwest::get(server.at("/healthz")).await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut printed = Vec::new();
    for _ in 0..100 {
        printed = server.printed();
        if printed.iter().any(|l| l.contains(&id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let access = printed
        .iter()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no access line for {id}: {printed:#?}"));
    assert!(
        access.contains(" access: ") && access.contains("route=\"/healthz\""),
        "{access}"
    );
    for line in &printed {
        assert!(!line.contains('\u{1b}'), "colours off a terminal: {line}");
        // At debug, sled and hyper would talk; they are held at warn.
        for foreign in [" sled::", " hyper", " tokio_postgres", " h2::"] {
            assert!(!line.contains(foreign), "a third-party crate logged below warn: {line}");
        }
    }
}

/// The samples of one metric, as `(labels, value)`, from the Prometheus text format.
fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = match series.split_once('{') {
                Some((n, rest)) if n == name => rest.trim_end_matches('}'),
                None if series == name => "",
                _ => return None,
            };
            Some((labels, value.parse().ok()?))
        })
        .collect()
}

fn sample(text: &str, name: &str, labels: &str) -> f64 {
    samples(text, name)
        .into_iter()
        .find(|(l, _)| *l == labels)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
}

async fn scrape(http: &Client, server: &Server, accept: Option<&str>) -> (String, String) {
    let mut request = http.get(server.at("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let media_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    (media_type, r.text().await.unwrap())
}

/// `promtool check metrics` on `text` (Debian's prometheus package, installed by
/// scripts/test-deps.sh): the exposition parses and follows Prometheus's naming rules.
fn promtool_accepts(text: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (run scripts/test-deps.sh, which installs Debian's prometheus package)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_count_operations_verifications_use_records_and_the_log_in_both_formats() {
    let dir = TempDir::new("obs-metrics");
    // A source (that never answers), so that the sync metrics are there too.
    let source = format!("city-quiet=http://127.0.0.1:{}", common::free_port());
    let server = node(&dir, &["--source", &source]);
    let http = Client::new();
    let issued = common::post_json(&http, &server, "/v1/licences", AUTHORITY, &business_licence("OBS-M-1")).await;
    let id = issued["id"].as_str().unwrap().to_owned();
    let mut unknown_type = business_licence("OBS-M-2");
    unknown_type["type_code"] = json!("11220000013544541J099");
    let (status, refused) = send(&http, &server, "/v1/licences", AUTHORITY, &unknown_type).await;
    assert!(status.is_client_error(), "{refused}");
    let refused_code = refused["code"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &http,
        &server,
        &format!("/v1/licences/{id}/revoke"),
        AUTHORITY,
        &json!({"reason": "吊销"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let licence = common::licence_bytes(&http, &server, &id, AUTHORITY).await;
    let report = common::verify_at(
        &http,
        &server,
        &format!("/v1/verify?{PURPOSE}"),
        "demo-verifier",
        &licence,
    )
    .await;
    assert_eq!(report["verdict"], "INVALID", "revoked: {report}");

    let (media_type, text) = scrape(&http, &server, None).await;
    assert_eq!(media_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "the 0.0.4 format has no EOF");
    promtool_accepts(&text);
    let operation = |op: &str, type_code: &str, outcome: &str| {
        sample(
            &text,
            "zhengyin_licence_operations_total",
            &format!(
                "operation=\"{op}\",authority=\"{AUTHORITY_USCC}\",licence_type=\"{type_code}\",outcome=\"{outcome}\""
            ),
        )
    };
    assert_eq!(operation("issue", "11100000000013338W032", "ok"), 1.0);
    assert_eq!(operation("issue", "11220000013544541J099", &refused_code), 1.0);
    assert_eq!(operation("revoke", "11100000000013338W032", "ok"), 1.0);
    assert_eq!(
        sample(
            &text,
            "zhengyin_verifications_total",
            "kind=\"licence\",cryptosuite=\"eddsa-jcs-2022\",verdict=\"INVALID\""
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "zhengyin_build_info",
            &format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))
        ),
        1.0
    );
    assert_eq!(sample(&text, "zhengyin_objections_open", "state=\"filed\""), 0.0);
    assert!(
        sample(&text, "zhengyin_log_entries", "") >= 2.0,
        "issue and revoke are logged"
    );
    assert!(sample(&text, "zhengyin_store_write_seconds_count", "operation=\"licence\"") >= 1.0);
    assert!(sample(&text, "zhengyin_store_write_seconds_count", "operation=\"status\"") >= 1.0);
    // The department's verification wrote a use record, durably, before the answer.
    assert!(sample(&text, "zhengyin_use_records_written_total", "") >= 1.0);
    assert!(sample(&text, "zhengyin_use_journal_write_seconds_count", "") >= 1.0);
    assert!(!samples(&text, "zhengyin_signature_cache_misses_total").is_empty());

    // Every metric the dashboard and the alert rules query is one this node exports.
    let exported: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for file in ["deploy/grafana-dashboard.json", "deploy/prometheus-rules.yml"] {
        let used = metric_names(&std::fs::read_to_string(common::root().join(file)).unwrap());
        assert!(used.len() >= 5, "{file} queries {used:?}");
        for name in used {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                exported.contains(name.as_str()) || exported.contains(family),
                "{file} queries {name}, which the node does not export"
            );
        }
    }

    let (media_type, openmetrics) = scrape(&http, &server, Some("application/openmetrics-text; version=1.0.0")).await;
    assert_eq!(media_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(openmetrics.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
    assert!(openmetrics.contains("# TYPE zhengyin_licence_operations counter"));
}

/// The `zhengyin_…` metric names in `text`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.match_indices("zhengyin_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// The alert rules parse, and their unit tests (deploy/prometheus-rules.test.yml) pass.
#[test]
fn the_alert_rules_pass_promtool() {
    let deploy = common::root().join("deploy");
    for args in [
        ["check", "rules", "prometheus-rules.yml"],
        ["test", "rules", "prometheus-rules.test.yml"],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&deploy)
            .output()
            .expect("promtool (run scripts/test-deps.sh, which installs Debian's prometheus package)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn readiness_fails_while_a_source_is_past_its_maximum_staleness() {
    let dir = TempDir::new("obs-stale");
    // A source nobody answers for: not confirmed current once the staleness bound has passed.
    let dead = format!("city-dead=http://127.0.0.1:{}", common::free_port());
    let server = node(
        &dir,
        &[
            "--demo-authorities",
            "none",
            "--origin",
            "zhengyin.example/province",
            "--source",
            &dead,
            "--max-staleness-seconds",
            "1",
        ],
    );
    let http = Client::new();
    let mut last = Value::Null;
    for _ in 0..100 {
        let r = http.get(server.at("/readyz")).send().await.unwrap();
        let status = r.status();
        last = r.json().await.unwrap();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(last["code"], "sync.stale", "{last}");
            assert!(last["detail"].as_str().unwrap().contains("city-dead"), "{last}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still ready with a dead source: {last}");
}
