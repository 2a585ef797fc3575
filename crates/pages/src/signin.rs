//! Signing in and out. Holders sign in through the identity platform the node trusts, with the
//! OpenID Connect authorization-code flow: the node sends the browser to the platform with a
//! fresh `state` and `nonce` (kept in the visitor's session), the platform sends it back with a
//! code, and the node exchanges the code at the platform's token endpoint for an ID token — the
//! holder JWT the API already accepts — which must carry that nonce. Staff sign in once with
//! their API token, which stays on the server (only its SHA-256 is kept, in the session).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::error::PageError;
use crate::session::{self, Me, Pending, Signed, Staff, Visitor, Who};
use crate::Shared;

/// The identity platform holders sign in with (an OpenID Connect provider).
#[derive(Debug, Clone)]
pub struct SignInConfig {
    /// Its authorization endpoint, where the browser is sent: absolute, or a path on this node.
    pub authorize_url: String,
    /// Its token endpoint, where this node exchanges the code (absolute).
    pub token_url: String,
    /// This node's client id there.
    pub client_id: String,
    /// This node's client secret there, if it has one (sent in the token request's body).
    pub client_secret: Option<String>,
    /// This node's sign-in callback as registered there; absent: `http://<Host>/signin/callback`.
    pub redirect_url: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    me: Option<Me>,
    csrf: String,
    holders_may_sign_in: bool,
    demo: bool,
    refused: Option<&'static str>,
}

/// Where a staff member lands after signing in.
fn home_of(staff: &Staff) -> &'static str {
    match staff {
        Staff::Department(_) => "/department",
        Staff::Authority(_) => "/authority",
        Staff::Auditor => "/auditor",
        Staff::Operator => "/operator",
    }
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = crate::see_other(location);
    if let Some(cookie) = cookie.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = header::HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /signin`: both ways in. A visitor gets a session first, for the forms' CSRF token.
pub(crate) async fn page(State(pages): State<Shared>, visitor: Visitor) -> Result<Response, PageError> {
    render(&pages, &visitor, None)
}

fn render(pages: &crate::Pages, visitor: &Visitor, refused: Option<&'static str>) -> Result<Response, PageError> {
    let (cookie, csrf) = match visitor.csrf() {
        Some(csrf) => (None, csrf.to_owned()),
        None => {
            let (cookie, csrf) = session::start(pages, visitor, Who::Visitor, None, session::SIGNING_IN_FOR)?;
            (Some(cookie), csrf)
        }
    };
    let status = if refused.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let response = crate::page_with(
        status,
        &SignInPage {
            me: visitor.me(),
            csrf,
            holders_may_sign_in: pages.sign_in.is_some(),
            demo: pages.demo_identity.is_some(),
            refused,
        },
    );
    Ok(match cookie {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    })
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// This node's callback, as the identity platform is told it.
fn redirect_uri(config: &SignInConfig, headers: &HeaderMap) -> Result<String, PageError> {
    if let Some(url) = &config.redirect_url {
        return Ok(url.clone());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .ok_or_else(|| PageError::BadRequest("the request names no valid Host".to_owned()))?;
    Ok(format!("http://{host}/signin/callback"))
}

/// `url` with `params` added to its query; `url` may be a path on this node.
fn with_query(url: &str, params: &[(&str, &str)]) -> Result<String, PageError> {
    let relative = url.starts_with('/');
    let base = reqwest::Url::parse("http://this-node.invalid/").map_err(|e| PageError::BadRequest(e.to_string()))?;
    let mut parsed = base
        .join(url)
        .map_err(|e| PageError::BadRequest(format!("the identity platform's URL: {e}")))?;
    parsed.query_pairs_mut().extend_pairs(params);
    Ok(if relative {
        format!("{}?{}", parsed.path(), parsed.query().unwrap_or(""))
    } else {
        parsed.into()
    })
}

/// `POST /signin/holder`: off to the identity platform, with a fresh state and nonce.
pub(crate) async fn holder(
    State(pages): State<Shared>,
    headers: HeaderMap,
    visitor: Visitor,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    visitor.check_csrf(form.csrf.as_deref())?;
    let config = pages.sign_in.as_ref().ok_or(PageError::NotFound)?;
    let pending = Pending {
        state: session::random_token()?,
        nonce: session::random_token()?,
        redirect_uri: redirect_uri(config, &headers)?,
    };
    let location = with_query(
        &config.authorize_url,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("client_id", &config.client_id),
            ("redirect_uri", &pending.redirect_uri),
            ("state", &pending.state),
            ("nonce", &pending.nonce),
        ],
    )?;
    let (cookie, _) = session::start(&pages, &visitor, Who::Visitor, Some(pending), session::SIGNING_IN_FOR)?;
    Ok(see_other(&location, Some(cookie)))
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The token endpoint's answer (OpenID Connect Core §3.1.3.3).
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: String,
}

/// `GET /signin/callback`: the identity platform's answer. The state must be the one this
/// session sent; the code is exchanged for an ID token carrying this session's nonce.
pub(crate) async fn callback(
    State(pages): State<Shared>,
    visitor: Visitor,
    Query(answer): Query<Callback>,
) -> Result<Response, PageError> {
    let config = pages.sign_in.as_ref().ok_or(PageError::NotFound)?;
    let pending = visitor
        .pending()
        .cloned()
        .ok_or_else(|| PageError::SignInFailed("这次登录没有从本站发起，或已超时。请重新登录。".to_owned()))?;
    if answer.state.as_deref() != Some(pending.state.as_str()) {
        return Err(PageError::SignInFailed(
            "身份认证平台的回应与这次登录不符（state 不一致），未予登录。请重新登录。".to_owned(),
        ));
    }
    if let Some(error) = answer.error {
        let detail = answer.error_description.unwrap_or_default();
        return Err(PageError::SignInFailed(format!("身份认证平台未认证：{error} {detail}")));
    }
    let code = answer
        .code
        .ok_or_else(|| PageError::SignInFailed("身份认证平台的回应缺少授权码。".to_owned()))?;
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("client_id", config.client_id.as_str()),
    ];
    if let Some(secret) = &config.client_secret {
        params.push(("client_secret", secret));
    }
    let unreachable = |e: reqwest::Error| {
        tracing::warn!(error = %e, "the identity platform's token endpoint failed");
        PageError::SignInFailed("无法连接身份认证平台，请稍后再试。".to_owned())
    };
    let response = pages
        .client
        .post(&config.token_url)
        .form(&params)
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(PageError::SignInFailed(format!(
            "身份认证平台拒绝了授权码（HTTP {}）。请重新登录。",
            response.status().as_u16()
        )));
    }
    let answer: TokenAnswer = response.json().await.map_err(unreachable)?;
    let holder = pages
        .engine
        .authenticate_signed_in(&answer.id_token, &pending.nonce)
        .map_err(|e| PageError::SignInFailed(format!("身份令牌未通过核验：{e}")))?;
    tracing::info!(
        holder_type = holder.code_type.as_str(),
        "a holder signed in on the pages"
    );
    let (cookie, _) = session::start(&pages, &visitor, Who::Holder { holder }, None, session::SIGNED_IN_FOR)?;
    Ok(see_other("/holder", Some(cookie)))
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: Option<String>,
    token: Option<String>,
}

/// `POST /signin/token`: a staff member signs in with an API token.
pub(crate) async fn token(
    State(pages): State<Shared>,
    visitor: Visitor,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    visitor.check_csrf(form.csrf.as_deref())?;
    let hash = zhengyin_crypto::hash::sha256(form.token.as_deref().unwrap_or("").trim().as_bytes());
    let Some((name, staff)) = pages.staff.staff(&hash) else {
        return render(&pages, &visitor, Some("口令无效，或不是可以登录页面的口令。"));
    };
    tracing::info!(token = name, "staff signed in on the pages");
    let who = Who::Staff {
        token_sha256: hex::encode(hash),
    };
    let (cookie, _) = session::start(&pages, &visitor, who, None, session::SIGNED_IN_FOR)?;
    Ok(see_other(home_of(&staff), Some(cookie)))
}

/// `POST /signout`.
pub(crate) async fn sign_out(
    State(pages): State<Shared>,
    visitor: Visitor,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    visitor.check_csrf(form.csrf.as_deref())?;
    if matches!(visitor.signed, Signed::Nobody) {
        return Ok(see_other("/", None));
    }
    let cookie = visitor.end(&pages)?;
    Ok(see_other("/", Some(cookie)))
}
