//! Prometheus metrics (`/metrics`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VerdictLabels {
    pub verdict: String,
}

/// The service's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) durations: Family<RequestLabels, Histogram>,
    pub(crate) verdicts: Family<VerdictLabels, Counter>,
    pub(crate) cache_hits: Gauge,
    pub(crate) cache_misses: Gauge,
    pub(crate) cache_entries: Gauge,
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
        registry.register("verifications", "Licence verifications by verdict", verdicts.clone());
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
        Self {
            registry: Arc::new(registry),
            requests,
            durations,
            verdicts,
            cache_hits,
            cache_misses,
            cache_entries,
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
