//! The `/v1` handlers: thin translations between HTTP and engine use cases.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::OffsetDateTime;
use zhengyin_engine::{IssueRequest, RegisterAuthority, RevokeRequest, SignedLicence, SuspendRequest, UpdateRequest};
use zhengyin_model::{LicenceId, LicenceType, TypeCode, Uscc, Verdict};

use crate::auth::{AuthorityCaller, Caller, OperatorCaller, VerifierCaller};
use crate::extract::{JsonBody, RawJson};
use crate::metrics::VerdictLabels;
use crate::problem::Problem;
use crate::AppState;

type Result<T> = std::result::Result<T, Problem>;

fn licence_id(text: &str) -> Result<LicenceId> {
    LicenceId::parse(text).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))
}

/// `{id, state, status, history, licence}` with the signed licence embedded byte for byte.
fn licence_envelope(l: &SignedLicence, now: OffsetDateTime, code: StatusCode) -> Result<Response> {
    let raw = std::str::from_utf8(&l.bytes)
        .ok()
        .and_then(|s| RawValue::from_string(s.to_owned()).ok())
        .ok_or_else(|| {
            Problem::from(zhengyin_engine::EngineError::Signing(
                "stored licence unreadable".into(),
            ))
        })?;
    let current = l.status.at(now).or(l.status.latest());
    let body = json!({
        "id": l.id.as_str(),
        "state": current.map_or("pending", |s| s.name()),
        "status": current,
        "history": l.status.changes,
        "licence": raw,
    });
    Ok((code, Json(body)).into_response())
}

pub(crate) async fn register_authority(
    State(s): State<AppState>,
    _: OperatorCaller,
    JsonBody(req): JsonBody<RegisterAuthority>,
) -> Result<Response> {
    let a = s.engine.register_authority(req).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

pub(crate) async fn list_authorities(State(s): State<AppState>, _caller: Caller) -> Json<Value> {
    Json(json!({ "authorities": s.engine.authorities() }))
}

pub(crate) async fn get_authority(
    State(s): State<AppState>,
    _caller: Caller,
    Path(uscc): Path<String>,
) -> Result<Response> {
    let uscc =
        Uscc::parse(&uscc).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))?;
    let a = s
        .engine
        .authority(&uscc)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "authority.unknown", "no such authority"))?;
    Ok(Json(a).into_response())
}

pub(crate) async fn register_licence_type(
    State(s): State<AppState>,
    _: OperatorCaller,
    JsonBody(t): JsonBody<LicenceType>,
) -> Result<Response> {
    let t = s.engine.register_licence_type(t).await?;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

pub(crate) async fn list_licence_types(State(s): State<AppState>, _caller: Caller) -> Json<Value> {
    Json(json!({ "licence_types": s.engine.licence_types() }))
}

pub(crate) async fn get_licence_type(
    State(s): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Response> {
    let code = TypeCode::parse(&code)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))?;
    let t = s
        .engine
        .licence_type(&code)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "licence_type.unknown", "no such licence type"))?;
    Ok(Json(t).into_response())
}

pub(crate) async fn issue(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    JsonBody(req): JsonBody<IssueRequest>,
) -> Result<Response> {
    let l = s.engine.issue(&issuer, req).await?;
    let mut response = licence_envelope(&l, s.engine.now(), StatusCode::CREATED)?;
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/licences/{}", l.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub(crate) async fn get_licence(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response> {
    let id = licence_id(&id)?;
    caller.may_read(id.issuer())?;
    let l = s.engine.licence(&id)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], l.bytes).into_response())
}

pub(crate) async fn get_status(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response> {
    let id = licence_id(&id)?;
    caller.may_read(id.issuer())?;
    let l = s.engine.licence(&id)?;
    let now = s.engine.now();
    let current = l.status.at(now);
    Ok(Json(json!({
        "id": id.as_str(),
        "state": current.map_or("pending", |s| s.name()),
        "status": current,
        "history": l.status.changes,
    }))
    .into_response())
}

pub(crate) async fn update(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateRequest>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = s.engine.update(&issuer, &id, req).await?;
    licence_envelope(&l, s.engine.now(), StatusCode::CREATED)
}

pub(crate) async fn revoke(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RevokeRequest>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = s.engine.revoke(&issuer, &id, req).await?;
    licence_envelope(&l, s.engine.now(), StatusCode::OK)
}

pub(crate) async fn suspend(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SuspendRequest>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = s.engine.suspend(&issuer, &id, req).await?;
    licence_envelope(&l, s.engine.now(), StatusCode::OK)
}

pub(crate) async fn reinstate(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = s.engine.reinstate(&issuer, &id).await?;
    licence_envelope(&l, s.engine.now(), StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    #[serde(default, with = "time::serde::rfc3339::option")]
    at: Option<OffsetDateTime>,
}

pub(crate) async fn verify(
    State(s): State<AppState>,
    _: VerifierCaller,
    query: std::result::Result<Query<VerifyQuery>, axum::extract::rejection::QueryRejection>,
    RawJson(body): RawJson,
) -> Result<Response> {
    let Query(query) = query.map_err(|e| Problem::invalid(format!("query: {}", e.body_text())))?;
    let report = s.engine.verify(&body, query.at);
    let verdict = match report.verdict {
        Verdict::Valid => "VALID",
        Verdict::Invalid => "INVALID",
        Verdict::Indeterminate => "INDETERMINATE",
    };
    s.metrics
        .verdicts
        .get_or_create(&VerdictLabels {
            verdict: verdict.to_owned(),
        })
        .inc();
    Ok(Json(report).into_response())
}
