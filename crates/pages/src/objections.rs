//! 异议处理 on the pages. A holder disputes a licence's data by ticking the fields on the licence
//! itself (under their titles), saying what is wrong and attaching evidence; the issuing
//! authority takes the objection through its steps (accept, review, ask for evidence, correct
//! with a new version, reject) from the same page, each with its reason; the objector answers a
//! request for evidence by uploading it, and follows the history. Operators and auditors read.
//! Who may take which step is the engine's rule, as for the API.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Form;
use zhengyin_engine::{FileObjection, ObjectionActor, ObjectionScope, UpdateRequest};
use zhengyin_model::objection::{Action, Channel, ObjectionKind, ObjectionState};
use zhengyin_model::{LicenceId, Objection, Uscc};

use crate::error::PageError;
use crate::face_form::FieldInput;
use crate::form::Parts;
use crate::session::{Me, Signed, Staff, Visitor};
use crate::{words, Shared};

/// Who the visitor is to objections.
pub(crate) enum Party {
    /// Files objections and follows its own: `holder:…` or `department:…`.
    Objector(String),
    /// Reviews the objections to the licences it issued.
    Issuer(Uscc),
    /// Reads every objection (operators, auditors).
    Overseer,
}

impl Party {
    pub(crate) fn of(visitor: &Visitor) -> Result<Party, PageError> {
        Ok(match &visitor.signed {
            Signed::Nobody => return Err(PageError::SignIn),
            Signed::Holder(holder) => Party::Objector(holder.to_string()),
            Signed::Staff(Staff::Department(d)) => Party::Objector(format!("department:{d}")),
            Signed::Staff(Staff::Authority(uscc)) => Party::Issuer(uscc.clone()),
            Signed::Staff(Staff::Auditor | Staff::Operator) => Party::Overseer,
        })
    }

    fn may_read(&self, o: &Objection) -> bool {
        match self {
            Party::Objector(who) => &o.objector == who,
            Party::Issuer(uscc) => o.licence.issuer() == uscc,
            Party::Overseer => true,
        }
    }

    pub(crate) fn scope(&self) -> ObjectionScope {
        match self {
            Party::Objector(who) => ObjectionScope::Objector(who.clone()),
            Party::Issuer(uscc) => ObjectionScope::Issuer(uscc.clone()),
            Party::Overseer => ObjectionScope::All,
        }
    }

    fn actor(&self) -> Result<ObjectionActor, PageError> {
        match self {
            Party::Objector(who) => Ok(ObjectionActor::Objector(who.clone())),
            Party::Issuer(uscc) => Ok(ObjectionActor::Issuer(uscc.clone())),
            Party::Overseer => Err(PageError::WrongAudience("异议的办理")),
        }
    }
}

/// An objection the visitor may read (404 otherwise, as if it did not exist).
fn readable(pages: &crate::Pages, party: &Party, id: &str) -> Result<Objection, PageError> {
    let o = pages.engine.objection(id)?;
    if party.may_read(&o) {
        Ok(o)
    } else {
        Err(PageError::NotFound)
    }
}

/// One objection in a list.
pub(crate) struct ObjectionRow {
    pub(crate) id: String,
    pub(crate) licence: String,
    pub(crate) kind: &'static str,
    pub(crate) state: &'static str,
    pub(crate) open: bool,
    pub(crate) filed: String,
    pub(crate) deadline: String,
    pub(crate) due: Option<time::Date>,
    pub(crate) overdue: bool,
}

/// `o` as a row of a list.
pub(crate) fn row(pages: &crate::Pages, o: &Objection) -> ObjectionRow {
    let state = o.workflow.state();
    let due = pages.engine.deadline(o);
    ObjectionRow {
        id: o.id.clone(),
        licence: licence_label(pages, &o.licence),
        kind: words::objection_kind(o.kind),
        state: words::objection_state(state),
        open: state.is_open(),
        filed: words::moment(o.workflow.filed_at),
        deadline: due.map(words::date).unwrap_or_default(),
        due,
        overdue: pages.engine.is_overdue(o),
    }
}

/// The objections `party` sees, newest first (at most `limit`).
pub(crate) fn rows(
    pages: &crate::Pages,
    party: &Party,
    open_only: bool,
    limit: usize,
) -> Result<Vec<ObjectionRow>, PageError> {
    let mut all = Vec::new();
    let mut after = None;
    // Filing order is oldest first; a party's list is short, but read it a page at a time.
    loop {
        let page = pages
            .engine
            .objections_for(party.scope(), open_only, after.take(), 500)?;
        let full = page.len() == 500;
        after = page.last().map(|o| o.id.clone());
        all.extend(page);
        if !full || all.len() >= 10_000 {
            break;
        }
    }
    Ok(all.iter().rev().take(limit).map(|o| row(pages, o)).collect())
}

/// "营业执照 JL-0001" for a licence version, or its identifier.
fn licence_label(pages: &crate::Pages, id: &LicenceId) -> String {
    pages
        .engine
        .licence(id)
        .ok()
        .and_then(|l| l.body().ok())
        .map_or_else(|| id.as_str().to_owned(), |b| format!("{} {}", b.name, b.number))
}

// ---- filing (holders) ----

/// A face field to tick.
struct FieldChoice {
    name: String,
    label: String,
    value: String,
}

#[derive(Template)]
#[template(path = "objection_new.html")]
struct NewObjection {
    me: Option<Me>,
    csrf: String,
    licence: String,
    title: String,
    fields: Vec<FieldChoice>,
}

/// `GET /holder/licences/{id}/objection`: the form, with the licence's own fields to tick.
pub(crate) async fn new(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let holder = visitor.holder()?;
    let id = crate::holder::own_licence(&pages, holder, &id)?;
    let body = pages.engine.licence(&id)?.body()?;
    let licence_type = pages.engine.licence_type(id.type_code());
    let schema = licence_type.as_ref().map(|t| t.face_schema.clone()).unwrap_or_default();
    let face = crate::face::rows(&body.face, licence_type.as_ref());
    let fields = schema
        .iter()
        .map(|f| FieldChoice {
            name: f.name.clone(),
            label: f.label.clone(),
            value: face
                .iter()
                .find(|r| r.label == f.label)
                .map(|r| r.value.clone())
                .unwrap_or_else(|| "（空）".to_owned()),
        })
        .collect();
    let me = visitor.me().ok_or(PageError::SignIn)?;
    Ok(crate::page(&NewObjection {
        csrf: me.csrf.clone(),
        me: Some(me),
        licence: id.as_str().to_owned(),
        title: format!("{} {}", body.name, body.number),
        fields,
    }))
}

/// `POST /objections`: a holder files (multipart: the ticked fields, kind, statement and an
/// optional evidence file, stored with the objection).
pub(crate) async fn file(
    State(pages): State<Shared>,
    visitor: Visitor,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let holder = visitor.holder()?.clone();
    let form = Parts::read(multipart).await?;
    visitor.check_csrf(form.text("csrf").as_deref())?;
    let licence = form
        .text("licence")
        .ok_or_else(|| PageError::BadRequest("请选择证照。".to_owned()))?;
    let id = crate::holder::own_licence(&pages, &holder, &licence)?;
    let kind = match form.text("kind").as_deref() {
        Some("inaccurate") => ObjectionKind::Inaccurate,
        Some("incomplete") => ObjectionKind::Incomplete,
        Some("other") => ObjectionKind::Other,
        _ => return Err(PageError::BadRequest("请选择异议类型。".to_owned())),
    };
    let statement = form
        .text("statement")
        .ok_or_else(|| PageError::BadRequest("请说明哪里有误、应当如何。".to_owned()))?;
    let objector = holder.to_string();
    let filed = pages
        .engine
        .file_objection(
            &objector,
            Channel::Platform,
            FileObjection {
                licence: id.as_str().to_owned(),
                fields: form.texts("field"),
                kind,
                statement,
                evidence: Vec::new(),
                on_behalf_of: None,
            },
        )
        .await?;
    if let Some(bytes) = form.bytes("evidence") {
        let name = form.file_name("evidence").unwrap_or("证明材料");
        pages.engine.add_evidence(&filed.id, &objector, name, bytes).await?;
    }
    Ok(crate::see_other(format!("/objections/{}", filed.id)))
}

// ---- one objection ----

struct StepRow {
    time: String,
    action: &'static str,
    actor: String,
    reason: String,
}

struct EvidenceRow {
    name: String,
    size: String,
    sha256: String,
    stored: bool,
    reference: String,
}

/// A step the visitor may take now: its API name and its words.
struct StepChoice {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "objection.html")]
struct ObjectionPage {
    me: Option<Me>,
    csrf: String,
    row: ObjectionRow,
    licence_id: String,
    objector: String,
    fields: Vec<String>,
    statement: String,
    history: Vec<StepRow>,
    evidence: Vec<EvidenceRow>,
    new_version: Option<String>,
    is_objector: bool,
    is_holder: bool,
    awaiting_evidence: bool,
    steps: Vec<StepChoice>,
    face_inputs: Vec<FieldInput>,
}

/// The issuer's steps the workflow allows in `state` (correcting has its own form).
fn issuer_steps(state: &ObjectionState) -> Vec<StepChoice> {
    let names: &[&'static str] = match state {
        ObjectionState::Filed => &["accept", "review", "return", "extend"],
        ObjectionState::Accepted => &["review", "extend"],
        ObjectionState::UnderReview => &["request_evidence", "reject", "extend"],
        ObjectionState::AwaitingEvidence => &["extend"],
        _ => &[],
    };
    names
        .iter()
        .map(|&value| StepChoice {
            value,
            label: words::objection_action(value),
        })
        .collect()
}

/// `GET /objections/{id}`.
pub(crate) async fn show(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let party = Party::of(&visitor)?;
    let o = readable(&pages, &party, &id)?;
    let types = pages.engine.licence_types();
    let licence_type = types.iter().find(|t| t.code == *o.licence.type_code());
    let title = |name: &String| {
        licence_type
            .and_then(|t| t.face_schema.iter().find(|f| &f.name == name))
            .map_or_else(|| name.clone(), |f| f.label.clone())
    };
    let state = o.workflow.state().clone();
    let is_issuer = matches!(&party, Party::Issuer(_));
    let face_inputs = match (is_issuer, &state, licence_type) {
        (true, ObjectionState::UnderReview, Some(t)) => {
            let body = pages.engine.licence(&o.licence)?.body()?;
            crate::face_form::inputs(t, Some(&body.face))
        }
        _ => Vec::new(),
    };
    let me = visitor.me().ok_or(PageError::SignIn)?;
    let template = ObjectionPage {
        csrf: me.csrf.clone(),
        me: Some(me),
        row: row(&pages, &o),
        licence_id: o.licence.as_str().to_owned(),
        objector: words::party(&o.objector),
        fields: o.fields.iter().map(title).collect(),
        statement: o.statement.clone(),
        history: o
            .workflow
            .history
            .iter()
            .map(|t| StepRow {
                time: words::moment(t.at),
                action: words::objection_action(t.action.name()),
                actor: words::party(&t.actor),
                reason: t.reason.clone(),
            })
            .collect(),
        evidence: o
            .evidence
            .iter()
            .map(|e| EvidenceRow {
                name: e.name.clone(),
                size: e
                    .size
                    .map(|s| format!("{:.1} KB", s as f64 / 1024.0))
                    .unwrap_or_default(),
                sha256: e.sha256.clone().unwrap_or_default(),
                stored: e.stored,
                reference: e.reference.clone().unwrap_or_default(),
            })
            .collect(),
        new_version: match &state {
            ObjectionState::Corrected { new_version } => Some(new_version.as_str().to_owned()),
            _ => None,
        },
        is_objector: matches!(&party, Party::Objector(_)) && state.is_open(),
        is_holder: matches!(visitor.signed, Signed::Holder(_)),
        awaiting_evidence: state == ObjectionState::AwaitingEvidence,
        steps: if is_issuer { issuer_steps(&state) } else { Vec::new() },
        face_inputs,
    };
    Ok(crate::page(&template))
}

/// `POST /objections/{id}/steps`: one step (`action`, `reason`) by the issuer or the objector.
pub(crate) async fn step(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let party = Party::of(&visitor)?;
    visitor.check_csrf(form.get("csrf").map(String::as_str))?;
    let o = readable(&pages, &party, &id)?;
    let action = match form.get("action").map(String::as_str) {
        Some("return") => Action::Return,
        Some("accept") => Action::Accept,
        Some("review") => Action::Review,
        Some("request_evidence") => Action::RequestEvidence,
        Some("extend") => Action::Extend,
        Some("reject") => Action::Reject,
        Some("withdraw") => Action::Withdraw,
        _ => return Err(PageError::BadRequest("请选择要办理的事项。".to_owned())),
    };
    let reason = form.get("reason").map(|r| r.trim()).unwrap_or_default();
    pages
        .engine
        .act_on_objection(&o.id, &party.actor()?, action, reason)
        .await?;
    Ok(crate::see_other(format!("/objections/{}", o.id)))
}

/// `POST /objections/{id}/evidence`: the objector uploads an evidence file; when the issuer
/// asked for it, that answers the request.
pub(crate) async fn evidence(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let party = Party::of(&visitor)?;
    let form = Parts::read(multipart).await?;
    visitor.check_csrf(form.text("csrf").as_deref())?;
    let o = readable(&pages, &party, &id)?;
    let Party::Objector(objector) = &party else {
        return Err(PageError::WrongAudience("补充材料"));
    };
    let bytes = form
        .bytes("evidence")
        .ok_or_else(|| PageError::BadRequest("请选择要上传的证明材料。".to_owned()))?;
    let name = form.file_name("evidence").unwrap_or("证明材料");
    let o = pages.engine.add_evidence(&o.id, objector, name, bytes).await?;
    if *o.workflow.state() == ObjectionState::AwaitingEvidence {
        let note = form.text("note").unwrap_or_default();
        pages
            .engine
            .act_on_objection(&o.id, &party.actor()?, Action::SupplyEvidence, &note)
            .await?;
    }
    Ok(crate::see_other(format!("/objections/{}", o.id)))
}

/// `POST /objections/{id}/correct`: the issuer corrects the licence — a new version with the
/// face as edited, through the normal update path — and closes the objection with it.
pub(crate) async fn correct(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let party = Party::of(&visitor)?;
    visitor.check_csrf(form.get("csrf").map(String::as_str))?;
    let o = readable(&pages, &party, &id)?;
    let Party::Issuer(uscc) = &party else {
        return Err(PageError::WrongAudience("更正证照"));
    };
    if *o.workflow.state() != ObjectionState::UnderReview {
        return Err(PageError::BadRequest("异议进入核查后才能更正证照。".to_owned()));
    }
    let licence_type = pages
        .engine
        .licence_types()
        .into_iter()
        .find(|t| t.code == *o.licence.type_code())
        .ok_or(PageError::NotFound)?;
    let face = crate::face_form::read(&licence_type, &form)?;
    let reason = form
        .get("reason")
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| PageError::BadRequest("请填写更正说明。".to_owned()))?;
    let updated = pages
        .engine
        .update(
            uscc,
            &o.licence,
            UpdateRequest {
                number: None,
                holder_name: None,
                valid_from: None,
                valid_until: None,
                long_term: false,
                face: Some(face),
                reason: reason.clone(),
                seal: None,
            },
        )
        .await?;
    pages
        .engine
        .act_on_objection(
            &o.id,
            &ObjectionActor::Issuer(uscc.clone()),
            Action::Correct {
                new_version: updated.id.clone(),
            },
            &reason,
        )
        .await?;
    Ok(crate::see_other(format!("/objections/{}", o.id)))
}

/// `GET /objections/{id}/evidence/{sha256}`: an evidence file, for those who may read the
/// objection; always a download, never shown as a page of this origin.
pub(crate) async fn evidence_file(
    State(pages): State<Shared>,
    visitor: Visitor,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let party = Party::of(&visitor)?;
    let o = readable(&pages, &party, &id)?;
    let bytes = pages
        .engine
        .evidence_file(&o, &sha256)
        .map_err(|_| PageError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "objections.html")]
struct ObjectionList {
    me: Option<Me>,
    objections: Vec<ObjectionRow>,
}

/// `GET /objections`: the visitor's objections (filed by them, to their licences, or all).
pub(crate) async fn list(State(pages): State<Shared>, visitor: Visitor) -> Result<Response, PageError> {
    let party = Party::of(&visitor)?;
    let objections = rows(&pages, &party, false, 200)?;
    Ok(crate::page(&ObjectionList {
        me: visitor.me(),
        objections,
    }))
}
