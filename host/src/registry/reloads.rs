//! How the plugin folder's reloads were set off, counted and the last one
//! kept: a watch that has fallen back to the periodic rescan shows as
//! reloads by `rescan` only, in `/plugins` and `/metrics`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::text::rfc3339;

/// What set a reload off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Start-up.
    Start,
    /// A change the folder's watch reported.
    Watch,
    /// SIGHUP.
    Signal,
    /// The periodic rescan, with no notification.
    Rescan,
}

impl Trigger {
    /// Every trigger, in the order of their counters.
    pub const ALL: [Trigger; 4] = [
        Trigger::Start,
        Trigger::Watch,
        Trigger::Signal,
        Trigger::Rescan,
    ];

    /// Its name in `/plugins` and the metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Watch => "watch",
            Trigger::Signal => "sighup",
            Trigger::Rescan => "rescan",
        }
    }
}

/// Reloads by trigger, and the last one.
#[derive(Debug, Default)]
pub struct Reloads {
    counts: [AtomicU64; 4],
    last: Mutex<Option<(Trigger, SystemTime)>>,
}

impl Reloads {
    /// Counts a reload set off by `trigger`, now.
    pub fn record(&self, trigger: Trigger) {
        self.counts[trigger as usize].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last.lock() {
            *last = Some((trigger, SystemTime::now()));
        }
    }

    /// Reloads set off by `trigger` so far.
    pub fn count(&self, trigger: Trigger) -> u64 {
        self.counts[trigger as usize].load(Ordering::Relaxed)
    }

    /// For `/plugins`: the last reload (trigger and time) and the counts.
    pub fn describe(&self) -> Value {
        let last = self.last.lock().ok().and_then(|last| *last);
        let counts: serde_json::Map<String, Value> = Trigger::ALL
            .iter()
            .map(|&trigger| (trigger.as_str().to_owned(), json!(self.count(trigger))))
            .collect();
        json!({
            "last": last.map(|(trigger, at)| json!({ "trigger": trigger.as_str(), "at": rfc3339(at) })),
            "byTrigger": counts,
        })
    }
}
