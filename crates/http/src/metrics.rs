//! Prometheus metrics (`/metrics`).
//!
//! One registry holds the HTTP layer's instruments (requests, verifications by kind and verdict,
//! licence operations by authority, type and outcome), the engine's (use records, checkpoint
//! publication, store writes: see `zhengyin_engine::metrics`), and gauges and counters that
//! mirror the engine's state at each scrape (objections, the log, sync, caches).
//!
//! The exposition is OpenMetrics 1.0 when the scraper asks for it (`Accept:
//! application/openmetrics-text`), else the Prometheus text format 0.0.4, derived from the same
//! encoding (counters named with their `_total`, no `# EOF`).

use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use zhengyin_engine::Engine;
use zhengyin_model::{Uscc, Verdict, VerificationReport};

use crate::problem::Problem;

/// The OpenMetrics media type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Prometheus text format's media type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VerdictLabels {
    /// `licence`, `licence_batch`, `annotated_copy`, `scan`, `seal`, `signature`, `ofd`.
    pub kind: &'static str,
    pub cryptosuite: &'static str,
    pub verdict: &'static str,
}

impl VerdictLabels {
    fn of(kind: &'static str, report: &VerificationReport) -> Self {
        Self {
            kind,
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
struct OperationLabels {
    /// `issue`, `update`, `suspend`, `reinstate`, `revoke`.
    operation: &'static str,
    /// The acting authority's USCC.
    authority: String,
    licence_type: String,
    /// `ok`, or the problem's code.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SourceLabels {
    pub origin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Counters that mirror a count the engine keeps (they only grow).
struct Mirrored {
    cache_hits: Counter,
    cache_misses: Counter,
    prepared_hits: Counter,
    prepared_misses: Counter,
    batch_equations_passed: Counter,
    batch_equations_failed: Counter,
}

/// What a scrape remembers between scrapes.
#[derive(Default)]
struct ScrapeMemory {
    /// Since when the latest checkpoint has not covered the whole log, as first seen by a scrape.
    behind_since: Option<(u64, Instant)>,
}

/// Gauges set at each scrape from the engine's state.
struct Observed {
    objections_open: Family<StateLabels, Gauge>,
    objections_overdue: Gauge,
    cache_entries: Gauge,
    prepared_entries: Gauge,
    log_entries: Gauge,
    log_checkpoint_entries: Gauge,
    log_checkpoint_lag_seconds: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    sync_lag_entries: Family<SourceLabels, Gauge>,
    sync_lag_seconds: Family<SourceLabels, Gauge>,
    sync_open_incidents: Family<SourceLabels, Gauge>,
    sync_conflicts: Family<SourceLabels, Gauge>,
    sync_consecutive_errors: Family<SourceLabels, Gauge>,
}

/// The service's metrics (shared behind one `Arc` by the handlers).
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) durations: Family<RequestLabels, Histogram>,
    verdicts: Family<VerdictLabels, Counter>,
    verify_durations: Family<VerdictLabels, Histogram>,
    pub(crate) batch_sizes: Histogram,
    pub(crate) batch_durations: Histogram,
    operations: Family<OperationLabels, Counter>,
    mirrored: Mirrored,
    observed: Observed,
    memory: Mutex<ScrapeMemory>,
}

impl Metrics {
    /// The metrics of a service over `engine` (whose own instruments are registered too).
    pub fn new(engine: &Engine) -> Self {
        let mut r = Registry::with_prefix("zhengyin");
        let requests = Family::<RequestLabels, Counter>::default();
        r.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            durations.clone(),
        );
        let verdicts = Family::<VerdictLabels, Counter>::default();
        r.register(
            "verifications",
            "Verifications by kind (licence, licence_batch, annotated_copy, scan, seal, signature, ofd), cryptosuite and verdict",
            verdicts.clone(),
        );
        let verify_durations = Family::<VerdictLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_01, 2.0, 16))
        });
        r.register(
            "verify_duration_seconds",
            "Time to verify one licence (POST /v1/verify, handler time), by cryptosuite and verdict",
            verify_durations.clone(),
        );
        let batch_sizes = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        r.register(
            "verify_batch_size",
            "Licences per batch verification",
            batch_sizes.clone(),
        );
        let batch_durations = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        r.register(
            "verify_batch_duration_seconds",
            "Time to verify one batch",
            batch_durations.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        r.register(
            "licence_operations",
            "Issues, new versions, suspensions, reinstatements and revocations by authority, licence type and outcome (ok or the problem code)",
            operations.clone(),
        );
        let mirrored = Mirrored {
            cache_hits: counter(&mut r, "signature_cache_hits", "Signature checks answered by the cache"),
            cache_misses: counter(&mut r, "signature_cache_misses", "Signature checks made"),
            prepared_hits: counter(
                &mut r,
                "prepared_cache_hits",
                "Licences presented again, neither parsed nor canonicalised again",
            ),
            prepared_misses: counter(&mut r, "prepared_cache_misses", "Licences parsed and canonicalised"),
            batch_equations_passed: counter(
                &mut r,
                "ed25519_batch_equations_passed",
                "Ed25519 batch equations that held",
            ),
            batch_equations_failed: counter(
                &mut r,
                "ed25519_batch_equations_failed",
                "Ed25519 batch equations that failed (signatures then checked one by one)",
            ),
        };
        let engine_metrics = engine.metrics();
        r.register(
            "use_records_written",
            "Use records made durable in the journal",
            engine_metrics.use_records_written.clone(),
        );
        r.register(
            "use_journal_write_seconds",
            "Time of one use-record journal write and its data sync",
            engine_metrics.use_journal_write_seconds.clone(),
        );
        r.register(
            "use_commit_lag_seconds",
            "From the oldest use record of a commit to the store commit that logs it",
            engine_metrics.use_commit_lag_seconds.clone(),
        );
        r.register(
            "log_checkpoint_publish_seconds",
            "Time to publish a checkpoint (root, signature, durable write)",
            engine_metrics.checkpoint_publish_seconds.clone(),
        );
        r.register(
            "store_write_seconds",
            "From a durable write's start to its durability, by operation",
            engine_metrics.store_write_seconds.clone(),
        );
        let observed = Observed {
            objections_open: family(&mut r, "objections_open", "Open objections by state"),
            objections_overdue: gauge(
                &mut r,
                "objections_overdue",
                "Open objections past their review deadline",
            ),
            cache_entries: gauge(
                &mut r,
                "signature_cache_entries",
                "Entries in the verified-signature cache",
            ),
            prepared_entries: gauge(
                &mut r,
                "prepared_cache_entries",
                "Entries in the prepared-licence cache",
            ),
            log_entries: gauge(&mut r, "log_entries", "Entries in the signature log"),
            log_checkpoint_entries: gauge(
                &mut r,
                "log_checkpoint_entries",
                "Entries covered by the latest signed checkpoint",
            ),
            log_checkpoint_lag_seconds: {
                let g = prometheus_client::metrics::gauge::Gauge::<f64, std::sync::atomic::AtomicU64>::default();
                r.register(
                    "log_checkpoint_lag_seconds",
                    "How long the latest checkpoint has not covered the whole log (0 when it does), as seen by this node's scrapes",
                    g.clone(),
                );
                g
            },
            sync_lag_entries: family(&mut r, "sync_lag_entries", "Entries a source is ahead of this node"),
            sync_lag_seconds: family(
                &mut r,
                "sync_lag_seconds",
                "Seconds since a source's copy was confirmed current (-1: never)",
            ),
            sync_open_incidents: family(
                &mut r,
                "sync_open_incidents",
                "Open incidents of a source (its sync is stopped while any is open)",
            ),
            sync_conflicts: family(
                &mut r,
                "sync_conflicts",
                "Conflicts of a source over authorities another node owns (their entries are skipped)",
            ),
            sync_consecutive_errors: family(
                &mut r,
                "sync_consecutive_errors",
                "Failed sync rounds of a source since its last good one",
            ),
        };
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("build_info", "The running build (always 1)", build);
        Self {
            registry: r,
            requests,
            durations,
            verdicts,
            verify_durations,
            batch_sizes,
            batch_durations,
            operations,
            mirrored,
            observed,
            memory: Mutex::default(),
        }
    }

    /// Counts one verification of `kind`.
    pub(crate) fn verified(&self, kind: &'static str, report: &VerificationReport) {
        self.verdicts.get_or_create(&VerdictLabels::of(kind, report)).inc();
    }

    /// Counts one licence verification through `POST /v1/verify` and its handler time.
    pub(crate) fn verified_licence(&self, report: &VerificationReport, started: Instant) {
        let labels = VerdictLabels::of("licence", report);
        self.verify_durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        self.verdicts.get_or_create(&labels).inc();
    }

    /// Counts one licence operation by `authority` on a licence of `licence_type`.
    pub(crate) fn operation(
        &self,
        operation: &'static str,
        authority: &Uscc,
        licence_type: &str,
        refused: Option<&Problem>,
    ) {
        self.operations
            .get_or_create(&OperationLabels {
                operation,
                authority: authority.as_str().to_owned(),
                licence_type: licence_type.to_owned(),
                outcome: refused.map_or("ok", |p| p.code),
            })
            .inc();
    }

    /// Brings the mirrored and observed metrics up to date with `engine` and encodes every
    /// metric, as OpenMetrics or as the Prometheus text format.
    pub fn scrape(&self, engine: &Engine, openmetrics: bool) -> String {
        // One scrape at a time: mirrored counters move by the difference since the last one.
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        self.observe(engine, &mut memory);
        drop(memory);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        if openmetrics {
            out
        } else {
            prometheus_text(&out)
        }
    }

    fn observe(&self, engine: &Engine, memory: &mut ScrapeMemory) {
        let cache = engine.signature_cache_stats();
        let m = &self.mirrored;
        mirror(&m.cache_hits, cache.hits);
        mirror(&m.cache_misses, cache.misses);
        let prepared = engine.prepared_cache_stats();
        mirror(&m.prepared_hits, prepared.hits);
        mirror(&m.prepared_misses, prepared.misses);
        let batch = engine.batch_stats();
        mirror(&m.batch_equations_passed, batch.passed);
        mirror(&m.batch_equations_failed, batch.failed);
        let o = &self.observed;
        o.cache_entries.set(to_i64(cache.entries));
        o.prepared_entries.set(to_i64(prepared.entries));
        match engine.open_objections_summary() {
            Ok(summary) => {
                let states = OPEN_STATES.iter().chain(summary.by_state.keys());
                for state in states {
                    let n = summary.by_state.get(state).copied().unwrap_or(0);
                    o.objections_open.get_or_create(&StateLabels { state }).set(to_i64(n));
                }
                o.objections_overdue.set(to_i64(summary.overdue));
            }
            Err(e) => tracing::error!(error = %e, "counting open objections failed"),
        }
        match engine.log_sizes() {
            Ok((size, checkpoint)) => {
                o.log_entries.set(to_i64(size));
                o.log_checkpoint_entries.set(to_i64(checkpoint));
                let lag = if checkpoint >= size {
                    memory.behind_since = None;
                    0.0
                } else {
                    // Counted from when a scrape first saw this checkpoint behind.
                    let (_, since) = *memory.behind_since.get_or_insert_with(|| (checkpoint, Instant::now()));
                    since.elapsed().as_secs_f64()
                };
                o.log_checkpoint_lag_seconds.set(lag);
            }
            Err(e) => tracing::error!(error = %e, "reading the log's size failed"),
        }
        for source in engine.sync_sources() {
            let labels = SourceLabels { origin: source.origin };
            o.sync_lag_entries
                .get_or_create(&labels)
                .set(to_i64(source.lag_entries));
            o.sync_lag_seconds
                .get_or_create(&labels)
                .set(source.lag_seconds.unwrap_or(-1));
            o.sync_open_incidents
                .get_or_create(&labels)
                .set(to_i64(source.open_incidents.len() as u64));
            o.sync_conflicts
                .get_or_create(&labels)
                .set(to_i64(source.conflicts.len() as u64));
            o.sync_consecutive_errors
                .get_or_create(&labels)
                .set(to_i64(source.consecutive_errors));
        }
    }
}

/// The states an open objection can be in (each exported, at zero too).
const OPEN_STATES: [&str; 5] = ["filed", "returned", "accepted", "under_review", "awaiting_evidence"];

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Moves `counter` up to `value` (a count kept elsewhere, which only grows).
fn mirror(counter: &Counter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn counter(r: &mut Registry, name: &str, help: &str) -> Counter {
    let c = Counter::default();
    r.register(name, help, c.clone());
    c
}

fn gauge(r: &mut Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::default();
    r.register(name, help, g.clone());
    g
}

fn family<L>(r: &mut Registry, name: &str, help: &str) -> Family<L, Gauge>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let f = Family::<L, Gauge>::default();
    r.register(name, help, f.clone());
    f
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition: a counter's HELP and TYPE
/// name its `_total` samples, and the `# EOF` and `# UNIT` lines go.
fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            if let Some(text) = help.take().and_then(|h| h.split_once(' ').map(|(_, t)| t)) {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_counters_by_their_samples_and_has_no_eof() {
        let openmetrics = "# HELP zhengyin_http_requests HTTP requests.\n\
            # TYPE zhengyin_http_requests counter\n\
            zhengyin_http_requests_total{route=\"/v1/verify\"} 3\n\
            # HELP zhengyin_log_entries Entries.\n\
            # TYPE zhengyin_log_entries gauge\n\
            # UNIT zhengyin_log_entries entries\n\
            zhengyin_log_entries 7\n\
            # EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP zhengyin_http_requests_total HTTP requests.\n\
             # TYPE zhengyin_http_requests_total counter\n\
             zhengyin_http_requests_total{route=\"/v1/verify\"} 3\n\
             # HELP zhengyin_log_entries Entries.\n\
             # TYPE zhengyin_log_entries gauge\n\
             zhengyin_log_entries 7\n"
        );
    }

    #[test]
    fn a_mirrored_counter_follows_its_source_and_never_goes_down() {
        let c = Counter::default();
        mirror(&c, 5);
        mirror(&c, 3);
        mirror(&c, 9);
        assert_eq!(c.get(), 9);
    }
}
