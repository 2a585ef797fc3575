//! Objections to licence data (异议处理) and the working-day calendar their deadlines count in.
//!
//! An objection moves through a state machine; every transition is recorded with its actor, time
//! and reason, and only the transitions below are allowed:
//!
//! ```text
//! filed ──return (≤ 1 working day after filing)──▶ returned
//!   │  (not returned in time: deemed accepted)
//!   └──accept──▶ accepted ──review──▶ under_review ──request_evidence──▶ awaiting_evidence
//!                                        │   ▲                               │ (clock paused)
//!                                        │   └──────────supply_evidence──────┘
//!                                        ├──correct (new licence version)──▶ corrected
//!                                        └──reject (with reasons)──────────▶ rejected
//! any open state ──withdraw (the objector)──▶ withdrawn;  extend: once, with a reason
//! ```
//!
//! The review deadline is `limit` working days (per licence type, default 15) after acceptance,
//! doubled once by an extension, plus the working days spent awaiting evidence. Days are dates in
//! China Standard Time (UTC+8), where the authorities work.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, UtcOffset, Weekday};

use crate::LicenceId;

/// China Standard Time, in which working days are counted.
pub const CHINA_STANDARD_TIME: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// The default review limit, in working days.
pub const DEFAULT_REVIEW_DAYS: u32 = 15;

/// Working days: Monday to Friday, except listed holidays, plus listed make-up working days
/// (调休上班) that fall on a weekend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Public holidays (no work even on a weekday).
    #[serde(default, with = "date_set")]
    pub holidays: BTreeSet<Date>,
    /// Make-up working days (work even on a weekend).
    #[serde(default, with = "date_set")]
    pub workdays: BTreeSet<Date>,
}

/// Why a calendar or a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectionError {
    /// A date is both a holiday and a make-up working day.
    #[error("{0} is listed both as a holiday and as a working day")]
    CalendarConflict(Date),
    /// The transition is not allowed from the current state.
    #[error("cannot {action} an objection that is {state}")]
    Illegal {
        /// What was asked.
        action: &'static str,
        /// The current state.
        state: &'static str,
    },
    /// The transition is allowed, but not any more.
    #[error("too late to {action}: the deadline was {deadline}")]
    TooLate {
        /// What was asked.
        action: &'static str,
        /// The deadline that passed.
        deadline: Date,
    },
    /// A required reason or link is missing.
    #[error("{0}")]
    Missing(&'static str),
}

impl Calendar {
    /// Checks that no date is both a holiday and a working day.
    pub fn check(&self) -> Result<(), ObjectionError> {
        match self.holidays.intersection(&self.workdays).next() {
            Some(date) => Err(ObjectionError::CalendarConflict(*date)),
            None => Ok(()),
        }
    }

    /// Whether people work on `date`.
    pub fn is_working_day(&self, date: Date) -> bool {
        if self.workdays.contains(&date) {
            return true;
        }
        !self.holidays.contains(&date) && !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
    }

    /// The date on which `n` working days after `from` have passed (the days after `from`, not
    /// `from` itself; `n = 0` is `from`).
    pub fn add_working_days(&self, from: Date, n: u32) -> Date {
        let mut date = from;
        let mut left = n;
        while left > 0 {
            match date.next_day() {
                Some(next) => date = next,
                None => return Date::MAX,
            }
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }

    /// Working days in `(from, to]` (0 when `to <= from`).
    pub fn working_days_between(&self, from: Date, to: Date) -> u32 {
        let mut count = 0;
        let mut date = from;
        while date < to {
            match date.next_day() {
                Some(next) => date = next,
                None => break,
            }
            if self.is_working_day(date) {
                count += 1;
            }
        }
        count
    }
}

/// The date of `at` in China Standard Time.
pub fn china_date(at: OffsetDateTime) -> Date {
    at.to_offset(CHINA_STANDARD_TIME).date()
}

/// What is wrong with the licence, in the objector's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectionKind {
    /// Data is wrong.
    Inaccurate,
    /// Data is missing.
    Incomplete,
    /// Something else.
    Other,
}

/// Where an objection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ObjectionState {
    /// Filed, not yet taken up.
    Filed,
    /// Not within the issuer's remit.
    Returned,
    /// Taken up; the review clock runs.
    Accepted,
    /// Being checked.
    UnderReview,
    /// The issuer asked the objector for more evidence; the clock is paused.
    AwaitingEvidence,
    /// The issuer corrected the licence: a new version.
    Corrected {
        /// The new version.
        new_version: LicenceId,
    },
    /// The issuer found the data right.
    Rejected,
    /// The objector withdrew it.
    Withdrawn,
}

impl ObjectionState {
    /// The state's name as used in the API.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Filed => "filed",
            Self::Returned => "returned",
            Self::Accepted => "accepted",
            Self::UnderReview => "under_review",
            Self::AwaitingEvidence => "awaiting_evidence",
            Self::Corrected { .. } => "corrected",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Whether the objection is still open (verification of the licence carries a warning).
    pub fn is_open(&self) -> bool {
        !matches!(
            self,
            Self::Returned | Self::Corrected { .. } | Self::Rejected | Self::Withdrawn
        )
    }
}

/// A step asked of the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// The issuer returns it as outside its remit (within 1 working day of filing).
    Return,
    /// The issuer takes it up.
    Accept,
    /// The issuer starts checking.
    Review,
    /// The issuer asks the objector for more evidence.
    RequestEvidence,
    /// The objector supplies it.
    SupplyEvidence,
    /// The issuer extends the deadline, once.
    Extend,
    /// The issuer corrected the licence (through the normal update path).
    Correct {
        /// The new version.
        new_version: LicenceId,
    },
    /// The issuer rejects it.
    Reject,
    /// The objector withdraws it.
    Withdraw,
}

impl Action {
    /// The action's name as used in the API.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Return => "return",
            Self::Accept => "accept",
            Self::Review => "review",
            Self::RequestEvidence => "request_evidence",
            Self::SupplyEvidence => "supply_evidence",
            Self::Extend => "extend",
            Self::Correct { .. } => "correct",
            Self::Reject => "reject",
            Self::Withdraw => "withdraw",
        }
    }
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// What was done.
    pub action: Action,
    /// The state it led to.
    pub to: ObjectionState,
    /// Who did it (a role and an identity, e.g. `authority:11100000000013338W`).
    pub actor: String,
    /// Why (required for return, evidence requests, extension, rejection).
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The workflow of one objection: filing time, review limit and every transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    /// When it was filed.
    #[serde(with = "time::serde::rfc3339")]
    pub filed_at: OffsetDateTime,
    /// The review limit in working days (per licence type).
    pub review_days: u32,
    /// Every transition, oldest first.
    pub history: Vec<Transition>,
}

impl Workflow {
    /// A new objection filed at `filed_at`.
    pub fn new(filed_at: OffsetDateTime, review_days: u32) -> Self {
        Self {
            filed_at,
            review_days,
            history: Vec::new(),
        }
    }

    /// The recorded state.
    pub fn state(&self) -> &ObjectionState {
        self.history.last().map_or(&ObjectionState::Filed, |t| &t.to)
    }

    /// The last day on which the issuer may return it: 1 working day after filing.
    pub fn return_deadline(&self, calendar: &Calendar) -> Date {
        calendar.add_working_days(china_date(self.filed_at), 1)
    }

    /// When the review clock started: the acceptance, or the end of the return window when the
    /// issuer let it pass (deemed accepted).
    fn accepted_on(&self, calendar: &Calendar) -> Date {
        self.history
            .iter()
            .find(|t| t.action == Action::Accept)
            .map_or_else(|| self.return_deadline(calendar), |t| china_date(t.at))
    }

    /// The review deadline as of `now` (`None` once closed): the limit after acceptance, doubled
    /// by an extension, plus the working days spent awaiting evidence.
    pub fn deadline(&self, calendar: &Calendar, now: OffsetDateTime) -> Option<Date> {
        if !self.state().is_open() {
            return None;
        }
        let extended = self.history.iter().any(|t| t.action == Action::Extend);
        let limit = if extended {
            self.review_days * 2
        } else {
            self.review_days
        };
        let mut paused = 0;
        let mut waiting_since = None;
        for t in &self.history {
            match t.action {
                Action::RequestEvidence => waiting_since = Some(china_date(t.at)),
                Action::SupplyEvidence => {
                    if let Some(since) = waiting_since.take() {
                        paused += calendar.working_days_between(since, china_date(t.at));
                    }
                }
                _ => {}
            }
        }
        if let Some(since) = waiting_since {
            paused += calendar.working_days_between(since, china_date(now));
        }
        Some(calendar.add_working_days(self.accepted_on(calendar), limit + paused))
    }

    /// Whether the review deadline has passed (never while awaiting the objector's evidence).
    pub fn is_overdue(&self, calendar: &Calendar, now: OffsetDateTime) -> bool {
        *self.state() != ObjectionState::AwaitingEvidence
            && self.deadline(calendar, now).is_some_and(|d| china_date(now) > d)
    }

    /// Applies `action` by `actor` at `at`, if the workflow allows it; records it.
    pub fn apply(
        &mut self,
        action: Action,
        actor: &str,
        reason: &str,
        at: OffsetDateTime,
        calendar: &Calendar,
    ) -> Result<&Transition, ObjectionError> {
        use ObjectionState as S;
        let state = self.state().clone();
        let illegal = || ObjectionError::Illegal {
            action: action.name(),
            state: state.name(),
        };
        let needs_reason = matches!(
            action,
            Action::Return | Action::RequestEvidence | Action::Extend | Action::Reject
        );
        if needs_reason && reason.trim().is_empty() {
            return Err(ObjectionError::Missing("this step needs a reason"));
        }
        let to = match (&state, &action) {
            (S::Filed, Action::Return) => {
                let deadline = self.return_deadline(calendar);
                if china_date(at) > deadline {
                    return Err(ObjectionError::TooLate {
                        action: "return",
                        deadline,
                    });
                }
                S::Returned
            }
            (S::Filed, Action::Accept) => S::Accepted,
            (S::Filed | S::Accepted, Action::Review) => S::UnderReview,
            (S::UnderReview, Action::RequestEvidence) => S::AwaitingEvidence,
            (S::AwaitingEvidence, Action::SupplyEvidence) => S::UnderReview,
            (S::Filed | S::Accepted | S::UnderReview | S::AwaitingEvidence, Action::Extend) => {
                if self.history.iter().any(|t| t.action == Action::Extend) {
                    return Err(ObjectionError::Illegal {
                        action: "extend twice",
                        state: state.name(),
                    });
                }
                state.clone()
            }
            (S::UnderReview, Action::Correct { new_version }) => S::Corrected {
                new_version: new_version.clone(),
            },
            (S::UnderReview, Action::Reject) => S::Rejected,
            (s, Action::Withdraw) if s.is_open() => S::Withdrawn,
            _ => return Err(illegal()),
        };
        self.history.push(Transition {
            action,
            to,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            at,
        });
        self.history
            .last()
            .ok_or(ObjectionError::Missing("transition not recorded"))
    }
}

/// Evidence offered with an objection: a file (stored with its SHA-256) or a reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// A name for it, e.g. `章程.pdf`.
    pub name: String,
    /// SHA-256 of the file (hex), when it is a file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Its size in bytes, when it is a file.
    #[serde(default)]
    pub size: Option<u64>,
    /// Where it can be found, when it is a reference (a case number, a URL).
    #[serde(default)]
    pub reference: Option<String>,
    /// Whether this node holds the file's bytes (uploaded; fetch by its SHA-256).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stored: bool,
}

/// How the objection arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Through the platform, by the objector.
    Platform,
    /// By telephone, entered by an operator.
    Hotline,
}

/// An objection to the data of one licence version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objection {
    /// Its identifier.
    pub id: String,
    /// The licence version disputed.
    pub licence: LicenceId,
    /// The disputed face fields; empty for "the whole licence".
    pub fields: Vec<String>,
    /// Inaccurate, incomplete or other.
    pub kind: ObjectionKind,
    /// What the objector says.
    pub statement: String,
    /// Evidence offered.
    pub evidence: Vec<Evidence>,
    /// Who objects: `department:<code>` or `holder:<code type>:<code>`.
    pub objector: String,
    /// How it arrived.
    pub channel: Channel,
    /// Its state machine and history.
    pub workflow: Workflow,
}

/// What the objector is told when the issuer moves its objection: kept for the objector to list,
/// and pushed to its department's webhook when one is configured (at least once, retried).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// Its identifier (`NT…`): also the idempotency key of its deliveries.
    pub id: String,
    /// Who is told: the objector (`department:…` or `holder:…`).
    pub recipient: String,
    /// The objection.
    pub objection: String,
    /// The licence version disputed.
    pub licence: LicenceId,
    /// The step taken (`accept`, `correct`, …).
    pub action: String,
    /// The state the objection is now in.
    pub state: String,
    /// The issuer's reason, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a correction: the new licence version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_version: Option<LicenceId>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// A notification waiting to be pushed to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// The notification.
    pub notification: Notification,
    /// Where to.
    pub url: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this.
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt: OffsetDateTime,
}

/// A set of dates as `YYYY-MM-DD` strings.
mod date_set {
    use std::collections::BTreeSet;

    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(dates: &BTreeSet<Date>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(dates.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<Date>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| crate::licence::parse_date(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    /// An illustrative National Day week: 1–7 October holidays, with Sunday 27 September and
    /// Saturday 10 October as make-up working days.
    fn national_day() -> Calendar {
        let mut calendar = Calendar::default();
        let mut day = date!(2026 - 10 - 01);
        while day <= date!(2026 - 10 - 07) {
            calendar.holidays.insert(day);
            day = day.next_day().unwrap();
        }
        calendar.workdays.insert(date!(2026 - 09 - 27));
        calendar.workdays.insert(date!(2026 - 10 - 10));
        calendar
    }

    #[test]
    fn working_days_skip_weekends_and_holidays_and_count_make_up_days() {
        let c = national_day();
        assert!(c.is_working_day(date!(2026 - 09 - 27)), "make-up Sunday");
        assert!(!c.is_working_day(date!(2026 - 10 - 01)), "holiday Thursday");
        assert!(!c.is_working_day(date!(2026 - 10 - 03)), "Saturday");
        assert!(c.is_working_day(date!(2026 - 10 - 10)), "make-up Saturday");
        // Filed Wednesday 30 September: the next working day is Thursday 8 October.
        assert_eq!(c.add_working_days(date!(2026 - 09 - 30), 1), date!(2026 - 10 - 08));
        // Friday 25 September + 1 is the make-up Sunday 27.
        assert_eq!(c.add_working_days(date!(2026 - 09 - 25), 1), date!(2026 - 09 - 27));
        // 15 working days from 30 September: 8, 9, 10 (Sat, make-up), 12–16, 19–23, 26, 27 October.
        assert_eq!(c.add_working_days(date!(2026 - 09 - 30), 15), date!(2026 - 10 - 27));
        assert_eq!(c.working_days_between(date!(2026 - 09 - 30), date!(2026 - 10 - 27)), 15);
        assert_eq!(c.working_days_between(date!(2026 - 10 - 27), date!(2026 - 09 - 30)), 0);
        assert_eq!(c.add_working_days(date!(2026 - 10 - 26), 0), date!(2026 - 10 - 26));
    }

    #[test]
    fn a_calendar_reads_from_json_and_refuses_a_day_listed_twice() {
        let c: Calendar = serde_json::from_str(r#"{"holidays":["2026-10-01"],"workdays":["2026-10-10"]}"#).unwrap();
        assert!(c.check().is_ok());
        assert_eq!(serde_json::to_value(&c).unwrap()["holidays"][0], "2026-10-01");
        let both: Calendar = serde_json::from_str(r#"{"holidays":["2026-10-10"],"workdays":["2026-10-10"]}"#).unwrap();
        assert!(matches!(both.check(), Err(ObjectionError::CalendarConflict(_))));
        assert!(serde_json::from_str::<Calendar>(r#"{"holidays":["2026-13-01"]}"#).is_err());
        assert!(serde_json::from_str::<Calendar>(r#"{"holiday":[]}"#).is_err());
    }

    fn new_version() -> LicenceId {
        let id = LicenceId::new(
            crate::TypeCode::parse("11100000000013338W032").unwrap(),
            crate::Uscc::parse("11100000000013338W").unwrap(),
            "SERIAL1",
            crate::Version::FIRST,
        )
        .unwrap();
        id.next_version().unwrap()
    }

    #[test]
    fn the_review_clock_runs_from_acceptance_pauses_for_evidence_and_extends_once() {
        let c = national_day();
        // Filed Wednesday 30 September 2026, 10:00 Beijing time.
        let filed = datetime!(2026-09-30 02:00 UTC);
        let mut w = Workflow::new(filed, DEFAULT_REVIEW_DAYS);
        assert_eq!(w.return_deadline(&c), date!(2026 - 10 - 08));
        w.apply(Action::Accept, "authority:X", "", filed + time::Duration::hours(1), &c)
            .unwrap();
        assert_eq!(w.deadline(&c, filed), Some(date!(2026 - 10 - 27)));
        w.apply(Action::Review, "authority:X", "", datetime!(2026-10-08 01:00 UTC), &c)
            .unwrap();
        // Evidence asked Friday 9 October, supplied Wednesday 14: paused 10 (make-up), 12, 13, 14.
        w.apply(
            Action::RequestEvidence,
            "authority:X",
            "营业执照原件扫描件",
            datetime!(2026-10-09 01:00 UTC),
            &c,
        )
        .unwrap();
        assert!(
            !w.is_overdue(&c, datetime!(2026-12-01 00:00 UTC)),
            "never overdue while waiting"
        );
        w.apply(
            Action::SupplyEvidence,
            "holder:Y",
            "",
            datetime!(2026-10-14 01:00 UTC),
            &c,
        )
        .unwrap();
        let paused = c.working_days_between(date!(2026 - 10 - 09), date!(2026 - 10 - 14));
        assert_eq!(paused, 4);
        assert_eq!(
            w.deadline(&c, datetime!(2026-10-14 02:00 UTC)),
            Some(c.add_working_days(date!(2026 - 09 - 30), 15 + 4))
        );
        w.apply(
            Action::Extend,
            "authority:X",
            "需实地核查",
            datetime!(2026-10-15 01:00 UTC),
            &c,
        )
        .unwrap();
        assert_eq!(
            w.deadline(&c, datetime!(2026-10-15 02:00 UTC)),
            Some(c.add_working_days(date!(2026 - 09 - 30), 30 + 4))
        );
        assert!(matches!(
            w.apply(
                Action::Extend,
                "authority:X",
                "again",
                datetime!(2026-10-16 01:00 UTC),
                &c
            ),
            Err(ObjectionError::Illegal { .. })
        ));
        w.apply(
            Action::Correct {
                new_version: new_version(),
            },
            "authority:X",
            "",
            datetime!(2026-10-20 01:00 UTC),
            &c,
        )
        .unwrap();
        assert_eq!(w.state().name(), "corrected");
        assert_eq!(w.deadline(&c, datetime!(2026-10-21 00:00 UTC)), None);
        assert!(!w.state().is_open());
        assert_eq!(w.history.len(), 6);
    }

    #[test]
    fn illegal_and_late_transitions_are_refused() {
        let c = national_day();
        let filed = datetime!(2026-09-30 02:00 UTC);
        // Returning after the one-working-day window.
        let mut w = Workflow::new(filed, DEFAULT_REVIEW_DAYS);
        assert!(matches!(
            w.apply(
                Action::Return,
                "authority:X",
                "不属于本机关职责",
                datetime!(2026-10-09 01:00 UTC),
                &c
            ),
            Err(ObjectionError::TooLate { .. })
        ));
        // In time, and with a reason, it works; without a reason it does not.
        assert!(matches!(
            w.apply(Action::Return, "authority:X", " ", datetime!(2026-10-08 01:00 UTC), &c),
            Err(ObjectionError::Missing(_))
        ));
        w.apply(
            Action::Return,
            "authority:X",
            "不属于本机关职责",
            datetime!(2026-10-08 01:00 UTC),
            &c,
        )
        .unwrap();
        assert!(matches!(
            w.apply(Action::Withdraw, "holder:Y", "", datetime!(2026-10-09 01:00 UTC), &c),
            Err(ObjectionError::Illegal { .. })
        ));
        // Resolving a withdrawn objection; rejecting before review; evidence twice.
        let mut w = Workflow::new(filed, DEFAULT_REVIEW_DAYS);
        assert!(matches!(
            w.apply(Action::Reject, "authority:X", "数据无误", filed, &c),
            Err(ObjectionError::Illegal { .. })
        ));
        w.apply(Action::Withdraw, "holder:Y", "", filed, &c).unwrap();
        assert!(matches!(
            w.apply(
                Action::Correct {
                    new_version: new_version()
                },
                "authority:X",
                "",
                filed,
                &c
            ),
            Err(ObjectionError::Illegal { .. })
        ));
        let mut w = Workflow::new(filed, DEFAULT_REVIEW_DAYS);
        assert!(matches!(
            w.apply(Action::SupplyEvidence, "holder:Y", "", filed, &c),
            Err(ObjectionError::Illegal { .. })
        ));
        // Not returned in time and never accepted: deemed accepted, the clock runs from the window's end.
        assert_eq!(
            w.deadline(&c, filed),
            Some(c.add_working_days(date!(2026 - 10 - 08), 15))
        );
        assert!(w.is_overdue(&c, datetime!(2026-11-30 00:00 UTC)));
    }
}
