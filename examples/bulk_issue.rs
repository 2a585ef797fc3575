//! Measures bulk issuance (`POST /v1/licences/batch`) on a running demo node: TOTAL licences in
//! batches of BATCH, CONCURRENCY batches in flight, each licence with its own number and holder.
//! Prints the rate and the batch latency (and the line `RESULT <licences/s> <p50 ms> <p99 ms>`
//! for scripts); fails if any licence was refused.
//!
//!     cargo run --release --example bulk_issue -- URL TOTAL BATCH CONCURRENCY

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, total, batch, concurrency] = &args[..] else {
        panic!("usage: bulk_issue URL TOTAL BATCH CONCURRENCY");
    };
    let (total, batch, concurrency): (usize, usize, usize) = (
        total.parse().unwrap(),
        batch.parse().unwrap(),
        concurrency.parse().unwrap(),
    );
    // A run's numbers differ from any earlier run's on the same node.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let bodies: Vec<Value> = (0..total)
        .step_by(batch)
        .map(|start| {
            let licences: Vec<Value> = (start..total.min(start + batch))
                .map(|i| {
                    json!({
                        "type_code": "11100000000013338W032", "number": format!("BULK-{run}-{i:08}"),
                        "holder": {"name": "吉林示例科技有限公司", "code": holder(run, i), "code_type": "001"},
                        "valid_until": "2046-11-21",
                        "face": {"company_name": "吉林示例科技有限公司", "company_form": "有限责任公司",
                                 "legal_representative": "张三", "established": "2020-02-29", "address": "长春市示例路1号"}
                    })
                })
                .collect();
            json!({ "licences": licences })
        })
        .collect();
    let http = reqwest::Client::new();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for body in bodies {
        let (http, url, permit) = (
            http.clone(),
            url.clone(),
            std::sync::Arc::clone(&semaphore).acquire_owned().await.unwrap(),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer: Value = http
                .post(format!("{url}/v1/licences/batch"))
                .bearer_auth("demo-authority-ed25519")
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            drop(permit);
            let refused = answer["results"]
                .as_array()
                .unwrap_or_else(|| panic!("{answer}"))
                .iter()
                .filter(|r| r["code"].is_string())
                .count();
            (sent.elapsed(), refused)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (latency, r) = task.await.unwrap();
        latencies.push(latency);
        refused += r;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{total} licences in batches of {batch}, {concurrency} in flight: {:.0} licences/s; batch p50 {:?}, p99 {:?}; refused {refused}",
        total as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99)
    );
    println!(
        "RESULT {:.0} {:.1} {:.1}",
        total as f64 / elapsed.as_secs_f64(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3
    );
    assert_eq!(refused, 0, "licences were refused");
}

/// A holder of its own for licence `i` of run `run` (a valid USCC).
fn holder(run: u128, i: usize) -> String {
    let n = (run % 100_000) * 10u128.pow(10) + i as u128;
    zhengyin_model::Uscc::with_check_character(&format!("91{n:015}"))
        .unwrap()
        .to_string()
}
