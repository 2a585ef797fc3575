//! The `/v1/objections` handlers: filing, reading and moving objections, each for the right role.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use zhengyin_engine::{FileObjection, ObjectionActor, ObjectionScope};
use zhengyin_model::objection::{Action, Channel};
use zhengyin_model::{LicenceId, Objection};

use crate::auth::{Caller, Role};
use crate::extract::{parse, RawJson};
use crate::problem::Problem;
use crate::AppState;

type Result<T> = std::result::Result<T, Problem>;

fn view(s: &AppState, o: &Objection, code: StatusCode) -> Response {
    let body = json!({
        "objection": o,
        "state": o.workflow.state().name(),
        "deadline": s.engine.deadline(o).map(|d| d.to_string()),
        "overdue": s.engine.is_overdue(o),
    });
    (code, Json(body)).into_response()
}

/// A using department files for itself; an operator enters a hotline objection on someone's behalf.
pub(crate) async fn file(State(s): State<AppState>, caller: Caller, RawJson(body): RawJson) -> Result<Response> {
    if !matches!(
        caller.role,
        Role::Verifier { .. } | Role::Holder { .. } | Role::Operator
    ) {
        return Err(Problem::forbidden(
            "only a holder, a using department or an operator files objections",
        ));
    }
    let req: FileObjection = parse(&body)?;
    let (objector, channel) = match (&caller.role, &req.on_behalf_of) {
        (Role::Verifier { department }, None) => (format!("department:{department}"), Channel::Platform),
        (Role::Holder { holder }, None) => (holder.to_string(), Channel::Platform),
        (Role::Operator, Some(who)) if who.starts_with("department:") || who.starts_with("holder:") => {
            (who.clone(), Channel::Hotline)
        }
        (Role::Operator, _) => {
            return Err(Problem::invalid(
                "a hotline entry names on_behalf_of: department:<code> or holder:<code type>:<code>",
            ))
        }
        (Role::Verifier { .. } | Role::Holder { .. }, Some(_)) => {
            return Err(Problem::invalid("on_behalf_of is for operators"))
        }
        _ => {
            return Err(Problem::forbidden(
                "only a holder, a using department or an operator files objections",
            ))
        }
    };
    let o = s.engine.file_objection(&objector, channel, req).await?;
    Ok(view(&s, &o, StatusCode::CREATED))
}

/// Whether `caller` may read `o`: its objector, the licence's issuer, operators and auditors.
fn may_read(caller: &Caller, o: &Objection) -> bool {
    match &caller.role {
        Role::Operator | Role::Auditor => true,
        Role::Authority { uscc } => uscc == o.licence.issuer(),
        Role::Verifier { department } => o.objector == format!("department:{department}"),
        Role::Holder { holder } => o.objector == holder.to_string(),
        Role::Node => false,
    }
}

pub(crate) async fn get(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response> {
    if matches!(caller.role, Role::Node) {
        return Err(Problem::forbidden("objections are not for nodes"));
    }
    let o = s.engine.objection(&id)?;
    if !may_read(&caller, &o) {
        return Err(Problem::out_of_scope("not an objection of yours"));
    }
    Ok(view(&s, &o, StatusCode::OK))
}

/// The objections to a licence version: for its issuer, operators and auditors.
pub(crate) async fn of_licence(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response> {
    let id = LicenceId::parse(&id)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))?;
    match &caller.role {
        Role::Operator | Role::Auditor => {}
        Role::Authority { uscc } if uscc == id.issuer() => {}
        Role::Authority { .. } => return Err(Problem::out_of_scope("another authority's licence")),
        Role::Verifier { .. } | Role::Holder { .. } | Role::Node => {
            return Err(Problem::forbidden(
                "only the issuer, operators and auditors list a licence's objections",
            ))
        }
    }
    let list: Vec<_> = s
        .engine
        .objections_of_licence(&id)?
        .iter()
        .map(|o| json!({"objection": o, "state": o.workflow.state().name(), "overdue": s.engine.is_overdue(o)}))
        .collect();
    Ok(Json(json!({ "objections": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Step {
    /// `return`, `accept`, `review`, `request_evidence`, `supply_evidence`, `extend`, `correct`,
    /// `reject` or `withdraw`.
    action: String,
    #[serde(default)]
    reason: String,
    /// For `correct`: the new licence version.
    #[serde(default)]
    new_version: Option<String>,
}

impl Step {
    fn action(&self) -> Result<Action> {
        Ok(match (self.action.as_str(), &self.new_version) {
            ("correct", Some(v)) => Action::Correct {
                new_version: LicenceId::parse(v)
                    .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "identifier.invalid", e.to_string()))?,
            },
            ("correct", None) => return Err(Problem::invalid("correct needs new_version")),
            (_, Some(_)) => return Err(Problem::invalid("new_version goes with correct only")),
            ("return", None) => Action::Return,
            ("accept", None) => Action::Accept,
            ("review", None) => Action::Review,
            ("request_evidence", None) => Action::RequestEvidence,
            ("supply_evidence", None) => Action::SupplyEvidence,
            ("extend", None) => Action::Extend,
            ("reject", None) => Action::Reject,
            ("withdraw", None) => Action::Withdraw,
            (other, None) => return Err(Problem::invalid(format!("unknown action {other:?}"))),
        })
    }
}

/// One step: review steps by the licence's issuer, evidence and withdrawal by the objector.
pub(crate) async fn act(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawJson(body): RawJson,
) -> Result<Response> {
    let actor = match &caller.role {
        Role::Authority { uscc } => ObjectionActor::Issuer(uscc.clone()),
        Role::Verifier { department } => ObjectionActor::Objector(format!("department:{department}")),
        Role::Holder { holder } => ObjectionActor::Objector(holder.to_string()),
        _ => return Err(Problem::forbidden("only the issuer or the objector moves an objection")),
    };
    let step: Step = parse(&body)?;
    let o = s
        .engine
        .act_on_objection(&id, &actor, step.action()?, &step.reason)
        .await?;
    Ok(view(&s, &o, StatusCode::OK))
}

/// Open objections past their review deadline: operators and auditors.
pub(crate) async fn overdue(State(s): State<AppState>, caller: Caller) -> Result<Response> {
    if !matches!(caller.role, Role::Operator | Role::Auditor) {
        return Err(Problem::forbidden(
            "only operators and auditors list overdue objections",
        ));
    }
    let list: Vec<_> = s
        .engine
        .overdue_objections()?
        .iter()
        .map(|o| json!({"objection": o, "state": o.workflow.state().name(), "deadline": s.engine.deadline(o).map(|d| d.to_string())}))
        .collect();
    Ok(Json(json!({ "objections": list })).into_response())
}

/// The notifications of the caller's objections: a holder's, or a department's.
/// The objector's notifications, oldest first, a page at a time (`after` the last id seen).
pub(crate) async fn notifications(
    State(s): State<AppState>,
    caller: Caller,
    q: crate::handlers::QueryResult<crate::access::PageQuery>,
) -> Result<Response> {
    let page = crate::handlers::query(q)?;
    let recipient = match &caller.role {
        Role::Holder { holder } => holder.to_string(),
        Role::Verifier { department } => format!("department:{department}"),
        _ => {
            return Err(Problem::forbidden(
                "notifications are for objectors: holders and using departments",
            ))
        }
    };
    let limit = crate::access::page_limit(page.limit)?;
    let notifications = s.engine.notifications_of(&recipient, page.after.as_deref(), limit)?;
    Ok(Json(json!({ "notifications": notifications })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EvidenceUpload {
    name: String,
    data_base64: String,
}

/// The objector uploads an evidence file (base64 in JSON), within the configured size.
pub(crate) async fn add_evidence(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawJson(body): RawJson,
) -> Result<Response> {
    use base64::Engine as _;
    let objector = match &caller.role {
        Role::Verifier { department } => format!("department:{department}"),
        Role::Holder { holder } => holder.to_string(),
        _ => return Err(Problem::forbidden("only the objector adds evidence")),
    };
    let upload: EvidenceUpload = parse(&body)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(upload.data_base64.as_bytes())
        .map_err(|_| Problem::invalid("data_base64 is not base64"))?;
    let o = s.engine.add_evidence(&id, &objector, &upload.name, &bytes).await?;
    Ok(view(&s, &o, StatusCode::CREATED))
}

/// An evidence file, for those who may read the objection.
pub(crate) async fn get_evidence(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, sha256)): Path<(String, String)>,
) -> Result<Response> {
    let o = s.engine.objection(&id)?;
    if !may_read(&caller, &o) {
        return Err(Problem::out_of_scope("not an objection of yours"));
    }
    let bytes = s.engine.evidence_file(&o, &sha256)?;
    // Uploaded by a party: never rendered by a browser as a page of this origin.
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/octet-stream"),
            (axum::http::header::CONTENT_DISPOSITION, "attachment"),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    open: bool,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// The caller's objections: filed by it (holders, departments), to its licences (authorities),
/// or all (operators, auditors); `?open=true` for open ones only; a page at a time (`after`,
/// `limit`).
pub(crate) async fn list(
    State(s): State<AppState>,
    caller: Caller,
    q: crate::handlers::QueryResult<ListQuery>,
) -> Result<Response> {
    let q = crate::handlers::query(q)?;
    let scope = match &caller.role {
        Role::Operator | Role::Auditor => ObjectionScope::All,
        Role::Authority { uscc } => ObjectionScope::Issuer(uscc.clone()),
        Role::Verifier { department } => ObjectionScope::Objector(format!("department:{department}")),
        Role::Holder { holder } => ObjectionScope::Objector(holder.to_string()),
        Role::Node => return Err(Problem::forbidden("objections are not for nodes")),
    };
    let list: Vec<_> = s
        .engine
        .objections_for(scope, q.open, q.after, crate::access::page_limit(q.limit)?)?
        .iter()
        .map(|o| json!({"objection": o, "state": o.workflow.state().name(), "deadline": s.engine.deadline(o).map(|d| d.to_string()), "overdue": s.engine.is_overdue(o)}))
        .collect();
    Ok(Json(json!({ "objections": list })).into_response())
}
