//! The catalogue's use cases: registering authorities (and adding their certificates) and
//! licence types (and their versions and issuers), and reading them back.

use time::OffsetDateTime;
use zhengyin_model::{authority, Authority, LicenceType, TypeCode, Uscc};
use zhengyin_store::StoreError;

use crate::{log, registry, Engine, EngineError, RegisterAuthority};

impl Engine {
    /// Registers an authority, or adds certificates to a registered one. Every certificate
    /// chain must validate now to a trust anchor and have a key a cryptosuite signs with.
    pub async fn register_authority(&self, req: RegisterAuthority) -> Result<Authority, EngineError> {
        let uscc = Uscc::parse(&req.uscc)?;
        self.local_authority(&uscc, || format!("authority {uscc}"))?;
        if req.name.trim().is_empty() || req.name.chars().count() > 200 {
            return Err(EngineError::invalid("name must be 1 to 200 characters"));
        }
        if !authority::LEVELS.contains(&req.level.as_str()) {
            return Err(EngineError::invalid(
                "level must be national, provincial, city or county",
            ));
        }
        authority::check_region_code(&req.region_code).map_err(EngineError::invalid)?;
        if req.certificates.is_empty() || req.certificates.len() > 16 {
            return Err(EngineError::invalid("give 1 to 16 certificate chains"));
        }
        let now = self.clock.now();
        let mut entries = Vec::new();
        for pem in &req.certificates {
            entries.push(registry::parse_chain(pem, Some(&uscc), &self.anchors, now, true)?);
        }
        let (mut certificates, retired): (Vec<String>, Vec<zhengyin_model::RetiredKey>) = {
            let reg = self.read_registry();
            for e in &entries {
                if let Some(other) = reg.certificates.get(&e.certificate.id()) {
                    if other.authority.as_ref() != Some(&uscc) {
                        return Err(EngineError::Certificate(
                            "certificate already registered to another authority".into(),
                        ));
                    }
                }
            }
            reg.authorities
                .get(&uscc)
                .map(|a| (a.authority.certificates.clone(), a.authority.retired.clone()))
                .unwrap_or_default()
        };
        for pem in &req.certificates {
            if !certificates.contains(pem) {
                certificates.push(pem.clone());
            }
        }
        let authority = Authority {
            uscc: uscc.clone(),
            name: req.name,
            level: req.level,
            region_code: req.region_code,
            certificates,
            registered: now,
            origin: None,
            retired,
        };
        let entry = log::entry(serde_json::json!({
            "event": "authority.registered",
            "authority": uscc.as_str(),
            "certificates": entries.iter().map(|e| e.certificate.id()).collect::<Vec<_>>(),
            "time": zhengyin_model::licence::format_time(now),
        }));
        self.ensure_signing()?;
        self.store.put_authority(&authority, &entry)?.durable.await?;
        // Rebuild the entries of every certificate, old and new, so the newest signer wins.
        let all = self.authority_certificates(&authority, now);
        self.write_registry()
            .insert_authority(authority.clone(), all, &self.keyring);
        Ok(authority)
    }

    /// An authority's certificates, parsed and validated to the anchors of the node it came from
    /// (this node's own for a local one or a source not yet known).
    pub(crate) fn authority_certificates(
        &self,
        authority: &Authority,
        now: OffsetDateTime,
    ) -> Vec<registry::CertEntry> {
        let foreign = authority.origin.as_deref().and_then(|origin| {
            self.source_anchors
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(origin)
                .cloned()
        });
        let anchors = foreign.as_deref().unwrap_or(&self.anchors);
        authority
            .certificates
            .iter()
            .filter_map(|pem| registry::parse_chain(pem, Some(&authority.uscc), anchors, now, false).ok())
            .map(|mut entry| {
                entry.anchors = foreign.clone();
                entry
            })
            .collect()
    }

    /// Puts authorities into the registry (replacing what it held of them), their
    /// certificates validated as [`Self::authority_certificates`] says.
    pub(crate) fn hold_authorities(&self, authorities: impl IntoIterator<Item = Authority>) {
        let now = self.clock.now();
        let parsed: Vec<_> = authorities
            .into_iter()
            .map(|a| {
                let certs = self.authority_certificates(&a, now);
                (a, certs)
            })
            .collect();
        let mut reg = self.write_registry();
        for (a, certs) in parsed {
            reg.insert_authority(a, certs, &self.keyring);
        }
    }

    /// A registered authority.
    pub fn authority(&self, uscc: &Uscc) -> Option<Authority> {
        self.read_registry().authorities.get(uscc).map(|a| a.authority.clone())
    }

    /// Every registered authority.
    pub fn authorities(&self) -> Vec<Authority> {
        let mut all: Vec<_> = self
            .read_registry()
            .authorities
            .values()
            .map(|a| a.authority.clone())
            .collect();
        all.sort_by(|a, b| a.uscc.cmp(&b.uscc));
        all
    }

    /// Registers a licence type, or a new version of one when its definition changes (see
    /// [`LicenceType::same_definition`]); earlier versions are kept, and licences keep the version
    /// they were issued under. The version sent is ignored: the catalogue assigns it. Answers the
    /// type as now registered and whether anything changed (an identical definition changes
    /// nothing and writes nothing). Each change is a log entry (`licence_type.registered`)
    /// committing to the whole definition by its SHA-256.
    pub async fn register_licence_type(
        &self,
        mut licence_type: LicenceType,
    ) -> Result<(LicenceType, bool), EngineError> {
        licence_type.check()?;
        licence_type.version = match self.licence_type(&licence_type.code) {
            None => 1,
            Some(current) if current.same_definition(&licence_type) => {
                if current.issuers == licence_type.issuers {
                    return Ok((current, false));
                }
                current.version
            }
            Some(current) => current
                .version
                .checked_add(1)
                .ok_or_else(|| EngineError::invalid("the licence type has no versions left"))?,
        };
        self.commit_licence_type(licence_type).await.map(|t| (t, true))
    }

    /// Keeps a licence type replicated from a sync source as the source defines it (its version
    /// included), unless this node holds that version or a newer one already.
    pub(crate) async fn adopt_licence_type(&self, licence_type: LicenceType) -> Result<(), EngineError> {
        licence_type.check()?;
        if self
            .licence_type(&licence_type.code)
            .is_some_and(|held| held.version > licence_type.version || held == licence_type)
        {
            return Ok(());
        }
        self.commit_licence_type(licence_type).await.map(drop)
    }

    async fn commit_licence_type(&self, licence_type: LicenceType) -> Result<LicenceType, EngineError> {
        let definition = serde_json::to_value(&licence_type)
            .map_err(|e| EngineError::invalid(e.to_string()))
            .and_then(|v| {
                zhengyin_model::canonical::to_canonical(&v).map_err(|e| EngineError::invalid(e.to_string()))
            })?;
        let entry = log::entry(serde_json::json!({
            "event": "licence_type.registered",
            "type": licence_type.code.as_str(),
            "version": licence_type.version,
            "defining_authority": licence_type.defining_authority.as_str(),
            "issuers": licence_type.issuers.iter().map(Uscc::as_str).collect::<Vec<_>>(),
            "definition_sha256": zhengyin_crypto::hash::sha256_hex(&definition),
            "time": zhengyin_model::licence::format_time(self.clock.now()),
        }));
        self.ensure_signing()?;
        match self.store.put_licence_type(&licence_type, &entry) {
            Ok(logged) => logged.durable.await?,
            Err(StoreError::Conflict) => return Err(EngineError::TypeChanged(licence_type.code)),
            Err(e) => return Err(e.into()),
        }
        let mut registry = self.write_registry();
        let held = registry.types.get(&licence_type.code);
        if held.is_none_or(|held| held.version <= licence_type.version) {
            registry.types.insert(licence_type.code.clone(), licence_type.clone());
        }
        Ok(licence_type)
    }

    /// Sets which authorities besides the defining one may issue `code` (发证机构): by its
    /// defining authority (`by` = its USCC) or an operator (`by` = `None`). Logged as a catalogue
    /// change. Each listed authority must be registered.
    pub async fn set_type_issuers(
        &self,
        by: Option<&Uscc>,
        code: &TypeCode,
        issuers: Vec<Uscc>,
    ) -> Result<LicenceType, EngineError> {
        let mut licence_type = self
            .licence_type(code)
            .ok_or_else(|| EngineError::UnknownLicenceType(code.clone()))?;
        if by.is_some_and(|uscc| *uscc != licence_type.defining_authority) {
            return Err(EngineError::NotDefiner(code.clone()));
        }
        if let Some(unknown) = issuers.iter().find(|u| self.authority(u).is_none()) {
            return Err(EngineError::UnknownAuthority(unknown.clone()));
        }
        let mut issuers = issuers;
        issuers.sort();
        issuers.dedup();
        issuers.retain(|u| *u != licence_type.defining_authority);
        licence_type.issuers = issuers;
        self.commit_licence_type(licence_type).await
    }

    /// A licence type.
    pub fn licence_type(&self, code: &TypeCode) -> Option<LicenceType> {
        self.read_registry().types.get(code).cloned()
    }

    /// One version of a licence type: the current one from memory, an earlier one from the store.
    pub fn licence_type_version(&self, code: &TypeCode, version: u32) -> Result<LicenceType, EngineError> {
        let current = self
            .licence_type(code)
            .ok_or_else(|| EngineError::UnknownLicenceType(code.clone()))?;
        if current.version == version {
            return Ok(current);
        }
        self.licence_type_versions(code)?
            .into_iter()
            .find(|t| t.version == version)
            .ok_or_else(|| EngineError::UnknownTypeVersion {
                code: code.clone(),
                version,
            })
    }

    /// Every kept version of a licence type, oldest first.
    pub fn licence_type_versions(&self, code: &TypeCode) -> Result<Vec<LicenceType>, EngineError> {
        if self.licence_type(code).is_none() {
            return Err(EngineError::UnknownLicenceType(code.clone()));
        }
        Ok(self.store.licence_type_versions(code)?)
    }

    /// The whole catalogue.
    pub fn licence_types(&self) -> Vec<LicenceType> {
        let mut all: Vec<_> = self.read_registry().types.values().cloned().collect();
        all.sort_by(|a, b| a.code.cmp(&b.code));
        all
    }
}
