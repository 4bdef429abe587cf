//! What one plugin's reads of the cluster came to, and how long they took:
//! `/metrics`' `wicket_cluster_reads` and `wicket_cluster_read_duration`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

/// How a read ended, as the `cluster` interface answers it.
pub const RESULTS: [&str; 7] = [
    "ok",
    "not-declared",
    "not-allowed",
    "not-synced",
    "forbidden",
    "unavailable",
    "invalid",
];

/// Upper bounds of the read duration buckets, in seconds: reads are
/// lookups in memory, from a microsecond to a list of thousands.
const BUCKETS: [f64; 10] = [
    0.000_001, 0.000_005, 0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05,
];

/// One plugin's reads.
#[derive(Debug)]
pub struct ReadTally {
    by_result: [AtomicU64; RESULTS.len()],
    seconds: Histogram,
}

impl Default for ReadTally {
    fn default() -> Self {
        ReadTally {
            by_result: Default::default(),
            seconds: Histogram::new(BUCKETS),
        }
    }
}

impl ReadTally {
    /// A read ended with `result` (one of [`RESULTS`]) after `took`.
    pub fn record(&self, result: &str, took: Duration) {
        if let Some(at) = RESULTS.iter().position(|name| *name == result) {
            self.by_result[at].fetch_add(1, Ordering::Relaxed);
        }
        self.seconds.observe(took.as_secs_f64());
    }

    /// Reads that ended with each of [`RESULTS`], in that order.
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        RESULTS
            .iter()
            .zip(&self.by_result)
            .map(|(name, count)| (*name, count.load(Ordering::Relaxed)))
    }

    /// How long reads took.
    pub fn durations(&self) -> &Histogram {
        &self.seconds
    }
}
