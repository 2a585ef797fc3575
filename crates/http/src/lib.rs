//! Zhengyin's HTTP API.
//!
//! What it holds: [`app`], the axum router for `/v1` and the system endpoints (`/healthz`,
//! `/readyz`, `/metrics`, `/openapi.json`); callers and roles ([`auth`]); the single mapping of
//! errors to RFC 9457 problem+json ([`problem`]); body extractors that enforce the size limit and
//! strict JSON ([`extract`]); metrics ([`metrics`]).
//!
//! What it is not: it holds no rules of its own (those are the engine's) and reads no
//! configuration files (the binary builds an [`AppState`]). The wire contract is
//! `api-spec/openapi.yaml`, which `/openapi.json` serves and a test keeps true.

mod access;
pub mod auth;
mod backup;
pub mod extract;
mod files;
mod handlers;
mod head;
pub mod metrics;
mod objections;
pub mod problem;
mod seals;
pub mod serve;
mod sync;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use zhengyin_engine::Engine;

pub use auth::{Caller, Role, TokenConfig, Tokens};
pub use backup::BACKUP_MEDIA_TYPE;
pub use metrics::Metrics;
pub use problem::Problem;
pub use serve::{serve, ServeLimits};

/// The OpenAPI document, as written in `api-spec/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../../api-spec/openapi.yaml");

/// The log target of the access log: one line per request with its id, the caller's role and
/// name, route, status and duration.
pub const ACCESS_LOG: &str = "access";

/// The request-id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Everything a handler needs. Cloned for every request (by each extractor and middleware that
/// takes it), so one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
#[derive(Clone)]
pub struct Shared {
    /// The use cases.
    pub engine: Arc<Engine>,
    /// The configured tokens.
    pub tokens: Arc<Tokens>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The OpenAPI document as JSON, parsed once.
    openapi: Arc<Value>,
    /// Most licences in one batch verification.
    batch_limit: usize,
    /// Batch verifications running at once (one per core): the rest wait in arrival order, so
    /// a batch is not starved by later ones.
    batch_slots: Arc<tokio::sync::Semaphore>,
    /// The store's online backup, when it has one (the embedded store).
    backups: Option<Arc<dyn zhengyin_store::Backup>>,
    /// The signed trust list this node publishes, read at every request (so its operator can
    /// replace the file without a restart).
    published_trust_list: Option<std::path::PathBuf>,
    /// How the pages sign people in.
    pages: zhengyin_pages::PagesConfig,
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
#[error("api-spec/openapi.yaml is not valid YAML: {0}")]
pub struct SpecError(String);

impl AppState {
    /// Builds the state.
    pub fn new(engine: Arc<Engine>, tokens: Tokens) -> Result<Self, SpecError> {
        let openapi: Value = serde_yaml_ng::from_str(OPENAPI_YAML).map_err(|e| SpecError(e.to_string()))?;
        load_issued_tokens(&engine, &tokens).map_err(|e| SpecError(format!("reading issued API tokens: {e}")))?;
        Ok(Self(Arc::new(Shared {
            metrics: Arc::new(Metrics::new(&engine)),
            engine,
            tokens: Arc::new(tokens),
            openapi: Arc::new(openapi),
            batch_limit: HttpConfig::default().batch_limit,
            batch_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            )),
            backups: None,
            published_trust_list: None,
            pages: zhengyin_pages::PagesConfig::default(),
        })))
    }

    /// Serves `GET /v1/backup` from `store`.
    #[must_use]
    pub fn with_backups(self, store: Arc<dyn zhengyin_store::Backup>) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.backups = Some(store);
        Self(Arc::new(shared))
    }

    /// Lets the pages sign holders in as `config` says.
    #[must_use]
    pub fn with_pages(self, config: zhengyin_pages::PagesConfig) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.pages = config;
        Self(Arc::new(shared))
    }

    /// Serves `GET /v1/federation/trust-list` from the signed list in `file`.
    #[must_use]
    pub fn with_published_trust_list(self, file: std::path::PathBuf) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.published_trust_list = Some(file);
        Self(Arc::new(shared))
    }
}

impl AppState {
    /// Brings this frontend in step with the others of a shared database (see
    /// [`Engine::follow_store`]), its token table included.
    pub async fn follow_store(&self) -> Result<zhengyin_engine::Followed, zhengyin_engine::EngineError> {
        let followed = self.engine.follow_store().await?;
        if followed.tokens {
            load_issued_tokens(&self.engine, &self.tokens)?;
        }
        Ok(followed)
    }
}

/// Takes the tokens issued through the API into the table (revoked ones out); one that no longer
/// fits the rules is left out, loudly.
fn load_issued_tokens(engine: &Engine, tokens: &Tokens) -> Result<(), zhengyin_engine::EngineError> {
    for token in engine.api_tokens()? {
        if let Err(e) = tokens.apply_issued(&token) {
            tracing::error!(token = %token.id, error = %e, "an issued API token is not usable");
        }
    }
    Ok(())
}

/// HTTP settings.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Most licences in one `POST /v1/verify/batch`.
    pub batch_limit: usize,
    /// Largest body of `POST /v1/verify/batch`, in bytes.
    pub batch_body_limit: usize,
    /// How long a client may take to send a request body (408 `request.timeout` after).
    pub body_read_timeout: std::time::Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 256 * 1024,
            batch_limit: 256,
            batch_body_limit: 4 * 1024 * 1024,
            body_read_timeout: ServeLimits::default().body_read_timeout,
        }
    }
}

/// The router.
pub fn app(state: AppState, config: HttpConfig) -> Router {
    let mut shared = Arc::unwrap_or_clone(state.0);
    shared.batch_limit = config.batch_limit;
    let state = AppState(Arc::new(shared));
    let v1 = Router::new()
        .route(
            "/authorities",
            post(handlers::register_authority).get(handlers::list_authorities),
        )
        .route("/authorities/{uscc}", get(handlers::get_authority))
        .route("/authorities/{uscc}/keys/{id}/retire", post(handlers::retire_key))
        .route("/crls", post(handlers::add_crl).get(handlers::list_crls))
        .route(
            "/licence-types",
            post(handlers::register_licence_type).get(handlers::list_licence_types),
        )
        .route("/licence-types/{code}", get(handlers::get_licence_type))
        .route(
            "/licence-types/{code}/versions",
            get(handlers::list_licence_type_versions),
        )
        .route(
            "/licence-types/{code}/versions/{version}",
            get(handlers::get_licence_type_version),
        )
        .route("/licence-types/{code}/issuers", post(handlers::set_type_issuers))
        .route("/licence-types/{code}/lookup", post(access::lookup))
        .route("/licence-types/{code}/check", post(access::check))
        .route("/licence-types/{code}/fetch", post(access::fetch))
        .route(
            "/service-items",
            post(access::register_service_item).get(access::list_service_items),
        )
        .route("/grants", post(access::apply_for_grant).get(access::list_grants))
        .route("/grants/{id}", get(access::get_grant))
        .route("/grants/{id}/{action}", post(access::change_grant))
        .route("/me/licences", get(access::my_licences))
        .route("/me/use-records", get(access::my_use_records))
        .route(
            "/me/authorisations",
            post(access::authorise).get(access::my_authorisations),
        )
        .route("/me/authorisations/{id}/withdraw", post(access::withdraw_authorisation))
        .route("/use-records", get(access::use_records))
        .route("/me/presentations", post(access::present))
        .route("/presentations/scan", post(access::scan))
        .route("/me/annotated-copies", post(access::annotate))
        .route("/annotated-copies/verify", post(handlers::verify_annotated))
        .route("/token-key", get(access::token_key))
        .route("/tokens", post(access::issue_token).get(access::list_tokens))
        .route("/tokens/{id}/revoke", post(access::revoke_token))
        .route("/licences", post(handlers::issue))
        .route(
            "/licences/batch",
            post(handlers::issue_batch).layer(axum::Extension(extract::BodyLimit(config.batch_body_limit))),
        )
        .route("/licences/{id}", get(handlers::get_licence))
        .route("/licences/{id}/status", get(handlers::get_status))
        .route("/licences/{id}/file", get(files::get_licence_file))
        .route("/licences/{id}/versions", post(handlers::update))
        .route("/licences/{id}/revoke", post(handlers::revoke))
        .route("/licences/{id}/suspend", post(handlers::suspend))
        .route("/licences/{id}/reinstate", post(handlers::reinstate))
        .route("/verify", post(handlers::verify))
        .route(
            "/verify/batch",
            post(handlers::verify_batch).layer(axum::Extension(extract::BodyLimit(config.batch_body_limit))),
        )
        .route("/objections", post(objections::file).get(objections::list))
        .route("/objections/overdue", get(objections::overdue))
        .route("/notifications", get(objections::notifications))
        .route("/objections/{id}", get(objections::get))
        .route("/objections/{id}/actions", post(objections::act))
        .route(
            "/objections/{id}/evidence",
            post(objections::add_evidence).layer(axum::Extension(extract::BodyLimit(config.batch_body_limit))),
        )
        .route("/objections/{id}/evidence/{sha256}", get(objections::get_evidence))
        .route("/licences/{id}/objections", get(objections::of_licence))
        .route("/seals", post(seals::make))
        .route("/seals/verify", post(seals::verify_seal))
        .route("/seals/{es_id}", get(seals::get))
        .route("/seals/{es_id}/suspend", post(seals::suspend))
        .route("/seals/{es_id}/reinstate", post(seals::reinstate))
        .route("/seals/{es_id}/revoke", post(seals::revoke))
        .route("/seals/{es_id}/apply", post(seals::apply))
        .route(
            "/seals/{es_id}/sign-ofd",
            post(seals::seal_ofd).layer(axum::Extension(extract::BodyLimit(config.batch_body_limit))),
        )
        .route("/signatures/verify", post(seals::verify_signature))
        .route(
            "/ofd/verify",
            post(seals::verify_ofd).layer(axum::Extension(extract::BodyLimit(config.batch_body_limit))),
        )
        .route("/log/checkpoint", get(handlers::log_checkpoint))
        .route("/log/key", get(handlers::log_key))
        .route("/log/entries", get(handlers::log_entries))
        .route("/log/proof/inclusion", get(handlers::log_inclusion))
        .route("/log/proof/consistency", get(handlers::log_consistency))
        .route("/sync/objects", get(sync::objects))
        .route("/sync/sources", get(sync::sources))
        .route("/sync/incidents", get(sync::incidents))
        .route("/sync/incidents/{id}/resolve", post(sync::resolve))
        .route("/federation/ownership", get(sync::ownership))
        .route("/federation/trust-list", get(sync::trust_list))
        .route("/backup", get(backup::backup));
    Router::new()
        .nest("/v1", v1)
        .merge(zhengyin_pages::router(
            state.engine.clone(),
            state.tokens.clone(),
            state.pages.clone(),
        ))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "not_found", "no such resource") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed here",
            )
        })
        .layer(axum::Extension(extract::BodyLimit(config.body_limit)))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::Extension(extract::BodyReadTimeout(config.body_read_timeout)))
        .layer(middleware::from_fn(head::limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::new(header::HeaderName::from_static(
            REQUEST_ID,
        )))
        .layer(SetRequestIdLayer::new(
            header::HeaderName::from_static(REQUEST_ID),
            RequestIds::default(),
        ))
        .with_state(state)
}

/// Ready when the engine has loaded its registry (it did before the state existed), signs (its
/// log reaches what it published), its store takes a durable write, its log key signs and its
/// sources are fresh; else 503 naming the part (see [`zhengyin_engine::NotReady`]).
async fn readyz(State(s): State<AppState>) -> Response {
    let engine = Arc::clone(&s.engine);
    let Ok(readiness) = tokio::task::spawn_blocking(move || engine.readiness()).await else {
        return Problem::internal().into_response();
    };
    match readiness {
        Ok(()) => Json(json!({"status": "ready", "licence_types": s.engine.licence_types().len()})).into_response(),
        Err(not_ready) => {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, not_ready.part, not_ready.detail).into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>, headers: header::HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let engine = Arc::clone(&s.engine);
    let metrics = Arc::clone(&s.metrics);
    // Reads the store (objections, the log's size): off the async workers.
    let Ok(text) = tokio::task::spawn_blocking(move || metrics.scrape(&engine, openmetrics)).await else {
        return Problem::internal().into_response();
    };
    let media_type = if openmetrics {
        metrics::OPENMETRICS
    } else {
        metrics::PROMETHEUS_TEXT
    };
    ([(header::CONTENT_TYPE, media_type)], text).into_response()
}

async fn openapi(State(s): State<AppState>) -> Json<Value> {
    Json((*s.openapi).clone())
}

/// Request ids: a per-process random prefix and a counter.
#[derive(Clone)]
struct RequestIds {
    prefix: String,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self {
            prefix: format!("{:08x}", zhengyin_crypto::random_u64() as u32),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Records metrics and the access log, and puts the request id into problem bodies.
async fn observe(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().to_string();
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let caller = auth::CallerSlot::default();
    req.extensions_mut().insert(caller.clone());
    let response = next.run(req).await;
    let status = response.status();
    let labels = metrics::RequestLabels {
        route,
        method,
        status: status.as_u16(),
    };
    let seconds = start.elapsed().as_secs_f64();
    s.metrics.requests.get_or_create(&labels).inc();
    s.metrics.durations.get_or_create(&labels).observe(seconds);
    let (role, name) = caller.get();
    // One line per request; a 5xx at error (a tracing level is fixed per call site).
    macro_rules! access_line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                target: ACCESS_LOG,
                request_id,
                role,
                caller = name,
                method = labels.method,
                route = labels.route,
                status = status.as_u16(),
                ms = seconds * 1e3,
                $message
            )
        };
    }
    if status.is_server_error() {
        access_line!(error, "request failed");
    } else {
        access_line!(info, "request");
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == problem::PROBLEM_JSON);
    // The pages answer people with a page in words, whatever the status.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let response = if is_problem {
        response
    } else if is_page {
        let mut response = response;
        // A page may refuse a form before reading all of it (too large): the connection is not
        // reused, and the client is told so.
        if has_body && status.is_client_error() {
            response
                .headers_mut()
                .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        return response;
    } else if status.is_client_error() || status.is_server_error() {
        // An extractor's or the framework's plain-text refusal: every error is problem+json.
        let (_, body) = response.into_parts();
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        Problem::for_plain_error(status, &String::from_utf8_lossy(&text)).into_response()
    } else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    // Refused before its body was read (auth, rate, size, media type): the server will not reuse
    // this connection, so say so, or a client may send its next request into a closing socket.
    let refused_early = matches!(status.as_u16(), 401 | 403 | 413 | 415 | 429);
    if has_body && refused_early {
        parts
            .headers
            .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (parts, Body::empty()).into_response();
    };
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut value {
        m.insert("request_id".to_owned(), Value::String(request_id));
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, bytes).into_response()
}
