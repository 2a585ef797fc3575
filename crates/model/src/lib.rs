//! Zhengyin's domain types and canonical formats.
//!
//! What it holds: authorised use — service items, grants, holder authorisations, use records
//! ([`access`]), issuing authorities ([`authority`]), GB/T 36904 licence identifiers and the Chinese identifier standards they use
//! ([`id`]), the licence-type catalogue and face-data schemas ([`licence_type`]), the signed
//! licence document, its proof and status ([`licence`]), strict JSON input and RFC 8785 canonical
//! output ([`canonical`]), verification reports ([`report`]), and sync incidents ([`sync`]).
//!
//! What it is not: it does no I/O, reads no clock and implements no cryptography, so it can be
//! embedded in an auditor's offline tool. It sits at the bottom of the workspace; every other
//! crate may use it.

pub mod access;
pub mod authority;
pub mod canonical;
mod check;
pub mod id;
pub mod licence;
pub mod licence_type;
pub mod objection;
pub mod report;
pub mod seal;
pub mod sync;
pub mod text;

pub use access::{
    ApiToken, Authorisation, Grant, GrantState, HolderRef, Presentation, ServiceItem, UseOperation, UseOutcome,
    UseRecord,
};
pub use authority::{Authority, RetiredKey};
pub use canonical::CanonicalError;
pub use id::{CitizenId, HolderCodeType, IdError, LicenceId, TypeCode, Uscc, Version, LICENCE_ID_PREFIX};
pub use licence::{
    CanonicalLicence, Holder, IssuerRef, LicenceBody, Proof, ReceivedLicence, RevocationReason, SigningInput, Status,
    StatusChange, StatusHistory, TypeRef,
};
pub use licence_type::{FieldKind, FieldSpec, FileLayout, LicenceType, Orientation, SchemaError};
pub use objection::{Calendar, Delivery, Notification, Objection};
pub use report::{Check, Outcome, ReportBuilder, Verdict, VerificationReport};
pub use seal::{SealChange, SealHistory, SealRecord, SealState};
pub use sync::{Conflict, Decision, IncidentKind, Resolution, SyncIncident, MAX_SKIPPED_LISTED};
