//! `zhengyin import` against a really started node (on each backend): bad lines refused alone
//! with their reasons and line numbers, a finished file skipped on a second run, and an import
//! killed mid-file and run again issues every line exactly once (counted in the signature log).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{binary, business_licence, log_entries, log_size, Server, TempDir};
use serde_json::Value;

const AUTHORITY: &str = "demo-authority-ed25519";

fn write_lines(path: &Path, tag: &str, count: usize) -> Vec<String> {
    let lines: Vec<String> = (0..count)
        .map(|i| business_licence(&format!("{tag}-{i:05}")).to_string())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    lines
}

fn import(server: &Server, file: &Path, batch: &str) -> Command {
    let mut command = Command::new(binary());
    command
        .args(["import", file.to_str().unwrap(), "--url", &server.url, "--batch", batch])
        .env("ZHENGYIN_TOKEN", AUTHORITY);
    command
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How many `licence.issued` entries the node's log holds under its latest checkpoint.
async fn issued_in_log(server: &Server) -> usize {
    let http = reqwest::Client::new();
    let size = log_size(&http, server).await as usize;
    log_entries(&http, server)
        .await
        .iter()
        .take(size)
        .filter(|e| e["event"] == "licence.issued")
        .count()
}

/// The `licence.issued` entries under the latest checkpoint, once that covers `expected` of them
/// (checkpoints follow the log within a second or so), or what it covers after 15 s.
async fn issued_once_checkpointed(server: &Server, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let count = issued_in_log(server).await;
        if count >= expected || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_lines_are_refused_alone_and_a_finished_file_is_not_sent_again() {
    let dir = TempDir::new("import");
    let server = Server::start(&dir.0.join("data"));
    let file = dir.0.join("licences.jsonl");
    let mut lines = write_lines(&file, "IMP", 2500);
    lines[10] = "{not json".to_owned();
    lines[1200] = "[1, 2]".to_owned();
    let mut bad: Value = serde_json::from_str(&lines[2400]).unwrap();
    bad["face"]["established"] = "2023-02-29".into();
    lines[2400] = bad.to_string();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let first = import(&server, &file, "1000").output().unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    assert!(text(&first).contains("2497 issued, 3 refused"), "{}", text(&first));
    let refused: Vec<(u64, String)> = std::fs::read_to_string(dir.0.join("licences.jsonl.refused.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["line"].as_u64().unwrap(), v["code"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        refused,
        [
            (11, "import.malformed_json".to_owned()),
            (1201, "import.not_an_object".to_owned()),
            (2401, "face.invalid".to_owned())
        ]
    );

    let again = import(&server, &file, "1000").output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("0 issued, 0 refused; 2500 lines done"),
        "{}",
        text(&again)
    );
    assert_eq!(issued_once_checkpointed(&server, 2497).await, 2497);

    let usage = Command::new(binary())
        .args([
            "import",
            file.to_str().unwrap(),
            "--url",
            &server.url,
            "--batch",
            "1001",
        ])
        .env("ZHENGYIN_TOKEN", AUTHORITY)
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
    let wrong_role = Command::new(binary())
        .args([
            "import",
            dir.0.join("other.jsonl").to_str().unwrap(),
            "--url",
            &server.url,
        ])
        .env("ZHENGYIN_TOKEN", "demo-verifier")
        .output()
        .unwrap();
    assert_ne!(wrong_role.status.code(), Some(0), "{}", text(&wrong_role));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_killed_mid_file_and_run_again_issues_every_line_exactly_once() {
    let dir = TempDir::new("import-kill");
    let server = Server::start(&dir.0.join("data"));
    let file = dir.0.join("licences.jsonl");
    write_lines(&file, "KILL", 3000);
    let progress = dir.0.join("licences.jsonl.progress");

    let mut running = import(&server, &file, "100")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = std::fs::read_to_string(&progress)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["done"].as_u64())
            .unwrap_or(0);
        if done >= 500 {
            break;
        }
        assert!(Instant::now() < deadline, "the import made no progress");
        assert!(
            running.try_wait().unwrap().is_none(),
            "the import ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running.kill().unwrap(); // SIGKILL, mid-file
    running.wait().unwrap();

    let resumed = import(&server, &file, "100").output().unwrap();
    assert!(
        text(&resumed).contains("lines done by an earlier run skipped"),
        "{}",
        text(&resumed)
    );
    // Anything refused now was issued before the kill (its answer not yet recorded).
    let refused = std::fs::read_to_string(dir.0.join("licences.jsonl.refused.jsonl")).unwrap_or_default();
    assert!(refused.lines().all(|l| l.contains("licence.number_taken")), "{refused}");
    assert_eq!(
        issued_once_checkpointed(&server, 3000).await,
        3000,
        "every line exactly once"
    );
}
