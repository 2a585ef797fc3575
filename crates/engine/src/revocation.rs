//! Certificate revocation: CRLs of the CAs this node trusts, checked when a licence is verified
//! and before a key is used to sign.
//!
//! A CRL is accepted from an operator when a trust anchor or a CA certificate on a registered
//! authority's chain signed it, and only if it is newer than the one held for that CA. Verification
//! then fails a licence whose signing certificate (or a CA above it) was revoked at or before the
//! signing time, or revoked for key or CA compromise at any time; a revocation after the signing
//! time for another reason is a warning (the signature was good when made). Without a CRL for a
//! CA nothing is claimed about its certificates.

use std::collections::HashMap;

use time::OffsetDateTime;
use zhengyin_crypto::crl::{Revocation, RevocationList};
use zhengyin_crypto::Certificate;
use zhengyin_model::licence::format_time;

use crate::registry::CertEntry;
use crate::{Engine, EngineError};

/// The CRLs held, by issuing CA name (DER).
#[derive(Debug, Default)]
pub(crate) struct Crls(HashMap<Vec<u8>, RevocationList>);

/// What a CRL check found for a certificate chain.
#[derive(Debug, Clone)]
pub(crate) struct Revoked {
    /// Whose certificate.
    pub subject: String,
    /// When and why.
    pub revocation: Revocation,
}

impl Revoked {
    /// Whether signatures made at `signed` cannot be trusted.
    pub fn invalidates(&self, signed: OffsetDateTime) -> bool {
        self.revocation.date <= signed || self.revocation.key_compromised()
    }

    /// In words.
    pub fn describe(&self) -> String {
        let reason = match self.revocation.reason {
            Some(1) => " for key compromise",
            Some(2) => " for CA compromise",
            Some(3) => " (affiliation changed)",
            Some(4) => " (superseded)",
            Some(5) => " (cessation of operation)",
            Some(6) => " (certificate hold)",
            _ => "",
        };
        format!(
            "{} was revoked at {}{reason}",
            self.subject,
            format_time(self.revocation.date)
        )
    }
}

impl Crls {
    /// The first certificate of `chain` (leaf first) a CRL lists as revoked.
    pub(crate) fn check(&self, chain: &[&Certificate]) -> Option<Revoked> {
        zhengyin_crypto::crl::first_revoked(chain, self.0.values())
            .map(|(subject, revocation)| Revoked { subject, revocation })
    }
}

/// What an accepted CRL says, for the operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CrlSummary {
    /// The CA that signed it.
    pub issuer: String,
    /// When it was issued.
    pub this_update: String,
    /// When the next is due.
    pub next_update: Option<String>,
    /// How many certificates it revokes.
    pub revoked: usize,
}

impl Engine {
    /// The CA certificates a CRL may come from: trust anchors and the CAs on registered chains.
    fn crl_issuers(&self) -> Vec<Certificate> {
        let mut cas: Vec<Certificate> = self.anchors.certificates().to_vec();
        let reg = self.read_registry();
        for entry in reg.certificates.values() {
            for ca in &entry.intermediates {
                if !cas.iter().any(|c| c.fingerprint() == ca.fingerprint()) {
                    cas.push(ca.clone());
                }
            }
        }
        cas
    }

    fn verify_crl(&self, data: &[u8]) -> Result<RevocationList, EngineError> {
        zhengyin_crypto::crl::from_any(data, &self.crl_issuers())
            .map_err(|e| EngineError::Certificate(format!("the CRL is not a valid CRL of a CA this node trusts ({e})")))
    }

    /// Accepts a CRL (PEM `X509 CRL` or DER) signed by a trusted CA, if newer than the one held.
    pub async fn add_crl(&self, data: &[u8]) -> Result<CrlSummary, EngineError> {
        let crl = self.verify_crl(data)?;
        let der = crl.der().to_vec();
        let issuer_text = self
            .crl_issuers()
            .iter()
            .find(|c| c.subject_name() == crl.issuer_name())
            .map(|c| c.subject().to_owned())
            .unwrap_or_default();
        if let Some(held) = self.read_crls().0.get(crl.issuer_name()) {
            if held.this_update() >= crl.this_update() {
                return Err(EngineError::invalid("this node holds a CRL of that CA at least as new"));
            }
        }
        self.store.put_crl(crl.issuer_name(), &der)?.await?;
        let summary = CrlSummary {
            issuer: issuer_text,
            this_update: format_time(crl.this_update()),
            next_update: crl.next_update().map(format_time),
            revoked: crl.len(),
        };
        tracing::info!(issuer = %summary.issuer, revoked = summary.revoked, "CRL accepted");
        self.write_crls().0.insert(crl.issuer_name().to_vec(), crl);
        Ok(summary)
    }

    /// The CRLs held.
    pub fn crls(&self) -> Vec<CrlSummary> {
        let issuers = self.crl_issuers();
        self.read_crls()
            .0
            .values()
            .map(|crl| CrlSummary {
                issuer: issuers
                    .iter()
                    .find(|c| c.subject_name() == crl.issuer_name())
                    .map(|c| c.subject().to_owned())
                    .unwrap_or_default(),
                this_update: format_time(crl.this_update()),
                next_update: crl.next_update().map(format_time),
                revoked: crl.len(),
            })
            .collect()
    }

    /// The CRLs held, as received.
    pub(crate) fn crl_ders(&self) -> std::collections::HashSet<Vec<u8>> {
        self.read_crls().0.values().map(|crl| crl.der().to_vec()).collect()
    }

    /// Loads the stored CRLs (after the registry, whose chains may have signed them).
    pub(crate) fn load_crls(&self) -> Result<(), EngineError> {
        for der in self.store.crls()? {
            match self.verify_crl(&der) {
                Ok(crl) => {
                    self.write_crls().0.insert(crl.issuer_name().to_vec(), crl);
                }
                Err(e) => tracing::error!(error = %e, "a stored CRL no longer verifies; ignored"),
            }
        }
        Ok(())
    }

    /// Whether a registered certificate's chain has a revoked certificate.
    pub(crate) fn revoked(&self, entry: &CertEntry) -> Option<Revoked> {
        let chain: Vec<&Certificate> = std::iter::once(&entry.certificate)
            .chain(entry.intermediates.iter())
            .collect();
        self.revoked_on(&chain)
    }

    /// The first certificate of a path (leaf first) the CRLs held list as revoked.
    pub(crate) fn revoked_on(&self, path: &[&Certificate]) -> Option<Revoked> {
        self.read_crls().check(path)
    }

    fn read_crls(&self) -> std::sync::RwLockReadGuard<'_, Crls> {
        self.crls.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_crls(&self) -> std::sync::RwLockWriteGuard<'_, Crls> {
        self.crls.write().unwrap_or_else(|p| p.into_inner())
    }
}
