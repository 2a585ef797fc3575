//! Prepares the request bodies of `benches/load.sh`: issues licences on a running demo node and
//! writes them one per line, plus batch bodies.
//!
//!     cargo run --release --example load_fixtures -- URL COUNT BATCH OUT_DIR
//!
//! Writes `OUT_DIR/licences.jsonl` (COUNT distinct Ed25519 licences, exactly as served, each to
//! its own holder), `OUT_DIR/batches.jsonl` (`{"licences": [...]}` bodies of BATCH licences
//! each), and the bodies of the per-type lookup by identifier and by holder
//! (`lookups-id.jsonl`, `lookups-holder.jsonl`), after the demo department has been granted
//! access (applied for and approved here).

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
    grant(&http, url).await;
    let mut by_id = std::fs::File::create(dir.join("lookups-id.jsonl")).unwrap();
    let mut by_holder = std::fs::File::create(dir.join("lookups-holder.jsonl")).unwrap();
    for (i, l) in licences.iter().enumerate() {
        let id = serde_json::from_str::<Value>(l).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let purpose = json!({"service_item": "220100-FOOD-001", "use_cause": "办理食品经营许可，核验营业执照"});
        let mut body = purpose.clone();
        body["id"] = json!(id);
        writeln!(by_id, "{body}").unwrap();
        let mut body = purpose;
        body["holder"] = json!({"code_type": "001", "code": holder(i)});
        writeln!(by_holder, "{body}").unwrap();
    }
    eprintln!(
        "{} licences, {} batches of {batch}",
        licences.len(),
        licences.len() / batch
    );
}

/// The demo department applies for the business-licence type; its defining authority approves.
async fn grant(http: &reqwest::Client, url: &str) {
    let until = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let application = json!({
        "type_code": "11100000000013338W032",
        "fields": ["company_name", "legal_representative", "number"],
        "service_items": ["220100-FOOD-001"],
        "purpose": "load test", "until": zhengyin_model::licence::format_time(until)
    });
    let r = http
        .post(format!("{url}/v1/grants"))
        .bearer_auth("demo-verifier")
        .json(&application)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{url}/v1/grants/{id}/approve"))
        .bearer_auth("demo-authority-p256")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// A valid USCC for holder number `i`: a fixed prefix, `i`, and the check character that fits.
fn holder(i: usize) -> String {
    zhengyin_model::Uscc::with_check_character(&format!("91220100MA{i:07}"))
        .unwrap()
        .to_string()
}

/// Issues licence number `i` and returns it exactly as the node serves it (one line).
async fn issue(http: reqwest::Client, url: String, i: usize) -> String {
    let body = json!({
        "type_code": "11100000000013338W032", "number": format!("LOAD-{i:07}"),
        "holder": {"name": "吉林示例科技有限公司", "code": holder(i), "code_type": "001"},
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
