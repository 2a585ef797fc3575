//! The in-memory registry of authorities, their certificates and signers, and licence types,
//! kept in step with the store. Parsed keys and validated chains live here, so verification
//! never parses a certificate.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;
use zhengyin_crypto::{
    validate_chain, Certificate, ChainError, Cryptosuite, KeyId, Signer, TrustAnchors, ValidatedChain,
};
use zhengyin_model::{Authority, LicenceType, TypeCode, Uscc};

use crate::EngineError;

/// Private keys this node may sign with, by key id.
#[derive(Default, Clone)]
pub struct Keyring {
    signers: HashMap<KeyId, Arc<dyn Signer>>,
}

impl Keyring {
    /// Adds a signer.
    pub fn add(&mut self, signer: Arc<dyn Signer>) {
        self.signers.insert(signer.public_key().id(), signer);
    }

    fn get(&self, id: &KeyId) -> Option<&Arc<dyn Signer>> {
        self.signers.get(id)
    }

    /// The signer holding the private half of `key`, if this node has it.
    pub(crate) fn signer_for(&self, key: &zhengyin_crypto::PublicKey) -> Option<Arc<dyn Signer>> {
        self.get(&key.id()).cloned()
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.signers.keys().map(ToString::to_string))
            .finish()
    }
}

/// A registered signing certificate.
pub(crate) struct CertEntry {
    /// The authority the certificate is registered to (unknown offline).
    pub authority: Option<Uscc>,
    pub certificate: Certificate,
    pub intermediates: Vec<Certificate>,
    /// The chain as validated when loaded; `None` if it validates at no time we tried.
    pub chain: Option<ValidatedChain>,
    pub suite: Option<Cryptosuite>,
    /// The anchors it chains to when they are not this node's own: those of the source (or the
    /// trust list's region) it was replicated from.
    pub anchors: Option<Arc<TrustAnchors>>,
    /// When its authority retired its key: signatures made from then on are not trusted.
    pub retired: Option<OffsetDateTime>,
}

impl CertEntry {
    /// Validates the chain at `at`, using the cached result when `at` lies in its window.
    pub fn validate_at(&self, anchors: &TrustAnchors, at: OffsetDateTime) -> Result<(), ChainError> {
        let anchors = self.anchors.as_deref().unwrap_or(anchors);
        match &self.chain {
            Some(chain) if chain.covers(at) => Ok(()),
            _ => validate_chain(&self.certificate, &self.intermediates, anchors, at).map(drop),
        }
    }
}

pub(crate) struct AuthorityEntry {
    pub authority: Authority,
    /// The certificate id and signer new licences are signed with.
    pub signing: Option<(String, Arc<dyn Signer>)>,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub authorities: HashMap<Uscc, AuthorityEntry>,
    pub certificates: HashMap<String, Arc<CertEntry>>,
    pub types: HashMap<TypeCode, LicenceType>,
}

/// Parses a PEM chain (leaf first) into a certificate entry; validates it at `at`, or, for
/// loading old registrations, at the last moment the leaf was valid.
pub(crate) fn parse_chain(
    pem: &str,
    authority: Option<&Uscc>,
    anchors: &TrustAnchors,
    at: OffsetDateTime,
    strict: bool,
) -> Result<CertEntry, EngineError> {
    let mut certs = Certificate::all_from_pem(pem).map_err(|e| EngineError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(EngineError::Certificate("no CERTIFICATE block".to_owned()));
    }
    let certificate = certs.remove(0);
    let key = certificate
        .public_key()
        .map_err(|e| EngineError::Certificate(e.to_string()))?;
    let suite = Cryptosuite::for_algorithm(key.algorithm());
    if strict && suite.is_none() {
        return Err(EngineError::Certificate(
            "the key's algorithm has no licence cryptosuite".to_owned(),
        ));
    }
    let chain = match validate_chain(&certificate, &certs, anchors, at) {
        Ok(chain) => Some(chain),
        Err(e) if strict => return Err(EngineError::Certificate(e.to_string())),
        Err(_) => validate_chain(&certificate, &certs, anchors, certificate.not_after()).ok(),
    };
    Ok(CertEntry {
        authority: authority.cloned(),
        certificate,
        intermediates: certs,
        chain,
        suite,
        anchors: None,
        retired: None,
    })
}

impl Registry {
    /// Adds an authority's entries, replacing any earlier registration of it. New licences are
    /// signed with its last certificate whose key this node holds and was not retired.
    pub fn insert_authority(&mut self, authority: Authority, certs: Vec<CertEntry>, keyring: &Keyring) {
        let mut signing = None;
        for mut entry in certs {
            let id = entry.certificate.id();
            entry.retired = authority.retired_at(&id);
            if let Ok(key) = entry.certificate.public_key() {
                if let (Some(signer), Some(_), None) = (keyring.get(&key.id()), entry.suite, entry.retired) {
                    signing = Some((id.clone(), Arc::clone(signer)));
                }
            }
            self.certificates.insert(id, Arc::new(entry));
        }
        self.authorities
            .insert(authority.uscc.clone(), AuthorityEntry { authority, signing });
    }
}
