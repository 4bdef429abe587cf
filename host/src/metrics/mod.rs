//! `GET /metrics` on the ops listener: Prometheus metrics in the OpenMetrics
//! text format.
//!
//! Per plugin and pipeline figures are read at scrape time from the live
//! snapshot's [`Counters`], the same ones `/plugins` shows, so there is one
//! set of counters and a removed plugin's series go with it. Host-wide
//! figures (reviews in flight, connections, refused requests) are kept here;
//! the state of the host's limits and certificate is read at scrape time
//! ([`state`]).

mod state;
mod value;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Unit;

use crate::cluster::Cluster;
use crate::cluster::cache::{Cache, SyncState};
use crate::connections::ConnectionMetrics;
use crate::counters::{OPERATIONS, Outcome};
use crate::plugin::FailureCause;
use crate::registry::{Registry, Tally, Trigger};
use crate::tls::LiveCert;
use value::saturating_i64;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A listener's name, as a label.
type ListenerLabel = [(&'static str, &'static str); 1];
/// An HTTP status, as a label.
type StatusLabel = [(&'static str, u16); 1];

/// Everything `/metrics` shows.
#[derive(Debug)]
pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    host: Arc<HostMetrics>,
    certificate: Arc<OnceLock<Arc<LiveCert>>>,
}

/// The error statuses the webhook port answers with, each exported from
/// the start (at 0) so that a rate over them has a series to start from.
const REFUSED_STATUSES: [u16; 6] = [400, 404, 408, 413, 500, 503];

/// What the webhook listener and its routes report.
#[derive(Debug)]
pub struct HostMetrics {
    in_flight: Gauge,
    refused: Family<StatusLabel, Counter>,
    connections_open: Family<ListenerLabel, Gauge>,
    connections_refused: Family<ListenerLabel, Counter>,
}

impl Default for HostMetrics {
    fn default() -> Self {
        let refused = Family::<StatusLabel, Counter>::default();
        for status in REFUSED_STATUSES {
            // Created at 0; the guard is dropped at once.
            drop(refused.get_or_create(&[("status", status)]));
        }
        HostMetrics {
            in_flight: Gauge::default(),
            refused,
            connections_open: Family::default(),
            connections_refused: Family::default(),
        }
    }
}

impl HostMetrics {
    /// Counts a review until the returned guard is dropped.
    pub fn review_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Counts a request answered with the error `status`.
    pub fn refused(&self, status: u16) {
        self.refused.get_or_create(&[("status", status)]).inc();
    }

    /// What the listener `name` (`webhook`, `ops`) counts its connections in.
    pub fn connections(&self, listener: &'static str) -> ConnectionMetrics {
        let label = [("listener", listener)];
        ConnectionMetrics {
            open: self.connections_open.get_or_create(&label).clone(),
            refused: self.connections_refused.get_or_create(&label).clone(),
        }
    }
}

/// One review in flight; counted until dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Metrics over the plugins and pipelines of `plugins`.
    pub fn new(plugins: Arc<Registry>) -> Metrics {
        let host = Arc::new(HostMetrics::default());
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register(
            "wicket_reviews_in_flight",
            "Reviews being judged now",
            host.in_flight.clone(),
        );
        registry.register(
            "wicket_requests_refused",
            "Requests to the webhook port answered with an error status, by status (400 bad review, 404 unknown path, 408 slow body, 413 body too large, 500 host fault, 503 overloaded)",
            host.refused.clone(),
        );
        registry.register(
            "wicket_connections_open",
            "Open connections, by listener",
            host.connections_open.clone(),
        );
        registry.register(
            "wicket_connections_refused",
            "Connections closed at once because the listener was at --max-connections",
            host.connections_refused.clone(),
        );
        let certificate = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(state::StateMetrics::new(
            plugins.clone(),
            certificate.clone(),
        )));
        registry.register_collector(Box::new(PluginMetrics(plugins)));
        Metrics {
            registry,
            host,
            certificate,
        }
    }

    /// Shows the expiry of `certificate`, the one served from now on.
    pub fn serving(&self, certificate: Arc<LiveCert>) {
        // Set once, when TLS starts; the certificate itself is swapped live.
        let _ = self.certificate.set(certificate);
    }

    /// What the webhook listener and routes report into.
    pub fn host(&self) -> &Arc<HostMetrics> {
        &self.host
    }

    /// Every metric now, as OpenMetrics text.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Reads the per-name counters of the live snapshot at each scrape.
struct PluginMetrics(Arc<Registry>);

impl fmt::Debug for PluginMetrics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PluginMetrics")
    }
}

impl Collector for PluginMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let snapshot = self.0.snapshot();
        let tallies: Vec<Tally<'_>> = snapshot.tallies().collect();

        let mut reviews = encoder.encode_descriptor(
            "wicket_reviews",
            "Reviews by plugin or pipeline, operation and result (shed: answered 503, the host was too busy).",
            None,
            MetricType::Counter,
        )?;
        for tally in &tallies {
            for operation in OPERATIONS {
                for outcome in Outcome::ALL {
                    let labels = [
                        ("kind", tally.kind),
                        ("name", tally.name),
                        ("operation", operation.as_str()),
                        ("result", outcome.as_str()),
                    ];
                    let count = tally.counters.reviews(operation, outcome);
                    ConstCounter::new(count).encode(reviews.encode_family(&labels)?)?;
                }
            }
        }

        let mut failures = encoder.encode_descriptor(
            "wicket_plugin_failures",
            "Plugin failures by cause, whatever the failure policy answered.",
            None,
            MetricType::Counter,
        )?;
        for tally in &tallies {
            for cause in FailureCause::ALL {
                let labels = [
                    ("kind", tally.kind),
                    ("name", tally.name),
                    ("cause", cause.as_str()),
                ];
                let count = tally.counters.failures(cause);
                ConstCounter::new(count).encode(failures.encode_family(&labels)?)?;
            }
        }

        let mut durations = encoder.encode_descriptor(
            "wicket_review_duration",
            "Time to judge a review, split into the plugins' own time (part=plugin: CPU and their own I/O waits, what timeout-ms counts) and the rest (part=host: slots, instantiation waits, checks, patches).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for tally in &tallies {
            let (host, plugin) = tally.counters.durations();
            for (part, histogram) in [("host", host), ("plugin", plugin)] {
                let labels = [("kind", tally.kind), ("name", tally.name), ("part", part)];
                histogram.encode(durations.encode_family(&labels)?)?;
            }
        }
        let mut totals = encoder.encode_descriptor(
            "wicket_review_total_duration",
            "Whole time to judge a review, host and plugins together: what the API server's webhook timeout counts, less the network and the body's arrival.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for tally in &tallies {
            let labels = [("kind", tally.kind), ("name", tally.name)];
            let histogram = tally.counters.total_durations();
            histogram.encode(totals.encode_family(&labels)?)?;
        }

        let mut reloads = encoder.encode_descriptor(
            "wicket_plugin_folder_reloads",
            "Reloads of the plugin folder by what set them off (start, watch, sighup, rescan): reloads by rescan alone mean the folder's watch is not working.",
            None,
            MetricType::Counter,
        )?;
        for trigger in Trigger::ALL {
            let count = self.0.reloads().count(trigger);
            ConstCounter::new(count)
                .encode(reloads.encode_family(&[("trigger", trigger.as_str())])?)?;
        }

        let plugins: Vec<&Tally<'_>> = tallies.iter().filter(|tally| tally.is_plugin()).collect();
        let mut loads = encoder.encode_descriptor(
            "wicket_plugin_loads",
            "Plugin versions loaded (the first load and every reload).",
            None,
            MetricType::Counter,
        )?;
        for tally in &plugins {
            let (loaded, _) = tally.counters.loads();
            ConstCounter::new(loaded).encode(loads.encode_family(&[("name", tally.name)])?)?;
        }
        let mut load_errors = encoder.encode_descriptor(
            "wicket_plugin_load_errors",
            "Plugin versions that failed to load (the previous version, if any, kept serving).",
            None,
            MetricType::Counter,
        )?;
        for tally in &plugins {
            let (_, failed) = tally.counters.loads();
            ConstCounter::new(failed)
                .encode(load_errors.encode_family(&[("name", tally.name)])?)?;
        }
        let mut failing = encoder.encode_descriptor(
            "wicket_plugin_load_failing",
            "1 while a plugin's current files failed to load.",
            None,
            MetricType::Gauge,
        )?;
        for tally in &plugins {
            let value = i64::from(tally.load_failing);
            ConstGauge::new(value).encode(failing.encode_family(&[("name", tally.name)])?)?;
        }

        let held = self.0.cluster().held();
        let mut objects = encoder.encode_descriptor(
            "wicket_cluster_objects",
            "Objects of each kind held for plugins to read (the watch caches, or --cluster-objects).",
            None,
            MetricType::Gauge,
        )?;
        for kind in &held {
            let labels = [("kind", kind.kind.to_string())];
            ConstGauge::new(saturating_i64(kind.objects))
                .encode(objects.encode_family(&labels)?)?;
        }
        let mut bytes = encoder.encode_descriptor(
            "wicket_cluster_held",
            "JSON text of the objects of each kind held for plugins to read.",
            Some(&Unit::Bytes),
            MetricType::Gauge,
        )?;
        for kind in &held {
            let labels = [("kind", kind.kind.to_string())];
            ConstGauge::new(saturating_i64(kind.bytes)).encode(bytes.encode_family(&labels)?)?;
        }

        encode_caches(self.0.cluster(), &mut encoder)?;

        let mut info = encoder.encode_descriptor(
            "wicket_plugin",
            "The plugin versions served, with their digest.",
            None,
            MetricType::Info,
        )?;
        for tally in &plugins {
            let Some(served) = &tally.served else {
                continue;
            };
            let labels = [
                ("name", tally.name),
                ("digest", served.digest.as_str()),
                ("mode", served.mode),
                ("enforcement", served.enforcement),
            ];
            info.encode_info(&labels)?;
        }
        Ok(())
    }
}

/// A counter of each watch cache: its name, help and value.
type CacheCounter = (&'static str, &'static str, fn(&Cache) -> u64);

/// The watch caches (when Wicket follows the API server) and every
/// plugin's reads of the cluster.
fn encode_caches(cluster: &Cluster, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let mut reads = encoder.encode_descriptor(
        "wicket_cluster_reads",
        "Reads of the cluster by plugin and how they ended (not-synced, forbidden, unavailable: the cache could not answer).",
        None,
        MetricType::Counter,
    )?;
    let tallies = cluster.reads();
    for (plugin, tally) in &tallies {
        for (result, count) in tally.counts() {
            let labels = [("plugin", plugin.as_str()), ("result", result)];
            ConstCounter::new(count).encode(reads.encode_family(&labels)?)?;
        }
    }
    let mut read_seconds = encoder.encode_descriptor(
        "wicket_cluster_read_duration",
        "Time a plugin's read of the cluster took in the host.",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for (plugin, tally) in &tallies {
        let labels = [("plugin", plugin.as_str())];
        tally
            .durations()
            .encode(read_seconds.encode_family(&labels)?)?;
    }
    let Some(live) = cluster.live() else {
        return Ok(());
    };
    let caches = live.all();
    let mut state = encoder.encode_descriptor(
        "wicket_cluster_cache_state",
        "1 for the state each kind's watch cache is in (syncing, synced, forbidden, failed, over-budget).",
        None,
        MetricType::Gauge,
    )?;
    for (cache, _) in &caches {
        let now = cache.state();
        let kind = cache.kind.to_string();
        for name in SyncState::NAMES {
            let labels = [("kind", kind.as_str()), ("state", name)];
            ConstGauge::new(i64::from(now.as_str() == name))
                .encode(state.encode_family(&labels)?)?;
        }
    }
    let counters: [CacheCounter; 2] = [
        (
            "wicket_cluster_relists",
            "Lists of a kind after its first: its watch expired (410) or broke.",
            |cache| cache.relists.load(Ordering::Relaxed),
        ),
        (
            "wicket_cluster_watch_errors",
            "Failed lists and watches of a kind (retried with backoff).",
            |cache| cache.errors.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, count) in counters {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (cache, _) in &caches {
            let labels = [("kind", cache.kind.to_string())];
            ConstCounter::new(count(cache)).encode(family.encode_family(&labels)?)?;
        }
    }
    let mut last_event = encoder.encode_descriptor(
        "wicket_cluster_last_event_timestamp",
        "When a kind's cache last received an event (list item, change, deletion), in seconds since the Unix epoch.",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    for (cache, _) in &caches {
        if let Some(seconds) = cache.last_event() {
            let labels = [("kind", cache.kind.to_string())];
            ConstGauge::new(i64::try_from(seconds).unwrap_or(i64::MAX))
                .encode(last_event.encode_family(&labels)?)?;
        }
    }
    let budget = encoder.encode_descriptor(
        "wicket_cluster_memory_budget",
        "Memory all watch caches together may hold (--cluster-memory-mib).",
        Some(&Unit::Bytes),
        MetricType::Gauge,
    )?;
    ConstGauge::new(saturating_i64(live.budget())).encode(budget)?;
    let mut held = encoder.encode_descriptor(
        "wicket_cluster_memory",
        "Memory each kind's watch cache holds, as the budget counts it.",
        Some(&Unit::Bytes),
        MetricType::Gauge,
    )?;
    for (cache, _) in &caches {
        let labels = [("kind", cache.kind.to_string())];
        ConstGauge::new(saturating_i64(cache.held())).encode(held.encode_family(&labels)?)?;
    }
    let refused = encoder.encode_descriptor(
        "wicket_cluster_refused",
        "Watch caches refused because all together would pass the memory budget.",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(live.refused()).encode(refused)?;
    Ok(())
}
