//! Prometheus metrics (`/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use zhengyin_model::{Verdict, VerificationReport};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VerdictLabels {
    pub cryptosuite: &'static str,
    pub verdict: &'static str,
}

impl VerdictLabels {
    pub(crate) fn of(report: &VerificationReport) -> Self {
        Self {
            cryptosuite: report.cryptosuite.unwrap_or("none"),
            verdict: match report.verdict {
                Verdict::Valid => "VALID",
                Verdict::Invalid => "INVALID",
                Verdict::Indeterminate => "INDETERMINATE",
            },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SourceLabels {
    pub origin: String,
}

/// The service's metrics (shared behind one `Arc` by the handlers).
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) durations: Family<RequestLabels, Histogram>,
    pub(crate) verdicts: Family<VerdictLabels, Counter>,
    pub(crate) verify_durations: Family<VerdictLabels, Histogram>,
    pub(crate) batch_sizes: Histogram,
    pub(crate) batch_durations: Histogram,
    pub(crate) batch_equations_passed: Gauge,
    pub(crate) batch_equations_failed: Gauge,
    pub(crate) objections_overdue: Gauge,
    pub(crate) cache_hits: Gauge,
    pub(crate) cache_misses: Gauge,
    pub(crate) cache_entries: Gauge,
    pub(crate) sync_lag_entries: Family<SourceLabels, Gauge>,
    pub(crate) sync_lag_seconds: Family<SourceLabels, Gauge>,
    pub(crate) sync_open_incidents: Family<SourceLabels, Gauge>,
    pub(crate) sync_consecutive_errors: Family<SourceLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("zhengyin");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            durations.clone(),
        );
        registry.register(
            "verifications",
            "Licence verifications by cryptosuite and verdict",
            verdicts.clone(),
        );
        let verify_durations = Family::<VerdictLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_01, 2.0, 16))
        });
        registry.register(
            "verify_duration_seconds",
            "Time to verify one licence (POST /v1/verify, handler time), by cryptosuite and verdict",
            verify_durations.clone(),
        );
        let batch_sizes = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "verify_batch_size",
            "Licences per batch verification",
            batch_sizes.clone(),
        );
        let batch_durations = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register(
            "verify_batch_duration_seconds",
            "Time to verify one batch",
            batch_durations.clone(),
        );
        let (batch_equations_passed, batch_equations_failed) = (Gauge::default(), Gauge::default());
        registry.register(
            "ed25519_batch_equations_passed",
            "Ed25519 batch equations that held",
            batch_equations_passed.clone(),
        );
        registry.register(
            "ed25519_batch_equations_failed",
            "Ed25519 batch equations that failed (signatures then checked one by one)",
            batch_equations_failed.clone(),
        );
        let objections_overdue = Gauge::default();
        registry.register(
            "objections_overdue",
            "Open objections past their review deadline",
            objections_overdue.clone(),
        );
        let (cache_hits, cache_misses, cache_entries) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "signature_cache_hits",
            "Signature checks answered by the cache",
            cache_hits.clone(),
        );
        registry.register("signature_cache_misses", "Signature checks made", cache_misses.clone());
        registry.register(
            "signature_cache_entries",
            "Entries in the verified-signature cache",
            cache_entries.clone(),
        );
        let sync_gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<SourceLabels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let sync_lag_entries = sync_gauge(
            &mut registry,
            "sync_lag_entries",
            "Entries a source is ahead of this node",
        );
        let sync_lag_seconds = sync_gauge(
            &mut registry,
            "sync_lag_seconds",
            "Seconds since a source's copy was confirmed current (-1: never)",
        );
        let sync_open_incidents = sync_gauge(
            &mut registry,
            "sync_open_incidents",
            "Open incidents of a source (its sync is stopped while any is open)",
        );
        let sync_consecutive_errors = sync_gauge(
            &mut registry,
            "sync_consecutive_errors",
            "Failed sync rounds of a source since its last good one",
        );
        Self {
            registry,
            requests,
            durations,
            verdicts,
            verify_durations,
            batch_sizes,
            batch_durations,
            batch_equations_passed,
            batch_equations_failed,
            objections_overdue,
            cache_hits,
            cache_misses,
            cache_entries,
            sync_lag_entries,
            sync_lag_seconds,
            sync_open_incidents,
            sync_consecutive_errors,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
