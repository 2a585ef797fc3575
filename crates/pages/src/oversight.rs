//! The pages of those who watch the node: `/auditor` — the signature log's size and its latest
//! checkpoints, a consistency check that the browser itself computes (RFC 9162) from the last
//! checkpoint it saw to the current one, use records searched by holder or department, sync
//! incidents; `/operator` — sync sources and their lag, incidents, the API tokens issued, the
//! CRLs held and the service's own numbers. Both only read.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use zhengyin_model::{HolderCodeType, HolderRef, SyncIncident};

use crate::error::PageError;
use crate::records::UseRow;
use crate::session::{Me, Signed, Staff, Visitor};
use crate::{words, Shared};

/// Checkpoints listed.
const CHECKPOINTS: usize = 20;
/// Incidents listed.
const INCIDENTS: usize = 100;

fn auditor(visitor: &Visitor) -> Result<(), PageError> {
    match &visitor.signed {
        Signed::Staff(Staff::Auditor) => Ok(()),
        Signed::Nobody => Err(PageError::SignIn),
        _ => Err(PageError::WrongAudience("审计页面")),
    }
}

fn operator(visitor: &Visitor) -> Result<(), PageError> {
    match &visitor.signed {
        Signed::Staff(Staff::Operator) => Ok(()),
        Signed::Nobody => Err(PageError::SignIn),
        _ => Err(PageError::WrongAudience("运维页面")),
    }
}

struct CheckpointRow {
    size: u64,
    root: String,
    note: String,
}

pub(crate) struct IncidentRow {
    id: String,
    origin: String,
    kind: String,
    detail: String,
    detected: String,
    open: bool,
}

fn incident_rows(incidents: Vec<SyncIncident>) -> Vec<IncidentRow> {
    incidents
        .into_iter()
        .rev()
        .map(|i| IncidentRow {
            open: i.pending(),
            kind: words::incident_kind(i.kind).to_owned(),
            detected: words::moment(i.detected),
            id: i.id,
            origin: i.origin,
            detail: i.detail,
        })
        .collect()
}

fn incidents(pages: &crate::Pages) -> Result<Vec<IncidentRow>, PageError> {
    // The newest page: incidents are rare, and each stays until resolved.
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = pages.engine.sync_incidents(false, after.as_deref(), 500)?;
        let full = page.len() == 500;
        after = page.last().map(|i| i.id.clone());
        all.extend(page);
        if !full || all.len() >= 10_000 {
            break;
        }
    }
    let mut rows = incident_rows(all);
    rows.truncate(INCIDENTS);
    Ok(rows)
}

#[derive(Template)]
#[template(path = "auditor.html")]
struct AuditorPage {
    me: Option<Me>,
    origin: String,
    log_size: u64,
    checkpoints: Vec<CheckpointRow>,
    holder: String,
    department: String,
    searched: bool,
    uses: Vec<UseRow>,
    show_holder: bool,
    incidents: Vec<IncidentRow>,
}

#[derive(Deserialize)]
pub(crate) struct UseSearch {
    holder: Option<String>,
    department: Option<String>,
}

/// `GET /auditor`.
pub(crate) async fn auditor_page(
    State(pages): State<Shared>,
    visitor: Visitor,
    Query(q): Query<UseSearch>,
) -> Result<Response, PageError> {
    auditor(&visitor)?;
    let checkpoints: Vec<CheckpointRow> = pages
        .engine
        .recent_checkpoints(CHECKPOINTS)?
        .into_iter()
        .map(|(size, note)| CheckpointRow {
            size: size.0,
            root: note.lines().nth(2).unwrap_or_default().to_owned(),
            note,
        })
        .collect();
    let origin = checkpoints
        .first()
        .and_then(|c| c.note.lines().next())
        .unwrap_or_default()
        .to_owned();
    let holder = q.holder.unwrap_or_default().trim().to_uppercase();
    let department = q.department.unwrap_or_default().trim().to_owned();
    let items = pages.engine.service_items();
    let (searched, records) = if !holder.is_empty() {
        // `001:<USCC>` or `111:<citizen ID>`; a bare code is read by its shape.
        let (code_type, code) = match holder.split_once(':') {
            Some((t, c)) => (HolderCodeType::parse(t).ok(), c.to_owned()),
            None if holder.chars().all(|c| c.is_ascii_digit() || c == 'X') => {
                (Some(HolderCodeType::CitizenId), holder.clone())
            }
            None => (Some(HolderCodeType::Uscc), holder.clone()),
        };
        let code_type =
            code_type.ok_or_else(|| PageError::BadRequest("持证主体代码类型应为 001 或 111。".to_owned()))?;
        let who = HolderRef { code_type, code };
        (true, pages.engine.use_records_of_holder(&who, None, 500)?)
    } else if !department.is_empty() {
        (
            true,
            pages
                .engine
                .use_records(Some(department.clone()), None, None, None, 500)?,
        )
    } else {
        (false, Vec::new())
    };
    let me = visitor.me();
    Ok(crate::page(&AuditorPage {
        me,
        origin,
        log_size: pages.engine.log_sizes()?.0,
        checkpoints,
        holder,
        department,
        searched,
        uses: crate::records::use_rows(&items, records, 200),
        show_holder: true,
        incidents: incidents(&pages)?,
    }))
}

#[derive(Deserialize)]
pub(crate) struct ConsistencyQuery {
    first: u64,
    second: u64,
}

/// `GET /auditor/consistency?first=&second=`: the proof the browser checks itself (JSON, hashes
/// in base64), for a signed-in auditor.
pub(crate) async fn consistency(
    State(pages): State<Shared>,
    visitor: Visitor,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Response, PageError> {
    auditor(&visitor)?;
    if q.first == 0 || q.first > q.second {
        return Err(PageError::BadRequest("需要 0 < first ≤ second。".to_owned()));
    }
    let proof: Vec<String> = pages
        .engine
        .consistency_proof(q.first, q.second)?
        .iter()
        .map(|h| base64::engine::general_purpose::STANDARD.encode(h.as_ref()))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        serde_json::json!({ "first": q.first, "second": q.second, "proof": proof }).to_string(),
    )
        .into_response())
}

struct SourceRow {
    origin: String,
    state: &'static str,
    healthy: bool,
    applied: u64,
    source_size: u64,
    lag_entries: u64,
    lag: String,
    synced_at: String,
    errors: u64,
    last_error: String,
}

struct TokenRow {
    name: String,
    role: String,
    created: String,
    revoked: bool,
}

struct CrlRow {
    issuer: String,
    this_update: String,
    next_update: String,
    revoked: usize,
}

struct Number {
    label: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "operator.html")]
struct OperatorPage {
    me: Option<Me>,
    numbers: Vec<Number>,
    sources: Vec<SourceRow>,
    incidents: Vec<IncidentRow>,
    tokens: Vec<TokenRow>,
    crls: Vec<CrlRow>,
}

/// `GET /operator`.
pub(crate) async fn operator_page(State(pages): State<Shared>, visitor: Visitor) -> Result<Response, PageError> {
    operator(&visitor)?;
    let engine = &pages.engine;
    let summary = engine.open_objections_summary()?;
    let open: u64 = summary.by_state.values().sum();
    let (log_size, checkpoint) = engine.log_sizes()?;
    let numbers = vec![
        Number {
            label: "签名日志条目",
            value: log_size.to_string(),
        },
        Number {
            label: "最新检查点覆盖",
            value: format!("{checkpoint}（落后 {} 条）", log_size.saturating_sub(checkpoint)),
        },
        Number {
            label: "本次启动以来写入的用证记录",
            value: engine.metrics().use_records_written.get().to_string(),
        },
        Number {
            label: "办理中的异议",
            value: open.to_string(),
        },
        Number {
            label: "超期的异议",
            value: summary.overdue.to_string(),
        },
    ];
    let sources = engine
        .sync_sources()
        .into_iter()
        .map(|s| SourceRow {
            healthy: s.consecutive_errors == 0 && s.open_incidents.is_empty(),
            state: words::sync_state(s.state),
            applied: s.applied,
            source_size: s.source_size,
            lag_entries: s.lag_entries,
            lag: s
                .lag_seconds
                .map(|l| format!("{l} 秒"))
                .unwrap_or_else(|| "—".to_owned()),
            synced_at: s.synced_at.map(words::moment).unwrap_or_else(|| "尚未同步".to_owned()),
            errors: s.consecutive_errors,
            last_error: s.last_error.unwrap_or_default(),
            origin: s.origin,
        })
        .collect();
    let tokens = engine
        .api_tokens()?
        .into_iter()
        .map(|t| TokenRow {
            role: words::role(&t.role, t.uscc.as_deref(), t.department.as_deref()),
            created: words::moment(t.created),
            revoked: t.revoked.is_some(),
            name: t.name,
        })
        .collect();
    let crls = engine
        .crls()
        .into_iter()
        .map(|c| CrlRow {
            issuer: c.issuer,
            this_update: c.this_update,
            next_update: c.next_update.unwrap_or_else(|| "—".to_owned()),
            revoked: c.revoked,
        })
        .collect();
    Ok(crate::page(&OperatorPage {
        me: visitor.me(),
        numbers,
        sources,
        incidents: incidents(&pages)?,
        tokens,
        crls,
    }))
}
