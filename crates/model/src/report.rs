//! Verification reports (ARCHITECTURE §4.3).
//!
//! A report lists every check made, each with a stable code; the verdict is derived from the
//! checks, never set directly. A report is `VALID` only when every check it *requires* is present
//! and passed: a verifier that forgot a step cannot produce `VALID`.

use serde::Serialize;
use time::OffsetDateTime;

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Every required check passed.
    Valid,
    /// Some check failed: the licence must not be relied on.
    Invalid,
    /// No check failed, but some could not be completed: no answer either way.
    Indeterminate,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The check passed.
    Passed,
    /// The check failed.
    Failed,
    /// The check could not be completed.
    Indeterminate,
    /// Passed, with something the caller should know.
    Warning,
}

/// One check of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable code, e.g. `signature`.
    pub code: &'static str,
    /// The outcome.
    pub outcome: Outcome,
    /// What was found, in words.
    pub message: String,
}

/// A verification report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerificationReport {
    /// The verdict, derived from `checks`.
    pub verdict: Verdict,
    /// The licence identifier, when it could be read.
    pub licence_id: Option<String>,
    /// Every check made, in order.
    pub checks: Vec<Check>,
    /// The signing time the checks used (the proof's `created`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    /// The cryptosuite of the proof, when it is one we implement.
    pub cryptosuite: Option<&'static str>,
    /// The moment the status and validity period were evaluated for.
    #[serde(with = "time::serde::rfc3339")]
    pub evaluated_at: OffsetDateTime,
    /// Which status data was used and how fresh it was.
    pub status_source: Option<String>,
    /// The licence identifier, typed, when the licence could be read (not sent: `licence_id`
    /// is its text), so that a use record need not parse it again.
    #[serde(skip)]
    pub licence: Option<crate::LicenceId>,
    /// The holder the licence names, once its signature verified (for use records; not sent:
    /// the caller presented the licence and knows it).
    #[serde(skip)]
    pub holder: Option<crate::HolderRef>,
    /// Whether a check could not be made because the node's own store could not be read (the
    /// database is away): the node, not the licence, is in doubt. Not sent: the HTTP API answers
    /// 503 instead of a report.
    #[serde(skip)]
    pub store_unreadable: bool,
}

/// Collects checks and derives the verdict.
#[derive(Debug)]
pub struct ReportBuilder {
    required: &'static [&'static str],
    checks: Vec<Check>,
    licence_id: Option<String>,
    licence: Option<crate::LicenceId>,
    signing_time: Option<OffsetDateTime>,
    cryptosuite: Option<&'static str>,
    status_source: Option<String>,
    holder: Option<crate::HolderRef>,
    store_unreadable: bool,
}

impl ReportBuilder {
    /// Starts a report that can only be `VALID` if every code in `required` passed.
    pub fn new(required: &'static [&'static str]) -> Self {
        Self {
            required,
            checks: Vec::new(),
            licence_id: None,
            licence: None,
            signing_time: None,
            cryptosuite: None,
            status_source: None,
            holder: None,
            store_unreadable: false,
        }
    }

    /// Records a check.
    pub fn check(&mut self, code: &'static str, outcome: Outcome, message: impl Into<String>) -> &mut Self {
        self.checks.push(Check {
            code,
            outcome,
            message: message.into(),
        });
        self
    }

    /// Records a passed check.
    pub fn pass(&mut self, code: &'static str, message: impl Into<String>) -> &mut Self {
        self.check(code, Outcome::Passed, message)
    }

    /// Records a failed check.
    pub fn fail(&mut self, code: &'static str, message: impl Into<String>) -> &mut Self {
        self.check(code, Outcome::Failed, message)
    }

    /// Records a check that could not be completed.
    pub fn indeterminate(&mut self, code: &'static str, message: impl Into<String>) -> &mut Self {
        self.check(code, Outcome::Indeterminate, message)
    }

    /// Records a check that could not be made because the node's store could not be read.
    pub fn unreadable(&mut self, code: &'static str, message: impl Into<String>) -> &mut Self {
        self.store_unreadable = true;
        self.indeterminate(code, message)
    }

    /// Records a warning.
    pub fn warn(&mut self, code: &'static str, message: impl Into<String>) -> &mut Self {
        self.check(code, Outcome::Warning, message)
    }

    /// Whether any check so far failed.
    pub fn has_failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == Outcome::Failed)
    }

    /// Sets the licence identifier.
    pub fn licence_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.licence_id = Some(id.into());
        self
    }

    /// Sets the licence identifier from a licence that could be read.
    pub fn licence(&mut self, id: &crate::LicenceId) -> &mut Self {
        self.licence_id = Some(id.as_str().to_owned());
        self.licence = Some(id.clone());
        self
    }

    /// Sets the signing time used.
    pub fn signing_time(&mut self, t: OffsetDateTime) -> &mut Self {
        self.signing_time = Some(t);
        self
    }

    /// Sets the cryptosuite.
    pub fn cryptosuite(&mut self, name: &'static str) -> &mut Self {
        self.cryptosuite = Some(name);
        self
    }

    /// Whether the check `code` was made and passed.
    pub fn checks_passed(&self, code: &str) -> bool {
        self.checks
            .iter()
            .any(|c| c.code == code && c.outcome == Outcome::Passed)
    }

    /// Records the holder of a licence whose signature verified.
    pub fn signed_holder(&mut self, holder: crate::HolderRef) -> &mut Self {
        self.holder = Some(holder);
        self
    }

    /// Sets the description of the status data used.
    pub fn status_source(&mut self, s: impl Into<String>) -> &mut Self {
        self.status_source = Some(s.into());
        self
    }

    /// Derives the verdict: any failure is `INVALID`; otherwise anything indeterminate, or any
    /// required check missing, is `INDETERMINATE`; otherwise `VALID`.
    pub fn finish(self, evaluated_at: OffsetDateTime) -> VerificationReport {
        let failed = self.checks.iter().any(|c| c.outcome == Outcome::Failed);
        let doubtful = self.checks.iter().any(|c| c.outcome == Outcome::Indeterminate);
        let complete = self.required.iter().all(|code| {
            self.checks
                .iter()
                .any(|c| c.code == *code && matches!(c.outcome, Outcome::Passed | Outcome::Warning))
        });
        let verdict = if failed {
            Verdict::Invalid
        } else if doubtful || !complete {
            Verdict::Indeterminate
        } else {
            Verdict::Valid
        };
        VerificationReport {
            verdict,
            licence_id: self.licence_id,
            licence: self.licence,
            checks: self.checks,
            signing_time: self.signing_time,
            cryptosuite: self.cryptosuite,
            evaluated_at,
            status_source: self.status_source,
            holder: self.holder,
            store_unreadable: self.store_unreadable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const REQUIRED: &[&str] = &["a", "b"];
    const NOW: OffsetDateTime = datetime!(2024-01-01 0:00 UTC);

    #[test]
    fn valid_needs_every_required_check() {
        let mut r = ReportBuilder::new(REQUIRED);
        r.pass("a", "");
        assert_eq!(r.finish(NOW).verdict, Verdict::Indeterminate);
        let mut r = ReportBuilder::new(REQUIRED);
        r.pass("a", "").warn("b", "");
        assert_eq!(r.finish(NOW).verdict, Verdict::Valid);
    }

    #[test]
    fn failure_beats_doubt() {
        let mut r = ReportBuilder::new(REQUIRED);
        r.pass("a", "").pass("b", "").indeterminate("c", "").fail("d", "");
        assert_eq!(r.finish(NOW).verdict, Verdict::Invalid);
        let mut r = ReportBuilder::new(REQUIRED);
        r.pass("a", "").pass("b", "").indeterminate("c", "");
        assert_eq!(r.finish(NOW).verdict, Verdict::Indeterminate);
    }

    #[test]
    fn an_unreadable_store_is_doubt_and_is_said_apart() {
        let mut r = ReportBuilder::new(REQUIRED);
        r.pass("a", "").indeterminate("b", "");
        assert!(
            !r.finish(NOW).store_unreadable,
            "doubt about the licence is not the store's"
        );
        let mut r = ReportBuilder::new(REQUIRED);
        r.pass("a", "").unreadable("b", "");
        let report = r.finish(NOW);
        assert_eq!(report.verdict, Verdict::Indeterminate);
        assert!(report.store_unreadable);
        assert!(!serde_json::to_string(&report).unwrap().contains("store_unreadable"));
    }
}
