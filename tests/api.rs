//! The HTTP API against a really started `zhengyin serve --demo`: the README walk-through, every
//! kind of bad input, and the OpenAPI contract.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{business_licence, Server, TempDir, ALGORITHMS, PURPOSE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

struct Api {
    server: Server,
    http: Client,
    _dir: TempDir,
}

impl Api {
    fn start() -> Api {
        let dir = TempDir::new("api");
        let server = Server::start(&dir.0);
        Api {
            server,
            http: Client::new(),
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.post_raw(path, token, serde_json::to_vec(body).unwrap()).await
    }

    async fn post_raw(&self, path: &str, token: &str, body: Vec<u8>) -> Response {
        self.http
            .post(self.server.at(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, token: &str) -> Response {
        self.http
            .get(self.server.at(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn issue(&self, alg: &str, number: &str) -> (String, Vec<u8>) {
        let r = self
            .post(
                "/v1/licences",
                &format!("demo-authority-{alg}"),
                &business_licence(number),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{alg}: {}", r.text().await.unwrap());
        let body: Value = r.json().await.unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        let bytes = self
            .get(&format!("/v1/licences/{id}"), &format!("demo-authority-{alg}"))
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec();
        (id, bytes)
    }

    async fn verify(&self, licence: Vec<u8>) -> Value {
        let r = self
            .post_raw(&format!("/v1/verify?{PURPOSE}"), "demo-verifier", licence)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}

/// Asserts a problem+json response with the given status and code.
async fn problem(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "expected {code}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["request_id"], request_id, "the body names the request id");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn walk_through_issue_verify_tamper_revoke() {
    let api = Api::start();
    for alg in ALGORITHMS {
        let (id, licence) = api.issue(alg, "JL2026000001").await;
        assert_eq!(api.verify(licence.clone()).await["verdict"], "VALID", "{alg}");

        let tampered = String::from_utf8(licence.clone())
            .unwrap()
            .replace("张三", "李四")
            .into_bytes();
        let report = api.verify(tampered).await;
        assert_eq!(report["verdict"], "INVALID");

        let r = api
            .post(
                &format!("/v1/licences/{id}/revoke"),
                &format!("demo-authority-{alg}"),
                &json!({"reason": "吊销", "note": "违法经营"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let report = api.verify(licence).await;
        assert_eq!(report["verdict"], "INVALID");
        let status = common::report_check(&report, "status");
        assert!(status["message"].as_str().unwrap().contains("revoked"), "{status}");

        let r = api.get(&format!("/v1/licences/{id}/status"), "demo-operator").await;
        assert_eq!(r.json::<Value>().await.unwrap()["state"], "revoked");
    }
    // The second verification of each licence (after its revocation) reused its verified signature.
    let metrics = reqwest::get(api.server.at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("zhengyin_signature_cache_hits_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cache metric in {metrics}"));
    assert!(hits >= ALGORITHMS.len() as u64, "{hits}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_problem_never_a_5xx() {
    let api = Api::start();
    let issuer = "demo-authority-ed25519";
    problem(
        api.post_raw("/v1/licences", issuer, b"{\"type_code\":".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "request.malformed_json",
    )
    .await;
    problem(
        api.post_raw("/v1/licences", issuer, b"{\"a\":1,\"a\":2}".to_vec())
            .await,
        StatusCode::BAD_REQUEST,
        "request.malformed_json",
    )
    .await;
    let mut wrong_type = business_licence("N");
    wrong_type["holder"] = json!("someone");
    problem(
        api.post("/v1/licences", issuer, &wrong_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "request.invalid",
    )
    .await;
    let huge = vec![b' '; 300 * 1024];
    problem(
        api.post_raw("/v1/licences", issuer, huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request.too_large",
    )
    .await;
    let r = api
        .http
        .post(api.server.at("/v1/licences"))
        .bearer_auth(issuer)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "request.unsupported_media_type").await;

    let mut bad_uscc = business_licence("N");
    bad_uscc["holder"]["code"] = json!("91350100M000100Y44");
    problem(
        api.post("/v1/licences", issuer, &bad_uscc).await,
        StatusCode::BAD_REQUEST,
        "identifier.invalid",
    )
    .await;
    let mut bad_type = business_licence("N");
    bad_type["type_code"] = json!("11100000000013338W0X2");
    problem(
        api.post("/v1/licences", issuer, &bad_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "request.invalid",
    )
    .await;
    let mut unknown_type = business_licence("N");
    unknown_type["type_code"] = json!("11100000000013338W099");
    problem(
        api.post("/v1/licences", issuer, &unknown_type).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "licence_type.unknown",
    )
    .await;
    let mut schema = business_licence("N");
    schema["face"]["registered_capital"] = json!("五百万");
    let body = problem(
        api.post("/v1/licences", issuer, &schema).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "face.invalid",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("registered_capital"));
    // Text that displays as something else, control characters, dates that are not calendar
    // dates of the years 0001-9999: refused, each with the field named.
    for (field, value, code) in [
        ("/holder/name", json!("吉林\u{202E}示例科技有限公司"), "request.invalid"),
        ("/number", json!("JL\u{0}1"), "request.invalid"),
        ("/face/address", json!("长春市\n示例路1号"), "face.invalid"),
        ("/face/company_name", json!("\u{1b}[31m吉林示例"), "face.invalid"),
        ("/valid_until", json!("0000-01-01"), "request.invalid"),
        ("/valid_until", json!("-0001-01-01"), "request.invalid"),
        ("/face/established", json!("2023-02-29"), "face.invalid"),
    ] {
        let mut bad = business_licence("N");
        *bad.pointer_mut(field).unwrap() = value.clone();
        let r = api.post("/v1/licences", issuer, &bad).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(
            status.is_client_error() && body["code"] == code,
            "{field} = {value}: {status} {body}"
        );
    }
    // A physician's licence needs a citizen ID with a right check character.
    let doctor = |code: &str| {
        json!({
            "type_code": "12100000400010398P001", "number": "D1",
            "holder": {"name": "王医生", "code": code, "code_type": "111"},
            "face": {"practitioner_name": "王医生", "practice_category": "临床", "practice_place": "示例医院"}
        })
    };
    problem(
        api.post("/v1/licences", "demo-authority-sm2", &doctor("110105194912310021"))
            .await,
        StatusCode::BAD_REQUEST,
        "identifier.invalid",
    )
    .await;
    assert_eq!(
        api.post("/v1/licences", "demo-authority-sm2", &doctor("11010519491231002X"))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Only the authorities the catalogue lists issue a type: the doctor's licence is the SM2
    // (health) authority's alone, until it binds another; only it (or an operator) may.
    let ed25519 = || doctor("11010519491231002X");
    problem(
        api.post("/v1/licences", "demo-authority-ed25519", &ed25519()).await,
        StatusCode::FORBIDDEN,
        "licence_type.not_bound",
    )
    .await;
    let issuers = "/v1/licence-types/12100000400010398P001/issuers";
    let bind = json!({"issuers": ["11220000013544541J"]});
    problem(
        api.post(issuers, "demo-authority-ed25519", &bind).await,
        StatusCode::FORBIDDEN,
        "auth.scope",
    )
    .await;
    problem(
        api.post(issuers, "demo-verifier", &bind).await,
        StatusCode::FORBIDDEN,
        "auth.forbidden",
    )
    .await;
    let unknown = json!({"issuers": ["91110000600037341L"]});
    problem(
        api.post(issuers, "demo-authority-sm2", &unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "authority.unknown",
    )
    .await;
    let r = api.post(issuers, "demo-authority-sm2", &bind).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["issuers"], json!(["11220000013544541J"]), "{t}");
    assert_eq!(
        api.post("/v1/licences", "demo-authority-ed25519", &ed25519())
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = api.post(issuers, "demo-operator", &json!({"issuers": []})).await;
    assert_eq!(r.status(), StatusCode::OK);
    problem(
        api.post("/v1/licences", "demo-authority-ed25519", &ed25519()).await,
        StatusCode::FORBIDDEN,
        "licence_type.not_bound",
    )
    .await;

    // Refusals made below the handlers are problem+json too: a path segment that is not UTF-8
    // once decoded (axum's own text refusal, turned into a problem); a query that does not parse.
    problem(
        api.get("/v1/licences/%FF%FE", "demo-verifier").await,
        StatusCode::BAD_REQUEST,
        "request.malformed",
    )
    .await;
    problem(
        api.get("/v1/log/entries?start=x&end=1", "demo-auditor").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "request.invalid",
    )
    .await;

    // A verification without a licence, a page larger than the spec's maximum.
    for body in [&b""[..], b"  \n"] {
        problem(
            api.post_raw("/v1/verify", "demo-operator", body.to_vec()).await,
            StatusCode::BAD_REQUEST,
            "request.malformed_json",
        )
        .await;
    }
    for limit in ["0", "501"] {
        problem(
            api.get(&format!("/v1/use-records?limit={limit}"), "demo-auditor").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.invalid",
        )
        .await;
    }
    assert_eq!(
        api.get("/v1/use-records?limit=500", "demo-auditor").await.status(),
        StatusCode::OK
    );

    // Identifiers in paths.
    let wrong_check = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.G";
    problem(
        api.get(&format!("/v1/licences/{wrong_check}"), "demo-verifier").await,
        StatusCode::BAD_REQUEST,
        "identifier.invalid",
    )
    .await;
    let absent = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F";
    problem(
        api.get(&format!("/v1/licences/{absent}"), "demo-operator").await,
        StatusCode::NOT_FOUND,
        "licence.not_found",
    )
    .await;
    // A department reads licences only through the per-type interface (grant, use cause, record).
    problem(
        api.get(&format!("/v1/licences/{absent}"), "demo-verifier").await,
        StatusCode::FORBIDDEN,
        "auth.forbidden",
    )
    .await;

    // Callers.
    let r = api
        .http
        .post(api.server.at("/v1/verify"))
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNAUTHORIZED, "auth.missing").await;
    problem(
        api.post("/v1/verify", "not-a-token", &json!({})).await,
        StatusCode::UNAUTHORIZED,
        "auth.invalid",
    )
    .await;
    problem(
        api.post("/v1/verify", issuer, &json!({})).await,
        StatusCode::FORBIDDEN,
        "auth.forbidden",
    )
    .await;
    problem(
        api.post("/v1/licences", "demo-verifier", &business_licence("N")).await,
        StatusCode::FORBIDDEN,
        "auth.forbidden",
    )
    .await;
    problem(
        api.post("/v1/licence-types", issuer, &json!({})).await,
        StatusCode::FORBIDDEN,
        "auth.forbidden",
    )
    .await;
    let (id, licence) = api.issue("ed25519", "N2").await;
    let revoke = json!({"reason": "cancelled"});
    problem(
        api.post(&format!("/v1/licences/{id}/revoke"), "demo-authority-sm2", &revoke)
            .await,
        StatusCode::FORBIDDEN,
        "auth.scope",
    )
    .await;
    problem(
        api.get(&format!("/v1/licences/{id}"), "demo-authority-sm2").await,
        StatusCode::FORBIDDEN,
        "auth.scope",
    )
    .await;
    problem(
        api.get(&format!("/v1/licences/{id}"), "demo-auditor").await,
        StatusCode::FORBIDDEN,
        "auth.forbidden",
    )
    .await;

    // Changing a revoked licence.
    assert_eq!(
        api.post(&format!("/v1/licences/{id}/revoke"), issuer, &revoke)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        api.post(&format!("/v1/licences/{id}/revoke"), issuer, &revoke)
            .await
            .status(),
        StatusCode::OK,
        "revoking twice is harmless"
    );
    let update = json!({"reason": "更正", "face": business_licence("N")["face"]});
    problem(
        api.post(&format!("/v1/licences/{id}/versions"), issuer, &update).await,
        StatusCode::CONFLICT,
        "licence.status_conflict",
    )
    .await;
    problem(
        api.post(&format!("/v1/licences/{id}/revoke"), issuer, &json!({"reason": "lost"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "request.invalid",
    )
    .await;

    // Verification answers with a report, never an error, for anything licence-shaped or not.
    let mut value: Value = serde_json::from_slice(&licence).unwrap();
    value["proof"]["cryptosuite"] = json!("bbs-2023");
    assert_eq!(
        api.verify(serde_json::to_vec(&value).unwrap()).await["verdict"],
        "INDETERMINATE"
    );
    for junk in [&b"[]"[..], b"{}", b"null", b"{\"proof\":1}", b"\xff\xfe"] {
        assert_eq!(api.verify(junk.to_vec()).await["verdict"], "INVALID", "{junk:?}");
    }
    problem(
        api.post_raw("/v1/verify?at=yesterday", "demo-verifier", licence.clone())
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "request.invalid",
    )
    .await;

    // Routes.
    problem(
        api.get("/v1/nothing-here", "demo-verifier").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = api.http.delete(api.server.at("/v1/verify")).send().await.unwrap();
    problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // Nothing above was a server error.
    common::assert_no_server_errors(&api.server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_and_suspension_over_http() {
    let api = Api::start();
    let issuer = "demo-authority-p256";
    let (id, v1) = api.issue("p256", "U1").await;
    let mut face = business_licence("U1")["face"].clone();
    face["registered_capital"] = json!(1000);
    let r = api
        .post(
            &format!("/v1/licences/{id}/versions"),
            issuer,
            &json!({"reason": "增资", "face": face}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v2: Value = r.json().await.unwrap();
    assert!(v2["id"]
        .as_str()
        .unwrap()
        .ends_with(&format!(".002.{}", v2["id"].as_str().unwrap().chars().last().unwrap())));
    assert_eq!(api.verify(v1).await["verdict"], "INVALID");
    let v2_id = v2["id"].as_str().unwrap();
    let v2_bytes = api
        .get(&format!("/v1/licences/{v2_id}"), "demo-operator")
        .await
        .bytes()
        .await
        .unwrap()
        .to_vec();
    assert_eq!(api.verify(v2_bytes.clone()).await["verdict"], "VALID");
    problem(
        api.post(&format!("/v1/licences/{id}/suspend"), issuer, &json!({"reason": "x"}))
            .await,
        StatusCode::CONFLICT,
        "licence.status_conflict",
    )
    .await;
    assert_eq!(
        api.post(
            &format!("/v1/licences/{v2_id}/suspend"),
            issuer,
            &json!({"reason": "核查"})
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(api.verify(v2_bytes.clone()).await["verdict"], "INVALID");
    let r = api
        .http
        .post(api.server.at(&format!("/v1/licences/{v2_id}/reinstate")))
        .bearer_auth(issuer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(api.verify(v2_bytes).await["verdict"], "VALID");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_openapi_is_the_file_and_every_operation_is_routed() {
    let api = Api::start();
    let file: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(common::root().join("api-spec/openapi.yaml")).unwrap())
            .unwrap();
    let served = common::get_json(&api.http, &api.server, "/openapi.json", "demo-verifier").await;
    assert_eq!(served, file, "/openapi.json must serve api-spec/openapi.yaml");
    assert_eq!(file["openapi"], "3.1.0");
    let paths = file["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "every route is documented");
    let licence_id = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F";
    for (path, ops) in paths {
        let concrete = path
            .replace("{id}", licence_id)
            .replace("{uscc}", "11220000013544541J")
            .replace("{code}", "11100000000013338W032");
        for method in ops
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "post", "put", "delete"].contains(&m.as_str()))
        {
            let r = api
                .http
                .request(method.to_uppercase().parse().unwrap(), api.server.at(&concrete))
                .bearer_auth("demo-operator")
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
            let code = body["code"].as_str().unwrap_or_default();
            assert!(
                code != "not_found" && code != "method_not_allowed",
                "{method} {path} is not routed: {status}"
            );
            assert!(!status.is_server_error(), "{method} {path}: {status} {code}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_verification_reports_each_licence_and_refuses_bad_batches() {
    let api = Api::start();
    let mut licences = Vec::new();
    for (i, alg) in ["ed25519", "ed25519", "ed25519"]
        .iter()
        .chain(ALGORITHMS.iter())
        .enumerate()
    {
        licences.push(api.issue(alg, &format!("BATCH-{i}")).await);
    }
    let (revoked_id, revoked) = api.issue("ed25519", "BATCH-R").await;
    let r = api
        .post(
            &format!("/v1/licences/{revoked_id}/revoke"),
            "demo-authority-ed25519",
            &json!({"reason": "注销", "note": "企业注销"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tampered = String::from_utf8(licences[1].1.clone())
        .unwrap()
        .replace("张三", "李四")
        .into_bytes();
    let mut entries: Vec<Vec<u8>> = licences.iter().map(|(_, bytes)| bytes.clone()).collect();
    entries.extend([tampered, revoked, br#"{"not":"a licence"}"#.to_vec(), b"[]".to_vec()]);
    let mut body = b"{\"licences\":[".to_vec();
    body.extend(entries.join(&b","[..]));
    body.extend(b"]}");
    let r = api
        .post_raw(&format!("/v1/verify/batch?{PURPOSE}"), "demo-verifier", body)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    let reports = answer["reports"].as_array().unwrap();
    assert_eq!(reports.len(), entries.len());
    // One use record per licence whose identifier could be read; none for the two non-licences.
    let records = answer["use_records"].as_array().unwrap();
    assert_eq!(records.len(), entries.len());
    assert!(records[..entries.len() - 2]
        .iter()
        .all(|r| r.as_str().is_some_and(|id| id.starts_with("UR"))));
    assert_eq!(records[entries.len() - 2..], [Value::Null, Value::Null]);
    for (entry, report) in entries.iter().zip(reports) {
        let single = api.verify(entry.clone()).await;
        assert_eq!(report["verdict"], single["verdict"]);
        assert_eq!(report["checks"], single["checks"]);
    }
    let verdicts: Vec<&str> = reports.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    let mut expected = vec!["VALID"; licences.len()];
    expected.extend(["INVALID"; 4]);
    assert_eq!(verdicts, expected);

    // Bad batches: each a clear problem.
    let one = String::from_utf8(licences[0].1.clone()).unwrap();
    let too_many = format!("{{\"licences\":[{}]}}", vec![one.as_str(); 257].join(","));
    let r = api
        .post_raw(
            &format!("/v1/verify/batch?{PURPOSE}"),
            "demo-verifier",
            too_many.into_bytes(),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "verify.batch_too_large").await;
    let r = api
        .post_raw(
            &format!("/v1/verify/batch?{PURPOSE}"),
            "demo-verifier",
            b"{\"licences\":[".to_vec(),
        )
        .await;
    problem(r, StatusCode::BAD_REQUEST, "request.malformed_json").await;
    let r = api
        .post(
            &format!("/v1/verify/batch?{PURPOSE}"),
            "demo-verifier",
            &json!({"licence": []}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "request.invalid").await;
    let r = api
        .post(
            &format!("/v1/verify/batch?{PURPOSE}"),
            "demo-verifier",
            &json!({"licences": {}}),
        )
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "request.invalid").await;
    let huge = format!("{{\"licences\":[\"{}\"]}}", "x".repeat(5 * 1024 * 1024));
    let r = api
        .post_raw(
            &format!("/v1/verify/batch?{PURPOSE}"),
            "demo-verifier",
            huge.into_bytes(),
        )
        .await;
    problem(r, StatusCode::PAYLOAD_TOO_LARGE, "request.too_large").await;
    let r = api
        .post("/v1/verify/batch", "demo-authority-ed25519", &json!({"licences": []}))
        .await;
    problem(r, StatusCode::FORBIDDEN, "auth.forbidden").await;
    let r = api
        .post("/v1/verify/batch", "no-such-token", &json!({"licences": []}))
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "auth.invalid").await;
    let r = api
        .post(
            &format!("/v1/verify/batch?{PURPOSE}"),
            "demo-verifier",
            &json!({"licences": []}),
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"reports": [], "use_records": []})
    );

    let metrics = reqwest::get(api.server.at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("zhengyin_verify_batch_size_count 2"), "{metrics}");
    // The SM2 licence was verified once in the batch and once alone.
    for kind in ["licence_batch", "licence"] {
        let series =
            format!(r#"zhengyin_verifications_total{{kind="{kind}",cryptosuite="sm2-jcs-2026",verdict="VALID"}} 1"#);
        assert!(metrics.contains(&series), "{series} in {metrics}");
    }
    assert!(
        metrics.contains("zhengyin_verify_duration_seconds_bucket{"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crl_given_by_an_operator_turns_a_compromised_authoritys_licences_invalid() {
    let api = Api::start();
    let (_, licence) = api.issue("ed25519", "CRL-1").await;
    assert_eq!(api.verify(licence.clone()).await["verdict"], "VALID");
    let crl =
        std::fs::read_to_string(common::root().join("keys-example/test-only/issuing-ca-revocations.crl.pem")).unwrap();
    let r = api.post("/v1/crls", "demo-operator", &json!({"crl": crl})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["revoked"], 2);
    let report = api.verify(licence).await;
    assert_eq!(report["verdict"], "INVALID", "{report}");
    problem(
        api.post(
            "/v1/crls",
            "demo-operator",
            &json!({"crl": "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "certificate.invalid",
    )
    .await;
    let r = api
        .post("/v1/licences", "demo-authority-ed25519", &business_licence("CRL-2"))
        .await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY, "certificate.invalid").await;
}
