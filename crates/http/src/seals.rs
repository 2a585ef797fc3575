//! The `/v1/seals` and `/v1/signatures` handlers: the seal registry and GB/T 38540 verification.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use zhengyin_engine::{MakeSealRequest, Protected};
use zhengyin_model::SealState;
use zhengyin_store::StoredSeal;

use crate::auth::{AuthorityCaller, Caller, OperatorCaller, VerifierCaller};
use crate::extract::JsonBody;
use crate::handlers::{QueryResult, VerifyQuery};
use crate::problem::Problem;
use crate::AppState;

type Result<T> = std::result::Result<T, Problem>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| Problem::invalid(format!("{what} is not base64")))
}

/// `{es_id, state, record, status, seal}` with the signed seal as base64 DER.
fn seal_view(seal: &StoredSeal, now: OffsetDateTime, code: StatusCode) -> Response {
    let state = seal
        .status
        .at(now)
        .or(seal.status.latest())
        .map_or("pending", SealState::name);
    let body = json!({
        "es_id": seal.record.es_id,
        "state": state,
        "record": seal.record,
        "history": seal.status,
        "seal": b64(&seal.der),
    });
    (code, Json(body)).into_response()
}

pub(crate) async fn make(
    State(s): State<AppState>,
    _: OperatorCaller,
    JsonBody(req): JsonBody<MakeSealRequest>,
) -> Result<Response> {
    let seal = s.engine.make_seal(req).await?;
    Ok(seal_view(&seal, s.engine.now(), StatusCode::CREATED))
}

pub(crate) async fn get(State(s): State<AppState>, _: Caller, Path(es_id): Path<String>) -> Result<Response> {
    let seal = s.engine.seal(&es_id)?;
    Ok(seal_view(&seal, s.engine.now(), StatusCode::OK))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    reason: String,
}

fn reason(r: Reason) -> Result<String> {
    if r.reason.trim().is_empty() || r.reason.chars().count() > 500 {
        return Err(Problem::invalid("reason must be 1–500 characters"));
    }
    Ok(r.reason)
}

pub(crate) async fn suspend(
    State(s): State<AppState>,
    _: OperatorCaller,
    Path(es_id): Path<String>,
    JsonBody(r): JsonBody<Reason>,
) -> Result<Response> {
    let state = SealState::Suspended { reason: reason(r)? };
    let seal = s.engine.change_seal_status(&es_id, state).await?;
    Ok(seal_view(&seal, s.engine.now(), StatusCode::OK))
}

pub(crate) async fn revoke(
    State(s): State<AppState>,
    _: OperatorCaller,
    Path(es_id): Path<String>,
    JsonBody(r): JsonBody<Reason>,
) -> Result<Response> {
    let state = SealState::Revoked { reason: reason(r)? };
    let seal = s.engine.change_seal_status(&es_id, state).await?;
    Ok(seal_view(&seal, s.engine.now(), StatusCode::OK))
}

pub(crate) async fn reinstate(
    State(s): State<AppState>,
    _: OperatorCaller,
    Path(es_id): Path<String>,
) -> Result<Response> {
    let seal = s.engine.change_seal_status(&es_id, SealState::Active).await?;
    Ok(seal_view(&seal, s.engine.now(), StatusCode::OK))
}

/// The data a seal is applied to or checked against: its bytes (base64) or its SM3 (hex).
fn data_sm3(data_base64: Option<&str>, data_sm3: Option<&str>) -> Result<Option<[u8; 32]>> {
    match (data_base64, data_sm3) {
        (Some(_), Some(_)) => Err(Problem::invalid("give data_base64 or data_sm3, not both")),
        (Some(data), None) => Ok(Some(zhengyin_crypto::hash::sm3(&unb64(data, "data_base64")?))),
        (None, Some(hex_text)) => {
            let bytes = hex::decode(hex_text).map_err(|_| Problem::invalid("data_sm3 is not hex"))?;
            let digest = bytes
                .try_into()
                .map_err(|_| Problem::invalid("data_sm3 must be 32 bytes (64 hex digits)"))?;
            Ok(Some(digest))
        }
        (None, None) => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApplyRequest {
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    data_base64: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    data_sm3: Option<String>,
    property_info: String,
}

/// Refuses a caller that is not the seal's holder: only the holder applies a seal.
fn check_holder(s: &AppState, es_id: &str, caller: &zhengyin_model::Uscc) -> Result<()> {
    if s.engine.seal(es_id)?.record.holder.code != caller.as_str() {
        return Err(Problem::out_of_scope("only the seal's holder may apply it"));
    }
    Ok(())
}

/// Applies a seal held by the calling authority (the seal's holder) to data.
pub(crate) async fn apply(
    State(s): State<AppState>,
    AuthorityCaller(uscc): AuthorityCaller,
    Path(es_id): Path<String>,
    JsonBody(req): JsonBody<ApplyRequest>,
) -> Result<Response> {
    check_holder(&s, &es_id, &uscc)?;
    let digest = data_sm3(req.data_base64.as_deref(), req.data_sm3.as_deref())?
        .ok_or_else(|| Problem::invalid("give data_base64 or data_sm3"))?;
    let signature = s.engine.apply_seal(&es_id, digest, &req.property_info).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"es_id": es_id, "signature": b64(&signature)})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealOfdRequest {
    ofd: String,
    /// A JSON number (`2` and `2.0` are the same integer to JSON Schema).
    #[serde(default)]
    page: Option<f64>,
    #[serde(default)]
    x: Option<f64>,
    #[serde(default)]
    y: Option<f64>,
    #[serde(default)]
    keyword: Option<String>,
    #[serde(default)]
    every: bool,
    #[serde(default)]
    riding: bool,
}

impl SealOfdRequest {
    /// Where the stamps go: at a position (page, x, y), on a keyword, or across the pages (骑缝).
    fn stamps(&self) -> Result<zhengyin_engine::Stamps> {
        use zhengyin_engine::{Placement, Stamps};
        let one_of = "give x and y (and page), or keyword (and every), or riding (and y)";
        match (&self.keyword, self.riding, self.x) {
            (Some(text), false, None) if self.page.is_none() && self.y.is_none() => Ok(Stamps::Keyword {
                text: text.clone(),
                every: self.every,
            }),
            (None, true, None) if self.page.is_none() && !self.every => Ok(Stamps::Riding { y: self.y }),
            (None, false, Some(x)) if !self.every => {
                let page = self.page.unwrap_or(1.0);
                if page.fract() != 0.0 || !(1.0..=100_000.0).contains(&page) {
                    return Err(Problem::invalid("page counts from 1 (at most 100000)"));
                }
                let y = self.y.ok_or_else(|| Problem::invalid(one_of))?;
                Ok(Stamps::At(Placement {
                    page: page as usize - 1,
                    x,
                    y,
                }))
            }
            _ => Err(Problem::invalid(one_of)),
        }
    }
}

/// Seals an OFD document with a seal held by the calling authority (the seal's holder).
pub(crate) async fn seal_ofd(
    State(s): State<AppState>,
    AuthorityCaller(uscc): AuthorityCaller,
    Path(es_id): Path<String>,
    JsonBody(req): JsonBody<SealOfdRequest>,
) -> Result<Response> {
    check_holder(&s, &es_id, &uscc)?;
    let stamps = req.stamps()?;
    let package = unb64(&req.ofd, "ofd")?;
    let sealed = s.engine.seal_ofd(&es_id, package, stamps).await?;
    Ok((StatusCode::CREATED, Json(json!({"es_id": es_id, "ofd": b64(&sealed)}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifySealRequest {
    seal: String,
}

pub(crate) async fn verify_seal(
    State(s): State<AppState>,
    _: VerifierCaller,
    query: QueryResult<VerifyQuery>,
    JsonBody(req): JsonBody<VerifySealRequest>,
) -> Result<Response> {
    let query = crate::handlers::query(query)?;
    let der = unb64(&req.seal, "seal")?;
    let report = s.engine.verify_seal(&der, query.at);
    s.metrics.verified("seal", &report);
    Ok(Json(report).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifySignatureRequest {
    signature: String,
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    data_base64: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::not_null")]
    data_sm3: Option<String>,
}

pub(crate) async fn verify_signature(
    State(s): State<AppState>,
    _: VerifierCaller,
    JsonBody(req): JsonBody<VerifySignatureRequest>,
) -> Result<Response> {
    let der = unb64(&req.signature, "signature")?;
    let protected = match data_sm3(req.data_base64.as_deref(), req.data_sm3.as_deref())? {
        Some(digest) => Protected::Sm3(digest),
        None => Protected::Absent,
    };
    let report = s.engine.verify_sealed(&der, protected);
    s.metrics.verified("signature", &report);
    Ok(Json(report).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyOfdRequest {
    ofd: String,
}

/// `{"ofd": base64}` → the document's report and one report per signature.
pub(crate) async fn verify_ofd(
    State(s): State<AppState>,
    _: VerifierCaller,
    JsonBody(req): JsonBody<VerifyOfdRequest>,
) -> Result<Response> {
    let package = unb64(&req.ofd, "ofd")?;
    let engine = std::sync::Arc::clone(&s.engine);
    // Inflating and hashing a document is CPU work: off the async workers.
    let result = tokio::task::spawn_blocking(move || engine.verify_ofd(&package))
        .await
        .map_err(|_| Problem::internal())?;
    s.metrics.verified("ofd", &result.report);
    let signatures: Vec<_> = result
        .signatures
        .iter()
        .map(|s| json!({"path": s.path, "kind": s.kind, "report": s.report}))
        .collect();
    let mut answer = json!({"report": result.report, "signatures": signatures});
    if let Some(licence) = &result.licence {
        answer["licence"] = json!({"id": licence.id, "report": licence.report});
    }
    Ok(Json(answer).into_response())
}
