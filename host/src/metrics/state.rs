//! The host's state at scrape time: its certificate's expiry, whether the
//! plugin folder reads, and how much of the shared plugin limits is in use;
//! what alerts on a certificate that was not renewed, a folder that went
//! away and a host running out of room need.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::value::saturating_i64;
use crate::registry::Registry;
use crate::tls::LiveCert;

/// Reads the registry, the runtime and the served certificate at each scrape.
pub(super) struct StateMetrics {
    plugins: Arc<Registry>,
    /// Set once TLS has started.
    certificate: Arc<OnceLock<Arc<LiveCert>>>,
}

impl StateMetrics {
    pub(super) fn new(
        plugins: Arc<Registry>,
        certificate: Arc<OnceLock<Arc<LiveCert>>>,
    ) -> StateMetrics {
        StateMetrics {
            plugins,
            certificate,
        }
    }
}

impl fmt::Debug for StateMetrics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("StateMetrics")
    }
}

/// A gauge with no labels: its name, help, unit and value.
type Plain = (&'static str, &'static str, Option<Unit>, i64);

impl Collector for StateMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let usage = self.plugins.usage();
        let readable = i64::from(self.plugins.folder_error().is_none());
        let mut gauges: Vec<Plain> = vec![
            (
                "wicket_plugin_folder_readable",
                "1 while the plugin folder could be read at its last reload; 0 while it is missing or unreadable (the plugins loaded before keep serving).",
                None,
                readable,
            ),
            (
                "wicket_plugin_instances",
                "Plugin instances running now, all plugins together.",
                None,
                saturating_i64(usage.instances),
            ),
            (
                "wicket_plugin_instances_max",
                "Plugin instances that may run at once (--max-instances); a review that gets none in time is answered 503.",
                None,
                saturating_i64(usage.max_instances),
            ),
            (
                "wicket_plugin_memory",
                "Linear memory the running plugin instances hold together.",
                Some(Unit::Bytes),
                saturating_i64(usage.memory_bytes),
            ),
            (
                "wicket_plugin_memory_budget",
                "Linear memory all plugin instances together may hold (--plugin-memory-mib).",
                Some(Unit::Bytes),
                saturating_i64(usage.memory_limit_bytes),
            ),
        ];
        let expiry = self.certificate.get().and_then(|live| live.expiry());
        if let Some(expiry) = expiry {
            let seconds = expiry
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            gauges.push((
                "wicket_certificate_expiry_timestamp",
                "When the serving certificate expires, in seconds since the Unix epoch.",
                Some(Unit::Seconds),
                i64::try_from(seconds).unwrap_or(i64::MAX),
            ));
        }
        for (name, help, unit, value) in gauges {
            let gauge = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            ConstGauge::new(value).encode(gauge)?;
        }
        Ok(())
    }
}
