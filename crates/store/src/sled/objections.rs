//! Objections, evidence, notifications and the outbox on sled.

use super::*;

impl ObjectionStore for SledStore {
    fn put_objection(&self, objection: &Objection, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        let index_key = objection_key(&objection.licence, &objection.id);
        self.insert_new_with_entry(
            &self.objections,
            &objection.id,
            &encode(objection)?,
            &[(&self.objections_by_licence, index_key)],
            entry,
        )
    }

    fn objection(&self, id: &str) -> Result<Option<Objection>, StoreError> {
        self.objections
            .get(id)
            .map_err(backend)?
            .map(|v| decode("objection", &v))
            .transpose()
    }

    fn update_objection(
        &self,
        expected: &Objection,
        new: &Objection,
        entry: &[u8],
        notify: Option<(&Notification, Option<&str>)>,
    ) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        if expected.id != new.id || expected.licence != new.licence {
            return Err(StoreError::Conflict);
        }
        let Some((notification, url)) = notify else {
            return self.swap_with_entry(&self.objections, &new.id, &encode(expected)?, &encode(new)?, entry);
        };
        let (old_value, new_value) = (encode(expected)?, encode(new)?);
        let note = encode(notification)?;
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
        let trees = [
            self.objections.clone(),
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
                let [objections, log, nodes, notifications, by_recipient, outbox] = views.as_slice() else {
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
                notifications.insert(notification.id.as_bytes(), note.as_slice())?;
                by_recipient.insert(recipient_key.as_slice(), &[][..])?;
                if let Some(delivery) = &delivery {
                    outbox.insert(notification.id.as_bytes(), delivery.as_slice())?;
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

    fn open_objections(&self) -> Result<Vec<Objection>, StoreError> {
        let mut all = self.objections()?;
        all.retain(|o| o.workflow.state().is_open());
        Ok(all)
    }

    fn objections(&self) -> Result<Vec<Objection>, StoreError> {
        let mut all: Vec<Objection> = Self::all(&self.objections, "objection")?;
        all.sort_by_key(|o| o.workflow.filed_at);
        Ok(all)
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
