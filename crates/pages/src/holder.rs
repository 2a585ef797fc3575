//! `/holder`: a signed-in holder's own licences (我的证照), each with its face under the
//! catalogue's field titles, its versions and downloads; 亮证 (a QR code that refreshes before it
//! expires); 用证记录 (who used which licence, when, for what); and 授权 (give and withdraw a
//! department's authorisation). Another holder's licence is a 404, as if it did not exist.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Form;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use time::Duration;
use zhengyin_engine::access::{AuthoriseRequest, GrantActor};
use zhengyin_model::licence::LicenceBody;
use zhengyin_model::{HolderRef, LicenceId, Version};

use crate::error::PageError;
use crate::session::{Me, Visitor};
use crate::{words, Choice, Shared};

/// One licence as a card.
pub(crate) struct Card {
    id: String,
    name: String,
    number: String,
    status: &'static str,
    valid: bool,
    validity: String,
    issuer: String,
}

struct AuthorisationRow {
    id: String,
    licence: String,
    department: String,
    service_item: String,
    until: String,
    live: bool,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "holder.html")]
struct HolderHome {
    me: Option<Me>,
    csrf: String,
    cards: Vec<Card>,
    uses: Vec<crate::records::UseRow>,
    show_holder: bool,
    filter: Option<String>,
    authorisations: Vec<AuthorisationRow>,
    licences: Vec<Choice>,
    service_items: Vec<Choice>,
    departments: Vec<String>,
    default_until: String,
    objections: Vec<crate::objections::ObjectionRow>,
    notifications: Vec<NoticeRow>,
}

/// A notification of a step the issuer took on one of the holder's objections.
struct NoticeRow {
    time: String,
    objection: String,
    text: String,
}

fn licence_id(id: &str) -> Result<LicenceId, PageError> {
    LicenceId::parse(id).map_err(|_| PageError::NotFound)
}

/// The name of the authority `uscc`, or the code.
fn authority_name(pages: &crate::Pages, uscc: &str) -> String {
    pages
        .engine
        .authorities()
        .into_iter()
        .find(|a| a.uscc.as_str() == uscc)
        .map_or_else(|| uscc.to_owned(), |a| a.name)
}

fn validity(body: &LicenceBody) -> String {
    match body.valid_until {
        Some(until) => format!("{} 至 {}", words::date(body.valid_from), words::date(until)),
        None => format!("{} 起长期有效", words::date(body.valid_from)),
    }
}

/// The holder's current licences, as cards.
fn cards(pages: &crate::Pages, holder: &HolderRef) -> Result<Vec<(Card, LicenceBody)>, PageError> {
    let now = pages.engine.now();
    let mut cards = Vec::new();
    for entry in pages.engine.licences_of_holder(holder)? {
        let Some(id) = entry.get("id").and_then(Value::as_str) else {
            continue;
        };
        let licence = pages.engine.licence(&licence_id(id)?)?;
        let body = licence.body()?;
        let status = licence.status_at(now);
        cards.push((
            Card {
                id: id.to_owned(),
                name: body.name.clone(),
                number: body.number.clone(),
                status: words::status(status),
                valid: matches!(status, Some(zhengyin_model::Status::Valid)),
                validity: validity(&body),
                issuer: body.issuer.name.clone(),
            },
            body,
        ));
    }
    Ok(cards)
}

#[derive(Deserialize)]
pub(crate) struct UseFilter {
    licence: Option<String>,
}

/// `GET /holder`.
pub(crate) async fn home(
    State(pages): State<Shared>,
    visitor: Visitor,
    Query(filter): Query<UseFilter>,
) -> Result<Response, PageError> {
    let holder = visitor.holder()?;
    let me = visitor.me().ok_or(PageError::SignIn)?;
    let now = pages.engine.now();
    let items = pages.engine.service_items();
    let item_name = |code: &str| crate::records::item_name(&items, code);
    let cards = cards(&pages, holder)?;
    let filter = filter.licence.filter(|l| !l.is_empty());
    let lineage = filter
        .as_deref()
        .and_then(|l| LicenceId::parse(l).ok())
        .map(|l| l.lineage());
    let records: Vec<_> = pages
        .engine
        .use_records_of_holder(holder, None, 500)?
        .into_iter()
        .filter(|u| {
            lineage
                .as_ref()
                .is_none_or(|wanted| u.licences.iter().any(|l| &l.lineage() == wanted))
        })
        .collect();
    let uses = crate::records::use_rows(&items, records, 100);
    let number_of = |id: &LicenceId| {
        cards
            .iter()
            .find(|(_, body)| body.id.lineage() == id.lineage())
            .map_or_else(
                || id.as_str().to_owned(),
                |(card, _)| format!("{} {}", card.name, card.number),
            )
    };
    let authorisations = pages
        .engine
        .authorisations_of(holder)?
        .into_iter()
        .rev()
        .map(|a| {
            let live = a.withdrawn.is_none() && a.until > now;
            AuthorisationRow {
                licence: number_of(&a.licence),
                department: a.department,
                service_item: item_name(&a.service_item),
                until: words::moment(a.until),
                state: if a.withdrawn.is_some() {
                    "已撤回"
                } else if live {
                    "有效"
                } else {
                    "已到期"
                },
                live,
                id: a.id,
            }
        })
        .collect();
    let departments: BTreeSet<String> = pages
        .engine
        .grants_for(&GrantActor::Operator)
        .into_iter()
        .map(|g| g.department)
        .collect();
    let party = crate::objections::Party::of(&visitor)?;
    let objections = crate::objections::rows(&pages, &party, false, 50)?;
    let notifications: Vec<NoticeRow> = pages
        .engine
        .notifications_of(&holder.to_string(), None, 500)?
        .into_iter()
        .rev()
        .take(20)
        .map(|n| NoticeRow {
            time: words::moment(n.time),
            text: format!(
                "发证机关对您的异议{}{}",
                words::objection_action(&n.action),
                n.reason.map(|r| format!("：{r}")).unwrap_or_default()
            ),
            objection: n.objection,
        })
        .collect();
    let template = HolderHome {
        objections,
        notifications,
        csrf: me.csrf.clone(),
        me: Some(me),
        licences: cards
            .iter()
            .map(|(card, _)| Choice {
                value: card.id.clone(),
                label: format!("{} {}", card.name, card.number),
            })
            .collect(),
        cards: cards.into_iter().map(|(card, _)| card).collect(),
        uses,
        show_holder: false,
        filter,
        authorisations,
        service_items: crate::service_item_choices(&pages.engine),
        departments: departments.into_iter().collect(),
        default_until: (now + Duration::days(30)).date().to_string(),
    };
    Ok(crate::page(&template))
}

struct VersionRow {
    id: String,
    version: u16,
    current: bool,
}

#[derive(Template)]
#[template(path = "licence.html")]
struct LicencePage {
    me: Option<Me>,
    card: Card,
    holder_name: String,
    holder_code: String,
    issue_date: String,
    face: Vec<crate::face::FaceRow>,
    versions: Vec<VersionRow>,
}

/// The holder's licence `id` (404 when it is not theirs).
pub(crate) fn own_licence(pages: &crate::Pages, holder: &HolderRef, id: &str) -> Result<LicenceId, PageError> {
    let id = licence_id(id)?;
    pages.engine.check_holds(holder, &id).map_err(|e| match e {
        zhengyin_engine::EngineError::Forbidden(_) => PageError::NotFound,
        other => other.into(),
    })?;
    Ok(id)
}

/// `GET /holder/licences/{id}`.
pub(crate) async fn licence(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let holder = visitor.holder()?;
    let id = own_licence(&pages, holder, &id)?;
    let licence = pages.engine.licence(&id)?;
    let body = licence.body()?;
    let status = licence.status_at(pages.engine.now());
    let types = pages.engine.licence_types();
    let licence_type = types.iter().find(|t| t.code == *id.type_code());
    let mut versions = Vec::new();
    let mut version = LicenceId::new(id.type_code().clone(), id.issuer().clone(), id.serial(), Version::FIRST)
        .map_err(|e| PageError::BadRequest(e.to_string()))?;
    loop {
        let current = version == id;
        versions.push(VersionRow {
            id: version.as_str().to_owned(),
            version: version.version().number(),
            current,
        });
        if current || versions.len() >= 999 {
            break;
        }
        version = version
            .next_version()
            .map_err(|e| PageError::BadRequest(e.to_string()))?;
    }
    versions.reverse();
    let template = LicencePage {
        me: visitor.me(),
        card: Card {
            id: id.as_str().to_owned(),
            name: body.name.clone(),
            number: body.number.clone(),
            status: words::status(status),
            valid: matches!(status, Some(zhengyin_model::Status::Valid)),
            validity: validity(&body),
            issuer: authority_name(&pages, body.issuer.code.as_str()),
        },
        holder_name: body.holder.name.clone(),
        holder_code: body.holder.code.clone(),
        issue_date: words::date(body.issue_date),
        face: crate::face::rows(&body.face, licence_type),
        versions,
    };
    Ok(crate::page(&template))
}

#[derive(Template)]
#[template(path = "show.html")]
struct ShowPage {
    me: Option<Me>,
    id: String,
    name: String,
    number: String,
    qr_data_url: String,
    expires_at: i64,
    expires: String,
    seconds: i64,
    refresh_after: i64,
}

/// `GET /holder/licences/{id}/show`: 亮证. Each visit makes a fresh token (the last one stays
/// good until scanned or expired); the page reloads itself half a minute before it expires.
pub(crate) async fn show(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let holder = visitor.holder()?;
    let id = own_licence(&pages, holder, &id)?;
    let body = pages.engine.licence(&id)?.body()?;
    let shown = pages.engine.present(holder, id.as_str(), None).await?;
    let png = crate::qr::png(&shown.token).map_err(PageError::BadRequest)?;
    let seconds = (shown.expires - pages.engine.now()).whole_seconds().max(0);
    let template = ShowPage {
        me: visitor.me(),
        id: id.as_str().to_owned(),
        name: body.name,
        number: body.number,
        qr_data_url: format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        ),
        expires_at: shown.expires.unix_timestamp(),
        expires: words::moment(shown.expires),
        seconds,
        refresh_after: (seconds - 30).max(5),
    };
    Ok(crate::page(&template))
}

fn download(content_type: &'static str, name: String, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /holder/licences/{id}/licence.json`: the signed licence, as issued.
pub(crate) async fn download_json(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = own_licence(&pages, visitor.holder()?, &id)?;
    let licence = pages.engine.licence(&id)?;
    Ok(download(
        "application/json",
        format!("{}.json", id.as_str()),
        licence.bytes,
    ))
}

/// `GET /holder/licences/{id}/licence.ofd`: the sealed licence file.
pub(crate) async fn download_ofd(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = own_licence(&pages, visitor.holder()?, &id)?;
    match pages.engine.licence_file(&id).await {
        Ok(file) => Ok(download("application/ofd", format!("{}.ofd", id.as_str()), file)),
        Err(zhengyin_engine::EngineError::NoLicenceFile(_)) => Err(PageError::BadRequest(
            "这份证照还没有加盖电子印章的版式文件（发证机关尚未制作电子印章）。".to_owned(),
        )),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct AuthoriseForm {
    csrf: Option<String>,
    licence: Option<String>,
    department: Option<String>,
    service_item: Option<String>,
    until: Option<String>,
}

/// `POST /holder/authorisations`: 授权 a department to use a licence for a service item.
pub(crate) async fn authorise(
    State(pages): State<Shared>,
    visitor: Visitor,
    Form(form): Form<AuthoriseForm>,
) -> Result<Response, PageError> {
    let holder = visitor.holder()?;
    visitor.check_csrf(form.csrf.as_deref())?;
    let missing = |what: &str| PageError::BadRequest(format!("请填写{what}。"));
    let licence = form.licence.filter(|s| !s.is_empty()).ok_or_else(|| missing("证照"))?;
    let own = own_licence(&pages, holder, &licence)?;
    let until = form
        .until
        .as_deref()
        .and_then(|d| time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok())
        .ok_or_else(|| missing("有效期至（日期）"))?;
    // To the end of that day, Beijing time.
    let until = until
        .with_hms(23, 59, 59)
        .map_err(|e| PageError::BadRequest(e.to_string()))?
        .assume_offset(time::macros::offset!(+8));
    pages
        .engine
        .authorise(
            holder,
            AuthoriseRequest {
                licence: own.as_str().to_owned(),
                department: form.department.unwrap_or_default().trim().to_owned(),
                service_item: form.service_item.unwrap_or_default(),
                until,
            },
        )
        .await?;
    Ok(crate::see_other("/holder#authorisations"))
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: Option<String>,
}

/// `POST /holder/authorisations/{id}/withdraw`.
pub(crate) async fn withdraw(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let holder = visitor.holder()?;
    visitor.check_csrf(form.csrf.as_deref())?;
    pages.engine.withdraw_authorisation(holder, &id).await?;
    Ok(crate::see_other("/holder#authorisations"))
}
