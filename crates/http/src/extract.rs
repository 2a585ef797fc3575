//! Body extractors whose rejections are problems, not axum's plain-text errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
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

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, Problem> {
    check_content_type(&req)?;
    let limit = req.extensions().get::<BodyReadTimeout>().map(|t| t.0);
    let read = Bytes::from_request(req, state);
    let read = match limit {
        Some(limit) => tokio::time::timeout(limit, read).await.map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request.timeout",
                format!("the body did not arrive within {} s", limit.as_secs_f32()),
            )
        })?,
        None => read.await,
    };
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                "the body exceeds the size limit",
            )
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "request.malformed_json",
                "the body could not be read",
            )
        }
    })
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
