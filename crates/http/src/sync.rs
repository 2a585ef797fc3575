//! Sync between nodes over HTTP: what a source serves an upstream node, and the operators'
//! view of the sources this node aggregates (see `zhengyin_engine::sync`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::access::page_limit;
use crate::auth::{AuditorCaller, NodeCaller, OperatorCaller};
use crate::extract::JsonBody;
use crate::handlers::{query, QueryResult, RangeQuery};
use crate::problem::Problem;
use crate::AppState;

type Result<T> = std::result::Result<T, Problem>;

/// `GET /v1/sync/objects?start&end`: the signed objects entries `[start, end)` name.
pub(crate) async fn objects(State(s): State<AppState>, _: NodeCaller, q: QueryResult<RangeQuery>) -> Result<Response> {
    let q = query(q)?;
    let objects = s.engine.sync_objects(q.start, q.end)?;
    Ok(Json(json!({ "start": q.start, "objects": objects })).into_response())
}

/// `GET /v1/sync/sources`: each source's cursor, lag, errors and open incidents, and the
/// federation's ownership map and trust list this node holds.
pub(crate) async fn sources(State(s): State<AppState>, _: OperatorCaller) -> Response {
    Json(json!({
        "sources": s.engine.sync_sources(),
        "ownership": s.engine.ownership(),
        "trust_list": s.engine.trust_list(),
    }))
    .into_response()
}

/// `GET /v1/federation/trust-list`: the trust list this node publishes (互通互认), a JWS signed
/// by its operator, public like any trusted list.
pub(crate) async fn trust_list(State(s): State<AppState>) -> Result<Response> {
    let unpublished = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "trust_list.not_published",
            "this node publishes no trust list",
        )
    };
    let file = s.published_trust_list.as_ref().ok_or_else(unpublished)?;
    let signed = tokio::fs::read_to_string(file).await.map_err(|e| {
        tracing::error!(file = %file.display(), error = %e, "reading the published trust list failed");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the trust list cannot be read now",
        )
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/jose")],
        signed.trim().to_owned(),
    )
        .into_response())
}

/// `GET /v1/federation/ownership`: which node owns each authority this node holds, as a note
/// signed with its log key (the nodes below it refuse to register those authorities).
pub(crate) async fn ownership(State(s): State<AppState>, _: NodeCaller) -> Result<Response> {
    let note = s.engine.ownership_map()?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentQuery {
    #[serde(default)]
    open: bool,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /v1/sync/incidents?open&after&limit`: incidents with their evidence (auditors check it
/// themselves), oldest first, a page at a time.
pub(crate) async fn incidents(
    State(s): State<AppState>,
    _: AuditorCaller,
    q: QueryResult<IncidentQuery>,
) -> Result<Response> {
    let q = query(q)?;
    let incidents = s
        .engine
        .sync_incidents(q.open, q.after.as_deref(), page_limit(q.limit)?)?;
    Ok(Json(json!({ "incidents": incidents })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Resolve {
    note: String,
    #[serde(default)]
    decision: Option<zhengyin_model::Decision>,
}

/// `POST /v1/sync/incidents/{id}/resolve`: the operator checked the source; sync resumes (for
/// a conflict over an authority: `decision` says who owns it).
pub(crate) async fn resolve(
    State(s): State<AppState>,
    _: OperatorCaller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Resolve>,
) -> Result<Response> {
    let incident = s.engine.resolve_incident(&id, &req.note, req.decision).await?;
    Ok((StatusCode::OK, Json(incident)).into_response())
}
