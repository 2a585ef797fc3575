//! Service items, grants, authorisations, API tokens and presentations on sled.

use super::*;

impl AccessStore for SledStore {
    fn put_service_item(&self, item: &ServiceItem) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        self.service_items
            .insert(item.code.as_bytes(), encode(item)?)
            .map_err(backend)?;
        Ok(self.durable())
    }

    fn service_items(&self) -> Result<Vec<ServiceItem>, StoreError> {
        Self::all(&self.service_items, "service item")
    }

    fn put_grant(&self, grant: &Grant, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        self.insert_new_with_entry(&self.grants, &grant.id, &encode(grant)?, &[], entry)
    }

    fn update_grant(&self, expected: &Grant, new: &Grant, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        if expected.id != new.id {
            return Err(StoreError::Conflict);
        }
        self.swap_with_entry(&self.grants, &new.id, &encode(expected)?, &encode(new)?, entry)
    }

    fn grants(&self) -> Result<Vec<Grant>, StoreError> {
        Self::all(&self.grants, "grant")
    }

    fn put_authorisation(&self, a: &Authorisation, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        let index_key = concat(&holder_key(a.holder.code_type, &a.holder.code), &a.id);
        self.insert_new_with_entry(
            &self.authorisations,
            &a.id,
            &encode(a)?,
            &[(&self.authorisations_by_holder, index_key)],
            entry,
        )
    }

    fn authorisation(&self, id: &str) -> Result<Option<Authorisation>, StoreError> {
        Self::get(&self.authorisations, "authorisation", id)
    }

    fn update_authorisation(
        &self,
        expected: &Authorisation,
        new: &Authorisation,
        entry: &[u8],
    ) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        if expected.id != new.id || expected.holder != new.holder {
            return Err(StoreError::Conflict);
        }
        self.swap_with_entry(&self.authorisations, &new.id, &encode(expected)?, &encode(new)?, entry)
    }

    fn authorisations_of_holder(&self, holder: &HolderRef) -> Result<Vec<Authorisation>, StoreError> {
        let prefix = holder_key(holder.code_type, &holder.code);
        let mut out: Vec<Authorisation> = Self::listed(
            &self.authorisations_by_holder,
            &prefix,
            &self.authorisations,
            "authorisation",
            (None, None, usize::MAX),
        )?;
        out.sort_by_key(|a| a.created);
        Ok(out)
    }

    fn put_api_token(&self, token: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        self.insert_new_with_entry(&self.api_tokens, &token.id, &encode(token)?, &[], entry)
    }

    fn update_api_token(&self, expected: &ApiToken, new: &ApiToken, entry: &[u8]) -> Result<Logged, StoreError> {
        let _writing = self.writing();
        if expected.id != new.id || expected.sha256 != new.sha256 {
            return Err(StoreError::Conflict);
        }
        self.swap_with_entry(&self.api_tokens, &new.id, &encode(expected)?, &encode(new)?, entry)
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        Self::all(&self.api_tokens, "API token")
    }

    fn put_presentation(&self, p: &Presentation) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        self.presentations
            .compare_and_swap(p.id.as_bytes(), None::<&[u8]>, Some(encode(p)?))
            .map_err(backend)?
            .map_err(|_| StoreError::Conflict)?;
        Ok(self.durable())
    }

    fn presentation(&self, id: &str) -> Result<Option<Presentation>, StoreError> {
        Self::get(&self.presentations, "presentation", id)
    }

    fn update_presentation(&self, expected: &Presentation, new: &Presentation) -> Result<Durable, StoreError> {
        let _writing = self.writing();
        if expected.id != new.id {
            return Err(StoreError::Conflict);
        }
        self.presentations
            .compare_and_swap(new.id.as_bytes(), Some(encode(expected)?), Some(encode(new)?))
            .map_err(backend)?
            .map_err(|_| StoreError::Conflict)?;
        Ok(self.durable())
    }
}
