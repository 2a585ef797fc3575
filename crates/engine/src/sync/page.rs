//! Turning a page of a source's entries into one atomic write: every object checked, the
//! entries this node aggregates applied in log order, and what conflicts with another node's
//! authorities skipped and recorded (see [`super`] for the round around it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use time::OffsetDateTime;
use zhengyin_crypto::{hash, TrustAnchors};
use zhengyin_model::{
    Authority, Conflict, IncidentKind, LicenceId, SealChange, SealHistory, SealState, Status, StatusChange,
    StatusHistory, SyncIncident, TypeCode, Uscc, MAX_SKIPPED_LISTED,
};
use zhengyin_store::{LicenceState, ReplicatedLicence, StoreError, StoredSeal, SyncApply, SyncCursor};

use super::events::{innermost, parse_event, Event, StatusPattern};
use super::{Feed, SealObject, SyncError, SyncObject, SyncSource};
use crate::registry::{self, CertEntry};
use crate::verify::{self, StatusSource};
use crate::Engine;

/// Where the checks of a source's licences find certificates: the page's authorities first,
/// then those already replicated; chains always to the source's anchors.
struct SourceContext<'a> {
    engine: &'a Engine,
    anchors: &'a TrustAnchors,
    page: &'a HashMap<String, Arc<CertEntry>>,
}

impl verify::Context for SourceContext<'_> {
    fn anchors(&self) -> &TrustAnchors {
        self.anchors
    }
    fn certificate(&self, id: &str) -> Option<Arc<CertEntry>> {
        self.page
            .get(id)
            .cloned()
            .or_else(|| self.engine.read_registry().certificates.get(id).cloned())
    }
    fn record(&self, _: &LicenceId) -> Result<Option<LicenceState>, StoreError> {
        Ok(None)
    }
    fn status_source(&self, _: &Uscc, now: OffsetDateTime) -> StatusSource {
        StatusSource::local(now)
    }
    fn signatures(&self) -> &crate::SignatureCache {
        verify::Context::signatures(self.engine)
    }
    fn prepared(&self) -> &crate::PreparedCache<verify::Prepared> {
        verify::Context::prepared(self.engine)
    }
    fn seal(&self, _: &str) -> Result<Option<StoredSeal>, StoreError> {
        Ok(None)
    }
    fn open_objections(&self, _: &LicenceId) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        Ok(Vec::new())
    }
}

/// A page being turned into one atomic write.
struct Page<'a> {
    engine: &'a Engine,
    source: &'a SyncSource,
    now: OffsetDateTime,
    authorities: Vec<Authority>,
    certificates: HashMap<String, Arc<CertEntry>>,
    licences: Vec<ReplicatedLicence>,
    held: std::collections::HashSet<LicenceId>,
    statuses: BTreeMap<LicenceId, StatusHistory>,
    seals: Vec<StoredSeal>,
    seal_statuses: BTreeMap<String, SealHistory>,
    entries: Vec<Vec<u8>>,
    types: Vec<TypeCode>,
    /// Authorities another node owns whose claim by this source was accepted: replaying the
    /// skipped entries, the page takes them over.
    accepting: &'a [Uscc],
    /// Conflicts this page found or extended, by authority.
    conflicts: BTreeMap<Uscc, SyncIncident>,
    /// Entries skipped for a conflict.
    skipped: HashSet<u64>,
    /// The checkpoints of the round, for new conflicts' evidence.
    evidence: &'a [String],
}

/// Whose an authority is, as this page sees it.
enum Owner {
    /// The source's: its entries apply.
    Source,
    /// Another node's (`Some(origin)`) or this node's own (`None`): the source's entries for it
    /// are a conflict.
    Other(Option<String>),
    /// Nobody's here.
    Unknown,
}

impl<'a> Page<'a> {
    fn new(
        engine: &'a Engine,
        source: &'a SyncSource,
        now: OffsetDateTime,
        accepting: &'a [Uscc],
        evidence: &'a [String],
    ) -> Self {
        Page {
            engine,
            source,
            now,
            authorities: Vec::new(),
            certificates: HashMap::new(),
            licences: Vec::new(),
            held: HashSet::new(),
            statuses: BTreeMap::new(),
            seals: Vec::new(),
            seal_statuses: BTreeMap::new(),
            entries: Vec::new(),
            types: Vec::new(),
            accepting,
            conflicts: BTreeMap::new(),
            skipped: HashSet::new(),
            evidence,
        }
    }
}

impl Page<'_> {
    /// Whether the source's trust list recognises what `event` concerns (everything, for a
    /// source this node aggregates); what it does not is passed over.
    fn recognises(&self, event: &Event) -> bool {
        let Some(recognition) = &self.source.recognition else {
            return true;
        };
        match event {
            Event::Authority { uscc, .. } => recognition.authorities.contains(uscc),
            Event::Licence { id, .. } | Event::Status { id, .. } => recognition.authorities.contains(id.issuer()),
            Event::Seal { .. } | Event::SealStatus { .. } => false,
        }
    }

    fn owner(&self, uscc: &Uscc) -> Owner {
        match self.authority_origin(uscc) {
            None => Owner::Unknown,
            Some(Some(origin)) if origin == self.source.origin => Owner::Source,
            Some(other) => Owner::Other(other),
        }
    }

    /// Skips entry `index` of the source, which concerns `uscc`, owned by `owner`: recorded in
    /// the source's open conflict over it, or in a new one.
    fn skip(&mut self, index: u64, uscc: &Uscc, owner: Option<String>, registration: bool) -> Result<(), SyncError> {
        if !self.conflicts.contains_key(uscc) {
            let open = self.engine.sync.open_conflict(&self.source.origin, uscc.as_str());
            let incident = match open {
                Some(id) => self.engine.store.incident(&id)?,
                None => None,
            };
            let incident = match incident {
                Some(incident) => incident,
                None => {
                    let taken: HashSet<&str> = self.conflicts.values().map(|i| i.id.as_str()).collect();
                    let id = self.engine.new_incident_id(self.now, |id| taken.contains(id))?;
                    let whose = owner.as_deref().unwrap_or("this node");
                    SyncIncident {
                        id,
                        origin: self.source.origin.clone(),
                        kind: IncidentKind::Conflict,
                        detail: format!(
                            "the source claims authority {uscc}, which {whose} owns: its entries for it are skipped until an operator decides"
                        ),
                        evidence: self.evidence.to_vec(),
                        detected: self.now,
                        conflict: Some(Conflict {
                            authority: uscc.to_string(),
                            owner,
                            registration: None,
                            skipped: Vec::new(),
                            unlisted: 0,
                            replayed: false,
                        }),
                        resolved: None,
                    }
                }
            };
            self.conflicts.insert(uscc.clone(), incident);
        }
        if let Some(conflict) = self.conflicts.get_mut(uscc).and_then(|i| i.conflict.as_mut()) {
            if registration && conflict.registration.is_none() {
                conflict.registration = Some(index);
            }
            if conflict.skipped.len() < MAX_SKIPPED_LISTED {
                conflict.skipped.push(index);
            } else {
                conflict.unlisted += 1;
            }
        }
        self.skipped.insert(index);
        Ok(())
    }

    /// The origin a held authority came from: `Ok(None)` for a local one.
    fn authority_origin(&self, uscc: &Uscc) -> Option<Option<String>> {
        if let Some(a) = self.authorities.iter().find(|a| a.uscc == *uscc) {
            return Some(a.origin.clone());
        }
        self.engine
            .read_registry()
            .authorities
            .get(uscc)
            .map(|a| a.authority.origin.clone())
    }

    fn history(&mut self, id: &LicenceId) -> Result<Option<&mut StatusHistory>, SyncError> {
        if !self.statuses.contains_key(id) {
            let Some(stored) = self.engine.store.licence(id)? else {
                return Ok(None);
            };
            self.statuses.insert(id.clone(), stored.status);
        }
        Ok(self.statuses.get_mut(id))
    }

    fn authority(&mut self, uscc: Uscc, certificates: &[String], object: Option<Authority>) -> Result<(), String> {
        let Some(mut authority) = object.filter(|a| a.uscc == uscc) else {
            return Err(format!("no record of authority {uscc}"));
        };
        if let Owner::Other(owner) = self.owner(&uscc) {
            if !self.accepting.contains(&uscc) {
                let whose = owner.unwrap_or_else(|| "this node".to_owned());
                return Err(format!("authority {uscc} is owned by {whose}"));
            }
        }
        let mut parsed = Vec::new();
        for pem in &authority.certificates {
            let entry = registry::parse_chain(pem, Some(&uscc), &self.source.anchors, self.now, false)
                .map_err(|e| format!("authority {uscc}: {e}"))?;
            if entry.chain.is_none() {
                return Err(format!(
                    "authority {uscc}: a certificate does not chain to the source's anchors"
                ));
            }
            parsed.push(entry);
        }
        for id in certificates {
            if !parsed.iter().any(|e| e.certificate.id() == *id) {
                return Err(format!(
                    "authority {uscc}: certificate {id} named by the entry is missing"
                ));
            }
        }
        for entry in parsed {
            self.certificates.insert(entry.certificate.id(), Arc::new(entry));
        }
        authority.origin = Some(self.source.origin.clone());
        self.authorities.retain(|a| a.uscc != uscc);
        self.authorities.push(authority);
        Ok(())
    }

    fn licence(
        &mut self,
        id: LicenceId,
        supersedes: Option<LicenceId>,
        time: OffsetDateTime,
        checked: Result<Checked, String>,
    ) -> Result<(), SyncError> {
        let invalid = |detail: String| {
            Err(SyncError::Incident(Box::new(incident_draft(
                IncidentKind::ObjectInvalid,
                detail,
            ))))
        };
        let (signed, body, document_sha256) = match checked {
            Ok(checked) => checked,
            Err(why) => return invalid(why),
        };
        if !matches!(self.owner(&body.issuer.code), Owner::Source) || body.issuer.code != *id.issuer() {
            return invalid(format!("licence {id}: its issuer is not an authority of this source"));
        }
        if let Some(recognition) = &self.source.recognition {
            if !recognition.licence_types.contains(&body.licence_type.code) {
                return Ok(());
            }
        }
        let held = self.engine.licence_type(&body.licence_type.code);
        if held.is_none_or(|t| t.version < body.licence_type.version) && !self.types.contains(&body.licence_type.code) {
            self.types.push(body.licence_type.code.clone());
        }
        if let Some(old) = supersedes {
            let recognised = self.source.recognition.is_some();
            match self.history(&old)? {
                Some(history) => history.push(StatusChange {
                    status: Status::Superseded { by: id.clone() },
                    effective: time,
                    recorded: time,
                }),
                // A version from before its type was recognised here.
                None if recognised => {}
                None => return invalid(format!("licence {id}: supersedes {old}, which the source never issued")),
            }
        }
        let mut status = StatusHistory::default();
        status.push(StatusChange {
            status: Status::Valid,
            effective: time,
            recorded: time,
        });
        if !self.held.contains(&id) && self.engine.store.licence(&id)?.is_none() {
            self.statuses.insert(id.clone(), status);
        }
        self.held.insert(id.clone());
        self.licences.push(ReplicatedLicence {
            id,
            signed: signed.into_bytes(),
            document_sha256,
            holder: (body.holder.code_type, body.holder.code),
        });
        Ok(())
    }

    /// A seal made at the source: its `SESeal` matches the entry, its maker signature and
    /// chain verify to the source's anchors, and the record says what the signed seal says.
    fn seal(
        &mut self,
        es_id: &str,
        sha256: &str,
        time: OffsetDateTime,
        object: Option<SealObject>,
    ) -> Result<(), String> {
        let object = object.ok_or("not served")?;
        let der = B64.decode(&object.der).map_err(|_| "the SESeal is not base64")?;
        if hash::sha256_hex(&der) != sha256 {
            return Err("does not match the entry's hash".to_owned());
        }
        let parsed = zhengyin_ses::format::parse_seal(&der).map_err(|e| e.to_string())?;
        let (info, record) = (&parsed.info, &object.record);
        let signers: Vec<String> = match &info.property.cert_list {
            zhengyin_ses::format::CertList::Certificates(certs) => certs
                .iter()
                .map(|der| zhengyin_crypto::Certificate::from_der(der).map(|c| c.id()))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?,
            zhengyin_ses::format::CertList::Digests(_) => return Err("signers listed by digest only".to_owned()),
            zhengyin_ses::format::CertList::Text(_) => return Err("signers not listed (text)".to_owned()),
        };
        if info.es_id != es_id
            || record.es_id != es_id
            || record.name != info.property.name
            || record.seal_type != info.property.seal_type
            || record.valid_start != info.property.valid_start
            || record.valid_end != info.property.valid_end
            || record.signer_certificates != signers
            || record.origin.is_some()
        {
            return Err("the record differs from the signed seal".to_owned());
        }
        let intermediates: Vec<zhengyin_crypto::Certificate> = self
            .certificates
            .values()
            .chain(self.engine.read_registry().certificates.values())
            .flat_map(|c| c.intermediates.iter().cloned())
            .collect();
        let ctx = zhengyin_ses::verify::Offline {
            anchors: &self.source.anchors,
            intermediates: &intermediates,
            crls: &[],
        };
        let report = zhengyin_ses::verify::verify_seal(&ctx, &der, time);
        for step in ["structure", "seal_signature", "maker_certificate"] {
            if !report
                .checks
                .iter()
                .any(|c| c.code == step && c.outcome == zhengyin_model::Outcome::Passed)
            {
                return Err(format!("{step} did not pass"));
            }
        }
        let mut status = SealHistory::default();
        status.push(SealChange {
            status: SealState::Active,
            effective: time,
            recorded: time,
        });
        self.seal_statuses.insert(es_id.to_owned(), status);
        let mut record = object.record;
        record.origin = Some(self.source.origin.clone());
        self.seals.push(StoredSeal {
            record,
            der,
            status: SealHistory::default(),
        });
        Ok(())
    }

    fn seal_status(&mut self, es_id: &str, pattern: StatusPattern, text: Option<&str>) -> Result<(), String> {
        let change = pattern.seal_change(text)?;
        if !self.seal_statuses.contains_key(es_id) {
            let stored = self.engine.store.seal(es_id).map_err(|e| e.to_string())?;
            let stored = stored.ok_or("a status change for a seal never made")?;
            self.seal_statuses.insert(es_id.to_owned(), stored.status);
        }
        if let Some(history) = self.seal_statuses.get_mut(es_id) {
            history.push(change);
        }
        Ok(())
    }

    fn status(&mut self, id: LicenceId, pattern: StatusPattern, text: Option<&str>) -> Result<(), SyncError> {
        let change = pattern.change(text).map_err(|why| {
            SyncError::Incident(Box::new(incident_draft(
                IncidentKind::ObjectInvalid,
                format!("licence {id}: {why}"),
            )))
        })?;
        let recognised = self.source.recognition.is_some();
        let Some(history) = self.history(&id)? else {
            // A licence of a type not recognised here.
            if recognised {
                return Ok(());
            }
            return Err(SyncError::Incident(Box::new(incident_draft(
                IncidentKind::ObjectInvalid,
                format!("licence {id}: a status change for a licence never issued"),
            ))));
        };
        // Each entry is applied once (the cursor moves in the same write), so no change repeats.
        history.push(change);
        Ok(())
    }
}

/// A licence from a source, checked: its bytes, body and document hash.
type Checked = (String, zhengyin_model::LicenceBody, [u8; 32]);

/// Checks a licence an entry names: served, matching the entry's hash, the identifier the
/// entry names, and verifying (signature, chain to the source's anchors, the issuer's
/// certificate). CPU-bound and independent of the others: a page's run in parallel.
fn check_licence(
    ctx: &SourceContext<'_>,
    id: &LicenceId,
    sha256: &str,
    signed: Option<String>,
    now: OffsetDateTime,
) -> Result<Checked, String> {
    let signed = signed.ok_or_else(|| format!("licence {id}: not served"))?;
    if hash::sha256_hex(signed.as_bytes()) != sha256 {
        return Err(format!("licence {id}: does not match the entry's hash"));
    }
    let (body, document_sha256) =
        verify::check_replicated(ctx, signed.as_bytes(), now).map_err(|why| format!("licence {id}: {why}"))?;
    if body.id != *id {
        return Err(format!(
            "licence {id}: the entry names another identifier than the licence"
        ));
    }
    Ok((signed, body, document_sha256))
}

/// An incident without its id, origin and evidence (filled in where it is recorded).
pub(super) fn incident_draft(kind: IncidentKind, detail: String) -> SyncIncident {
    SyncIncident {
        id: String::new(),
        origin: String::new(),
        kind,
        detail,
        evidence: Vec::new(),
        detected: OffsetDateTime::UNIX_EPOCH,
        conflict: None,
        resolved: None,
    }
}

impl Engine {
    /// Checks a page's entries and objects; the write it becomes (cursor still to be set).
    pub(super) async fn prepare_page<F: Feed>(
        &self,
        source: &SyncSource,
        feed: &F,
        entries: &[(u64, Vec<u8>)],
        objects: Vec<SyncObject>,
        now: OffsetDateTime,
        (accepting, evidence): (&[Uscc], &[String]),
    ) -> Result<SyncApply, SyncError> {
        let invalid =
            |detail: String| SyncError::Incident(Box::new(incident_draft(IncidentKind::ObjectInvalid, detail)));
        let mut objects: HashMap<u64, SyncObject> = objects.into_iter().map(|o| (o.index, o)).collect();
        let mut page = Page::new(self, source, now, accepting, evidence);
        // Pass 1, in log order: parse every entry; authorities first (their certificates are
        // what the page's licences are checked against).
        let mut events = Vec::new();
        for (index, bytes) in entries {
            let index = *index;
            let value: Value =
                serde_json::from_slice(bytes).map_err(|e| invalid(format!("entry {index} is not JSON: {e}")))?;
            let event = parse_event(innermost(&value)).map_err(|why| invalid(format!("entry {index}: {why}")))?;
            let Some(event) = event else { continue };
            if !page.recognises(&event) {
                continue;
            }
            let object = objects.remove(&index);
            if let Event::Authority { uscc, certificates } = &event {
                match page.owner(uscc) {
                    Owner::Other(owner) if !accepting.contains(uscc) => page.skip(index, uscc, owner, true)?,
                    _ => page
                        .authority(uscc.clone(), certificates, object.clone().and_then(|o| o.authority))
                        .map_err(|why| invalid(format!("entry {index}: {why}")))?,
                }
            }
            events.push((index, value, event, object));
        }
        // Whose licences this page skips: decided once its authorities are known.
        let foreign: HashSet<Uscc> = events
            .iter()
            .filter_map(|(_, _, event, _)| match event {
                Event::Licence { id, .. } | Event::Status { id, .. } => Some(id.issuer()),
                _ => None,
            })
            .filter(|uscc| matches!(page.owner(uscc), Owner::Other(_)))
            .cloned()
            .collect();
        // Pass 2, in parallel: every licence's signature and chain.
        let checked: HashMap<u64, Result<Checked, String>> = {
            use rayon::prelude::*;
            let ctx = SourceContext {
                engine: self,
                anchors: &source.anchors,
                page: &page.certificates,
            };
            events
                .par_iter_mut()
                .filter_map(|(index, _, event, object)| match event {
                    Event::Licence { id, sha256, .. } if !foreign.contains(id.issuer()) => {
                        let signed = object.as_mut().and_then(|o| o.licence.take());
                        Some((*index, check_licence(&ctx, id, sha256, signed, now)))
                    }
                    _ => None,
                })
                .collect()
        };
        let mut checked = checked;
        // Pass 3, in log order: licences and status changes, and this node's own entries.
        for (index, value, event, object) in events {
            match event {
                Event::Authority { .. } => {}
                Event::Licence { id, .. } | Event::Status { id, .. } if foreign.contains(id.issuer()) => {
                    let owner = match page.owner(id.issuer()) {
                        Owner::Other(owner) => owner,
                        _ => None,
                    };
                    page.skip(index, id.issuer(), owner, false)?;
                }
                Event::Licence {
                    id, supersedes, time, ..
                } => {
                    let result = checked
                        .remove(&index)
                        .unwrap_or_else(|| Err(format!("licence {id}: not checked")));
                    page.licence(id, supersedes, time, result)?
                }
                Event::Status { id, change } => {
                    page.status(id, change, object.as_ref().and_then(|o| o.text.as_deref()))?
                }
                Event::Seal { es_id, sha256, time } => page
                    .seal(&es_id, &sha256, time, object.and_then(|o| o.seal))
                    .map_err(|why| invalid(format!("entry {index}: seal {es_id}: {why}")))?,
                Event::SealStatus { es_id, change } => page
                    .seal_status(&es_id, change, object.as_ref().and_then(|o| o.text.as_deref()))
                    .map_err(|why| invalid(format!("entry {index}: seal {es_id}: {why}")))?,
            }
            // Another region's entries stay that region's: recognised here, relayed nowhere.
            if page.skipped.contains(&index) || source.recognition.is_some() {
                continue;
            }
            page.entries.push(crate::log::entry(serde_json::json!({
                "event": "sync.applied",
                "origin": source.origin,
                "index": index,
                "entry": value,
            })));
        }
        // Licence types (or type versions) the source uses and this node lacks come from the
        // source's catalogue, in their current version there.
        for code in std::mem::take(&mut page.types) {
            let licence_type = feed.licence_type(&code).await?;
            if licence_type.code != code {
                return Err(invalid(format!(
                    "the source served type {} for {code}",
                    licence_type.code
                )));
            }
            self.adopt_licence_type(licence_type)
                .await
                .map_err(|e| invalid(format!("licence type {code}: {e}")))?;
        }
        Ok(SyncApply {
            expected: None,
            cursor: SyncCursor {
                origin: source.origin.clone(),
                checkpoint: String::new(),
                size: 0,
                root: [0; 32],
                frontier: Vec::new(),
                applied: 0,
                synced_at: None,
            },
            authorities: page.authorities,
            licences: page.licences,
            statuses: page.statuses.into_iter().collect(),
            seals: page.seals,
            seal_statuses: page.seal_statuses.into_iter().collect(),
            entries: page.entries,
            incidents: page.conflicts.into_values().collect(),
        })
    }
}
