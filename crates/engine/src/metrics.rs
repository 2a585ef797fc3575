//! The engine's own measurements: what only the engine sees as it happens (use-record journal
//! writes and their commits to the log, checkpoint publication, durable store writes).
//!
//! The instruments are `prometheus_client` counters and histograms, shared handles that the
//! HTTP layer registers and exposes; the engine only records into them and never encodes.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// Which durable write a store latency is of.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `licence` (issue or new version), `licence_batch` (a bulk issuance's commits),
    /// `status`, `objection`, `grant`, `authorisation`.
    pub operation: &'static str,
}

/// The engine's instruments.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    /// Use records made durable in the journal.
    pub use_records_written: Counter,
    /// Time of one journal write (the write and its data sync), per batch.
    pub use_journal_write_seconds: Histogram,
    /// From a use record's time to the store commit that logs it, for the oldest record of
    /// each commit.
    pub use_commit_lag_seconds: Histogram,
    /// Time to publish a checkpoint: root, signature and its durable write.
    pub checkpoint_publish_seconds: Histogram,
    /// From a write's start to its durability, by operation.
    pub store_write_seconds: Family<WriteLabels, Histogram>,
}

/// Buckets from 50 µs to about 3.3 s (doubling).
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            use_records_written: Counter::default(),
            use_journal_write_seconds: latency_buckets(),
            // 1 ms to about 65 s: commits follow records by up to the commit interval, and
            // much longer while signing is halted.
            use_commit_lag_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            checkpoint_publish_seconds: latency_buckets(),
            store_write_seconds: Family::new_with_constructor(latency_buckets),
        }
    }
}

impl EngineMetrics {
    /// Records the latency of one durable write that started at `started`.
    pub(crate) fn wrote(&self, operation: &'static str, started: Instant) {
        self.store_write_seconds
            .get_or_create(&WriteLabels { operation })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Seconds from `earlier` to `later`, 0 when `later` is not later.
pub(crate) fn seconds_between(earlier: time::OffsetDateTime, later: time::OffsetDateTime) -> f64 {
    Duration::try_from(later - earlier).map_or(0.0, |d| d.as_secs_f64())
}
