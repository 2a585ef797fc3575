use zhengyin_model::{IdError, LicenceId, SchemaError, TypeCode, Uscc};
use zhengyin_store::StoreError;

/// Why a use case refused or failed. "The licence is revoked" in a verification is a verdict,
/// not an error; these are refusals of a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An identifier (licence id, USCC, citizen ID, type code) is malformed.
    #[error(transparent)]
    Identifier(#[from] IdError),
    /// Face data or a licence type definition breaks the schema rules.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Some other field of the request is invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// The licence type is not in the catalogue.
    #[error("licence type {0} is not in the catalogue")]
    UnknownLicenceType(TypeCode),
    /// The authority is not registered.
    #[error("authority {0} is not registered")]
    UnknownAuthority(Uscc),
    /// The authority has no certificate whose private key this node holds.
    #[error("this node holds no signing key for any certificate of authority {0}")]
    NoSigningKey(Uscc),
    /// A certificate or chain was refused.
    #[error("certificate refused: {0}")]
    Certificate(String),
    /// No such licence.
    #[error("licence {0} not found")]
    LicenceNotFound(LicenceId),
    /// The caller's authority did not issue this licence.
    #[error("licence {0} was issued by another authority")]
    NotIssuer(LicenceId),
    /// Only the type's defining authority (or an operator) may change this.
    #[error("only the defining authority of licence type {0} or an operator may change it")]
    NotDefiner(TypeCode),
    /// The authority is not one the catalogue lets issue this licence type.
    #[error(
        "authority {authority} may not issue licences of type {type_code}: the catalogue does not list it as an issuer"
    )]
    NotBoundToType {
        /// The authority that tried.
        authority: Uscc,
        /// The licence type.
        type_code: TypeCode,
    },
    /// Another licence of the same type and issuer carries (or carried) this number.
    #[error("licence number {number} is already used by another licence of this type and issuer")]
    NumberTaken {
        /// The number.
        number: String,
    },
    /// The catalogue changed the type meanwhile (another frontend): read it again and retry.
    #[error("licence type {0} was changed concurrently; read it again and retry")]
    TypeChanged(TypeCode),
    /// No such version of a licence type.
    #[error("licence type {code} has no version {version}")]
    UnknownTypeVersion {
        /// The type.
        code: TypeCode,
        /// The version asked for.
        version: u32,
    },
    /// A newer version exists; only the current version can change.
    #[error("licence {id} is superseded by {by}")]
    Superseded {
        /// The version asked for.
        id: String,
        /// The current version.
        by: String,
    },
    /// The status change is not allowed from the current status.
    #[error("cannot {action} a licence that is {state}")]
    StatusConflict {
        /// What was asked.
        action: &'static str,
        /// The current state.
        state: &'static str,
    },
    /// No such seal.
    #[error("seal {0} not found")]
    SealNotFound(String),
    /// The seal's status does not allow this.
    #[error("cannot {action} a seal that is {state}")]
    SealStatusConflict {
        /// What was asked.
        action: &'static str,
        /// The current state.
        state: &'static str,
    },
    /// A licence file cannot be made: its issuer has no e-seal this node can apply.
    /// The message names the licence, why, and what would make one.
    #[error("{0}")]
    NoLicenceFile(String),
    /// No such objection.
    #[error("objection {0} not found")]
    ObjectionNotFound(String),
    /// The objection workflow refused the step.
    #[error(transparent)]
    Objection(zhengyin_model::objection::ObjectionError),
    /// A use of licences was refused (grant, authorisation, use cause, service item).
    #[error(transparent)]
    UseRefused(#[from] crate::access::UseRefusal),
    /// A presentation token was refused.
    #[error(transparent)]
    Presentation(#[from] crate::presentation::PresentationRefusal),
    /// An evidence file is empty or larger than the limit.
    #[error("an evidence file is 1 byte to {limit} bytes; this one is {size}")]
    EvidenceTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The objection lists no stored evidence file with this hash.
    #[error("no stored evidence {0} in this objection")]
    EvidenceNotFound(String),
    /// No such API token.
    #[error("API token {0} not found")]
    ApiTokenNotFound(String),
    /// No such grant.
    #[error("grant {0} not found")]
    GrantNotFound(String),
    /// The grant's state does not allow the change.
    #[error("cannot {action} a grant that is {state}")]
    GrantConflict {
        /// What was asked.
        action: &'static str,
        /// The current state.
        state: &'static str,
    },
    /// No such authorisation (for this holder).
    #[error("authorisation {0} not found")]
    AuthorisationNotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The licence or authority is replicated from another node: it changes only there.
    #[error("{what} is replicated from {origin}; it changes only at that node")]
    Replicated {
        /// The licence or authority.
        what: String,
        /// The node it comes from.
        origin: String,
    },
    /// The federation's ownership map gives the authority to another node.
    #[error("{what}: authority {uscc} is owned by {owner} (ownership map version {version}); it is registered and changed only there")]
    OwnedElsewhere {
        /// What was refused.
        what: String,
        /// The authority.
        uscc: Uscc,
        /// The node that owns it.
        owner: String,
        /// The version of the map that says so.
        version: u64,
    },
    /// The authority has no certificate of that id.
    #[error("authority {uscc} has no certificate {certificate}")]
    KeyNotFound {
        /// The authority.
        uscc: Uscc,
        /// The certificate id asked for.
        certificate: String,
    },
    /// The key was retired already.
    #[error("the key of certificate {certificate} was retired at {at}")]
    KeyRetired {
        /// The certificate id.
        certificate: String,
        /// When (RFC 3339).
        at: String,
    },
    /// No such sync incident.
    #[error("sync incident {0} not found")]
    IncidentNotFound(String),
    /// Storage failed; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The device holding a signing key cannot sign now (an HSM away or its sessions lost);
    /// nothing was signed or stored, and a retry may succeed.
    #[error("signing key unavailable: {0}")]
    SignerUnavailable(String),
    /// This node signs nothing: its log does not reach a checkpoint it published.
    #[error("{0}")]
    SigningHalted(String),
}

impl EngineError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }
}

impl EngineError {
    /// A signer's failure: [`EngineError::SignerUnavailable`] when its device is away,
    /// [`EngineError::Signing`] otherwise.
    pub(crate) fn signing(e: zhengyin_crypto::CryptoError) -> Self {
        match e {
            zhengyin_crypto::CryptoError::Unavailable(why) => Self::SignerUnavailable(why),
            other => Self::Signing(other.to_string()),
        }
    }
}
