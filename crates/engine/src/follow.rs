//! Keeping one frontend of a shared database in step with the others.
//!
//! Several `zhengyin` processes may serve one PostgreSQL database. Status is never held in
//! memory — verification reads it from the store every time, so a revocation through one
//! frontend is seen by every other at once — but some state is: the registry, grants and
//! service items, CRLs, the set of disputed licences, sync sources' progress and incidents, and
//! the HTTP layer's API tokens. Every
//! write that changes it appends a log entry, and the log is shared, so [`Engine::follow_store`]
//! reads the entries appended since its previous call and reloads what they touched. Licence
//! types, service items, CRLs and sync cursors and incidents change without an entry; they are
//! small, and are read again on every call. Called every [`FOLLOW_INTERVAL`], that bounds how long another
//! frontend's change takes to be seen here.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use zhengyin_model::LicenceId;
use zhengyin_store::LeafIndex;

use crate::{access, sync, Engine, EngineError, MAX_ENTRIES_PER_PAGE};

/// How often a frontend of a shared database follows it.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// The part of a log entry that says what it changed.
#[derive(Deserialize)]
struct Event {
    event: String,
    #[serde(default)]
    licence: Option<String>,
}

/// What the entries read touched.
#[derive(Debug, Default)]
struct Touched {
    authorities: bool,
    grants: bool,
    tokens: bool,
    disputed: Vec<LicenceId>,
}

impl Touched {
    fn note(&mut self, entry: &[u8]) {
        let Ok(event) = serde_json::from_slice::<Event>(entry) else {
            return;
        };
        let kind = event.event.as_str();
        if kind == "authority.registered" || kind == "sync.applied" {
            self.authorities = true;
        } else if kind.starts_with("grant.") {
            self.grants = true;
        } else if kind.starts_with("token.") {
            self.tokens = true;
        } else if kind == "objection.filed" {
            self.disputed
                .extend(event.licence.and_then(|id| LicenceId::parse(&id).ok()));
        }
    }
}

/// What a call to [`Engine::follow_store`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    /// API tokens were issued or revoked: the caller reloads its token table.
    pub tokens: bool,
}

impl Engine {
    /// Brings this frontend's in-memory state in step with the shared store: reads the log
    /// entries appended since the previous call (by any frontend) and reloads what they touched,
    /// and compares licence types, service items and CRLs with the store.
    pub async fn follow_store(&self) -> Result<Followed, EngineError> {
        let seen = self.followed.load(Ordering::Acquire);
        let size = self.store.log_size()?.0;
        let mut touched = Touched::default();
        let mut at = seen.min(size);
        while at < size {
            let end = size.min(at + MAX_ENTRIES_PER_PAGE);
            for entry in self.store.log_entries(LeafIndex(at), LeafIndex(end))? {
                touched.note(&entry);
            }
            at = end;
        }
        if !touched.disputed.is_empty() {
            self.disputed
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .extend(touched.disputed.iter().cloned());
        }
        if touched.authorities {
            self.reload_authorities()?;
        }
        self.reload_licence_types()?;
        let items = self.store.service_items()?;
        if touched.grants || items != self.service_items() {
            // Under the lock local grant changes take, so a reload never undoes a newer one.
            let _grants = self.access_lock.lock().await;
            *self.write_access() = access::AccessIndex::load(self.store.as_ref())?;
        }
        self.reload_crls()?;
        // Another frontend may be the one following a source, or resolve its incident.
        self.sync.refresh(sync::SyncStates::read_from(self.store.as_ref())?);
        self.followed.store(size.max(seen), Ordering::Release);
        Ok(Followed { tokens: touched.tokens })
    }

    /// Loads every stored authority whose record differs from the one held.
    fn reload_authorities(&self) -> Result<(), EngineError> {
        let changed: Vec<_> = self
            .store
            .authorities()?
            .into_iter()
            .filter(|a| self.authority(&a.uscc).as_ref() != Some(a))
            .collect();
        self.hold_authorities(changed);
        Ok(())
    }

    fn reload_licence_types(&self) -> Result<(), EngineError> {
        for t in self.store.licence_types()? {
            if self.licence_type(&t.code).as_ref() != Some(&t) {
                self.write_registry().types.insert(t.code.clone(), t);
            }
        }
        Ok(())
    }

    /// Loads the stored CRLs again when one is not held here yet.
    fn reload_crls(&self) -> Result<(), EngineError> {
        let held: HashSet<Vec<u8>> = self.crl_ders();
        if self.store.crls()?.iter().any(|der| !held.contains(der)) {
            self.load_crls()?;
        }
        Ok(())
    }
}
