//! The uses themselves, once [`Engine::authorise_use`] let them through: the uniform lookup by
//! identifier or holder, the data check, the fetch of the signed licence, verifications by a
//! department, and the use records they all leave (the parent module has the gate).

use super::*;

impl Engine {
    /// Records a department's verifications, one use record per licence whose identifier could
    /// be read, all in one durable write. The ids, in report order (`None` where nothing
    /// identifiable was presented). The holder is indexed only when the signature verified, so
    /// a forged licence cannot write into someone's records.
    pub async fn record_verifications(
        &self,
        department: &str,
        ctx: &UseContext,
        reports: &[VerificationReport],
    ) -> Result<Vec<Option<String>>, EngineError> {
        let mut records = Vec::new();
        let recorded: Vec<bool> = reports
            .iter()
            .map(|report| {
                let typed = report.licence.clone();
                let Some(id) = typed.or_else(|| report.licence_id.as_deref().and_then(|id| LicenceId::parse(id).ok()))
                else {
                    return false;
                };
                let found = report.holder.clone().map(|h| (id.clone(), h));
                let mut record = self.use_record(
                    department,
                    UseOperation::Verify,
                    id.type_code(),
                    ctx,
                    None,
                    found.as_slice(),
                );
                if found.is_none() {
                    record.licences = vec![id];
                }
                records.push(record);
                true
            })
            .collect();
        let mut ids = self.use_recorder.record(records).await?.into_iter();
        Ok(recorded
            .into_iter()
            .map(|r| if r { ids.next() } else { None })
            .collect())
    }

    /// Reads one licence of the type for a use; `None` when there is none (an identifier of
    /// another type is "not found", exactly like a missing one).
    fn read_for_use(
        &self,
        type_code: &TypeCode,
        id: &LicenceId,
    ) -> Result<Option<(SignedLicence, LicenceBody)>, EngineError> {
        if id.type_code() != type_code {
            return Ok(None);
        }
        match self.licence(id) {
            Ok(licence) => {
                let body = body_of(&licence)?;
                Ok(Some((licence, body)))
            }
            Err(EngineError::LicenceNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One use of one licence by identifier, after the grant check: read it (another type's
    /// identifier is "not found"), check the holder's authorisation if named, record the use
    /// (also when nothing was found), and answer the licence — or "not found".
    async fn use_by_id(
        &self,
        department: &str,
        type_code: &TypeCode,
        id: &str,
        ctx: &UseContext,
        grant: &Grant,
        operation: UseOperation,
    ) -> Result<(SignedLicence, LicenceBody, String), EngineError> {
        let id = LicenceId::parse(id)?;
        let found = self.read_for_use(type_code, &id)?;
        if let Some((_, body)) = &found {
            self.check_authorisation(department, ctx, &id, &holder_of(body))?;
        }
        let pairs: Vec<_> = found.iter().map(|(l, b)| (l.id.clone(), holder_of(b))).collect();
        let use_record = self
            .record_use(department, operation, type_code, ctx, Some(grant), &pairs)
            .await?;
        let (licence, body) = found.ok_or(EngineError::LicenceNotFound(id))?;
        Ok((licence, body, use_record))
    }

    /// The uniform interface, by identifier: the licence cut to the grant's fields.
    pub async fn lookup_by_id(
        &self,
        department: &str,
        type_code: &TypeCode,
        id: &str,
        ctx: &UseContext,
    ) -> Result<LookupAnswer, EngineError> {
        let grant = self.authorise_use(department, type_code, ctx)?;
        let (licence, body, use_record) = self
            .use_by_id(department, type_code, id, ctx, &grant, UseOperation::LookupById)
            .await?;
        Ok(LookupAnswer {
            licences: vec![self.minimised(&licence, &body, &grant)?],
            use_record,
        })
    }

    /// The uniform interface, by holder code (and optionally the printed licence number): the
    /// holder's current licences of the type, each cut to the grant's fields.
    pub async fn lookup_by_holder(
        &self,
        department: &str,
        type_code: &TypeCode,
        holder: &HolderRef,
        number: Option<&str>,
        ctx: &UseContext,
    ) -> Result<LookupAnswer, EngineError> {
        let grant = self.authorise_use(department, type_code, ctx)?;
        holder.code_type.check_code(&holder.code)?;
        let ids = self.current_versions(self.store.licences_of_holder(
            holder.code_type,
            &holder.code,
            Some(type_code),
        )?)?;
        let mut found = Vec::new();
        for id in ids {
            if let Some((licence, body)) = self.read_for_use(type_code, &id)? {
                if number.is_none_or(|n| n == body.number) && holder_of(&body) == *holder {
                    found.push((licence, body));
                }
            }
        }
        if ctx.authorisation.is_some() {
            // With an authorisation, the answer is the licence it covers.
            let mut covered = Vec::new();
            let any = !found.is_empty();
            for (licence, body) in found {
                match self.check_authorisation(department, ctx, &licence.id, holder) {
                    Ok(()) => covered.push((licence, body)),
                    Err(EngineError::UseRefused(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if any && covered.is_empty() {
                return Err(refused(UseRefusal::AuthorisationInvalid));
            }
            found = covered;
        }
        let pairs: Vec<_> = found.iter().map(|(l, _)| (l.id.clone(), holder.clone())).collect();
        let use_record = self
            .record_use(
                department,
                UseOperation::LookupByHolder,
                type_code,
                ctx,
                Some(&grant),
                &pairs,
            )
            .await?;
        let licences = found
            .iter()
            .map(|(licence, body)| self.minimised(licence, body, &grant))
            .collect::<Result<_, _>>()?;
        Ok(LookupAnswer { licences, use_record })
    }

    /// The uniform interface, data check: compares claimed values with the stored licence, field
    /// by field, answering only `match` / `mismatch` / `absent` — never the stored values.
    pub async fn check_claims(
        &self,
        department: &str,
        type_code: &TypeCode,
        id: &str,
        claims: &Map<String, Value>,
        ctx: &UseContext,
    ) -> Result<LookupAnswer, EngineError> {
        let grant = self.authorise_use(department, type_code, ctx)?;
        let licence_type = self
            .licence_type(type_code)
            .ok_or_else(|| EngineError::UnknownLicenceType(type_code.clone()))?;
        if claims.is_empty() {
            return Err(EngineError::invalid("claims must name at least one field"));
        }
        for field in claims.keys() {
            if !is_field(&licence_type, field) {
                return Err(EngineError::invalid(format!(
                    "{field} is not a field of {}",
                    licence_type.name
                )));
            }
            if !grant.allows_field(field) {
                return Err(refused(UseRefusal::FieldNotGranted(field.clone())));
            }
        }
        let (licence, body, use_record) = self
            .use_by_id(department, type_code, id, ctx, &grant, UseOperation::Check)
            .await?;
        let results: Map<String, Value> = claims
            .iter()
            .map(|(field, claimed)| {
                let verdict = match field_value(&body, field) {
                    None => "absent",
                    Some(stored) if stored == *claimed => "match",
                    Some(_) => "mismatch",
                };
                (field.clone(), json!(verdict))
            })
            .collect();
        let now = self.clock.now();
        Ok(LookupAnswer {
            licences: vec![json!({
                "id": licence.id.as_str(),
                "status": licence.status_at(now).map_or("unknown", Status::name),
                "results": results,
                "warnings": self.objection_warnings(&licence.id)?,
            })],
            use_record,
        })
    }

    /// The uniform interface, fetch: the signed licence for verification. It shows every field,
    /// so the grant must cover every field.
    pub async fn fetch_for_use(
        &self,
        department: &str,
        type_code: &TypeCode,
        id: &str,
        ctx: &UseContext,
    ) -> Result<(SignedLicence, String), EngineError> {
        let grant = self.authorise_use(department, type_code, ctx)?;
        let licence_type = self
            .licence_type(type_code)
            .ok_or_else(|| EngineError::UnknownLicenceType(type_code.clone()))?;
        let covers_all = GRANTABLE_METADATA.iter().all(|f| grant.allows_field(f))
            && licence_type.face_schema.iter().all(|f| grant.allows_field(&f.name));
        if !covers_all {
            return Err(refused(UseRefusal::FieldsInsufficient));
        }
        let (licence, _, use_record) = self
            .use_by_id(department, type_code, id, ctx, &grant, UseOperation::Fetch)
            .await?;
        Ok((licence, use_record))
    }

    /// A holder's use records (only its own), after a cursor.
    pub fn use_records_of_holder(
        &self,
        holder: &HolderRef,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<UseRecord>, EngineError> {
        Ok(self.store.use_records(&UseQuery {
            holder: Some(holder.clone()),
            after,
            limit: limit.min(MAX_USE_RECORDS_PER_PAGE),
            ..UseQuery::default()
        })?)
    }

    /// Returns once every use record acknowledged so far is committed to the store with its
    /// `licence.used` log entry (which otherwise follows within about 200 ms): for shutting down,
    /// and for auditors' tests.
    pub async fn settle_use_records(&self) -> Result<(), EngineError> {
        self.use_recorder.settle().await
    }

    /// Use records for auditors: by department or all, in a period `[from, to)`, after a cursor.
    pub fn use_records(
        &self,
        department: Option<String>,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<UseRecord>, EngineError> {
        let stamp = |t: OffsetDateTime| u64::try_from(t.unix_timestamp_nanos()).unwrap_or(0);
        // `after` is exclusive: the period starts just past the stamp before `from`.
        let lower = from.map(|t| format!("UR{:016x}", stamp(t).saturating_sub(1)));
        let after = match (after, lower) {
            (Some(a), Some(l)) => Some(a.max(l)),
            (a, l) => a.or(l),
        };
        Ok(self.store.use_records(&UseQuery {
            holder: None,
            department,
            after,
            before: to.map(|t| format!("UR{:016x}", stamp(t))),
            limit: limit.min(MAX_USE_RECORDS_PER_PAGE),
        })?)
    }

    /// `{objection, fields}` for each open objection to the licence.
    fn objection_warnings(&self, id: &LicenceId) -> Result<Vec<Value>, EngineError> {
        Ok(
            crate::objections::open_objections(&self.store.objections_of_licence(id)?)
                .into_iter()
                .map(|(objection, fields)| json!({"objection": objection, "fields": fields}))
                .collect(),
        )
    }

    /// The licence as a department with `grant` may see it.
    fn minimised(&self, licence: &SignedLicence, body: &LicenceBody, grant: &Grant) -> Result<Value, EngineError> {
        let now = self.clock.now();
        let status = licence.status_at(now);
        let face: Map<String, Value> = body
            .face
            .iter()
            .filter(|(name, _)| grant.allows_field(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut answer = json!({
            "id": body.id.as_str(),
            "version": body.version,
            "name": body.name,
            "type": {"code": body.licence_type.code.as_str(), "name": body.licence_type.name},
            "issuer": {"code": body.issuer.code.as_str(), "name": body.issuer.name},
            "issue_date": body.issue_date.to_string(),
            "valid_from": body.valid_from.to_string(),
            "valid_until": body.valid_until.map(|d| d.to_string()),
            "status": status.map_or("unknown", Status::name),
            "face": face,
            "warnings": self.objection_warnings(&licence.id)?,
        });
        if let Some(Status::Superseded { by }) = status {
            answer["superseded_by"] = json!(by.as_str());
        }
        for field in GRANTABLE_METADATA {
            if grant.allows_field(field) {
                answer[field] = field_value(body, field).unwrap_or(Value::Null);
            }
        }
        Ok(answer)
    }

    /// The newest version of each lineage among `ids`.
    pub(super) fn current_versions(&self, ids: Vec<LicenceId>) -> Result<Vec<LicenceId>, EngineError> {
        let mut out: Vec<LicenceId> = Vec::new();
        for id in ids {
            let current = self.store.current_version(&id.lineage())?.unwrap_or(id);
            if !out.contains(&current) {
                out.push(current);
            }
        }
        Ok(out)
    }
}
