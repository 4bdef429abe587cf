//! How the reviews of one plugin or pipeline name ended, since the name first
//! appeared in the folder (kept across reloads of it).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::admit::{Decision, Verdict};
use crate::plugin::Overload;

/// Review counts, updated without locks.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    denials: AtomicU64,
    failures: AtomicU64,
    shed: AtomicU64,
    not_enforced: AtomicU64,
}

/// A reading of [`Counters`].
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
    /// Reviews a plugin refused or changed that were let through unchanged
    /// or with a warning (`enforcement = "warn"` or `"monitor"`).
    pub not_enforced: u64,
}

impl Counters {
    /// Counts one review: judged, or shed as overloaded.
    pub fn record(&self, judged: &Result<Decision, Overload>) {
        let verdict = match judged {
            Ok(decision) => decision.verdict,
            Err(_) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let counter = match verdict {
            Verdict::Allowed => return,
            Verdict::Denied => &self.denials,
            Verdict::FailedClosed | Verdict::FailedOpen => &self.failures,
            Verdict::Warned | Verdict::Monitored => &self.not_enforced,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn view(&self) -> CountersView {
        CountersView {
            requests: self.requests.load(Ordering::Relaxed),
            denials: self.denials.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            shed: self.shed.load(Ordering::Relaxed),
            not_enforced: self.not_enforced.load(Ordering::Relaxed),
        }
    }
}
