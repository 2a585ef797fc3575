//! Pages for the people Zhengyin serves, next to its API: server-rendered HTML in Chinese
//! (zh-CN), laid out for phones first, from templates checked when the crate compiles (askama;
//! every value escaped), with one stylesheet and one small script of its own and a strict
//! Content-Security-Policy — nothing is loaded from another origin, and no inline script or
//! style runs. Reading works without JavaScript; the script counts down (亮证) and checks the
//! log's consistency in an auditor's browser.
//!
//! What it holds:
//! - `/`, the landing page;
//! - sign-in ([`session`], [`signin`]): holders through the identity platform's OpenID Connect
//!   authorization-code flow (the demo ships a marked demo identity page, [`demo_identity`]),
//!   staff with their API token once; sessions live in the store (every frontend of a cluster
//!   finds them) behind an HttpOnly, Secure, SameSite cookie, and every form carries the
//!   session's CSRF token;
//! - `/holder` (我的证照, 亮证, 用证记录, 授权, 异议 and its notifications), `/department`
//!   (扫码核验, 核验文件, 一证一接口查询), `/authority` (objections to handle, its licences to
//!   issue and revoke), `/auditor` (the log, checked for consistency by the browser itself, use
//!   records, sync incidents) and `/operator` (sync sources, incidents, tokens, CRLs, numbers);
//! - `/objections/{id}`: one objection, followed by its objector and handled by its issuer.
//!
//! What it is not: the API (the http crate), nor the place where rules live — every action goes
//! through the engine, which checks who may do what, exactly as for the API.

mod authority;
mod demo_identity;
mod department;
mod error;
mod face;
mod face_form;
mod form;
mod holder;
mod home;
mod objections;
mod oversight;
pub mod qr;
mod records;
mod session;
mod signin;
mod words;

use std::sync::Arc;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use zhengyin_engine::Engine;

pub use demo_identity::{DemoHolder, DemoIdentity};
pub use session::{Staff, StaffDirectory};
pub use signin::SignInConfig;

/// Every page's Content-Security-Policy: only this origin's stylesheet, images and scripts;
/// no inline script or style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The one stylesheet.
const STYLESHEET: &str = include_str!("../assets/site.css");
/// The one script of our own: countdowns (亮证), the auditor's consistency check.
const SCRIPT: &str = include_str!("../assets/site.js");
/// The department's camera scan, and the QR decoder it uses (jsQR, vendored: assets/vendor/).
const CAMERA: &str = include_str!("../assets/camera.js");
const JSQR: &str = include_str!("../assets/vendor/jsQR.js");

/// How the pages sign people in.
#[derive(Clone, Default)]
pub struct PagesConfig {
    /// The identity platform holders sign in with; none: holders cannot sign in on this node.
    pub sign_in: Option<SignInConfig>,
    /// The demo identity platform this node plays itself (`serve --demo` only).
    pub demo_identity: Option<Arc<DemoIdentity>>,
}

/// What the pages' handlers share.
pub(crate) struct Pages {
    engine: Arc<Engine>,
    staff: Arc<dyn StaffDirectory>,
    sign_in: Option<SignInConfig>,
    demo_identity: Option<Arc<DemoIdentity>>,
    /// For the code exchange with the identity platform.
    client: reqwest::Client,
}

type Shared = Arc<Pages>;

/// The pages' routes, for the node's router (whatever its state). `staff` says who an API token
/// stands for (the http crate's token table).
pub fn router<S: Clone + Send + Sync + 'static>(
    engine: Arc<Engine>,
    staff: Arc<dyn StaffDirectory>,
    config: PagesConfig,
) -> Router<S> {
    let pages = Arc::new(Pages {
        engine,
        staff,
        sign_in: config.sign_in,
        demo_identity: config.demo_identity,
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
    });
    Router::new()
        .route("/", get(home::page))
        .route("/assets/site.css", get(stylesheet))
        .route("/assets/site.js", get(script))
        .route(
            "/assets/camera.js",
            get(|| async { asset("text/javascript; charset=utf-8", CAMERA) }),
        )
        .route(
            "/assets/jsqr.js",
            get(|| async { asset("text/javascript; charset=utf-8", JSQR) }),
        )
        .route("/signin", get(signin::page))
        .route("/signin/holder", post(signin::holder))
        .route("/signin/callback", get(signin::callback))
        .route("/signin/token", post(signin::token))
        .route("/signout", post(signin::sign_out))
        .route(
            "/demo/identity/authorize",
            get(demo_identity::page).post(demo_identity::approve),
        )
        .route("/demo/identity/token", post(demo_identity::token))
        .route("/holder", get(holder::home))
        .route("/holder/licences/{id}", get(holder::licence))
        .route("/holder/licences/{id}/show", get(holder::show))
        .route("/holder/licences/{id}/licence.json", get(holder::download_json))
        .route("/holder/licences/{id}/licence.ofd", get(holder::download_ofd))
        .route("/holder/authorisations", post(holder::authorise))
        .route("/holder/authorisations/{id}/withdraw", post(holder::withdraw))
        .route("/holder/licences/{id}/objection", get(objections::new))
        .route("/objections", get(objections::list).post(objections::file))
        .route("/objections/{id}", get(objections::show))
        .route("/objections/{id}/steps", post(objections::step))
        .route("/objections/{id}/evidence", post(objections::evidence))
        .route("/objections/{id}/correct", post(objections::correct))
        .route("/objections/{id}/evidence/{sha256}", get(objections::evidence_file))
        .route("/authority", get(authority::home))
        .route("/authority/issue", get(authority::issue_form))
        .route("/authority/licences", post(authority::issue))
        .route("/authority/licences/{id}/revoke", post(authority::revoke))
        .route("/auditor", get(oversight::auditor_page))
        .route("/auditor/consistency", get(oversight::consistency))
        .route("/operator", get(oversight::operator_page))
        .route("/department", get(department::home))
        .route("/department/scan", post(department::scan))
        .route("/department/verify", post(department::verify))
        .route("/department/lookup", post(department::lookup))
        // Forms and uploads: bounded here (the API bounds its bodies itself).
        .layer(axum::extract::DefaultBodyLimit::max(form::UPLOAD_LIMIT))
        .with_state(pages)
}

/// One entry of a list to choose from.
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
}

/// The registered service items to choose from, by code, each labelled with its name.
pub(crate) fn service_item_choices(engine: &Engine) -> Vec<Choice> {
    engine
        .service_items()
        .into_iter()
        .map(|i| Choice {
            label: format!("{}（{}）", i.name, i.code),
            value: i.code,
        })
        .collect()
}

/// The headers every page carries.
const PAGE_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

/// "See other": where a form's answer is (post, redirect, get).
pub(crate) fn see_other(location: impl Into<String>) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.into())]).into_response()
}

/// A rendered page with the headers every page carries.
fn page(template: &impl Template) -> Response {
    page_with(StatusCode::OK, template)
}

/// A rendered page with `status`.
fn page_with(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, PAGE_HEADERS, html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("页面生成失败 (the page could not be rendered): {e}"),
        )
            .into_response(),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}
