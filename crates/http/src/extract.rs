//! Body extractors whose rejections are problems, not axum's plain-text errors.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use http_body::Body as _;
use serde::de::DeserializeOwned;
use zhengyin_model::canonical;

use crate::problem::Problem;

/// A JSON body: `application/json` (or `+json`), within the size limit, strictly parsed
/// (duplicate members refused), then deserialised into `T`.
pub struct JsonBody<T>(pub T);

/// A JSON body kept as bytes (for verification, which parses it itself).
pub struct RawJson(pub Bytes);

fn check_content_type(req: &Request) -> Result<(), Problem> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json")) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_media_type",
            "send application/json",
        ))
    }
}

/// How long a client may take to send a request body (set by the router from its config).
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub std::time::Duration);

/// The most a route reads of a body (set by the router: one limit for all, a wider one for the
/// batch and upload routes).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// How much of an oversized body is read and thrown away before answering 413. A client still
/// writing when the server closes gets a reset connection instead of the answer; reading a
/// bounded remainder lets it read the problem (larger bodies are cut off).
const DRAIN: usize = 16 * 1024 * 1024;

async fn next_frame(body: &mut Body) -> Option<Result<http_body::Frame<Bytes>, axum::Error>> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request.too_large",
        "the body exceeds the size limit",
    )
}

async fn body_bytes<S: Send + Sync>(req: Request, _state: &S) -> Result<Bytes, Problem> {
    check_content_type(&req)?;
    let limit = req.extensions().get::<BodyLimit>().map_or(usize::MAX, |l| l.0);
    let timeout = req.extensions().get::<BodyReadTimeout>().map(|t| t.0);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (limit.saturating_add(DRAIN)) as u64) {
        return Err(too_large());
    }
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut body = req.into_body();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    loop {
        let frame = match deadline {
            Some(at) => match tokio::time::timeout_at(at, next_frame(&mut body)).await {
                Ok(frame) => frame,
                Err(_) if seen > limit => return Err(too_large()),
                Err(_) => {
                    return Err(Problem::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request.timeout",
                        format!(
                            "the body did not arrive within {} s",
                            timeout.unwrap_or_default().as_secs_f32()
                        ),
                    ))
                }
            },
            None => next_frame(&mut body).await,
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "request.malformed_json",
                "the body could not be read",
            )
        })?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > limit.saturating_add(DRAIN) {
            return Err(too_large());
        }
        if seen <= limit {
            kept.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let bytes = body_bytes(req, state).await?;
        if bytes.trim_ascii().is_empty() {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "request.malformed_json",
                "the body is empty: send the JSON document",
            ));
        }
        Ok(RawJson(bytes))
    }
}

/// For `Option` fields that may be absent but not `null` (the spec gives them no null type):
/// `#[serde(default, deserialize_with = "not_null")]`.
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let bytes = body_bytes(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a body read as [`RawJson`] as [`JsonBody`] would: for handlers that must look at the
/// caller's role before the body.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let value = canonical::parse_strict(bytes)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "request.malformed_json", e.to_string()))?;
    serde_json::from_value(value).map_err(|e| Problem::invalid(e.to_string()))
}
