//! A licence's life: issuing (one or many), updating to a new version, revoking, suspending
//! and reinstating, and reading it with its status (同步签发、同步更新、同步废止).

use zhengyin_model::licence::parse_date;
use zhengyin_model::{authority, LicenceBody, LicenceId, LicenceType, Status, StatusChange, TypeCode, Uscc};

use crate::{
    check_text, log, Engine, EngineError, IssueRequest, RevokeRequest, SignedLicence, SuspendRequest, UpdateRequest,
};

impl Engine {
    /// Issues a licence for `issuer`.
    pub async fn issue(&self, issuer: &Uscc, req: IssueRequest) -> Result<SignedLicence, EngineError> {
        let (body, seal) = self.prepare_issue(issuer, req)?;
        self.sign_and_commit(body, seal, None).await
    }

    /// Checks an issue request and builds the licence it asks for (unsigned), with the seal it
    /// names.
    fn prepare_issue(&self, issuer: &Uscc, req: IssueRequest) -> Result<(LicenceBody, Option<String>), EngineError> {
        self.local_authority(issuer, || format!("authority {issuer}"))?;
        let (licence_type, authority) = {
            let reg = self.read_registry();
            let t = reg
                .types
                .get(&req.type_code)
                .cloned()
                .ok_or_else(|| EngineError::UnknownLicenceType(req.type_code.clone()))?;
            let a = reg
                .authorities
                .get(issuer)
                .map(|a| a.authority.clone())
                .ok_or_else(|| EngineError::UnknownAuthority(issuer.clone()))?;
            (t, a)
        };
        if !licence_type.may_issue(issuer) {
            return Err(EngineError::NotBoundToType {
                authority: issuer.clone(),
                type_code: licence_type.code.clone(),
            });
        }
        if !licence_type.holder_code_types.contains(&req.holder.code_type) {
            return Err(EngineError::invalid(format!(
                "holder code type {} is not allowed for licence type {}",
                req.holder.code_type, licence_type.code
            )));
        }
        req.holder.code_type.check_code(&req.holder.code)?;
        let today = self.clock.now().date();
        let issue_date = optional_date(req.issue_date.as_deref(), "issue_date")?.unwrap_or(today);
        let serial = self.new_serial()?;
        let id = LicenceId::new(
            licence_type.code.clone(),
            issuer.clone(),
            &serial,
            zhengyin_model::Version::FIRST,
        )?;
        let body = LicenceBody {
            version: id.version().to_string(),
            id,
            name: req.name.unwrap_or_else(|| licence_type.name.clone()),
            number: req.number,
            licence_type: zhengyin_model::TypeRef {
                code: licence_type.code.clone(),
                name: licence_type.name.clone(),
                version: licence_type.version,
            },
            defining_authority: licence_type.defining_authority.clone(),
            issuer: zhengyin_model::IssuerRef {
                name: authority.name.clone(),
                code: authority.uscc.clone(),
                level: authority.level.clone(),
            },
            issue_date,
            valid_from: optional_date(req.valid_from.as_deref(), "valid_from")?.unwrap_or(issue_date),
            valid_until: optional_date(req.valid_until.as_deref(), "valid_until")?,
            region_code: req.region_code.unwrap_or_else(|| authority.region_code.clone()),
            holder: req.holder,
            service_item: req.service_item,
            face: req.face,
        };
        check_body(&body, &licence_type)?;
        Ok((body, req.seal))
    }

    /// Issues many licences for `issuer` at once (bulk conversion of existing licences): each
    /// checked as [`Engine::issue`] would, then signed and stored together — one intent write,
    /// signatures on every core, one commit (sled) or the fewest transactions (PostgreSQL). The
    /// results are in the requests' order; a refused request refuses only itself; of two
    /// requests with one number, the earlier keeps it.
    pub async fn issue_many(
        &self,
        issuer: &Uscc,
        requests: Vec<IssueRequest>,
    ) -> Vec<Result<SignedLicence, EngineError>> {
        let mut results: Vec<Option<Result<SignedLicence, EngineError>>> = (0..requests.len()).map(|_| None).collect();
        let mut numbers = std::collections::HashSet::new();
        let mut bodies = Vec::with_capacity(requests.len());
        for (i, request) in requests.into_iter().enumerate() {
            if !numbers.insert((request.type_code.clone(), request.number.clone())) {
                results[i] = Some(Err(EngineError::NumberTaken { number: request.number }));
                continue;
            }
            match self.prepare_issue(issuer, request) {
                Ok(body) => bodies.push((i, body)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let (positions, bodies): (Vec<usize>, Vec<_>) = bodies.into_iter().unzip();
        for (i, result) in positions.into_iter().zip(self.sign_and_commit_many(bodies).await) {
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(EngineError::Signing("a licence of the bulk went unanswered".to_owned()))))
            .collect()
    }

    /// Issues the next version of a licence with changed data; the current version becomes
    /// `superseded`.
    pub async fn update(
        &self,
        issuer: &Uscc,
        id: &LicenceId,
        req: UpdateRequest,
    ) -> Result<SignedLicence, EngineError> {
        if req.reason.trim().is_empty() {
            return Err(EngineError::invalid("reason is required"));
        }
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        match current.status.latest() {
            Some(Status::Valid | Status::Suspended { .. }) => {}
            Some(other) => {
                return Err(EngineError::StatusConflict {
                    action: "update",
                    state: other.name(),
                })
            }
            None => {
                return Err(EngineError::StatusConflict {
                    action: "update",
                    state: "not yet issued",
                })
            }
        }
        let (mut body, _) = zhengyin_model::ReceivedLicence::typed(&current.bytes)
            .map_err(|e| EngineError::Store(zhengyin_store::StoreError::Corrupt(e.to_string())))?;
        // A licence keeps the type version it was issued under.
        let licence_type = self.licence_type_version(body.id.type_code(), body.licence_type.version)?;
        body.id = id.next_version()?;
        body.version = body.id.version().to_string();
        if let Some(n) = req.number {
            self.check_number_free(&body.id, &n)?;
            body.number = n;
        }
        if let Some(n) = req.holder_name {
            body.holder.name = n;
        }
        if let Some(d) = optional_date(req.valid_from.as_deref(), "valid_from")? {
            body.valid_from = d;
        }
        if req.long_term {
            body.valid_until = None;
        } else if let Some(d) = optional_date(req.valid_until.as_deref(), "valid_until")? {
            body.valid_until = Some(d);
        }
        if let Some(face) = req.face {
            body.face = face;
        }
        if let Some(a) = self.authority(issuer) {
            body.issuer.name = a.name;
        }
        check_body(&body, &licence_type)?;
        let now = self.clock.now();
        let mut superseded = current.status.clone();
        superseded.push(StatusChange {
            status: Status::Superseded { by: body.id.clone() },
            effective: now,
            recorded: now,
        });
        tracing::info!(licence = %id, reason = %req.reason, "updating licence");
        self.sign_and_commit(body, req.seal, Some((id.clone(), current.status, superseded)))
            .await
    }

    /// Refuses a licence number another lineage of the same type and issuer carries or carried.
    /// (Checked again, atomically, when the licence is stored: this only saves a signature.)
    fn check_number_free(&self, id: &LicenceId, number: &str) -> Result<(), EngineError> {
        match self.store.number_holder(id, number)? {
            Some(lineage) if lineage != id.lineage() => Err(EngineError::NumberTaken {
                number: number.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Revokes a licence. Revoking a revoked licence again changes nothing and answers with the
    /// recorded revocation.
    pub async fn revoke(
        &self,
        issuer: &Uscc,
        id: &LicenceId,
        req: RevokeRequest,
    ) -> Result<SignedLicence, EngineError> {
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        if current
            .status
            .changes
            .iter()
            .any(|c| matches!(c.status, Status::Revoked { .. }))
        {
            return Ok(current);
        }
        if let Some(Status::Superseded { by }) = current.status.latest() {
            return Err(EngineError::Superseded {
                id: id.to_string(),
                by: by.to_string(),
            });
        }
        let now = self.clock.now();
        let effective = req.effective.unwrap_or(now);
        let issued = current.status.changes.first().map(|c| c.effective).unwrap_or(now);
        if effective < issued {
            return Err(EngineError::invalid(
                "a revocation cannot take effect before the licence was issued",
            ));
        }
        let status = Status::Revoked {
            reason: req.reason,
            note: req.note,
        };
        self.change_status(
            current,
            StatusChange {
                status,
                effective,
                recorded: now,
            },
        )
        .await
    }

    /// Suspends a valid licence.
    pub async fn suspend(
        &self,
        issuer: &Uscc,
        id: &LicenceId,
        req: SuspendRequest,
    ) -> Result<SignedLicence, EngineError> {
        if req.reason.trim().is_empty() {
            return Err(EngineError::invalid("reason is required"));
        }
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        let now = self.clock.now();
        match current.status.at(now) {
            Some(Status::Valid) if !current.status.is_final() => {}
            other => {
                return Err(EngineError::StatusConflict {
                    action: "suspend",
                    state: other.map_or("not yet issued", Status::name),
                })
            }
        }
        let change = StatusChange {
            status: Status::Suspended { reason: req.reason },
            effective: now,
            recorded: now,
        };
        self.change_status(current, change).await
    }

    /// Reinstates a suspended licence.
    pub async fn reinstate(&self, issuer: &Uscc, id: &LicenceId) -> Result<SignedLicence, EngineError> {
        let _guard = self.lineage_lock(id).lock().await;
        let current = self.changeable(issuer, id)?;
        let now = self.clock.now();
        match current.status.at(now) {
            Some(Status::Suspended { .. }) if !current.status.is_final() => {}
            other => {
                return Err(EngineError::StatusConflict {
                    action: "reinstate",
                    state: other.map_or("not yet issued", Status::name),
                })
            }
        }
        self.change_status(
            current,
            StatusChange {
                status: Status::Valid,
                effective: now,
                recorded: now,
            },
        )
        .await
    }

    /// The licences `issuer` issued of one type (each at its newest version), a page at a time
    /// in identifier order, after the lineage `after`.
    pub fn licences_of_issuer(
        &self,
        issuer: &Uscc,
        type_code: &TypeCode,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LicenceId>, EngineError> {
        let prefix = format!("{}{type_code}.{issuer}.", zhengyin_model::LICENCE_ID_PREFIX);
        Ok(self.store.current_versions_under(&prefix, after, limit)?)
    }

    /// A licence with its status.
    pub fn licence(&self, id: &LicenceId) -> Result<SignedLicence, EngineError> {
        let stored = self
            .store
            .licence(id)?
            .ok_or_else(|| EngineError::LicenceNotFound(id.clone()))?;
        Ok(SignedLicence {
            id: id.clone(),
            bytes: stored.signed,
            status: stored.status,
            log_index: None,
        })
    }

    /// The licence, checked to be the caller's.
    fn changeable(&self, issuer: &Uscc, id: &LicenceId) -> Result<SignedLicence, EngineError> {
        let current = self.licence(id)?;
        if id.issuer() != issuer {
            return Err(EngineError::NotIssuer(id.clone()));
        }
        self.local_authority(issuer, || format!("licence {id}"))?;
        Ok(current)
    }

    async fn change_status(&self, current: SignedLicence, change: StatusChange) -> Result<SignedLicence, EngineError> {
        let entry = log::status_entry(current.id.as_str(), current.id.issuer().as_str(), &change);
        let mut status = current.status.clone();
        status.push(change);
        self.ensure_signing()?;
        let started = std::time::Instant::now();
        let logged = self
            .store
            .update_status(&current.id, &current.status, &status, &entry)?;
        logged.durable.await?;
        self.metrics.wrote("status", started);
        tracing::info!(licence = %current.id, state = status.latest().map_or("", Status::name), "status changed");
        Ok(SignedLicence {
            status,
            log_index: Some(logged.index.0),
            ..current
        })
    }
}

fn optional_date(s: Option<&str>, field: &str) -> Result<Option<time::Date>, EngineError> {
    s.map(|s| parse_date(s).map_err(|_| EngineError::invalid(format!("{field} must be a date YYYY-MM-DD"))))
        .transpose()
}

fn check_body(body: &LicenceBody, licence_type: &LicenceType) -> Result<(), EngineError> {
    check_text(&body.number, "number", 64)?;
    check_text(&body.name, "name", 100)?;
    check_text(&body.holder.name, "holder.name", 200)?;
    if let Some(item) = &body.service_item {
        check_text(item, "service_item", 64)?;
    }
    authority::check_region_code(&body.region_code).map_err(EngineError::invalid)?;
    if let Some(until) = body.valid_until {
        if until < body.valid_from {
            return Err(EngineError::invalid("valid_until is before valid_from"));
        }
    }
    licence_type.check_face(&body.face)?;
    Ok(())
}
