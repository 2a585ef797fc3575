//! Authorised use (一证一接口): service items, grants, holder authorisations, the uniform per-type
//! lookup, data check and fetch, and use records.
//!
//! Every use by a department goes through [`Engine::authorise_use`] before any licence is read:
//! a valid use cause, a registered service item, a live grant of the department for the type
//! that lists the item, and — when the call names one or the grant requires it — a live
//! authorisation of the holder. A department without a grant is refused before anything is read,
//! so an existing and a missing identifier get the same answer in the same time. What is
//! returned is cut to the grant's fields. Every use is recorded, durably, before the answer.
//!
//! Log entries carry commitments only. The use records of one group commit share one entry:
//! `records_sha256` is SHA-256 over the concatenated SHA-256 of each record's RFC 8785 form, in id
//! order, so a record shown to a holder or an auditor can be proven to have been logged:
//!
//! ```json
//! {"event":"licence.used","count":3,"first":"UR…","last":"UR…","records_sha256":"…","time":"…"}
//! {"event":"grant.approved","grant":"GR…","department":"…","type":"…","time":"…"}
//! {"event":"authorisation.given","authorisation":"AU…","record_sha256":"…","time":"…"}
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use zhengyin_crypto::hash;
use zhengyin_model::access::{check_use_cause, AccessError, GRANTABLE_METADATA};
use zhengyin_model::licence::format_time;
use zhengyin_model::{
    canonical, Authorisation, Grant, GrantState, HolderRef, LicenceBody, LicenceId, LicenceType, ServiceItem, Status,
    TypeCode, Uscc, UseOperation, UseOutcome, UseRecord, VerificationReport,
};
use zhengyin_store::UseQuery;

use crate::{log, Engine, EngineError, SignedLicence};

mod uses;

/// Most use records in one listing.
pub const MAX_USE_RECORDS_PER_PAGE: usize = 500;

/// Why a use was refused: each has its own stable problem code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UseRefusal {
    /// The use cause is missing, too long or malformed.
    #[error("{0}")]
    UseCause(String),
    /// The service item is not registered.
    #[error("service item {0} is not registered")]
    UnknownServiceItem(String),
    /// The department has no live grant for the type.
    #[error("no live grant lets this department use licences of this type")]
    NoGrant,
    /// The department's grant does not list the service item.
    #[error("the grant does not cover service item {0}")]
    ServiceItemNotGranted(String),
    /// A field asked about is not granted.
    #[error("the grant does not cover field {0}")]
    FieldNotGranted(String),
    /// The signed licence shows every field; the grant does not cover them all.
    #[error("the signed licence shows every field; the grant covers only some")]
    FieldsInsufficient,
    /// The grant requires the holder's authorisation and none was named.
    #[error("this use needs the holder's authorisation (authorisation)")]
    AuthorisationRequired,
    /// The named authorisation is unknown, withdrawn, expired, or for another use.
    #[error("the authorisation is unknown, withdrawn, expired or for another use")]
    AuthorisationInvalid,
}

/// The purpose of a use, as every call of a department carries it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseContext {
    /// The service item code (事项编码).
    pub service_item: String,
    /// The use cause (用证事由), at most 200 characters.
    pub use_cause: String,
    /// The holder's authorisation, where the holder gave one.
    #[serde(default)]
    pub authorisation: Option<String>,
}

/// A department's application for a grant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantApplication {
    /// The licence type.
    pub type_code: String,
    /// Face fields and [`GRANTABLE_METADATA`] it needs to see.
    pub fields: Vec<String>,
    /// The service items it will use the licences for.
    pub service_items: Vec<String>,
    /// Whether each use will also need the holder's authorisation.
    #[serde(default)]
    pub requires_authorisation: bool,
    /// Why (legal basis).
    pub purpose: String,
    /// Until when.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// Who decides on or withdraws a grant.
#[derive(Debug, Clone)]
pub enum GrantActor {
    /// An operator.
    Operator,
    /// An authority (decides for the types it defines).
    Authority(Uscc),
    /// A department (withdraws its own grants).
    Department(String),
}

impl GrantActor {
    fn label(&self) -> String {
        match self {
            Self::Operator => "operator".to_owned(),
            Self::Authority(uscc) => format!("authority:{uscc}"),
            Self::Department(d) => format!("department:{d}"),
        }
    }
}

/// A holder's request to authorise a use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoriseRequest {
    /// The licence (any version; the authorisation covers every version).
    pub licence: String,
    /// The department allowed.
    pub department: String,
    /// The service item allowed.
    pub service_item: String,
    /// Until when (at most a year ahead).
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// The answer to a lookup: the licence cut to the grant's fields, its status, open objections,
/// and the use record written for the call.
#[derive(Debug, Clone)]
pub struct LookupAnswer {
    /// The JSON answer.
    pub licences: Vec<Value>,
    /// The use record of this call.
    pub use_record: String,
}

/// Grants and service items, kept in memory in step with the store (writes go to the store first).
#[derive(Debug, Default)]
pub(crate) struct AccessIndex {
    items: BTreeMap<String, ServiceItem>,
    grants: HashMap<String, Grant>,
    /// (department, type) → grant ids.
    by_user: HashMap<(String, TypeCode), Vec<String>>,
}

impl AccessIndex {
    pub(crate) fn load(store: &dyn zhengyin_store::Store) -> Result<Self, EngineError> {
        let mut index = Self::default();
        for item in store.service_items()? {
            index.items.insert(item.code.clone(), item);
        }
        for grant in store.grants()? {
            index.put_grant(grant);
        }
        Ok(index)
    }

    fn put_grant(&mut self, grant: Grant) {
        let ids = self
            .by_user
            .entry((grant.department.clone(), grant.type_code.clone()))
            .or_default();
        if !ids.contains(&grant.id) {
            ids.push(grant.id.clone());
        }
        self.grants.insert(grant.id.clone(), grant);
    }
}

fn refused(r: UseRefusal) -> EngineError {
    EngineError::UseRefused(r)
}

fn access_error(e: AccessError) -> EngineError {
    match e {
        AccessError::Invalid(m) => EngineError::InvalidRequest(m),
        AccessError::Illegal { action, state } => EngineError::GrantConflict { action, state },
    }
}

/// SHA-256 of the RFC 8785 form of a record.
pub(crate) fn commitment_bytes<T: serde::Serialize>(value: &T) -> [u8; 32] {
    let bytes = serde_json::to_value(value)
        .ok()
        .and_then(|v| canonical::to_canonical(&v).ok())
        .unwrap_or_default();
    hash::sha256(&bytes)
}

pub(crate) fn commitment<T: serde::Serialize>(value: &T) -> String {
    hex::encode(commitment_bytes(value))
}

/// The body of a stored licence (signed by us, so it parses; a failure is corruption).
pub(crate) fn body_of(licence: &SignedLicence) -> Result<LicenceBody, EngineError> {
    let mut value: Value = serde_json::from_slice(&licence.bytes).map_err(|e| {
        EngineError::Store(zhengyin_store::StoreError::Corrupt(format!(
            "licence {}: {e}",
            licence.id
        )))
    })?;
    if let Some(map) = value.as_object_mut() {
        map.remove("proof");
    }
    serde_json::from_value(value).map_err(|e| {
        EngineError::Store(zhengyin_store::StoreError::Corrupt(format!(
            "licence {}: {e}",
            licence.id
        )))
    })
}

/// The value of a grantable field in a licence: a face field, or one of [`GRANTABLE_METADATA`].
fn field_value(body: &LicenceBody, field: &str) -> Option<Value> {
    match field {
        "number" => Some(json!(body.number)),
        "holder.name" => Some(json!(body.holder.name)),
        "holder.code" => Some(json!(body.holder.code)),
        _ => body.face.get(field).cloned(),
    }
}

impl Engine {
    /// Registers (or renames) a service item.
    pub async fn register_service_item(&self, item: ServiceItem) -> Result<ServiceItem, EngineError> {
        item.check().map_err(access_error)?;
        self.store.put_service_item(&item)?.await?;
        self.write_access().items.insert(item.code.clone(), item.clone());
        Ok(item)
    }

    /// Every registered service item.
    pub fn service_items(&self) -> Vec<ServiceItem> {
        self.read_access().items.values().cloned().collect()
    }

    /// A department applies for a grant.
    pub async fn apply_for_grant(&self, department: &str, app: GrantApplication) -> Result<Grant, EngineError> {
        let type_code = TypeCode::parse(&app.type_code)?;
        let licence_type = self
            .licence_type(&type_code)
            .ok_or_else(|| EngineError::UnknownLicenceType(type_code.clone()))?;
        let now = self.clock.now();
        if app.fields.is_empty() || app.service_items.is_empty() {
            return Err(EngineError::invalid(
                "a grant lists at least one field and one service item",
            ));
        }
        for field in &app.fields {
            let known = GRANTABLE_METADATA.contains(&field.as_str())
                || licence_type.face_schema.iter().any(|f| &f.name == field);
            if !known {
                return Err(EngineError::invalid(format!(
                    "{field} is not a field of {}",
                    licence_type.name
                )));
            }
        }
        {
            let access = self.read_access();
            if let Some(unknown) = app.service_items.iter().find(|i| !access.items.contains_key(*i)) {
                return Err(refused(UseRefusal::UnknownServiceItem(unknown.clone())));
            }
        }
        if app.until <= now {
            return Err(EngineError::invalid("until must be in the future"));
        }
        crate::check_text(&app.purpose, "purpose", 2000)?;
        let mut fields = app.fields;
        fields.sort();
        fields.dedup();
        let mut service_items = app.service_items;
        service_items.sort();
        service_items.dedup();
        let grant = Grant {
            id: format!("GR{:016}", self.store.next_serial()?),
            department: department.to_owned(),
            type_code,
            fields,
            service_items,
            requires_authorisation: app.requires_authorisation,
            purpose: app.purpose,
            until: app.until,
            state: GrantState::Applied,
            history: vec![zhengyin_model::access::GrantChange {
                state: GrantState::Applied,
                actor: format!("department:{department}"),
                time: now,
                reason: None,
            }],
        };
        let _guard = self.access_lock.lock().await;
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        self.store.put_grant(&grant, &grant_entry(&grant, now))?.durable.await?;
        self.metrics.wrote("grant", started);
        self.write_access().put_grant(grant.clone());
        tracing::info!(grant = grant.id, department = grant.department, licence_type = %grant.type_code, "grant applied for");
        Ok(grant)
    }

    /// Approves, rejects or withdraws a grant. Approval and rejection are for the type's defining
    /// authority or an operator; withdrawal also for the department itself.
    pub async fn change_grant(
        &self,
        id: &str,
        actor: &GrantActor,
        to: GrantState,
        reason: Option<String>,
    ) -> Result<Grant, EngineError> {
        let _guard = self.access_lock.lock().await;
        let current = self.grant(id)?;
        let allowed = match actor {
            GrantActor::Operator => true,
            GrantActor::Authority(uscc) => current.type_code.defining_authority() == *uscc,
            GrantActor::Department(d) => to == GrantState::Withdrawn && *d == current.department,
        };
        if !allowed {
            return Err(EngineError::Forbidden(format!(
                "this caller may not change grant {id} that way"
            )));
        }
        let now = self.clock.now();
        let mut next = current.clone();
        next.transition(to, actor.label(), now, reason).map_err(access_error)?;
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        self.store
            .update_grant(&current, &next, &grant_entry(&next, now))?
            .durable
            .await?;
        self.metrics.wrote("grant", started);
        self.write_access().put_grant(next.clone());
        tracing::info!(
            grant = next.id,
            by = actor.label(),
            state = next.state.name(),
            "grant changed"
        );
        Ok(next)
    }

    /// A grant.
    pub fn grant(&self, id: &str) -> Result<Grant, EngineError> {
        self.read_access()
            .grants
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::GrantNotFound(id.to_owned()))
    }

    /// The grants `actor` may see: an operator all, an authority those for the types it defines,
    /// a department its own. Newest first.
    pub fn grants_for(&self, actor: &GrantActor) -> Vec<Grant> {
        let mut out: Vec<Grant> = self
            .read_access()
            .grants
            .values()
            .filter(|g| match actor {
                GrantActor::Operator => true,
                GrantActor::Authority(uscc) => g.type_code.defining_authority() == *uscc,
                GrantActor::Department(d) => g.department == *d,
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| b.id.cmp(&a.id));
        out
    }

    /// A holder authorises a department to use one of its licences for one service item.
    pub async fn authorise(&self, holder: &HolderRef, req: AuthoriseRequest) -> Result<Authorisation, EngineError> {
        let licence = LicenceId::parse(&req.licence)?;
        let stored = self.licence(&licence)?;
        if holder_of(&body_of(&stored)?) != *holder {
            return Err(EngineError::Forbidden(
                "a holder authorises uses of its own licences only".into(),
            ));
        }
        crate::check_text(&req.department, "department", 100)?;
        if !self.read_access().items.contains_key(&req.service_item) {
            return Err(refused(UseRefusal::UnknownServiceItem(req.service_item)));
        }
        let now = self.clock.now();
        if req.until <= now || req.until > now + time::Duration::days(366) {
            return Err(EngineError::invalid(
                "until must be in the future and at most a year ahead",
            ));
        }
        let authorisation = Authorisation {
            id: format!("AU{:016}", self.store.next_serial()?),
            holder: holder.clone(),
            lineage: licence.lineage(),
            licence,
            department: req.department,
            service_item: req.service_item,
            created: now,
            until: req.until,
            withdrawn: None,
        };
        let entry = log::entry(json!({
            "event": "authorisation.given",
            "authorisation": authorisation.id,
            "record_sha256": commitment(&authorisation),
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        self.store.put_authorisation(&authorisation, &entry)?.durable.await?;
        self.metrics.wrote("authorisation", started);
        tracing::info!(authorisation = authorisation.id, "holder authorised a use");
        Ok(authorisation)
    }

    /// The holder withdraws one of its authorisations (idempotent).
    pub async fn withdraw_authorisation(&self, holder: &HolderRef, id: &str) -> Result<Authorisation, EngineError> {
        let current = self
            .store
            .authorisation(id)?
            .filter(|a| a.holder == *holder)
            .ok_or_else(|| EngineError::AuthorisationNotFound(id.to_owned()))?;
        if current.withdrawn.is_some() {
            return Ok(current);
        }
        let now = self.clock.now();
        let next = Authorisation {
            withdrawn: Some(now),
            ..current.clone()
        };
        let entry = log::entry(json!({
            "event": "authorisation.withdrawn",
            "authorisation": id,
            "record_sha256": commitment(&next),
            "time": format_time(now),
        }));
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        self.store
            .update_authorisation(&current, &next, &entry)?
            .durable
            .await?;
        self.metrics.wrote("authorisation", started);
        tracing::info!(authorisation = id, "holder withdrew an authorisation");
        Ok(next)
    }

    /// A holder's authorisations, oldest first.
    pub fn authorisations_of(&self, holder: &HolderRef) -> Result<Vec<Authorisation>, EngineError> {
        Ok(self.store.authorisations_of_holder(holder)?)
    }

    /// The licences a holder holds (current versions), with their status.
    pub fn licences_of_holder(&self, holder: &HolderRef) -> Result<Vec<Value>, EngineError> {
        let ids = self.current_versions(self.store.licences_of_holder(holder.code_type, &holder.code, None)?)?;
        let now = self.clock.now();
        ids.iter()
            .map(|id| {
                let licence = self.licence(id)?;
                Ok(json!({
                    "id": id.as_str(),
                    "status": licence.status_at(now).map_or("unknown", Status::name),
                    "licence": serde_json::from_slice::<Value>(&licence.bytes).unwrap_or(Value::Null),
                }))
            })
            .collect()
    }

    /// Checks a department's use against its grants, before any licence is read. Returns the grant.
    fn authorise_use(&self, department: &str, type_code: &TypeCode, ctx: &UseContext) -> Result<Grant, EngineError> {
        check_use_cause(&ctx.use_cause).map_err(|e| refused(UseRefusal::UseCause(e.to_string())))?;
        let access = self.read_access();
        if !access.items.contains_key(&ctx.service_item) {
            return Err(refused(UseRefusal::UnknownServiceItem(ctx.service_item.clone())));
        }
        let now = self.clock.now();
        let live: Vec<&Grant> = access
            .by_user
            .get(&(department.to_owned(), type_code.clone()))
            .into_iter()
            .flatten()
            .filter_map(|id| access.grants.get(id))
            .filter(|g| g.is_live(now))
            .collect();
        if live.is_empty() {
            return Err(refused(UseRefusal::NoGrant));
        }
        // Of the department's live grants for this service item, the newest approved one
        // applies: a grant approved later supersedes the earlier ones (wider or narrower), so
        // an authority's latest decision is the one in force.
        let grant = live
            .into_iter()
            .filter(|g| g.service_items.contains(&ctx.service_item))
            .max_by_key(|g| (g.approved_at(), g.id.clone()))
            .ok_or_else(|| refused(UseRefusal::ServiceItemNotGranted(ctx.service_item.clone())))?;
        if grant.requires_authorisation && ctx.authorisation.is_none() {
            return Err(refused(UseRefusal::AuthorisationRequired));
        }
        Ok(grant.clone())
    }

    /// Checks the holder's authorisation for `licence`, when the call names one.
    fn check_authorisation(
        &self,
        department: &str,
        ctx: &UseContext,
        licence: &LicenceId,
        holder: &HolderRef,
    ) -> Result<(), EngineError> {
        let Some(id) = &ctx.authorisation else {
            return Ok(());
        };
        let ok = self
            .store
            .authorisation(id)?
            .is_some_and(|a| a.holder == *holder && a.covers(department, licence, &ctx.service_item, self.clock.now()));
        if ok {
            Ok(())
        } else {
            Err(refused(UseRefusal::AuthorisationInvalid))
        }
    }

    /// Writes a use record (durable before it returns); its id.
    pub(crate) async fn record_use(
        &self,
        department: &str,
        operation: UseOperation,
        type_code: &TypeCode,
        ctx: &UseContext,
        grant: Option<&Grant>,
        found: &[(LicenceId, HolderRef)],
    ) -> Result<String, EngineError> {
        let record = self.use_record(department, operation, type_code, ctx, grant, found);
        let ids = self.use_recorder.record(vec![record]).await?;
        ids.into_iter()
            .next()
            .ok_or_else(|| EngineError::Store(zhengyin_store::StoreError::Backend("no use record id".to_owned())))
    }

    /// A use record, its id still to be given by the writer (ids follow the order of writing).
    fn use_record(
        &self,
        department: &str,
        operation: UseOperation,
        type_code: &TypeCode,
        ctx: &UseContext,
        grant: Option<&Grant>,
        found: &[(LicenceId, HolderRef)],
    ) -> UseRecord {
        UseRecord {
            id: String::new(),
            time: self.clock.now(),
            department: department.to_owned(),
            operation,
            type_code: type_code.clone(),
            licences: found.iter().map(|(id, _)| id.clone()).collect(),
            holder: found.first().map(|(_, h)| h.clone()),
            service_item: ctx.service_item.clone(),
            use_cause: ctx.use_cause.clone(),
            authorisation: ctx.authorisation.clone(),
            grant: grant.map(|g| g.id.clone()),
            outcome: if found.is_empty() {
                UseOutcome::NotFound
            } else {
                UseOutcome::Answered
            },
        }
    }

    /// Checks the purpose a department states for a verification: a valid use cause and a
    /// registered service item (a presented licence needs no grant; its use is still recorded).
    pub fn check_purpose(&self, ctx: &UseContext) -> Result<(), EngineError> {
        self.check_purpose_parts(Some(&ctx.service_item), Some(&ctx.use_cause))
    }

    /// Checks whichever parts of a purpose are stated, by the same rules: a caller whose use is
    /// not recorded (an operator) need not state one, but one stated is never ignored.
    pub fn check_purpose_parts(&self, service_item: Option<&str>, use_cause: Option<&str>) -> Result<(), EngineError> {
        if let Some(cause) = use_cause {
            check_use_cause(cause).map_err(|e| refused(UseRefusal::UseCause(e.to_string())))?;
        }
        match service_item {
            Some(item) if !self.read_access().items.contains_key(item) => {
                Err(refused(UseRefusal::UnknownServiceItem(item.to_owned())))
            }
            _ => Ok(()),
        }
    }
}

fn is_field(licence_type: &LicenceType, field: &str) -> bool {
    GRANTABLE_METADATA.contains(&field) || licence_type.face_schema.iter().any(|f| f.name == field)
}

/// The holder a licence names.
pub(crate) fn holder_of(body: &LicenceBody) -> HolderRef {
    HolderRef {
        code_type: body.holder.code_type,
        code: body.holder.code.clone(),
    }
}

fn grant_entry(grant: &Grant, now: OffsetDateTime) -> Vec<u8> {
    log::entry(json!({
        "event": format!("grant.{}", grant.state.name()),
        "grant": grant.id,
        "department": grant.department,
        "type": grant.type_code.as_str(),
        "record_sha256": commitment(grant),
        "time": format_time(now),
    }))
}
