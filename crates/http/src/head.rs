//! Limits on the request head the API sets itself, so that a refusal is problem+json like every
//! other: a request target longer than [`MAX_TARGET`] is 414 `request.uri_too_long`, headers
//! over [`MAX_HEADERS`] in number or [`MAX_HEADER_BYTES`] in size are 431
//! `request.headers_too_large`. (The connection layer reads wider heads, see `serve`.)

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

/// The longest request target (path and query), in bytes.
pub const MAX_TARGET: usize = 8 * 1024;
/// The most request headers.
pub const MAX_HEADERS: usize = 100;
/// The most bytes of request headers (names and values).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses a request whose head exceeds the limits, before anything else reads it.
pub(crate) async fn limit(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_TARGET {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "request.uri_too_long",
            format!("the request target is {target} bytes; at most {MAX_TARGET}"),
        )
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request.headers_too_large",
            format!(
                "{} headers of {bytes} bytes; at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}
