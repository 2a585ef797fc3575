//! The `/v1` handlers: thin translations between HTTP and engine use cases.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::OffsetDateTime;
use zhengyin_engine::{
    IssueRequest, RegisterAuthority, RevokeRequest, SignedLicence, SuspendRequest, UpdateRequest, UseContext,
    VerifyOptions,
};
use zhengyin_model::{LicenceId, LicenceType, TypeCode, Uscc};

use crate::auth::{AuthorityCaller, Caller, LogCaller, OperatorCaller, Role, VerifierCaller};
use crate::extract::{JsonBody, RawJson};
use crate::problem::Problem;
use crate::AppState;

type Result<T> = std::result::Result<T, Problem>;

pub(crate) fn licence_id(text: &str) -> Result<LicenceId> {
    LicenceId::parse(text).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))
}

/// `{id, state, status, history, licence}` with the signed licence embedded byte for byte.
fn licence_envelope(l: &SignedLicence, now: OffsetDateTime, code: StatusCode) -> Result<Response> {
    Ok((code, Json(envelope(l, now)?)).into_response())
}

/// A licence with its current state, history and log index, the licence itself embedded as
/// signed (byte for byte).
fn envelope(l: &SignedLicence, now: OffsetDateTime) -> Result<Value> {
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
        "log_index": l.log_index,
        "licence": raw,
    });
    Ok(body)
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

/// A USCC in the path: 400 `identifier.invalid` when it is not one.
fn path_uscc(uscc: &str) -> Result<Uscc> {
    Uscc::parse(uscc).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))
}

pub(crate) async fn get_authority(
    State(s): State<AppState>,
    _caller: Caller,
    Path(uscc): Path<String>,
) -> Result<Response> {
    let uscc = path_uscc(&uscc)?;
    let a = s
        .engine
        .authority(&uscc)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "authority.unknown", "no such authority"))?;
    Ok(Json(a).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetireKey {
    reason: String,
}

/// `POST /v1/authorities/{uscc}/keys/{id}/retire`: the key of certificate `id` signs nothing
/// more; what it signed stays valid (an operator's act, logged).
pub(crate) async fn retire_key(
    State(s): State<AppState>,
    _: OperatorCaller,
    Path((uscc, certificate)): Path<(String, String)>,
    JsonBody(req): JsonBody<RetireKey>,
) -> Result<Response> {
    let uscc = path_uscc(&uscc)?;
    let a = s.engine.retire_key(&uscc, &certificate, &req.reason).await?;
    Ok(Json(a).into_response())
}

pub(crate) async fn register_licence_type(
    State(s): State<AppState>,
    _: OperatorCaller,
    JsonBody(t): JsonBody<LicenceType>,
) -> Result<Response> {
    let (t, changed) = s.engine.register_licence_type(t).await?;
    let status = if changed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(t)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuersRequest {
    issuers: Vec<Uscc>,
}

/// The authorities that may issue a type besides its defining one: set by that authority or an
/// operator.
pub(crate) async fn set_type_issuers(
    State(s): State<AppState>,
    crate::auth::CatalogueCaller(by): crate::auth::CatalogueCaller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<IssuersRequest>,
) -> Result<Response> {
    let code = type_code(&code)?;
    let t = s.engine.set_type_issuers(by.as_ref(), &code, req.issuers).await?;
    Ok(Json(t).into_response())
}

pub(crate) async fn list_licence_types(State(s): State<AppState>, _caller: Caller) -> Json<Value> {
    Json(json!({ "licence_types": s.engine.licence_types() }))
}

pub(crate) async fn get_licence_type(
    State(s): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Response> {
    let licence_type = s.engine.licence_type(&type_code(&code)?).ok_or_else(unknown_type)?;
    Ok(Json(licence_type).into_response())
}

pub(crate) async fn list_licence_type_versions(
    State(s): State<AppState>,
    _caller: Caller,
    Path(code): Path<String>,
) -> Result<Response> {
    let code = known_type(&s, &code)?;
    Ok(Json(json!({ "versions": s.engine.licence_type_versions(&code)? })).into_response())
}

pub(crate) async fn get_licence_type_version(
    State(s): State<AppState>,
    _caller: Caller,
    Path((code, version)): Path<(String, u32)>,
) -> Result<Response> {
    let code = known_type(&s, &code)?;
    Ok(Json(s.engine.licence_type_version(&code, version)?).into_response())
}

fn type_code(code: &str) -> Result<TypeCode> {
    TypeCode::parse(code).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))
}

/// A type code of the path that names a type in the catalogue: 404 otherwise (the resource read
/// does not exist; naming an unknown type in a request body is a 422).
fn known_type(s: &AppState, code: &str) -> Result<TypeCode> {
    let code = type_code(code)?;
    if s.engine.licence_type(&code).is_none() {
        return Err(unknown_type());
    }
    Ok(code)
}

fn unknown_type() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "licence_type.unknown", "no such licence type")
}

pub(crate) async fn issue(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    JsonBody(req): JsonBody<IssueRequest>,
) -> Result<Response> {
    let type_code = req.type_code.clone();
    let issued = s.engine.issue(&issuer, req).await.map_err(Problem::from);
    s.metrics
        .operation("issue", &issuer, type_code.as_str(), issued.as_ref().err());
    let l = issued?;
    let mut response = licence_envelope(&l, s.engine.now(), StatusCode::CREATED)?;
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/licences/{}", l.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Most licences in one `POST /v1/licences/batch`.
pub(crate) const MAX_ISSUE_BATCH: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBatch {
    licences: Vec<Value>,
}

/// `{"licences": [issue request, …]}` → `{"results": [licence envelope or problem, …]}`, in
/// order: each licence issued as by `POST /v1/licences` (signed, stored, logged), all at once, so
/// that their durable writes share flushes; a refused item refuses only itself.
pub(crate) async fn issue_batch(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    headers: axum::http::HeaderMap,
    JsonBody(batch): JsonBody<IssueBatch>,
) -> Result<Response> {
    if batch.licences.is_empty() || batch.licences.len() > MAX_ISSUE_BATCH {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "licence.batch_too_large",
            format!("{} licences in one batch; 1 to {MAX_ISSUE_BATCH}", batch.licences.len()),
        ));
    }
    let requests: Vec<std::result::Result<IssueRequest, Problem>> = batch
        .licences
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(|e| Problem::invalid(e.to_string())))
        .collect();
    let mut issued = s
        .engine
        .issue_many(
            &issuer,
            requests.iter().filter_map(|r| r.as_ref().ok().cloned()).collect(),
        )
        .await
        .into_iter();
    let now = s.engine.now();
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        let result = match request {
            Err(problem) => Err(problem),
            Ok(request) => {
                let result = match issued.next() {
                    Some(Ok(licence)) => envelope(&licence, now),
                    Some(Err(e)) => Err(Problem::from(e)),
                    None => Err(Problem::internal()),
                };
                let type_code = request.type_code.as_str();
                s.metrics.operation("issue", &issuer, type_code, result.as_ref().err());
                result
            }
        };
        results.push(result.unwrap_or_else(|problem| {
            // Each refusal names the request, as a problem response would.
            let mut body = problem.to_json();
            body["request_id"] = json!(headers.get(crate::REQUEST_ID).and_then(|v| v.to_str().ok()));
            body
        }));
    }
    Ok(Json(json!({ "results": results })).into_response())
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

/// Counts a change to licence `id` by `issuer` in the operation metrics, and passes it on.
fn counted<T>(
    s: &AppState,
    operation: &'static str,
    issuer: &zhengyin_model::Uscc,
    id: &LicenceId,
    result: std::result::Result<T, zhengyin_engine::EngineError>,
) -> Result<T> {
    let result = result.map_err(Problem::from);
    s.metrics
        .operation(operation, issuer, id.type_code().as_str(), result.as_ref().err());
    result
}

pub(crate) async fn update(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateRequest>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = counted(&s, "update", &issuer, &id, s.engine.update(&issuer, &id, req).await)?;
    licence_envelope(&l, s.engine.now(), StatusCode::CREATED)
}

pub(crate) async fn revoke(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RevokeRequest>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = counted(&s, "revoke", &issuer, &id, s.engine.revoke(&issuer, &id, req).await)?;
    licence_envelope(&l, s.engine.now(), StatusCode::OK)
}

pub(crate) async fn suspend(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SuspendRequest>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = counted(&s, "suspend", &issuer, &id, s.engine.suspend(&issuer, &id, req).await)?;
    licence_envelope(&l, s.engine.now(), StatusCode::OK)
}

pub(crate) async fn reinstate(
    State(s): State<AppState>,
    AuthorityCaller(issuer): AuthorityCaller,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = licence_id(&id)?;
    let l = counted(&s, "reinstate", &issuer, &id, s.engine.reinstate(&issuer, &id).await)?;
    licence_envelope(&l, s.engine.now(), StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyQuery {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) at: Option<OffsetDateTime>,
    /// A department states its purpose: the service item (事项编码) …
    #[serde(default)]
    pub(crate) service_item: Option<String>,
    /// … and the use cause (用证事由).
    #[serde(default)]
    pub(crate) use_cause: Option<String>,
    /// Require fresh status: a licence replicated from a source not heard from within the
    /// node's maximum staleness is INDETERMINATE.
    #[serde(default)]
    pub(crate) fresh: bool,
}

impl VerifyQuery {
    fn options(&self) -> VerifyOptions {
        VerifyOptions {
            at: self.at,
            fresh: self.fresh,
        }
    }
}

/// The department whose verification is to be recorded, and its stated purpose (checked);
/// `None` for an operator (whose purpose, if stated, is checked all the same).
fn purpose(s: &AppState, caller: &Caller, q: &VerifyQuery) -> Result<Option<(String, UseContext)>> {
    let Role::Verifier { department } = &caller.role else {
        s.engine
            .check_purpose_parts(q.service_item.as_deref(), q.use_cause.as_deref())?;
        return Ok(None);
    };
    let (Some(service_item), Some(use_cause)) = (&q.service_item, &q.use_cause) else {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "use.cause_invalid",
            "a department's verification states service_item and use_cause (query parameters)",
        ));
    };
    let ctx = UseContext {
        service_item: service_item.clone(),
        use_cause: use_cause.clone(),
        authorisation: None,
    };
    s.engine.check_purpose(&ctx)?;
    Ok(Some((department.clone(), ctx)))
}

/// The report, after recording the department's use (its id in the [`USE_RECORD`] header).
async fn answer_recorded(
    s: &AppState,
    purpose: Option<(String, UseContext)>,
    report: &zhengyin_model::VerificationReport,
) -> Result<Response> {
    if report.store_unreadable {
        return Err(Problem::store_unreadable());
    }
    let mut response = Json(report).into_response();
    if let Some((department, ctx)) = purpose {
        let ids = s
            .engine
            .record_verifications(&department, &ctx, std::slice::from_ref(report))
            .await?;
        if let Some(Ok(id)) = ids.first().and_then(Option::as_deref).map(HeaderValue::from_str) {
            response.headers_mut().insert(USE_RECORD, id);
        }
    }
    Ok(response)
}

/// The header naming the use record a verification wrote.
pub(crate) const USE_RECORD: &str = "zhengyin-use-record";

pub(crate) async fn verify(
    State(s): State<AppState>,
    VerifierCaller(caller): VerifierCaller,
    query: QueryResult<VerifyQuery>,
    RawJson(body): RawJson,
) -> Result<Response> {
    let query = self::query(query)?;
    let purpose = purpose(&s, &caller, &query)?;
    let started = Instant::now();
    let report = s.engine.verify_with(&body, &query.options());
    s.metrics.verified_licence(&report, started);
    answer_recorded(&s, purpose, &report).await
}

/// Verifies an annotated copy (加注件): its signature by this node, its expiry, the licence
/// inside. A department states its purpose, as for any verification.
pub(crate) async fn verify_annotated(
    State(s): State<AppState>,
    VerifierCaller(caller): VerifierCaller,
    query: QueryResult<VerifyQuery>,
    RawJson(body): RawJson,
) -> Result<Response> {
    let query = self::query(query)?;
    if query.at.is_some() {
        return Err(Problem::invalid(
            "an annotated copy is checked now; `at` does not apply",
        ));
    }
    let purpose = purpose(&s, &caller, &query)?;
    let report = s.engine.verify_annotated(&body);
    s.metrics.verified("annotated_copy", &report);
    answer_recorded(&s, purpose, &report).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest<'a> {
    #[serde(borrow)]
    licences: Vec<&'a RawValue>,
}

/// `{"licences": [licence, …]}` → `{"reports": [report, …]}`, in the same order.
pub(crate) async fn verify_batch(
    State(s): State<AppState>,
    VerifierCaller(caller): VerifierCaller,
    query: QueryResult<VerifyQuery>,
    RawJson(body): RawJson,
) -> Result<Response> {
    let query = self::query(query)?;
    let purpose = purpose(&s, &caller, &query)?;
    let limit = s.batch_limit;
    let engine = Arc::clone(&s.engine);
    let started = Instant::now();
    // Verifying hundreds of licences is CPU work: off the async workers.
    // Fair (first come, first served) and bounded: each batch already uses every core.
    let slot = s.batch_slots.acquire().await.map_err(|_| Problem::internal())?;
    let reports = tokio::task::spawn_blocking(move || {
        let request: BatchRequest<'_> = serde_json::from_slice(&body).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                Problem::new(StatusCode::BAD_REQUEST, "request.malformed_json", e.to_string())
            } else {
                Problem::invalid(e.to_string())
            }
        })?;
        if request.licences.len() > limit {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "verify.batch_too_large",
                format!("{} licences in one batch; at most {limit}", request.licences.len()),
            ));
        }
        let licences: Vec<&[u8]> = request.licences.iter().map(|l| l.get().as_bytes()).collect();
        Ok(engine.verify_batch(&licences, &query.options()))
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "batch verification task failed");
        Problem::internal()
    })??;
    // The cores are free for the next batch while this one's use records are written.
    drop(slot);
    if reports.iter().any(|r| r.store_unreadable) {
        return Err(Problem::store_unreadable());
    }
    s.metrics.batch_sizes.observe(reports.len() as f64);
    s.metrics.batch_durations.observe(started.elapsed().as_secs_f64());
    for report in &reports {
        s.metrics.verified("licence_batch", report);
    }
    let use_records = match purpose {
        Some((department, ctx)) => s.engine.record_verifications(&department, &ctx, &reports).await?,
        None => Vec::new(),
    };
    Ok(Json(json!({ "reports": reports, "use_records": use_records })).into_response())
}

// The signature log (auditors).

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) async fn log_checkpoint(State(s): State<AppState>, _caller: Caller) -> Result<Response> {
    let (_, note) = s.engine.latest_checkpoint()?.ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no checkpoint published yet",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

pub(crate) async fn log_key(State(s): State<AppState>, _caller: Caller) -> Result<Response> {
    Ok(Json(json!({ "verifier_key": s.engine.log_verifier()? })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RangeQuery {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

pub(crate) type QueryResult<T> = std::result::Result<Query<T>, axum::extract::rejection::QueryRejection>;

pub(crate) fn query<T>(q: QueryResult<T>) -> Result<T> {
    q.map(|Query(q)| q)
        .map_err(|e| Problem::invalid(format!("query: {}", e.body_text())))
}

pub(crate) async fn log_entries(
    State(s): State<AppState>,
    _: LogCaller,
    q: QueryResult<RangeQuery>,
) -> Result<Response> {
    let q = query(q)?;
    let entries: Vec<String> = s.engine.log_entries(q.start, q.end)?.iter().map(|e| b64(e)).collect();
    Ok(Json(json!({ "start": q.start, "entries": entries })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionQuery {
    index: Option<u64>,
    leaf_hash: Option<String>,
    size: u64,
}

pub(crate) async fn log_inclusion(
    State(s): State<AppState>,
    _: LogCaller,
    q: QueryResult<InclusionQuery>,
) -> Result<Response> {
    use base64::Engine as _;
    let q = query(q)?;
    let index = match (q.index, q.leaf_hash) {
        (Some(i), None) => i,
        (None, Some(h)) => {
            let hash: [u8; 32] = base64::engine::general_purpose::STANDARD
                .decode(h)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| Problem::invalid("leaf_hash must be 32 bytes of standard base64"))?;
            s.engine
                .log_index_of(&hash)?
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::NOT_FOUND,
                        "log.entry_not_found",
                        "no entry has that leaf hash",
                    )
                })?
                .0
        }
        _ => return Err(Problem::invalid("give exactly one of index and leaf_hash")),
    };
    let proof: Vec<String> = s
        .engine
        .inclusion_proof(index, q.size)?
        .iter()
        .map(|h| b64(h))
        .collect();
    Ok(Json(json!({ "index": index, "size": q.size, "proof": proof })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    first: u64,
    second: u64,
}

pub(crate) async fn log_consistency(
    State(s): State<AppState>,
    _: LogCaller,
    q: QueryResult<ConsistencyQuery>,
) -> Result<Response> {
    let q = query(q)?;
    let proof: Vec<String> = s
        .engine
        .consistency_proof(q.first, q.second)?
        .iter()
        .map(|h| b64(h))
        .collect();
    Ok(Json(json!({ "first": q.first, "second": q.second, "proof": proof })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CrlUpload {
    /// PEM (`X509 CRL`).
    crl: String,
}

/// An operator gives the node a CA's CRL; verification and signing follow it from then on.
pub(crate) async fn add_crl(
    State(s): State<AppState>,
    _: OperatorCaller,
    JsonBody(upload): JsonBody<CrlUpload>,
) -> Result<Response> {
    let summary = s.engine.add_crl(upload.crl.as_bytes()).await?;
    Ok((StatusCode::CREATED, Json(summary)).into_response())
}

pub(crate) async fn list_crls(State(s): State<AppState>, _caller: Caller) -> Response {
    Json(json!({ "crls": s.engine.crls() })).into_response()
}
