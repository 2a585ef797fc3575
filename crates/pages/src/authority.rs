//! `/authority`: an issuing authority's desk. 异议 — the open objections to its licences, the
//! nearest deadline first and the overdue ones in red, each opening the page where it is
//! handled; 我签发的证照 — its licences of each type it may issue, a page at a time, with
//! revocation (注销 / 吊销 / 撤销); 签发 — a licence issued from a form built from the type's
//! schema (同步签发: signed, logged and sealed as through the API).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use zhengyin_engine::{IssueRequest, RevokeRequest};
use zhengyin_model::{Holder, HolderCodeType, LicenceId, LicenceType, RevocationReason, Status, TypeCode, Uscc};

use crate::error::PageError;
use crate::face_form::FieldInput;
use crate::objections::{ObjectionRow, Party};
use crate::session::{Me, Signed, Staff, Visitor};
use crate::{words, Choice, Shared};

/// Licences listed per page.
const PAGE: usize = 20;

fn authority(visitor: &Visitor) -> Result<&Uscc, PageError> {
    match &visitor.signed {
        Signed::Staff(Staff::Authority(uscc)) => Ok(uscc),
        Signed::Nobody => Err(PageError::SignIn),
        _ => Err(PageError::WrongAudience("发证机关页面")),
    }
}

/// The licence types `uscc` may issue.
fn types_of(pages: &crate::Pages, uscc: &Uscc) -> Vec<LicenceType> {
    pages
        .engine
        .licence_types()
        .into_iter()
        .filter(|t| t.may_issue(uscc))
        .collect()
}

struct LicenceRow {
    id: String,
    number: String,
    holder: String,
    status: &'static str,
    valid: bool,
    revocable: bool,
    version: u16,
}

#[derive(Template)]
#[template(path = "authority.html")]
struct AuthorityHome {
    me: Option<Me>,
    csrf: String,
    name: String,
    objections: Vec<ObjectionRow>,
    types: Vec<Choice>,
    chosen: String,
    licences: Vec<LicenceRow>,
    next: Option<String>,
    issued: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct HomeQuery {
    #[serde(rename = "type")]
    type_code: Option<String>,
    after: Option<String>,
    issued: Option<String>,
}

/// `GET /authority`.
pub(crate) async fn home(
    State(pages): State<Shared>,
    visitor: Visitor,
    Query(q): Query<HomeQuery>,
) -> Result<Response, PageError> {
    let uscc = authority(&visitor)?.clone();
    let me = visitor.me().ok_or(PageError::SignIn)?;
    let mut objections = crate::objections::rows(&pages, &Party::of(&visitor)?, true, 500)?;
    // Overdue first, then the nearest deadline.
    objections.sort_by_key(|o| (!o.overdue, o.due.is_none(), o.due));
    let types = types_of(&pages, &uscc);
    let chosen = q
        .type_code
        .filter(|c| types.iter().any(|t| t.code.as_str() == c))
        .or_else(|| types.first().map(|t| t.code.as_str().to_owned()))
        .unwrap_or_default();
    let mut licences = Vec::new();
    let mut next = None;
    if let Ok(type_code) = TypeCode::parse(&chosen) {
        let now = pages.engine.now();
        let ids = pages
            .engine
            .licences_of_issuer(&uscc, &type_code, q.after.as_deref(), PAGE)?;
        if ids.len() == PAGE {
            next = ids.last().map(LicenceId::lineage);
        }
        for id in ids {
            let licence = pages.engine.licence(&id)?;
            let body = licence.body()?;
            let status = licence.status_at(now);
            licences.push(LicenceRow {
                id: id.as_str().to_owned(),
                number: body.number,
                holder: format!("{}（{}）", body.holder.name, body.holder.code),
                status: words::status(status),
                valid: matches!(status, Some(Status::Valid)),
                revocable: matches!(status, Some(Status::Valid | Status::Suspended { .. })),
                version: id.version().number(),
            });
        }
    }
    let name = pages
        .engine
        .authorities()
        .into_iter()
        .find(|a| a.uscc == uscc)
        .map_or_else(|| uscc.to_string(), |a| a.name);
    Ok(crate::page(&AuthorityHome {
        csrf: me.csrf.clone(),
        me: Some(me),
        name,
        objections,
        types: types
            .iter()
            .map(|t| Choice {
                value: t.code.as_str().to_owned(),
                label: t.name.clone(),
            })
            .collect(),
        chosen,
        licences,
        next,
        issued: q.issued,
    }))
}

#[derive(Template)]
#[template(path = "issue.html")]
struct IssuePage {
    me: Option<Me>,
    csrf: String,
    type_code: String,
    type_name: String,
    holder_code_types: Vec<Choice>,
    today: String,
    face_inputs: Vec<FieldInput>,
}

#[derive(Deserialize)]
pub(crate) struct TypeQuery {
    #[serde(rename = "type")]
    type_code: Option<String>,
}

fn chosen_type(pages: &crate::Pages, uscc: &Uscc, code: Option<&str>) -> Result<LicenceType, PageError> {
    types_of(pages, uscc)
        .into_iter()
        .find(|t| Some(t.code.as_str()) == code)
        .ok_or_else(|| PageError::BadRequest("请选择本机关可以签发的证照类型。".to_owned()))
}

/// `GET /authority/issue?type=…`: the form for one licence of a type, from its schema.
pub(crate) async fn issue_form(
    State(pages): State<Shared>,
    visitor: Visitor,
    Query(q): Query<TypeQuery>,
) -> Result<Response, PageError> {
    let uscc = authority(&visitor)?.clone();
    let licence_type = chosen_type(&pages, &uscc, q.type_code.as_deref())?;
    let me = visitor.me().ok_or(PageError::SignIn)?;
    Ok(crate::page(&IssuePage {
        csrf: me.csrf.clone(),
        me: Some(me),
        type_code: licence_type.code.as_str().to_owned(),
        type_name: licence_type.name.clone(),
        holder_code_types: licence_type
            .holder_code_types
            .iter()
            .map(|t| Choice {
                value: t.as_str().to_owned(),
                label: match t {
                    HolderCodeType::CitizenId => "公民身份号码".to_owned(),
                    _ => "统一社会信用代码".to_owned(),
                },
            })
            .collect(),
        today: crate::words::china_today(pages.engine.now()),
        face_inputs: crate::face_form::inputs(&licence_type, None),
    }))
}

fn field(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /authority/licences`: issues the licence the form describes.
pub(crate) async fn issue(
    State(pages): State<Shared>,
    visitor: Visitor,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let uscc = authority(&visitor)?.clone();
    visitor.check_csrf(form.get("csrf").map(String::as_str))?;
    let licence_type = chosen_type(&pages, &uscc, form.get("type").map(String::as_str))?;
    let missing = |what: &str| PageError::BadRequest(format!("请填写{what}。"));
    let code_type = field(&form, "holder_code_type")
        .and_then(|c| HolderCodeType::parse(&c).ok())
        .ok_or_else(|| missing("持证主体代码类型"))?;
    let request = IssueRequest {
        type_code: licence_type.code.clone(),
        number: field(&form, "number").ok_or_else(|| missing("证照编号"))?,
        name: None,
        holder: Holder {
            name: field(&form, "holder_name").ok_or_else(|| missing("持证主体名称"))?,
            code: field(&form, "holder_code").ok_or_else(|| missing("持证主体代码"))?,
            code_type,
        },
        issue_date: None,
        valid_from: field(&form, "valid_from"),
        valid_until: field(&form, "valid_until"),
        region_code: None,
        service_item: None,
        face: crate::face_form::read(&licence_type, &form)?,
        seal: None,
    };
    let issued = pages.engine.issue(&uscc, request).await?;
    Ok(crate::see_other(format!(
        "/authority?type={}&issued={}#licences",
        licence_type.code,
        issued.id.as_str()
    )))
}

/// `POST /authority/licences/{id}/revoke`: 注销, 吊销 or 撤销 one of its licences.
pub(crate) async fn revoke(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let uscc = authority(&visitor)?.clone();
    visitor.check_csrf(form.get("csrf").map(String::as_str))?;
    let id = LicenceId::parse(&id).map_err(|_| PageError::NotFound)?;
    if id.issuer() != &uscc {
        return Err(PageError::NotFound);
    }
    let reason = match form.get("reason").map(String::as_str) {
        Some("cancelled") => RevocationReason::Cancelled,
        Some("withdrawn") => RevocationReason::Withdrawn,
        Some("rescinded") => RevocationReason::Rescinded,
        _ => return Err(PageError::BadRequest("请选择注销、吊销或撤销。".to_owned())),
    };
    pages
        .engine
        .revoke(
            &uscc,
            &id,
            RevokeRequest {
                reason,
                effective: None,
                note: field(&form, "note").unwrap_or_default(),
            },
        )
        .await?;
    Ok(crate::see_other(format!("/authority?type={}#licences", id.type_code())))
}
