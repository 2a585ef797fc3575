//! Objections, evidence, notifications and the outbox on sled.

use super::*;

impl ObjectionStore for SledStore {
    fn put_objection(&self, objection: &Objection, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        let mut indexes = vec![
            (
                &self.objections_by_licence,
                objection_key(&objection.licence, &objection.id),
            ),
            (&self.objections_by_objector, objector_key(objection)),
            (&self.objections_by_issuer, issuer_key(objection)),
        ];
        if objection.workflow.state().is_open() {
            indexes.push((&self.objections_open, objection.id.clone().into_bytes()));
        }
        self.insert_new_with_entry(&self.objections, &objection.id, &encode(objection)?, &indexes, entry)
    }

    fn objection(&self, id: &str) -> Result<Option<Objection>, StoreError> {
        Self::get(&self.objections, "objection", id)
    }

    fn update_objection(
        &self,
        expected: &Objection,
        new: &Objection,
        entry: &[u8],
        notify: Option<(&Notification, Option<&str>)>,
    ) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        if expected.id != new.id || expected.licence != new.licence || expected.objector != new.objector {
            return Err(StoreError::Conflict);
        }
        let (old_value, new_value) = (encode(expected)?, encode(new)?);
        let open = new.workflow.state().is_open();
        let notice = notify
            .map(|(notification, url)| {
                let delivery = url
                    .map(|url| {
                        encode(&Delivery {
                            notification: notification.clone(),
                            url: url.to_owned(),
                            attempts: 0,
                            next_attempt: notification.time,
                        })
                    })
                    .transpose()?;
                let recipient_key = concat(&department_key(&notification.recipient), &notification.id);
                Ok::<_, StoreError>((
                    notification.id.as_bytes(),
                    encode(notification)?,
                    recipient_key,
                    delivery,
                ))
            })
            .transpose()?;
        let trees = [
            self.objections.clone(),
            self.objections_open.clone(),
            self.log.clone(),
            self.log_nodes.clone(),
            self.notifications.clone(),
            self.notifications_by_recipient.clone(),
            self.outbox.clone(),
        ];
        let _log = self.lock_log();
        let index = trees
            .as_slice()
            .transaction(|views| {
                let [objections, open_ones, log, nodes, notifications, by_recipient, outbox] = views.as_slice() else {
                    return Err(abort(StoreError::Backend("transaction views".to_owned())));
                };
                match objections.get(&new.id)? {
                    None => return Err(abort(StoreError::NotFound)),
                    Some(current) if current.as_ref() != old_value.as_slice() => {
                        return Err(abort(StoreError::Conflict))
                    }
                    Some(_) => {}
                }
                objections.insert(new.id.as_bytes(), new_value.as_slice())?;
                if open {
                    open_ones.insert(new.id.as_bytes(), &[][..])?;
                } else {
                    open_ones.remove(new.id.as_bytes())?;
                }
                if let Some((id, note, recipient_key, delivery)) = &notice {
                    notifications.insert(*id, note.as_slice())?;
                    by_recipient.insert(recipient_key.as_slice(), &[][..])?;
                    if let Some(delivery) = delivery {
                        outbox.insert(*id, delivery.as_slice())?;
                    }
                }
                append(log, nodes, entry)
            })
            .map_err(tx_error)?;
        Ok(self.logged(index))
    }

    fn put_evidence(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        self.evidence.insert(sha256, bytes).map_err(backend)?;
        Ok(self.durable())
    }

    fn evidence(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.evidence.get(sha256).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn notifications_of(
        &self,
        recipient: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        Self::listed(
            &self.notifications_by_recipient,
            &department_key(recipient),
            &self.notifications,
            "notification",
            (after, None, limit),
        )
    }

    fn due_deliveries(&self, now: time::OffsetDateTime, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let mut due = Vec::new();
        for value in self.outbox.iter().values() {
            let delivery: Delivery = decode("delivery", &value.map_err(backend)?)?;
            if delivery.next_attempt <= now {
                due.push(delivery);
                if due.len() >= limit {
                    break;
                }
            }
        }
        Ok(due)
    }

    fn settle_delivery(&self, id: &str, next: Option<&Delivery>) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        match next {
            Some(delivery) => self.outbox.insert(id.as_bytes(), encode(delivery)?).map_err(backend)?,
            None => self.outbox.remove(id.as_bytes()).map_err(backend)?,
        };
        Ok(self.durable())
    }

    fn objections_page(&self, page: &ObjectionPage) -> Result<Vec<Objection>, StoreError> {
        let (index, prefix) = match &page.scope {
            ObjectionScope::All if page.open_only => (&self.objections_open, Vec::new()),
            ObjectionScope::All => (&self.objections, Vec::new()),
            ObjectionScope::Objector(who) => (&self.objections_by_objector, department_key(who)),
            ObjectionScope::Issuer(uscc) => (&self.objections_by_issuer, department_key(uscc.as_str())),
        };
        let bounds = (page.after.as_deref(), None, page.limit);
        Self::listed_where(index, &prefix, &self.objections, "objection", bounds, |o| {
            page.admits(o)
        })
    }

    fn objections_of_licence(&self, licence: &LicenceId) -> Result<Vec<Objection>, StoreError> {
        let prefix = objection_key(licence, "");
        let mut out = Vec::new();
        for key in self.objections_by_licence.scan_prefix(&prefix).keys() {
            let key = key.map_err(backend)?;
            let id = std::str::from_utf8(&key[prefix.len()..])
                .map_err(|_| StoreError::Corrupt("objection index".to_owned()))?;
            let objection = self
                .objection(id)?
                .ok_or_else(|| StoreError::Corrupt(format!("objection {id} indexed but absent")))?;
            out.push(objection);
        }
        out.sort_by_key(|o| o.workflow.filed_at);
        Ok(out)
    }
}

/// An objection's key in its objector's listing.
fn objector_key(objection: &Objection) -> Vec<u8> {
    concat(&department_key(&objection.objector), &objection.id)
}

/// An objection's key in its licence issuer's listing.
fn issuer_key(objection: &Objection) -> Vec<u8> {
    concat(&department_key(objection.licence.issuer().as_str()), &objection.id)
}

impl SledStore {
    /// Indexes the objections a database written before their listings were indexed holds
    /// (every objection has an objector, so an empty objector index means none is indexed).
    pub(super) fn index_earlier_objections(&self) -> Result<(), StoreError> {
        if !self.objections_by_objector.is_empty() || self.objections.is_empty() {
            return Ok(());
        }
        let mut by_objector = sled::Batch::default();
        let mut by_issuer = sled::Batch::default();
        let mut open = sled::Batch::default();
        for value in self.objections.iter().values() {
            let objection: Objection = decode("objection", &value.map_err(backend)?)?;
            by_objector.insert(objector_key(&objection), &[][..]);
            by_issuer.insert(issuer_key(&objection), &[][..]);
            if objection.workflow.state().is_open() {
                open.insert(objection.id.as_bytes(), &[][..]);
            }
        }
        self.objections_open.apply_batch(open).map_err(backend)?;
        self.objections_by_issuer.apply_batch(by_issuer).map_err(backend)?;
        // Last: its being non-empty says the others are done.
        self.objections_by_objector.apply_batch(by_objector).map_err(backend)
    }
}
