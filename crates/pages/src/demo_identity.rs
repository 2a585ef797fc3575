//! The demo identity platform (`serve --demo` only, marked as such on its page): an OpenID
//! Connect provider just big enough for the sign-in flow — an authorization page that signs a
//! holder in as one of the demo holders, and a token endpoint that exchanges a code (once,
//! within a minute, for the same client and callback) for an ID token signed with the EXAMPLE
//! identity-platform key, as the node's configured platform would sign it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use zhengyin_crypto::Signer;
use zhengyin_engine::identity::{mint_holder_token, HolderTokenClaims};
use zhengyin_model::HolderRef;

use crate::error::PageError;
use crate::session::{random_token, Me};
use crate::Shared;

/// How long a code may wait to be exchanged.
const CODE_LIFETIME: Duration = Duration::seconds(60);
/// How long the ID tokens it mints live.
const ID_TOKEN_LIFETIME: Duration = Duration::minutes(10);

/// A demo holder one may sign in as.
#[derive(Debug, Clone)]
pub struct DemoHolder {
    /// The name shown.
    pub name: String,
    /// Who.
    pub holder: HolderRef,
}

/// The demo identity platform: its key, its holders, the codes handed out.
pub struct DemoIdentity {
    signer: Arc<dyn Signer>,
    holders: Vec<DemoHolder>,
    codes: Mutex<HashMap<String, Code>>,
}

/// A code handed out, waiting for its exchange.
struct Code {
    holder: HolderRef,
    client_id: String,
    redirect_uri: String,
    nonce: String,
    expires: OffsetDateTime,
}

impl DemoIdentity {
    /// A demo platform signing with `signer` (the EXAMPLE key) for `holders`.
    pub fn new(signer: Arc<dyn Signer>, holders: Vec<DemoHolder>) -> Self {
        Self {
            signer,
            holders,
            codes: Mutex::default(),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
}

struct Choice {
    index: usize,
    name: String,
    code: String,
}

#[derive(Template)]
#[template(path = "demo_identity.html")]
struct AuthorizePage {
    me: Option<Me>,
    holders: Vec<Choice>,
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: String,
}

/// The request's parameters, checked: a code flow back to this node's own callback.
fn checked(q: AuthorizeQuery, headers: &HeaderMap) -> Result<(String, String, String, String), PageError> {
    let missing = |what: &str| PageError::BadRequest(format!("登录请求缺少 {what}。"));
    if q.response_type.as_deref().is_some_and(|t| t != "code") {
        return Err(PageError::BadRequest(
            "演示平台只支持授权码模式（response_type=code）。".to_owned(),
        ));
    }
    let redirect_uri = q.redirect_uri.ok_or_else(|| missing("redirect_uri"))?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    // No client registry here: only this node's own callback is a place to send a code.
    if redirect_uri != format!("http://{host}/signin/callback")
        && redirect_uri != format!("https://{host}/signin/callback")
    {
        return Err(PageError::BadRequest(
            "回调地址不是本节点的登录回调，演示平台不予跳转。".to_owned(),
        ));
    }
    Ok((
        q.client_id.ok_or_else(|| missing("client_id"))?,
        redirect_uri,
        q.state.ok_or_else(|| missing("state"))?,
        q.nonce.ok_or_else(|| missing("nonce"))?,
    ))
}

/// `GET /demo/identity/authorize`: whom to sign in as.
pub(crate) async fn page(
    State(pages): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Response, PageError> {
    let demo = pages.demo_identity.as_ref().ok_or(PageError::NotFound)?;
    let (client_id, redirect_uri, state, nonce) = checked(q, &headers)?;
    let holders = demo
        .holders
        .iter()
        .enumerate()
        .map(|(index, h)| Choice {
            index,
            name: h.name.clone(),
            code: h.holder.code.clone(),
        })
        .collect();
    Ok(crate::page(&AuthorizePage {
        me: None,
        holders,
        client_id,
        redirect_uri,
        state,
        nonce,
    }))
}

#[derive(Deserialize)]
pub(crate) struct Approval {
    holder: Option<String>,
    #[serde(flatten)]
    request: AuthorizeQuery,
}

/// `POST /demo/identity/authorize`: signs the chosen holder in; back to the node with a code.
pub(crate) async fn approve(
    State(pages): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<Approval>,
) -> Result<Response, PageError> {
    let demo = pages.demo_identity.as_ref().ok_or(PageError::NotFound)?;
    let (client_id, redirect_uri, state, nonce) = checked(form.request, &headers)?;
    let holder = form
        .holder
        .as_deref()
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| demo.holders.get(i))
        .ok_or_else(|| PageError::BadRequest("请选择一位演示持证人。".to_owned()))?;
    let code = random_token()?;
    let now = pages.engine.now();
    {
        let mut codes = demo.codes.lock().unwrap_or_else(|p| p.into_inner());
        codes.retain(|_, c| c.expires > now);
        codes.insert(
            code.clone(),
            Code {
                holder: holder.holder.clone(),
                client_id,
                redirect_uri: redirect_uri.clone(),
                nonce,
                expires: now + CODE_LIFETIME,
            },
        );
    }
    let mut back = reqwest::Url::parse(&redirect_uri).map_err(|e| PageError::BadRequest(e.to_string()))?;
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    Ok(crate::see_other(back))
}

#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2).
fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /demo/identity/token`: a code, once, for an ID token.
pub(crate) async fn token(State(pages): State<Shared>, Form(req): Form<TokenRequest>) -> Response {
    let Some(demo) = pages.demo_identity.as_ref() else {
        return oauth_error("invalid_request", "this node plays no demo identity platform");
    };
    if req.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error("unsupported_grant_type", "only authorization_code");
    }
    let now = pages.engine.now();
    let code = req
        .code
        .and_then(|c| demo.codes.lock().unwrap_or_else(|p| p.into_inner()).remove(&c));
    let Some(code) = code.filter(|c| c.expires > now) else {
        return oauth_error("invalid_grant", "unknown, used or expired code");
    };
    if req.client_id.as_deref() != Some(code.client_id.as_str())
        || req.redirect_uri.as_deref() != Some(code.redirect_uri.as_str())
    {
        return oauth_error("invalid_grant", "the code was given to another client or callback");
    }
    let Some((issuer, audience)) = pages.engine.identity_platform() else {
        return oauth_error("server_error", "the node trusts no single identity platform");
    };
    let claims = HolderTokenClaims {
        issuer,
        audience,
        holder: &code.holder,
        issued_at: now,
        lifetime: ID_TOKEN_LIFETIME,
        nonce: Some(&code.nonce),
    };
    match mint_holder_token(demo.signer.as_ref(), &claims) {
        Ok(id_token) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "access_token": random_token().unwrap_or_default(),
                "token_type": "Bearer",
                "expires_in": ID_TOKEN_LIFETIME.whole_seconds(),
                "id_token": id_token,
            })),
        )
            .into_response(),
        Err(e) => oauth_error("server_error", &e.to_string()),
    }
}
