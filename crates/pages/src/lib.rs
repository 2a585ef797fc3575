//! Pages for the people Zhengyin serves, next to its API: server-rendered HTML in Chinese
//! (zh-CN), laid out for phones first, from templates checked when the crate compiles (askama;
//! every value escaped), with one stylesheet of its own and a strict Content-Security-Policy —
//! nothing is loaded from another origin, and no inline script or style runs.
//!
//! Today: the landing page (`/`), which says what this node holds and shows each audience where
//! to go. What it is not: the API (the http crate), nor a place that keeps secrets — no token
//! is ever put in a page.

mod home;

use std::sync::Arc;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use zhengyin_engine::Engine;

/// Every page's Content-Security-Policy: only this origin's stylesheet, images and scripts;
/// no inline script or style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The one stylesheet.
const STYLESHEET: &str = include_str!("../assets/site.css");

/// The pages' routes, for the node's router (whatever its state).
pub fn router<S: Clone + Send + Sync + 'static>(engine: Arc<Engine>) -> Router<S> {
    Router::new()
        .route("/", get(home::page))
        .route("/assets/site.css", get(stylesheet))
        .with_state(engine)
}

/// A rendered page with the headers every page carries.
fn page(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("页面生成失败 (the page could not be rendered): {e}"),
        )
            .into_response(),
    }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
