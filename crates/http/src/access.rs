//! Authorised use over HTTP: service items, grants, the uniform per-type interface
//! (`/v1/licence-types/{code}/lookup|check|fetch`), holders' own views under `/v1/me`, and use
//! records for auditors.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use zhengyin_engine::{AuthoriseRequest, GrantActor, GrantApplication, LookupAnswer, UseContext};
use zhengyin_model::{GrantState, HolderRef, ServiceItem, TypeCode};

use crate::auth::{AuditorCaller, Caller, DepartmentCaller, HolderCaller, OperatorCaller, Role};
use crate::extract::{parse, JsonBody, RawJson};
use crate::handlers::{query, QueryResult};
use crate::problem::Problem;
use crate::AppState;

type Result<T> = std::result::Result<T, Problem>;

pub(crate) async fn list_service_items(State(s): State<AppState>, _caller: Caller) -> Response {
    Json(json!({ "service_items": s.engine.service_items() })).into_response()
}

pub(crate) async fn register_service_item(
    State(s): State<AppState>,
    _: OperatorCaller,
    JsonBody(item): JsonBody<ServiceItem>,
) -> Result<Response> {
    let item = s.engine.register_service_item(item).await?;
    Ok((StatusCode::CREATED, Json(item)).into_response())
}

/// Who a caller is when it deals with grants.
fn grant_actor(caller: &Caller) -> Result<GrantActor> {
    match &caller.role {
        Role::Operator => Ok(GrantActor::Operator),
        Role::Authority { uscc } => Ok(GrantActor::Authority(uscc.clone())),
        Role::Verifier { department } => Ok(GrantActor::Department(department.clone())),
        Role::Auditor | Role::Holder { .. } | Role::Node => Err(Problem::forbidden(
            "grants are for departments, the defining authorities and operators",
        )),
    }
}

pub(crate) async fn apply_for_grant(
    State(s): State<AppState>,
    DepartmentCaller(department): DepartmentCaller,
    JsonBody(app): JsonBody<GrantApplication>,
) -> Result<Response> {
    let grant = s.engine.apply_for_grant(&department, app).await?;
    Ok((StatusCode::CREATED, Json(grant)).into_response())
}

pub(crate) async fn list_grants(State(s): State<AppState>, caller: Caller) -> Result<Response> {
    let actor = grant_actor(&caller)?;
    Ok(Json(json!({ "grants": s.engine.grants_for(&actor) })).into_response())
}

pub(crate) async fn get_grant(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response> {
    let actor = grant_actor(&caller)?;
    let grant = s.engine.grant(&id)?;
    // A grant the caller may not see is "not found", like one that does not exist.
    if !s.engine.grants_for(&actor).iter().any(|g| g.id == grant.id) {
        return Err(zhengyin_engine::EngineError::GrantNotFound(id).into());
    }
    Ok(Json(grant).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    #[serde(default)]
    reason: Option<String>,
}

pub(crate) async fn change_grant(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    RawJson(body): RawJson,
) -> Result<Response> {
    let actor = grant_actor(&caller)?;
    let to = match action.as_str() {
        "approve" => GrantState::Approved,
        "reject" => GrantState::Rejected,
        "withdraw" => GrantState::Withdrawn,
        _ => return Err(Problem::new(StatusCode::NOT_FOUND, "not_found", "no such resource")),
    };
    if to != GrantState::Withdrawn && matches!(actor, GrantActor::Department(_)) {
        return Err(Problem::forbidden(
            "grants are decided by the type's defining authority or an operator",
        ));
    }
    let decision: Decision = parse(&body)?;
    let grant = s.engine.change_grant(&id, &actor, to, decision.reason).await?;
    Ok(Json(grant).into_response())
}

/// The body of every call of the uniform interface: the purpose (always), then what to find.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UseRequest {
    service_item: String,
    use_cause: String,
    #[serde(default)]
    authorisation: Option<String>,
    /// By identifier (lookup, check, fetch).
    #[serde(default)]
    id: Option<String>,
    /// By holder (lookup).
    #[serde(default)]
    holder: Option<HolderRef>,
    /// With `holder`: the printed licence number.
    #[serde(default)]
    number: Option<String>,
    /// For check: the claimed values, by field.
    #[serde(default)]
    claims: Option<Map<String, Value>>,
}

impl UseRequest {
    fn split(self) -> (UseContext, Target) {
        let target = Target {
            id: self.id,
            holder: self.holder,
            number: self.number,
            claims: self.claims,
        };
        let ctx = UseContext {
            service_item: self.service_item,
            use_cause: self.use_cause,
            authorisation: self.authorisation,
        };
        (ctx, target)
    }
}

struct Target {
    id: Option<String>,
    holder: Option<HolderRef>,
    number: Option<String>,
    claims: Option<Map<String, Value>>,
}

fn type_code(code: &str) -> Result<TypeCode> {
    TypeCode::parse(code).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))
}

fn answer(a: LookupAnswer) -> Response {
    Json(json!({ "licences": a.licences, "use_record": a.use_record })).into_response()
}

pub(crate) async fn lookup(
    State(s): State<AppState>,
    DepartmentCaller(department): DepartmentCaller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<UseRequest>,
) -> Result<Response> {
    let code = type_code(&code)?;
    let (ctx, target) = req.split();
    if target.claims.is_some() {
        return Err(Problem::invalid("claims go to …/check"));
    }
    let found = match (target.id, target.holder, target.number) {
        (Some(id), None, None) => s.engine.lookup_by_id(&department, &code, &id, &ctx).await?,
        (None, Some(holder), number) => {
            s.engine
                .lookup_by_holder(&department, &code, &holder, number.as_deref(), &ctx)
                .await?
        }
        _ => return Err(Problem::invalid("give either id, or holder (with an optional number)")),
    };
    Ok(answer(found))
}

pub(crate) async fn check(
    State(s): State<AppState>,
    DepartmentCaller(department): DepartmentCaller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<UseRequest>,
) -> Result<Response> {
    let code = type_code(&code)?;
    let (ctx, target) = req.split();
    let (Some(id), Some(claims), None, None) = (target.id, target.claims, target.holder, target.number) else {
        return Err(Problem::invalid("a check gives id and claims"));
    };
    let checked = s.engine.check_claims(&department, &code, &id, &claims, &ctx).await?;
    Ok(answer(checked))
}

pub(crate) async fn fetch(
    State(s): State<AppState>,
    DepartmentCaller(department): DepartmentCaller,
    Path(code): Path<String>,
    JsonBody(req): JsonBody<UseRequest>,
) -> Result<Response> {
    let code = type_code(&code)?;
    let (ctx, target) = req.split();
    let (Some(id), None, None, None) = (target.id, target.holder, target.number, target.claims) else {
        return Err(Problem::invalid("a fetch gives id only"));
    };
    let (licence, use_record) = s.engine.fetch_for_use(&department, &code, &id, &ctx).await?;
    // The signed licence goes out exactly as stored.
    let mut body = format!("{{\"use_record\":{},\"licence\":", json!(use_record)).into_bytes();
    body.extend_from_slice(&licence.bytes);
    body.push(b'}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub(crate) async fn my_licences(State(s): State<AppState>, HolderCaller(holder): HolderCaller) -> Result<Response> {
    Ok(Json(json!({ "licences": s.engine.licences_of_holder(&holder)? })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    #[serde(default)]
    pub(crate) after: Option<String>,
    #[serde(default)]
    pub(crate) limit: Option<usize>,
}

const DEFAULT_PAGE: usize = 100;

/// The page size asked for: 1 to the engine's maximum (100 when not given); beyond it, 422, as
/// the spec's `maximum` says, rather than a shorter page than asked.
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize> {
    use zhengyin_engine::access::MAX_USE_RECORDS_PER_PAGE as MAX;
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX).contains(&n) => Ok(n),
        Some(n) => Err(Problem::invalid(format!("limit is {n}; it must be 1 to {MAX}"))),
    }
}

pub(crate) async fn my_use_records(
    State(s): State<AppState>,
    HolderCaller(holder): HolderCaller,
    q: QueryResult<PageQuery>,
) -> Result<Response> {
    let q = query(q)?;
    let records = s.engine.use_records_of_holder(&holder, q.after, page_limit(q.limit)?)?;
    Ok(Json(json!({ "use_records": records })).into_response())
}

pub(crate) async fn my_authorisations(
    State(s): State<AppState>,
    HolderCaller(holder): HolderCaller,
) -> Result<Response> {
    Ok(Json(json!({ "authorisations": s.engine.authorisations_of(&holder)? })).into_response())
}

pub(crate) async fn authorise(
    State(s): State<AppState>,
    HolderCaller(holder): HolderCaller,
    JsonBody(req): JsonBody<AuthoriseRequest>,
) -> Result<Response> {
    let a = s.engine.authorise(&holder, req).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

pub(crate) async fn withdraw_authorisation(
    State(s): State<AppState>,
    HolderCaller(holder): HolderCaller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(Json(s.engine.withdraw_authorisation(&holder, &id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UseRecordQuery {
    #[serde(default)]
    department: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    from: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    to: Option<OffsetDateTime>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// Use records for auditors and operators: by department and period.
pub(crate) async fn use_records(
    State(s): State<AppState>,
    _: AuditorCaller,
    q: QueryResult<UseRecordQuery>,
) -> Result<Response> {
    let q = query(q)?;
    let records = s
        .engine
        .use_records(q.department, q.from, q.to, q.after, page_limit(q.limit)?)?;
    Ok(Json(json!({ "use_records": records })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PresentRequest {
    licence: String,
    /// Lifetime in seconds (default 300, at most 600).
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

/// A holder shows a licence (亮证): a one-time token, as text and as a PNG QR code.
pub(crate) async fn present(
    State(s): State<AppState>,
    HolderCaller(holder): HolderCaller,
    JsonBody(req): JsonBody<PresentRequest>,
) -> Result<Response> {
    use base64::Engine as _;
    let ttl = req.ttl_seconds.map(time::Duration::seconds);
    let shown = s.engine.present(&holder, &req.licence, ttl).await?;
    let png = zhengyin_pages::qr::png(&shown.token).map_err(|e| {
        tracing::error!(error = %e, "rendering a QR code failed");
        Problem::internal()
    })?;
    let body = json!({
        "id": shown.id,
        "token": shown.token,
        "expires": zhengyin_model::licence::format_time(shown.expires),
        "qr_png_base64": base64::engine::general_purpose::STANDARD.encode(png),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanRequest {
    token: String,
    service_item: String,
    use_cause: String,
}

/// A department scans a holder's QR code (扫码核验): the licence, verified now, and the use record.
pub(crate) async fn scan(
    State(s): State<AppState>,
    DepartmentCaller(department): DepartmentCaller,
    JsonBody(req): JsonBody<ScanRequest>,
) -> Result<Response> {
    let ctx = UseContext {
        service_item: req.service_item,
        use_cause: req.use_cause,
        authorisation: None,
    };
    let answer = s.engine.scan(&department, &ctx, &req.token).await?;
    s.metrics.verified("scan", &answer.report);
    let licence: Value = serde_json::from_slice(&answer.licence.bytes).map_err(|_| Problem::internal())?;
    let status = answer
        .licence
        .status_at(s.engine.now())
        .map_or("unknown", zhengyin_model::Status::name);
    Ok(Json(json!({
        "licence": licence,
        "status": status,
        "report": answer.report,
        "use_record": answer.use_record,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnnotateRequest {
    licence: String,
    use_cause: String,
    #[serde(with = "time::serde::rfc3339")]
    until: OffsetDateTime,
}

/// A holder makes an annotated copy (加注件) of one of its licences for one use cause.
pub(crate) async fn annotate(
    State(s): State<AppState>,
    HolderCaller(holder): HolderCaller,
    JsonBody(req): JsonBody<AnnotateRequest>,
) -> Result<Response> {
    let copy = s
        .engine
        .annotate(&holder, &req.licence, &req.use_cause, req.until)
        .await?;
    Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], copy).into_response())
}

/// The node's token public key, for checking annotated copies offline.
pub(crate) async fn token_key(State(s): State<AppState>, _caller: Caller) -> Result<Response> {
    let (pem, method) = s.engine.token_public_key().ok_or_else(|| {
        Problem::from(zhengyin_engine::EngineError::Presentation(
            zhengyin_engine::presentation::PresentationRefusal::Unavailable,
        ))
    })?;
    Ok(Json(json!({ "public_key_pem": pem, "verification_method": method })).into_response())
}

/// An operator issues an API token (for a department, an auditor, an authority): the secret is
/// in this answer only; the node keeps its SHA-256.
pub(crate) async fn issue_token(
    State(s): State<AppState>,
    _: OperatorCaller,
    JsonBody(req): JsonBody<zhengyin_engine::NewApiToken>,
) -> Result<Response> {
    // The role rules are the configuration's: check them before anything is stored.
    let check = crate::auth::TokenConfig {
        sha256: "00".repeat(32),
        name: req.name.clone(),
        role: req.role.clone(),
        uscc: req.uscc.clone(),
        department: req.department.clone(),
        rate_per_second: req.rate_per_second,
    };
    check.caller().map_err(|e| Problem::invalid(e.to_string()))?;
    let (token, secret) = s.engine.issue_api_token(req).await?;
    s.tokens
        .apply_issued(&token)
        .map_err(|e| Problem::invalid(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(json!({ "token": secret, "issued": token }))).into_response())
}

pub(crate) async fn list_tokens(State(s): State<AppState>, _: OperatorCaller) -> Result<Response> {
    Ok(Json(json!({ "tokens": s.engine.api_tokens()? })).into_response())
}

pub(crate) async fn revoke_token(
    State(s): State<AppState>,
    _: OperatorCaller,
    Path(id): Path<String>,
) -> Result<Response> {
    let token = s.engine.revoke_api_token(&id).await?;
    s.tokens
        .apply_issued(&token)
        .map_err(|e| Problem::invalid(e.to_string()))?;
    Ok(Json(token).into_response())
}
