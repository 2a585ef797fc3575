//! Use records (用证记录) as rows for people, newest first: the holder's own, and an auditor's
//! search. One piece, so both say a use the same way.

use zhengyin_model::{LicenceId, ServiceItem, UseRecord};

use crate::words;

/// One use, in words.
pub(crate) struct UseRow {
    pub(crate) time: String,
    pub(crate) department: String,
    pub(crate) operation: &'static str,
    pub(crate) service_item: String,
    pub(crate) use_cause: String,
    pub(crate) outcome: &'static str,
    pub(crate) licences: String,
    pub(crate) holder: String,
}

/// A service item's name and code, or the code when it is not registered.
pub(crate) fn item_name(items: &[ServiceItem], code: &str) -> String {
    items
        .iter()
        .find(|i| i.code == code)
        .map_or_else(|| code.to_owned(), |i| format!("{}（{}）", i.name, i.code))
}

/// `records` (oldest first, as the store keeps them) as rows, newest first, at most `limit`.
pub(crate) fn use_rows(items: &[ServiceItem], records: Vec<UseRecord>, limit: usize) -> Vec<UseRow> {
    records
        .into_iter()
        .rev()
        .take(limit)
        .map(|u| UseRow {
            time: words::moment(u.time),
            operation: words::operation(u.operation),
            service_item: item_name(items, &u.service_item),
            outcome: words::use_outcome(u.outcome),
            licences: u.licences.iter().map(LicenceId::as_str).collect::<Vec<_>>().join("、"),
            holder: u.holder.map(|h| h.to_string()).unwrap_or_default(),
            department: u.department,
            use_cause: u.use_cause,
        })
        .collect()
}
