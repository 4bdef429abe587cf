//! What happened to one plugin or pipeline name since it first appeared in
//! the folder (kept across reloads of it): how its reviews ended, why its
//! plugin failed, how long its reviews took, how often it loaded. The one
//! source of both `/plugins`' counters and `/metrics` ([`crate::metrics`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;

use crate::admit::{Decision, Verdict};
use crate::fault::HostError;
use crate::plugin::FailureCause;
use crate::review::Operation;

/// Upper bounds of the review duration buckets, in seconds: from 50 µs
/// (most reviews take well under a millisecond) to 10 s (the API server's
/// default webhook timeout).
const DURATION_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// How one review ended, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted unchanged.
    Allowed,
    /// Admitted with a patch.
    Mutated,
    /// Refused by the plugin.
    Denied,
    /// Refused, let through with a warning (`enforcement = "warn"`).
    Warned,
    /// Refused or changed, let through unchanged (`enforcement = "monitor"`).
    Monitored,
    /// The plugin failed and its policy refused the request.
    FailedClosed,
    /// The plugin failed and its policy admitted the request.
    FailedOpen,
    /// Answered 503: the host was too busy to run it.
    Shed,
    /// Answered 500: the host's own fault (merging a pipeline's answers).
    HostError,
}

impl Outcome {
    /// Every outcome, in declaration order (`as usize` indexes by it).
    pub const ALL: [Outcome; 9] = [
        Outcome::Allowed,
        Outcome::Mutated,
        Outcome::Denied,
        Outcome::Warned,
        Outcome::Monitored,
        Outcome::FailedClosed,
        Outcome::FailedOpen,
        Outcome::Shed,
        Outcome::HostError,
    ];

    /// How `judged` ended.
    pub fn of(judged: &Result<Decision, HostError>) -> Outcome {
        let decision = match judged {
            Ok(decision) => decision,
            Err(HostError::Overloaded(_)) => return Outcome::Shed,
            Err(HostError::Pipeline(_)) => return Outcome::HostError,
        };
        match decision.verdict {
            Verdict::Allowed if decision.response.patch.is_some() => Outcome::Mutated,
            Verdict::Allowed => Outcome::Allowed,
            Verdict::Denied => Outcome::Denied,
            Verdict::Warned => Outcome::Warned,
            Verdict::Monitored => Outcome::Monitored,
            Verdict::FailedClosed => Outcome::FailedClosed,
            Verdict::FailedOpen => Outcome::FailedOpen,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Mutated => "mutated",
            Outcome::Denied => "denied",
            Outcome::Warned => "warned",
            Outcome::Monitored => "monitored",
            Outcome::FailedClosed => "failed-closed",
            Outcome::FailedOpen => "failed-open",
            Outcome::Shed => "shed",
            Outcome::HostError => "host-error",
        }
    }
}

/// Every operation, in declaration order (`as usize` indexes by it).
pub const OPERATIONS: [Operation; 4] = [
    Operation::Create,
    Operation::Update,
    Operation::Delete,
    Operation::Connect,
];

/// Everything counted for one name, updated without locks.
#[derive(Debug)]
pub struct Counters {
    /// Reviews by operation and outcome.
    reviews: [[AtomicU64; Outcome::ALL.len()]; OPERATIONS.len()],
    /// Plugin failures by cause.
    failures: [AtomicU64; FailureCause::ALL.len()],
    /// Per judged review: the time in Wicket around the plugin calls.
    host_seconds: Histogram,
    /// Per judged review: the plugins' own time (what their deadlines count).
    plugin_seconds: Histogram,
    /// Per judged review: the whole time, host and plugins together (what
    /// the API server's webhook timeout counts, less the network and the body).
    total_seconds: Histogram,
    /// Versions loaded.
    loads: AtomicU64,
    /// Versions that failed to load.
    load_errors: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            reviews: Default::default(),
            failures: Default::default(),
            host_seconds: Histogram::new(DURATION_BUCKETS),
            plugin_seconds: Histogram::new(DURATION_BUCKETS),
            total_seconds: Histogram::new(DURATION_BUCKETS),
            loads: AtomicU64::default(),
            load_errors: AtomicU64::default(),
        }
    }
}

/// The summary `/plugins` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CountersView {
    /// Reviews answered.
    pub requests: u64,
    /// Reviews a plugin refused (not counting failures).
    pub denials: u64,
    /// Reviews where a plugin failed, whatever its failure policy answered.
    pub failures: u64,
    /// Reviews answered 503 because the host was overloaded (not counted in
    /// `requests`).
    pub shed: u64,
    /// Reviews answered 500 for a fault of the host's own (not counted in
    /// `requests`).
    pub host_errors: u64,
    /// Reviews a plugin refused or changed that were let through unchanged
    /// or with a warning (`enforcement = "warn"` or `"monitor"`).
    pub not_enforced: u64,
}

impl Counters {
    /// Counts one review of an `operation` request that took `elapsed`:
    /// judged, or shed as overloaded.
    pub fn record(
        &self,
        operation: Operation,
        judged: &Result<Decision, HostError>,
        elapsed: Duration,
    ) {
        let outcome = Outcome::of(judged);
        self.reviews[operation as usize][outcome as usize].fetch_add(1, Ordering::Relaxed);
        let Ok(decision) = judged else {
            return;
        };
        if let Some(failure) = decision.failure() {
            self.failures[failure.cause() as usize].fetch_add(1, Ordering::Relaxed);
        }
        let plugin_time = decision.plugin_time.min(elapsed);
        self.plugin_seconds.observe(plugin_time.as_secs_f64());
        self.host_seconds
            .observe((elapsed - plugin_time).as_secs_f64());
        self.total_seconds.observe(elapsed.as_secs_f64());
    }

    /// Awaits `judging` (a review of an `operation` request), timing it, and
    /// counts how it ended.
    pub async fn counted(
        &self,
        operation: Operation,
        judging: impl Future<Output = Result<Decision, HostError>>,
    ) -> Result<Decision, HostError> {
        let started = Instant::now();
        let judged = judging.await;
        self.record(operation, &judged, started.elapsed());
        judged
    }

    /// Counts a version of the plugin loaded.
    pub fn loaded(&self) {
        self.loads.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a version of the plugin that failed to load.
    pub fn load_failed(&self) {
        self.load_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Reviews of `operation` that ended as `outcome`.
    pub fn reviews(&self, operation: Operation, outcome: Outcome) -> u64 {
        self.reviews[operation as usize][outcome as usize].load(Ordering::Relaxed)
    }

    /// Plugin failures for `cause`.
    pub fn failures(&self, cause: FailureCause) -> u64 {
        self.failures[cause as usize].load(Ordering::Relaxed)
    }

    /// The histograms of host time and of plugin time.
    pub fn durations(&self) -> (&Histogram, &Histogram) {
        (&self.host_seconds, &self.plugin_seconds)
    }

    /// The histogram of whole review times.
    pub fn total_durations(&self) -> &Histogram {
        &self.total_seconds
    }

    /// Versions loaded and versions that failed to load.
    pub fn loads(&self) -> (u64, u64) {
        (
            self.loads.load(Ordering::Relaxed),
            self.load_errors.load(Ordering::Relaxed),
        )
    }

    /// The summary now.
    pub fn view(&self) -> CountersView {
        let by_outcome = |outcome: Outcome| -> u64 {
            OPERATIONS
                .iter()
                .map(|&operation| self.reviews(operation, outcome))
                .sum()
        };
        let sum = |outcomes: &[Outcome]| -> u64 { outcomes.iter().copied().map(by_outcome).sum() };
        CountersView {
            requests: sum(&Outcome::ALL) - sum(&[Outcome::Shed, Outcome::HostError]),
            denials: by_outcome(Outcome::Denied),
            failures: sum(&[Outcome::FailedClosed, Outcome::FailedOpen]),
            shed: by_outcome(Outcome::Shed),
            host_errors: by_outcome(Outcome::HostError),
            not_enforced: sum(&[Outcome::Warned, Outcome::Monitored]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::PipelineFault;
    use crate::plugin::Overload;

    #[test]
    fn host_errors_are_counted_apart_from_every_verdict() {
        let busy = Err(Overload::Memory.into());
        assert_eq!(Outcome::of(&busy), Outcome::Shed);
        let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let fault = Err(PipelineFault::Serialise {
            pipeline: "p".into(),
            source,
        }
        .into());
        assert_eq!(Outcome::of(&fault), Outcome::HostError);
        assert_eq!(Outcome::HostError.as_str(), "host-error");
    }
}
