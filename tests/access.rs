//! One licence, one interface against a really started server: the approval system's walk-through
//! (grant, lookup with a use cause, data check, fetch and verify), the holder's view (use records,
//! authorisations, withdrawal), holder tokens refused for every reason, and the access matrix —
//! every documented operation called with every role.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    business_licence, get, holder_token, holder_token_with, identity_key, send, Server, TempDir, DEMO_ISSUER,
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use zhengyin_crypto::FileKey;

const TYPE: &str = "11100000000013338W032";
/// Issues and defines the business licence type in the demo.
const DEFINER: &str = "demo-authority-p256";
const DEPARTMENT: &str = "demo-verifier";
const ITEM: &str = "220100-FOOD-001";
const HOLDER: &str = "91350100M000100Y43";

/// Issues a business licence as the definer; its id.
async fn issue(http: &Client, server: &Server, number: &str) -> String {
    let (status, body) = send(http, server, "/v1/licences", DEFINER, &business_licence(number)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Applies for a grant as the department and has the definer approve it; its id.
async fn grant(http: &Client, server: &Server, fields: &[&str], requires_authorisation: bool) -> String {
    let until = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let (status, g) = send(
        http,
        server,
        "/v1/grants",
        DEPARTMENT,
        &json!({
            "type_code": TYPE, "fields": fields, "service_items": [ITEM],
            "requires_authorisation": requires_authorisation,
            "purpose": "《食品经营许可和备案管理办法》", "until": format_time(until)
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    let id = g["id"].as_str().unwrap().to_owned();
    let (status, g) = send(http, server, &format!("/v1/grants/{id}/approve"), DEFINER, &json!({})).await;
    assert_eq!((status, g["state"].as_str()), (StatusCode::OK, Some("approved")), "{g}");
    id
}

fn format_time(t: time::OffsetDateTime) -> String {
    zhengyin_model::licence::format_time(t)
}

fn use_body(id: &str) -> Value {
    json!({"service_item": ITEM, "use_cause": "办理食品经营许可，核验营业执照", "id": id})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_system_uses_a_licence_and_the_holder_sees_it() {
    let dir = TempDir::new("access");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue(&http, &server, "JL-ACCESS-1").await;
    let lookup = format!("/v1/licence-types/{TYPE}/lookup");

    // Before any grant: refused, and the same answer for an identifier that does not exist.
    let (s1, p1) = send(&http, &server, &lookup, DEPARTMENT, &use_body(&id)).await;
    let (s2, p2) = send(
        &http,
        &server,
        &lookup,
        DEPARTMENT,
        &use_body("1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"),
    )
    .await;
    assert_eq!(
        (s1, p1["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("grant.missing")),
        "{p1}"
    );
    assert_eq!((s2, p2["code"].as_str()), (s1, p1["code"].as_str()));
    assert_eq!(p1["detail"], p2["detail"]);

    // The department applies, the defining authority approves.
    grant(
        &http,
        &server,
        &["company_name", "legal_representative", "number"],
        false,
    )
    .await;

    // Lookup by identifier, with the use cause: only the granted fields.
    let (status, found) = send(&http, &server, &lookup, DEPARTMENT, &use_body(&id)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let licence = &found["licences"][0];
    assert_eq!(licence["status"], "valid");
    assert_eq!(
        licence["face"],
        json!({"company_name": "吉林示例科技有限公司", "legal_representative": "张三"})
    );
    assert_eq!(licence["number"], "JL-ACCESS-1");
    assert!(
        !found.to_string().contains("长春市示例路1号"),
        "the address is not granted"
    );
    // By holder code.
    let (status, by_holder) = send(
        &http,
        &server,
        &lookup,
        DEPARTMENT,
        &json!({"service_item": ITEM, "use_cause": "核验", "holder": {"code_type": "001", "code": HOLDER}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_holder}");
    assert!(by_holder["licences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["id"] == id.as_str()));

    // Check claimed data: which fields match, never the stored values.
    let (status, checked) = send(
        &http,
        &server,
        &format!("/v1/licence-types/{TYPE}/check"),
        DEPARTMENT,
        &json!({"service_item": ITEM, "use_cause": "核验申请材料", "id": id,
                "claims": {"company_name": "吉林示例科技有限公司", "legal_representative": "李四"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(
        checked["licences"][0]["results"],
        json!({"company_name": "match", "legal_representative": "mismatch"})
    );
    assert!(!checked.to_string().contains("张三"));

    // Fetch needs every field; with this grant it is refused with its own code.
    let (status, p) = send(
        &http,
        &server,
        &format!("/v1/licence-types/{TYPE}/fetch"),
        DEPARTMENT,
        &use_body(&id),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("grant.fields_insufficient"))
    );

    // Bad purpose: missing, over-long, unknown service item, an item the grant does not list.
    for (body, code) in [
        (
            json!({"service_item": ITEM, "use_cause": "", "id": id}),
            "use.cause_invalid",
        ),
        (
            json!({"service_item": ITEM, "use_cause": "事".repeat(201), "id": id}),
            "use.cause_invalid",
        ),
        (
            json!({"service_item": "NO-SUCH-ITEM", "use_cause": "核验", "id": id}),
            "use.unknown_service_item",
        ),
        (
            json!({"service_item": "220100-BANK-002", "use_cause": "核验", "id": id}),
            "grant.service_item_not_granted",
        ),
        (json!({"service_item": ITEM, "id": id}), "request.invalid"),
    ] {
        let (_, p) = send(&http, &server, &lookup, DEPARTMENT, &body).await;
        assert_eq!(p["code"], code, "{body}");
    }
    // A grant for one type opens no other type.
    let (status, p) = send(
        &http,
        &server,
        "/v1/licence-types/12100000400010398P001/lookup",
        DEPARTMENT,
        &use_body(&id),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("grant.missing"))
    );

    // Verifying a presented licence is a use too: recorded, named in a response header.
    let signed = common::licence_bytes(&http, &server, &id, DEFINER).await;
    let r = http
        .post(server.at(&format!("/v1/verify?{}", common::PURPOSE)))
        .bearer_auth(DEPARTMENT)
        .header("content-type", "application/json")
        .body(signed.clone())
        .send()
        .await
        .unwrap();
    let verify_record = r.headers()["zhengyin-use-record"].to_str().unwrap().to_owned();
    assert_eq!(r.json::<Value>().await.unwrap()["verdict"], "VALID");
    // A forged copy naming this holder is recorded without the holder: it cannot write into its list.
    let forged = String::from_utf8(signed.to_vec()).unwrap().replace("张三", "王五");
    let r = http
        .post(server.at(&format!("/v1/verify?{}", common::PURPOSE)))
        .bearer_auth(DEPARTMENT)
        .header("content-type", "application/json")
        .body(forged)
        .send()
        .await
        .unwrap();
    let forged_record = r.headers()["zhengyin-use-record"].to_str().unwrap().to_owned();
    assert_eq!(r.json::<Value>().await.unwrap()["verdict"], "INVALID");

    // The holder signs in and sees who used its licence, for what.
    let me = holder_token(HOLDER);
    let (status, records) = get(&http, &server, "/v1/me/use-records", &me).await;
    assert_eq!(status, StatusCode::OK, "{records}");
    let records = records["use_records"].as_array().unwrap().clone();
    assert!(records.len() >= 3, "{records:?}");
    assert!(records.iter().all(|r| r["department"] == "示例审批系统"));
    assert!(records
        .iter()
        .any(|r| r["use_cause"] == "核验申请材料" && r["operation"] == "check"));
    assert!(records
        .iter()
        .any(|r| r["id"] == verify_record.as_str() && r["operation"] == "verify" && r["use_cause"] == "核验"));
    assert!(
        records.iter().all(|r| r["id"] != forged_record.as_str()),
        "a forged copy is not the holder's use"
    );
    let (status, mine) = get(&http, &server, "/v1/me/licences", &me).await;
    assert_eq!(status, StatusCode::OK);
    assert!(mine["licences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["id"] == id.as_str()));
    // Another holder sees none of it.
    let other = holder_token("91110000600037341L");
    let (_, theirs) = get(&http, &server, "/v1/me/use-records", &other).await;
    assert_eq!(theirs["use_records"], json!([]));
    let (_, theirs) = get(&http, &server, "/v1/me/licences", &other).await;
    assert_eq!(theirs["licences"], json!([]));
    // Concurrent uses share group commits; every one is recorded exactly once.
    let (_, before) = get(&http, &server, "/v1/use-records?limit=500", "demo-auditor").await;
    let before = before["use_records"].as_array().unwrap().len();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (http, url, body) = (http.clone(), server.at(&lookup), use_body(&id));
            tokio::spawn(async move {
                let r = http.post(url).bearer_auth(DEPARTMENT).json(&body).send().await.unwrap();
                let status = r.status();
                if status != StatusCode::OK {
                    panic!("{status}: {}", r.text().await.unwrap());
                }
                r.json::<Value>().await.unwrap()["use_record"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    let mut answered = std::collections::BTreeSet::new();
    for task in tasks {
        answered.insert(task.await.unwrap());
    }
    assert_eq!(answered.len(), 100, "distinct use records");
    let (_, after) = get(&http, &server, "/v1/use-records?limit=500", "demo-auditor").await;
    let after: Vec<String> = after["use_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after.len(), before + 100);
    assert!(answered.iter().all(|id| after.contains(id)));

    // Auditors list by department and period.
    let (status, audit) = get(
        &http,
        &server,
        "/v1/use-records?department=示例审批系统&limit=2",
        "demo-auditor",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert_eq!(audit["use_records"].as_array().unwrap().len(), 2);
    let (status, _) = get(&http, &server, "/v1/use-records", DEPARTMENT).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "departments do not read others' records");
}

/// Of a department's grants for one type and service item, the one approved last applies: a
/// newer wider grant is never shadowed by an older narrow one, and a newer narrow one narrows.
#[tokio::test(flavor = "multi_thread")]
async fn the_grant_approved_last_is_the_one_in_force() {
    let dir = TempDir::new("access-newest-grant");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue(&http, &server, "JL-ACCESS-NEWEST").await;
    let lookup = format!("/v1/licence-types/{TYPE}/lookup");
    let fetch = format!("/v1/licence-types/{TYPE}/fetch");
    let face = |answer: &Value| answer["licences"][0]["face"].as_object().map(|f| f.len());

    grant(
        &http,
        &server,
        &["company_name", "legal_representative", "address"],
        false,
    )
    .await;
    let (status, narrow) = send(&http, &server, &lookup, DEPARTMENT, &use_body(&id)).await;
    assert_eq!((status, face(&narrow)), (StatusCode::OK, Some(3)), "{narrow}");
    let (status, p) = send(&http, &server, &fetch, DEPARTMENT, &use_body(&id)).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("grant.fields_insufficient"))
    );

    grant(&http, &server, common::EVERY_FIELD, false).await;
    let (status, wide) = send(&http, &server, &lookup, DEPARTMENT, &use_body(&id)).await;
    assert_eq!(status, StatusCode::OK, "{wide}");
    assert!(face(&wide) > Some(3), "the newer wider grant applies: {wide}");
    let (status, fetched) = send(&http, &server, &fetch, DEPARTMENT, &use_body(&id)).await;
    assert_eq!(status, StatusCode::OK, "{fetched}");

    grant(&http, &server, &["company_name"], false).await;
    let (status, narrowed) = send(&http, &server, &lookup, DEPARTMENT, &use_body(&id)).await;
    assert_eq!((status, face(&narrowed)), (StatusCode::OK, Some(1)), "{narrowed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_authorises_a_use_then_withdraws_it_and_the_next_call_is_refused() {
    let dir = TempDir::new("authorise");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue(&http, &server, "JL-AUTH-1").await;
    grant(&http, &server, common::EVERY_FIELD, true).await;
    let lookup = format!("/v1/licence-types/{TYPE}/lookup");
    let (_, p) = send(&http, &server, &lookup, DEPARTMENT, &use_body(&id)).await;
    assert_eq!(p["code"], "authorisation.required");

    let me = holder_token(HOLDER);
    let until = format_time(time::OffsetDateTime::now_utc() + time::Duration::days(7));
    let ask = json!({"licence": id, "department": "示例审批系统", "service_item": ITEM, "until": until});
    // Someone else cannot authorise uses of this licence.
    let (status, p) = send(
        &http,
        &server,
        "/v1/me/authorisations",
        &holder_token("91110000600037341L"),
        &ask,
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.scope")),
        "{p}"
    );
    let (status, a) = send(&http, &server, "/v1/me/authorisations", &me, &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let aid = a["id"].as_str().unwrap();

    let mut body = use_body(&id);
    body["authorisation"] = json!(aid);
    let (status, found) = send(&http, &server, &lookup, DEPARTMENT, &body).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    // With every field granted, the signed licence can be fetched and verifies.
    let r = http
        .post(server.at(&format!("/v1/licence-types/{TYPE}/fetch")))
        .bearer_auth(DEPARTMENT)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fetched: Value = r.json().await.unwrap();
    let (status, report) = send(
        &http,
        &server,
        &format!("/v1/verify?{}", common::PURPOSE),
        DEPARTMENT,
        &fetched["licence"],
    )
    .await;
    assert_eq!(
        (status, report["verdict"].as_str()),
        (StatusCode::OK, Some("VALID")),
        "{report}"
    );

    let (status, w) = send(
        &http,
        &server,
        &format!("/v1/me/authorisations/{aid}/withdraw"),
        &me,
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert!(w["withdrawn"].is_string());
    let (status, p) = send(&http, &server, &lookup, DEPARTMENT, &body).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("authorisation.invalid"))
    );
    let (_, list) = get(&http, &server, "/v1/me/authorisations", &me).await;
    assert_eq!(list["authorisations"].as_array().unwrap().len(), 1);
    // The holder's use records show the uses made under it.
    let (_, records) = get(&http, &server, "/v1/me/use-records", &me).await;
    assert!(records["use_records"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["authorisation"] == aid));
}

#[tokio::test(flavor = "multi_thread")]
async fn holder_tokens_are_refused_for_every_flaw() {
    let dir = TempDir::new("tokens");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let now = time::OffsetDateTime::now_utc();
    let other_key = FileKey::from_pem_file(&common::root().join("keys-example/authority-ed25519.key")).unwrap();
    let good = holder_token(HOLDER);
    let mut tampered = good.clone().into_bytes();
    let at = good.find('.').unwrap() + 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let cases = [
        (
            "unknown issuer",
            holder_token_with(&identity_key(), "https://evil.example", HOLDER, now, 600),
        ),
        (
            "wrong key",
            holder_token_with(&other_key, DEMO_ISSUER, HOLDER, now, 600),
        ),
        (
            "expired",
            holder_token_with(
                &identity_key(),
                DEMO_ISSUER,
                HOLDER,
                now - time::Duration::hours(2),
                600,
            ),
        ),
        ("tampered", String::from_utf8(tampered).unwrap()),
        ("not a token", "a.b.c".to_owned()),
    ];
    for (why, token) in cases {
        let (status, p) = get(&http, &server, "/v1/me/licences", &token).await;
        assert_eq!(
            (status, p["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("auth.invalid")),
            "{why}: {p}"
        );
    }
    let (status, _) = get(&http, &server, "/v1/me/licences", &good).await;
    assert_eq!(status, StatusCode::OK);
}

/// Segments equal, or either side a `{parameter}`.
fn same_route(route: &str, documented: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (route.split('/').collect(), documented.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || x.starts_with('{') || y.starts_with('{'))
}

#[test]
fn every_route_is_documented_with_its_roles() {
    let spec: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(common::root().join("api-spec/openapi.yaml")).unwrap())
            .unwrap();
    let documented: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
    let router = std::fs::read_to_string(common::root().join("crates/http/src/lib.rs")).unwrap();
    // Routes written before `.nest("/v1", v1)` belong to the /v1 router; those after, to the root.
    let (v1, root) = router.split_once(".nest(\"/v1\", v1)").unwrap();
    let mut routes = Vec::new();
    for (text, prefix) in [(v1, "/v1"), (root, "")] {
        for piece in text.split(".route(").skip(1) {
            let path = piece.trim_start().trim_start_matches('"').split('"').next().unwrap();
            routes.push(format!("{prefix}{path}"));
        }
    }
    assert!(routes.len() > 40, "{routes:?}");
    for route in &routes {
        assert!(
            documented.iter().any(|d| same_route(route, d)),
            "{route} is routed but not documented"
        );
    }
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["x-roles"].is_array(), "{method} {path} has no x-roles");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn access_matrix_every_operation_with_every_role() {
    let dir = TempDir::new("matrix");
    let server = Server::start(&dir.0);
    let http = Client::new();
    // Objects for the path parameters, each within the scope of the role tokens below.
    let licence = issue(&http, &server, "JL-MATRIX").await;
    let grant_id = grant(&http, &server, &["number"], false).await;
    let (_, objection) = send(
        &http,
        &server,
        "/v1/objections",
        DEPARTMENT,
        &json!({"licence": licence, "fields": ["address"], "kind": "inaccurate", "statement": "住所有误"}),
    )
    .await;
    let objection = objection["objection"]["id"].as_str().unwrap().to_owned();
    let holder = holder_token(HOLDER);
    let until = format_time(time::OffsetDateTime::now_utc() + time::Duration::days(7));
    let (_, authorisation) = send(
        &http,
        &server,
        "/v1/me/authorisations",
        &holder,
        &json!({"licence": licence, "department": "示例审批系统", "service_item": ITEM, "until": until}),
    )
    .await;
    let authorisation = authorisation["id"].as_str().unwrap().to_owned();

    let roles: [(&str, Option<String>); 7] = [
        ("operator", Some("demo-operator".into())),
        ("authority", Some(DEFINER.into())),
        ("verifier", Some(DEPARTMENT.into())),
        ("auditor", Some("demo-auditor".into())),
        ("holder", Some(holder.clone())),
        ("node", Some("demo-node".into())),
        ("anonymous", None),
    ];
    let spec: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(common::root().join("api-spec/openapi.yaml")).unwrap())
            .unwrap();
    let mut calls = 0;
    let mut mismatches = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        let id = if path.starts_with("/v1/objections/") {
            &objection
        } else if path.starts_with("/v1/grants/") {
            &grant_id
        } else if path.starts_with("/v1/me/authorisations/") {
            &authorisation
        } else {
            &licence
        };
        let concrete = path
            .replace("{id}", id)
            .replace("{uscc}", "11100000000013338W")
            .replace("{code}", TYPE)
            .replace("{es_id}", "ZY0000000000000000");
        for (method, op) in ops.as_object().unwrap() {
            let allowed: Vec<&str> = op["x-roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            for (role, token) in &roles {
                let mut request = http
                    .request(method.to_uppercase().parse().unwrap(), server.at(&concrete))
                    .header("content-type", "application/json")
                    .body("{}");
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let r = request.send().await.unwrap();
                let status = r.status();
                let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
                let code = body["code"].as_str().unwrap_or_default();
                let refused = status == StatusCode::UNAUTHORIZED || code == "auth.forbidden";
                if refused == allowed.contains(role) {
                    mismatches.push(format!(
                        "{method} {path} as {role}: {status} {code} (x-roles {allowed:?})"
                    ));
                }
                assert!(!status.is_server_error(), "{method} {path} as {role}: {status}");
                calls += 1;
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(calls > 300, "{calls}");
    common::assert_no_server_errors(&server).await;
}

/// Reads a PNG QR code back to its text.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_shows_a_qr_code_and_a_department_scans_it_once() {
    use base64::Engine as _;
    let dir = TempDir::new("present");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue(&http, &server, "JL-QR-1").await;
    let me = holder_token(HOLDER);
    let (status, shown) = send(&http, &server, "/v1/me/presentations", &me, &json!({"licence": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{shown}");
    let token = shown["token"].as_str().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(shown["qr_png_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decode_qr(&png), token, "the QR image carries the token");

    // Someone else's licence cannot be shown.
    let (status, p) = send(
        &http,
        &server,
        "/v1/me/presentations",
        &holder_token("91110000600037341L"),
        &json!({"licence": id}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.scope"))
    );

    let scan = |token: String| {
        let (http, server) = (&http, &server);
        async move {
            send(
                http,
                server,
                "/v1/presentations/scan",
                DEPARTMENT,
                &json!({"token": token, "service_item": ITEM, "use_cause": "现场核验营业执照"}),
            )
            .await
        }
    };
    // A tampered payload (one character of the token changed) is refused and consumes nothing.
    let mut tampered = token.to_owned().into_bytes();
    let at = token.find('.').unwrap() + 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let (status, p) = scan(String::from_utf8(tampered).unwrap()).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("presentation.invalid"))
    );

    let (status, answer) = scan(token.to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["report"]["verdict"], "VALID");
    assert_eq!(answer["status"], "valid");
    assert_eq!(answer["licence"]["id"], id.as_str());
    // Replayed: refused.
    let (status, p) = scan(token.to_owned()).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("presentation.used"))
    );
    // The holder sees the scan among its uses.
    let (_, records) = get(&http, &server, "/v1/me/use-records", &me).await;
    assert!(records["use_records"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == answer["use_record"] && r["operation"] == "scan"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_annotated_copy_is_made_by_the_holder_and_refused_once_changed() {
    let dir = TempDir::new("annotated");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let id = issue(&http, &server, "JL-COPY-1").await;
    let me = holder_token(HOLDER);
    let until = format_time(time::OffsetDateTime::now_utc() + time::Duration::days(7));
    let r = http
        .post(server.at("/v1/me/annotated-copies"))
        .bearer_auth(&me)
        .json(&json!({"licence": id, "use_cause": "仅供办理企业银行开户使用", "until": until}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let copy = r.bytes().await.unwrap().to_vec();
    let verify = |body: Vec<u8>| {
        let http = &http;
        let url = server.at(&format!("/v1/annotated-copies/verify?{}", common::PURPOSE));
        async move {
            let r = http
                .post(url)
                .bearer_auth(DEPARTMENT)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let report = verify(copy.clone()).await;
    assert_eq!(report["verdict"], "VALID", "{report}");
    let changed = String::from_utf8(copy.clone())
        .unwrap()
        .replace("仅供办理企业银行开户使用", "可用于任何用途")
        .into_bytes();
    let report = verify(changed).await;
    assert_eq!(report["verdict"], "INVALID");
    // The key to check copies offline is published.
    let (status, key) = get(&http, &server, "/v1/token-key", DEPARTMENT).await;
    assert_eq!(status, StatusCode::OK);
    assert!(key["public_key_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    // Only the holder makes copies of its licences.
    let (status, p) = send(
        &http,
        &server,
        "/v1/me/annotated-copies",
        &holder_token("91110000600037341L"),
        &json!({"licence": id, "use_cause": "x", "until": until}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.scope"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_issue_and_revoke_department_tokens_that_survive_restarts() {
    let dir = TempDir::new("tokens-issued");
    let server = Server::start(&dir.0);
    let http = Client::new();
    let ask = json!({"name": "长春市审批系统", "role": "verifier", "department": "220100-approval"});
    let (status, _) = send(&http, &server, "/v1/tokens", DEPARTMENT, &ask).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only operators issue tokens");
    for bad in [
        json!({"name": "x", "role": "verifier"}),
        json!({"name": "x", "role": "king"}),
        json!({"name": "x", "role": "authority", "uscc": "11220000013544541X"}),
    ] {
        let (status, p) = send(&http, &server, "/v1/tokens", "demo-operator", &bad).await;
        assert_eq!(
            (status, p["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("request.invalid")),
            "{bad}"
        );
    }
    let (status, issued) = send(&http, &server, "/v1/tokens", "demo-operator", &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let secret = issued["token"].as_str().unwrap().to_owned();
    let id = issued["issued"]["id"].as_str().unwrap().to_owned();
    let (_, list) = get(&http, &server, "/v1/tokens", "demo-operator").await;
    assert!(
        !list.to_string().contains(&secret),
        "the secret is never stored or listed"
    );
    let (status, _) = get(&http, &server, "/v1/grants", &secret).await;
    assert_eq!(status, StatusCode::OK, "the new department token works");

    // After a restart (same database) it still works; once revoked it does not.
    drop(server);
    let server = Server::start(&dir.0);
    let (status, _) = get(&http, &server, "/v1/grants", &secret).await;
    assert_eq!(status, StatusCode::OK, "issued tokens survive a restart");
    let (status, _) = send(
        &http,
        &server,
        &format!("/v1/tokens/{id}/revoke"),
        "demo-operator",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, p) = get(&http, &server, "/v1/grants", &secret).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.invalid"))
    );
    let (status, p) = send(&http, &server, "/v1/tokens/TK404/revoke", "demo-operator", &json!({})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("token.not_found"))
    );
    drop(server);
    let server = Server::start(&dir.0);
    let (status, _) = get(&http, &server, "/v1/grants", &secret).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token stays revoked after a restart"
    );
}
