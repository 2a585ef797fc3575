//! Objections to licence data (异议处理): filing, the issuer's review, the objector's steps, and
//! the warning verification carries while one is open. Every step is durable and a log entry
//! with commitments only:
//!
//! ```json
//! {"event":"objection.filed","objection":"OB…","licence":"1.2.156.…","statement_sha256":"…","objector_sha256":"…","time":"…"}
//! {"event":"objection.reject","objection":"OB…","state":"rejected","actor_sha256":"…","reason_sha256":"…","time":"…"}
//! ```

use serde::Deserialize;
use serde_json::json;
use zhengyin_crypto::hash;
use zhengyin_model::licence::format_time;
use zhengyin_model::objection::{Action, Calendar, Channel, Evidence, ObjectionKind, Workflow, DEFAULT_REVIEW_DAYS};
use zhengyin_model::{Delivery, LicenceId, Notification, Objection, Uscc};

use zhengyin_store::{ObjectionPage, ObjectionScope};

use crate::{log, Engine, EngineError};

/// Most evidence items per objection.
pub const MAX_EVIDENCE: usize = 20;
/// Open objections read per page when all of them are walked (metrics, overdue, disputed set).
const OPEN_PAGE: usize = 500;
/// Largest evidence file by default (2 MiB); see [`Engine::with_evidence_limit`].
pub const DEFAULT_EVIDENCE_LIMIT: usize = 2 * 1024 * 1024;
/// Longest statement or reason, in characters.
pub const MAX_TEXT: usize = 2000;

/// A request to file an objection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileObjection {
    /// The licence version disputed.
    pub licence: String,
    /// The disputed face fields; empty for the whole licence.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Inaccurate, incomplete or other.
    pub kind: ObjectionKind,
    /// What is wrong, in the objector's words.
    pub statement: String,
    /// Evidence offered (files by SHA-256, or references).
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// For a hotline entry by an operator: who objects (`department:…` or `holder:…`).
    #[serde(default)]
    pub on_behalf_of: Option<String>,
}

/// Who asks for a step.
#[derive(Debug, Clone)]
pub enum ObjectionActor {
    /// The issuing authority of the disputed licence (review and resolution).
    Issuer(Uscc),
    /// The objector (supplying evidence, withdrawing): `department:<code>` or `holder:…`.
    Objector(String),
}

impl ObjectionActor {
    fn label(&self) -> String {
        match self {
            Self::Issuer(uscc) => format!("authority:{uscc}"),
            Self::Objector(who) => who.clone(),
        }
    }
}

fn text(what: &str, value: &str, required: bool) -> Result<(), EngineError> {
    let len = value.chars().count();
    if (required && value.trim().is_empty()) || len > MAX_TEXT {
        return Err(EngineError::invalid(format!("{what} must be 1–{MAX_TEXT} characters")));
    }
    Ok(())
}

/// Open objections counted (for metrics).
#[derive(Debug, Default)]
pub struct ObjectionSummary {
    /// Open objections by state name (`filed`, `under_review`, …).
    pub by_state: std::collections::BTreeMap<&'static str, u64>,
    /// Those past their review deadline.
    pub overdue: u64,
}

impl Engine {
    /// Sets the working-day calendar objection deadlines count in.
    pub fn with_calendar(mut self, calendar: Calendar) -> Result<Self, EngineError> {
        calendar.check().map_err(|e| EngineError::invalid(e.to_string()))?;
        self.calendar = calendar;
        Ok(self)
    }

    /// The working-day calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Files an objection by `objector` (`department:<code>` for a using department,
    /// `holder:<code type>:<code>` for the holder) through `channel`.
    pub async fn file_objection(
        &self,
        objector: &str,
        channel: Channel,
        req: FileObjection,
    ) -> Result<Objection, EngineError> {
        let licence = LicenceId::parse(&req.licence)?;
        let stored = self.licence(&licence)?;
        // Its issuing authority reviews objections at the node it issues from.
        self.local_authority(licence.issuer(), || format!("licence {licence}"))?;
        text("statement", &req.statement, true)?;
        if req.evidence.len() > MAX_EVIDENCE {
            return Err(EngineError::invalid(format!("at most {MAX_EVIDENCE} evidence items")));
        }
        for e in &req.evidence {
            let file = e
                .sha256
                .as_deref()
                .is_some_and(|h| h.len() == 64 && hex::decode(h).is_ok());
            if e.name.trim().is_empty() || !(file || e.reference.as_deref().is_some_and(|r| !r.trim().is_empty())) {
                return Err(EngineError::invalid(
                    "each evidence item needs a name and a SHA-256 (64 hex digits) or a reference",
                ));
            }
        }
        let licence_type = self
            .licence_type(licence.type_code())
            .ok_or_else(|| EngineError::UnknownLicenceType(licence.type_code().clone()))?;
        if let Some(unknown) = req
            .fields
            .iter()
            .find(|f| !licence_type.face_schema.iter().any(|s| &s.name == *f))
        {
            return Err(EngineError::invalid(format!(
                "{unknown} is not a field of {}",
                licence_type.name
            )));
        }
        if let Some(holder) = objector.strip_prefix("holder:") {
            let body: serde_json::Value = serde_json::from_slice(&stored.bytes).unwrap_or_default();
            let own = format!(
                "{}:{}",
                body["holder"]["code_type"].as_str().unwrap_or_default(),
                body["holder"]["code"].as_str().unwrap_or_default()
            );
            if own != holder {
                return Err(EngineError::Forbidden(
                    "a holder objects to its own licences only".into(),
                ));
            }
        }
        let now = self.clock.now();
        let objection = Objection {
            id: format!("OB{:016}", self.store.next_serial()?),
            licence,
            fields: req.fields,
            kind: req.kind,
            statement: req.statement,
            // Only an upload makes a stored file; a filing names files by hash or reference.
            evidence: req
                .evidence
                .into_iter()
                .map(|e| Evidence { stored: false, ..e })
                .collect(),
            objector: objector.to_owned(),
            channel,
            workflow: Workflow::new(now, licence_type.review_days.unwrap_or(DEFAULT_REVIEW_DAYS)),
        };
        let entry = log::entry(json!({
            "event": "objection.filed",
            "objection": objection.id,
            "licence": objection.licence.as_str(),
            "statement_sha256": hash::sha256_hex(objection.statement.as_bytes()),
            "objector_sha256": hash::sha256_hex(objection.objector.as_bytes()),
            "time": format_time(now),
        }));
        // Known as disputed before it is stored, so no verification can miss it.
        self.disputed
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(objection.licence.clone());
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        self.store.put_objection(&objection, &entry)?.durable.await?;
        self.metrics.wrote("objection", started);
        tracing::info!(objection = objection.id, licence = %objection.licence, kind = ?objection.kind, "objection filed");
        Ok(objection)
    }

    /// An objection.
    pub fn objection(&self, id: &str) -> Result<Objection, EngineError> {
        self.store
            .objection(id)?
            .ok_or_else(|| EngineError::ObjectionNotFound(id.to_owned()))
    }

    /// The objections to one licence version.
    pub fn objections_of_licence(&self, licence: &LicenceId) -> Result<Vec<Objection>, EngineError> {
        Ok(self.store.objections_of_licence(licence)?)
    }

    /// Moves an objection one step, if `actor` may take it and the workflow allows it.
    pub async fn act_on_objection(
        &self,
        id: &str,
        actor: &ObjectionActor,
        action: Action,
        reason: &str,
    ) -> Result<Objection, EngineError> {
        let current = self.objection(id)?;
        let issuer_step = !matches!(action, Action::SupplyEvidence | Action::Withdraw);
        let allowed = match actor {
            ObjectionActor::Issuer(uscc) => issuer_step && uscc == current.licence.issuer(),
            ObjectionActor::Objector(who) => !issuer_step && *who == current.objector,
        };
        if !allowed {
            return Err(EngineError::Forbidden(format!(
                "{} is not for this caller on objection {id}",
                action.name()
            )));
        }
        text("reason", reason, false)?;
        if let Action::Correct { new_version } = &action {
            // The correction is a new version of the same licence, issued through the update path.
            if new_version.lineage() != current.licence.lineage() || new_version.version() <= current.licence.version()
            {
                return Err(EngineError::invalid(
                    "the correction must be a newer version of the disputed licence",
                ));
            }
            self.licence(new_version)?;
        }
        let now = self.clock.now();
        let mut next = current.clone();
        let to = next
            .workflow
            .apply(action.clone(), &actor.label(), reason, now, &self.calendar)
            .map_err(EngineError::Objection)?
            .to
            .clone();
        let entry = log::entry(json!({
            "event": format!("objection.{}", action.name()),
            "objection": id,
            "licence": current.licence.as_str(),
            "state": to.name(),
            "actor_sha256": hash::sha256_hex(actor.label().as_bytes()),
            "reason_sha256": hash::sha256_hex(reason.as_bytes()),
            "time": format_time(now),
        }));
        // The objector is told every step the issuer takes.
        let notification = match actor {
            ObjectionActor::Issuer(_) => Some(Notification {
                id: format!("NT{:016}", self.store.next_serial()?),
                recipient: current.objector.clone(),
                objection: id.to_owned(),
                licence: current.licence.clone(),
                action: action.name().to_owned(),
                state: to.name().to_owned(),
                reason: (!reason.trim().is_empty()).then(|| reason.to_owned()),
                new_version: match &action {
                    Action::Correct { new_version } => Some(new_version.clone()),
                    _ => None,
                },
                time: now,
            }),
            ObjectionActor::Objector(_) => None,
        };
        let url = current
            .objector
            .strip_prefix("department:")
            .and_then(|department| self.webhooks.get(department))
            .map(String::as_str);
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        self.store
            .update_objection(&current, &next, &entry, notification.as_ref().map(|n| (n, url)))?
            .durable
            .await?;
        self.metrics.wrote("objection", started);
        tracing::info!(
            objection = next.id,
            action = action.name(),
            from = current.workflow.state().name(),
            to = next.workflow.state().name(),
            "objection moved"
        );
        Ok(next)
    }

    /// Sets the largest evidence file accepted, in bytes.
    pub fn with_evidence_limit(mut self, bytes: usize) -> Self {
        self.evidence_limit = bytes;
        self
    }

    /// The objector adds an evidence file to its open objection: stored by its SHA-256, listed
    /// in the objection, logged as a commitment (`objection.evidence`).
    pub async fn add_evidence(
        &self,
        id: &str,
        objector: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Objection, EngineError> {
        let current = self.objection(id)?;
        if current.objector != objector {
            return Err(EngineError::Forbidden(format!(
                "only the objector adds evidence to objection {id}"
            )));
        }
        let state = current.workflow.state();
        if !state.is_open() {
            return Err(EngineError::Objection(
                zhengyin_model::objection::ObjectionError::Illegal {
                    action: "add evidence to",
                    state: state.name(),
                },
            ));
        }
        text("name", name, true)?;
        if bytes.is_empty() || bytes.len() > self.evidence_limit {
            return Err(EngineError::EvidenceTooLarge {
                size: bytes.len(),
                limit: self.evidence_limit,
            });
        }
        if current.evidence.len() >= MAX_EVIDENCE {
            return Err(EngineError::invalid(format!("at most {MAX_EVIDENCE} evidence items")));
        }
        let sha256 = hash::sha256(bytes);
        self.store.put_evidence(&sha256, bytes)?.await?;
        let now = self.clock.now();
        let mut next = current.clone();
        next.evidence.push(Evidence {
            name: name.to_owned(),
            sha256: Some(hex::encode(sha256)),
            size: Some(bytes.len() as u64),
            reference: None,
            stored: true,
        });
        let entry = log::entry(json!({
            "event": "objection.evidence",
            "objection": id,
            "sha256": hex::encode(sha256),
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        self.store
            .update_objection(&current, &next, &entry, None)?
            .durable
            .await?;
        Ok(next)
    }

    /// An evidence file of an objection, by its SHA-256 (hex), if the objection lists it as stored.
    pub fn evidence_file(&self, objection: &Objection, sha256_hex: &str) -> Result<Vec<u8>, EngineError> {
        let listed = objection
            .evidence
            .iter()
            .any(|e| e.stored && e.sha256.as_deref() == Some(sha256_hex));
        let hash: Option<[u8; 32]> = hex::decode(sha256_hex).ok().and_then(|v| v.try_into().ok());
        match (listed, hash) {
            (true, Some(hash)) => self.store.evidence(&hash)?.ok_or_else(|| {
                EngineError::Store(zhengyin_store::StoreError::Corrupt(format!(
                    "evidence {sha256_hex} listed but absent"
                )))
            }),
            _ => Err(EngineError::EvidenceNotFound(sha256_hex.to_owned())),
        }
    }

    /// Sends objection notifications to departments' webhooks (department → URL).
    pub fn with_webhooks(mut self, webhooks: std::collections::HashMap<String, String>) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// The notifications kept for a recipient (`department:…` or `holder:…`), oldest first.
    pub fn notifications_of(
        &self,
        recipient: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Notification>, EngineError> {
        Ok(self.store.notifications_of(recipient, after, limit)?)
    }

    /// Webhook deliveries due now.
    pub fn due_deliveries(&self, limit: usize) -> Result<Vec<Delivery>, EngineError> {
        Ok(self.store.due_deliveries(self.clock.now(), limit)?)
    }

    /// Settles a delivery attempt: delivered (removed from the outbox) or retried with
    /// exponential back-off (1 s, 2 s, 4 s, … at most 5 minutes), at least once, never dropped.
    pub async fn settle_delivery(&self, delivery: &Delivery, delivered: bool) -> Result<(), EngineError> {
        let id = &delivery.notification.id;
        if delivered {
            self.store.settle_delivery(id, None)?.await?;
            return Ok(());
        }
        let attempts = delivery.attempts.saturating_add(1);
        let backoff = time::Duration::seconds(1i64 << attempts.min(8)).min(time::Duration::minutes(5));
        let next = Delivery {
            attempts,
            next_attempt: self.clock.now() + backoff,
            ..delivery.clone()
        };
        self.store.settle_delivery(id, Some(&next))?.await?;
        Ok(())
    }

    /// Signs a webhook body with the node's token key: `(verification method, base64 signature)`.
    pub fn sign_webhook(&self, body: &[u8]) -> Result<Option<(String, String)>, EngineError> {
        use base64::Engine as _;
        let Some(key) = &self.token_key else {
            return Ok(None);
        };
        let signature = key.sign(body).map_err(EngineError::signing)?;
        Ok(Some((
            crate::annotated::token_key_method(key.public_key()),
            base64::engine::general_purpose::STANDARD.encode(signature),
        )))
    }

    /// A page of the objections `scope` covers (filing order), open ones only if asked: at most
    /// `limit`, with ids after `after`.
    pub fn objections_for(
        &self,
        scope: ObjectionScope,
        open_only: bool,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<Objection>, EngineError> {
        Ok(self.store.objections_page(&ObjectionPage {
            scope,
            open_only,
            after,
            limit,
        })?)
    }

    /// Calls `each` with every open objection, a page at a time: the work in progress, whose
    /// size the review deadlines bound, never the whole history.
    fn each_open_objection(&self, mut each: impl FnMut(Objection)) -> Result<(), EngineError> {
        let mut after = None;
        loop {
            let page = self.objections_for(ObjectionScope::All, true, after.take(), OPEN_PAGE)?;
            let full = page.len() == OPEN_PAGE;
            after = page.last().map(|o| o.id.clone());
            page.into_iter().for_each(&mut each);
            if !full {
                return Ok(());
            }
        }
    }

    /// Open objections by state, and how many of them are overdue.
    pub fn open_objections_summary(&self) -> Result<ObjectionSummary, EngineError> {
        let now = self.clock.now();
        let mut summary = ObjectionSummary::default();
        self.each_open_objection(|objection| {
            *summary.by_state.entry(objection.workflow.state().name()).or_default() += 1;
            if objection.workflow.is_overdue(&self.calendar, now) {
                summary.overdue += 1;
            }
        })?;
        Ok(summary)
    }

    /// Open objections past their review deadline, as of now (for operators).
    pub fn overdue_objections(&self) -> Result<Vec<Objection>, EngineError> {
        let now = self.clock.now();
        let mut overdue = Vec::new();
        self.each_open_objection(|o| {
            if o.workflow.is_overdue(&self.calendar, now) {
                overdue.push(o);
            }
        })?;
        Ok(overdue)
    }

    /// The licences with an open objection: the verification path's disputed set at start.
    pub(crate) fn disputed_licences(&self) -> Result<std::collections::HashSet<LicenceId>, EngineError> {
        let mut disputed = std::collections::HashSet::new();
        self.each_open_objection(|o| {
            disputed.insert(o.licence);
        })?;
        Ok(disputed)
    }

    /// Whether an objection is past its review deadline, as of now.
    pub fn is_overdue(&self, objection: &Objection) -> bool {
        objection.workflow.is_overdue(&self.calendar, self.clock.now())
    }

    /// The review deadline of an objection, as of now.
    pub fn deadline(&self, objection: &Objection) -> Option<time::Date> {
        objection.workflow.deadline(&self.calendar, self.clock.now())
    }
}

/// The open objections to a licence as `(id, fields)`, for the verification warning.
pub(crate) fn open_objections(objections: &[Objection]) -> Vec<(String, Vec<String>)> {
    objections
        .iter()
        .filter(|o| o.workflow.state().is_open())
        .map(|o| (o.id.clone(), o.fields.clone()))
        .collect()
}
