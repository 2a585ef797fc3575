//! Prepares the request bodies of `benches/load.sh`: issues licences on a running demo node and
//! writes them one per line, plus batch bodies.
//!
//!     cargo run --release --example load_fixtures -- URL COUNT BATCH OUT_DIR
//!
//! Writes `OUT_DIR/licences.jsonl` (COUNT distinct Ed25519 licences, exactly as served) and
//! `OUT_DIR/batches.jsonl` (`{"licences": [...]}` bodies of BATCH licences each).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;

use serde_json::{json, value::RawValue, Value};

const CONCURRENCY: usize = 32;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, count, batch, out] = &args[..] else {
        panic!("usage: load_fixtures URL COUNT BATCH OUT_DIR");
    };
    let (count, batch): (usize, usize) = (count.parse().unwrap(), batch.parse().unwrap());
    let http = reqwest::Client::new();
    let mut licences = Vec::with_capacity(count);
    for chunk_start in (0..count).step_by(CONCURRENCY) {
        let tasks: Vec<_> = (chunk_start..count.min(chunk_start + CONCURRENCY))
            .map(|i| tokio::spawn(issue(http.clone(), url.clone(), i)))
            .collect();
        for task in tasks {
            licences.push(task.await.unwrap());
        }
    }
    let dir = std::path::Path::new(out);
    let mut lines = std::fs::File::create(dir.join("licences.jsonl")).unwrap();
    for l in &licences {
        writeln!(lines, "{l}").unwrap();
    }
    let mut batches = std::fs::File::create(dir.join("batches.jsonl")).unwrap();
    for chunk in licences.chunks_exact(batch) {
        writeln!(batches, "{{\"licences\":[{}]}}", chunk.join(",")).unwrap();
    }
    eprintln!(
        "{} licences, {} batches of {batch}",
        licences.len(),
        licences.len() / batch
    );
}

/// Issues licence number `i` and returns it exactly as the node serves it (one line).
async fn issue(http: reqwest::Client, url: String, i: usize) -> String {
    let body = json!({
        "type_code": "11100000000013338W032", "number": format!("LOAD-{i:07}"),
        "holder": {"name": "吉林示例科技有限公司", "code": "91350100M000100Y43", "code_type": "001"},
        "valid_until": "2046-11-21",
        "face": {"company_name": "吉林示例科技有限公司", "company_form": "有限责任公司",
                 "legal_representative": "张三", "established": "2020-02-29", "address": "长春市示例路1号"}
    });
    let r = http
        .post(format!("{url}/v1/licences"))
        .bearer_auth("demo-authority-ed25519")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let envelope: Value = r.json().await.unwrap();
    let licence: Box<RawValue> = serde_json::from_value(envelope["licence"].clone()).unwrap();
    licence.get().to_owned()
}
