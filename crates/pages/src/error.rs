//! What a page answers when it cannot do what was asked: a page in plain words with the right
//! status (never a stack of English), or a redirect to sign in.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use zhengyin_engine::presentation::PresentationRefusal;
use zhengyin_engine::{EngineError, UseRefusal};

/// Why a page could not be served.
#[derive(Debug)]
pub(crate) enum PageError {
    /// Not signed in (or as someone else): go to the sign-in page.
    SignIn,
    /// Signed in, but this page is for another audience.
    WrongAudience(&'static str),
    /// The form's CSRF token is missing or not this session's.
    Csrf,
    /// No such thing, or not the visitor's (the same answer: whether it exists is not told).
    NotFound,
    /// The request cannot be done as sent.
    BadRequest(String),
    /// The identity platform did not sign the holder in.
    SignInFailed(String),
    /// The node cannot answer now (its store cannot be read).
    Unavailable,
    /// The engine refused or failed.
    Engine(EngineError),
}

impl From<EngineError> for PageError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::LicenceNotFound(_) | EngineError::ObjectionNotFound(_) => PageError::NotFound,
            e => PageError::Engine(e),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    /// Error pages do not read the session: they show no one as signed in.
    me: Option<crate::session::Me>,
    headline: &'a str,
    detail: String,
}

/// The status, headline and detail of a refusal by the engine, in plain words.
fn engine_words(e: &EngineError) -> (StatusCode, &'static str, String) {
    use StatusCode as S;
    let detail = e.to_string();
    match e {
        EngineError::Store(_) => (S::SERVICE_UNAVAILABLE, "服务暂时不可用，请稍后再试", String::new()),
        EngineError::Forbidden(_) | EngineError::NotIssuer(_) => (S::FORBIDDEN, "您无权办理此事项", detail),
        EngineError::UseRefused(r) => {
            let why = match r {
                UseRefusal::UseCause(_) => "用证事由不符合要求",
                UseRefusal::UnknownServiceItem(_) => "没有这个办事事项",
                UseRefusal::NoGrant => "本部门没有该类证照的用证授权",
                UseRefusal::ServiceItemNotGranted(_) => "本部门的用证授权不包含这个办事事项",
                UseRefusal::FieldNotGranted(_) | UseRefusal::FieldsInsufficient => "本部门的用证授权不包含所需信息项",
                UseRefusal::AuthorisationRequired => "此次用证需要持证人授权",
                UseRefusal::AuthorisationInvalid => "持证人的授权无效、已撤回或已过期",
            };
            (S::FORBIDDEN, why, detail)
        }
        EngineError::Presentation(r) => {
            let (status, why) = match r {
                PresentationRefusal::Invalid => (S::UNPROCESSABLE_ENTITY, "这不是本节点的亮证码，或已被改动"),
                PresentationRefusal::Expired => (S::GONE, "亮证码已过期，请持证人刷新后再扫"),
                PresentationRefusal::Used => (S::CONFLICT, "亮证码已被扫过一次，请持证人刷新后再扫"),
                PresentationRefusal::Unavailable => (S::CONFLICT, "亮证码对应的证照现在不能出示"),
            };
            (status, why, detail)
        }
        _ => (S::UNPROCESSABLE_ENTITY, "无法办理", detail),
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, headline, detail) = match self {
            PageError::SignIn => {
                return (StatusCode::SEE_OTHER, [(header::LOCATION, "/signin")]).into_response();
            }
            PageError::WrongAudience(page) => (
                StatusCode::FORBIDDEN,
                "此页面不属于您当前的登录身份",
                format!("{page}需要以相应身份登录；请先退出，再以该身份登录。"),
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "表单已失效",
                "表单缺少或带有错误的校验码（防跨站请求伪造），未予办理。请返回上一页，刷新后再提交。".to_owned(),
            ),
            PageError::NotFound => (StatusCode::NOT_FOUND, "找不到该页面或证照", String::new()),
            PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, "请求有误", why),
            PageError::SignInFailed(why) => (StatusCode::UNAUTHORIZED, "登录未成功", why),
            PageError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用，请稍后再试",
                "本节点暂时无法读取登记簿，核验结果不可得（不是证照的问题）。".to_owned(),
            ),
            PageError::Engine(e) => {
                if matches!(e, EngineError::Store(_)) {
                    tracing::error!(error = %e, "a page could not reach the store");
                }
                engine_words(&e)
            }
        };
        super::page_with(
            status,
            &ErrorPage {
                me: None,
                headline,
                detail,
            },
        )
    }
}
