//! Slow and idle clients against a really started server: 500 connections that send half a
//! request and then nothing are closed after the header-read timeout while an ordinary caller
//! is served at once, a body that stops arriving is answered 408 problem+json, and a server at
//! its connection cap serves the next caller as soon as a connection frees; an oversized request
//! head gets problem+json (414, 431); an oversized body is answered 413 problem+json that the
//! client, still writing, can read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn server(dir: &TempDir, extra: &[&str]) -> Server {
    Server::start_demo(&dir.0.join("data"), extra)
}

fn address(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Whether the server closes `stream` within `limit` (EOF or a reset on read).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {} // an error response before the close is fine
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_closed_while_an_ordinary_caller_is_served_at_once() {
    let dir = TempDir::new("connections-slow");
    let server = server(&dir, &["--header-read-timeout-ms", "1500"]);
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = TcpStream::connect(address(&server)).await.unwrap();
        s.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthor")
            .await
            .unwrap();
        slow.push(s);
    }
    let http = reqwest::Client::new();
    let started = Instant::now();
    let r = http
        .get(server.at("/v1/log/checkpoint"))
        .bearer_auth("demo-auditor")
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(r.status().is_success(), "{}", r.status());
    eprintln!("answered beside 500 slow connections in {took:?}");
    assert!(took < Duration::from_secs(1), "an ordinary caller waited {took:?}");
    let mut open = 0;
    for s in &mut slow {
        if !closed_within(s, Duration::from_secs(10)).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "slow connections the server kept open past its header timeout");

    // An idle kept-alive connection is closed too.
    let mut idle = TcpStream::connect(address(&server)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)).await,
        "an idle connection stayed open"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_arriving_is_answered_408_problem_json() {
    let dir = TempDir::new("connections-body");
    let server = server(&dir, &["--body-read-timeout-ms", "1000"]);
    let mut s = TcpStream::connect(address(&server)).await.unwrap();
    s.write_all(
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-operator\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&answer).contains("request.timeout") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("request.timeout"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_its_connection_cap_the_server_serves_the_next_caller_once_one_frees() {
    let dir = TempDir::new("connections-cap");
    let server = server(&dir, &["--max-connections", "4", "--header-read-timeout-ms", "1500"]);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(address(&server)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        held.push(s);
    }
    let http = reqwest::Client::new();
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(20), http.get(server.at("/healthz")).send())
        .await
        .expect("the caller was never served")
        .unwrap();
    assert!(r.status().is_success());
    let waited = started.elapsed();
    eprintln!("the fifth caller was served after {waited:?}");
    assert!(
        waited >= Duration::from_millis(1000),
        "served at once: the cap of 4 connections did not hold ({waited:?})"
    );
}

/// A request target or headers beyond the API's limits get problem+json too (414, 431), not the
/// connection layer's bare answer; a head within them is served.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_request_head_is_answered_in_problem_json() {
    let dir = TempDir::new("connections-head");
    let server = server(&dir, &[]);
    let http = reqwest::Client::new();
    let problem = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let media = r.headers()["content-type"].to_str().unwrap().to_owned();
        let body: serde_json::Value = r.json().await.unwrap();
        (status, media, body["code"].as_str().unwrap_or_default().to_owned())
    };
    let long = format!("/v1/licences/{}", "A".repeat(9 * 1024));
    let r = http
        .get(server.at(&long))
        .bearer_auth("demo-verifier")
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r).await,
        (
            414,
            "application/problem+json".to_owned(),
            "request.uri_too_long".to_owned()
        )
    );
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..120 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap(),
            "1".parse().unwrap(),
        );
    }
    let r = http
        .get(server.at("/v1/licence-types"))
        .bearer_auth("demo-verifier")
        .headers(many)
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r).await,
        (
            431,
            "application/problem+json".to_owned(),
            "request.headers_too_large".to_owned()
        )
    );
    let big = "x".repeat(40 * 1024);
    let r = http
        .get(server.at("/v1/licence-types"))
        .bearer_auth("demo-verifier")
        .header("x-filler", big)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 431);
    let fine = http
        .get(server.at("/v1/licence-types"))
        .bearer_auth("demo-verifier")
        .header("x-filler", "x".repeat(4 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}

async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("no answer within 10 s")
            .expect("the connection was reset instead of answered");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if n == 0 || text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
            return text.into_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_answered_413_which_the_writing_client_can_read() {
    let dir = TempDir::new("connections-oversized");
    let server = server(&dir, &[]);
    // 2 MiB to a route that takes 256 KiB, written in pieces: the whole body goes through, the
    // answer is a 413 problem that says the connection closes.
    let body = vec![b' '; 2 * 1024 * 1024];
    let mut s = TcpStream::connect(address(&server)).await.unwrap();
    let head = format!(
        "POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-verifier\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for piece in body.chunks(64 * 1024) {
        s.write_all(piece).await.expect("the server cut the body off");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("request.too_large"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");

    // A body declared far too large is refused from its head, before any of it is read.
    let mut s = TcpStream::connect(address(&server)).await.unwrap();
    s.write_all(
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-verifier\r\n\
          Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_answer(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("request.too_large"), "{answer}");
}
