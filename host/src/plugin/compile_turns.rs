//! How many components compile at once. A compilation holds cranelift's
//! working memory (tens of MiB for a small component, hundreds for a large
//! one from another language) until it ends, and uses every core on its own
//! for a large one: a folder of hundreds of new plugins compiled all at once
//! would hold all of those peaks together. Turns bound them, and `/plugins`
//! shows the bound, what runs, what waits and the most that ever ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most `limit` compilations at once.
pub struct CompileTurns {
    permits: Arc<Semaphore>,
    limit: usize,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    running: AtomicUsize,
    waiting: AtomicUsize,
    /// The most that ever ran at once: what the bound is checked against.
    peak: AtomicUsize,
}

/// One compilation's turn, given back when dropped (at the end of the
/// compilation, even one whose caller has gone).
pub struct Turn {
    _permit: OwnedSemaphorePermit,
    counts: Arc<Counts>,
}

impl CompileTurns {
    /// Turns for `limit` compilations at once (at least one).
    pub fn new(limit: usize) -> CompileTurns {
        let limit = limit.max(1);
        CompileTurns {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            counts: Arc::default(),
        }
    }

    /// Waits for a turn.
    pub async fn take(&self) -> Turn {
        let waiting = Waiting::counted(&self.counts);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the compile semaphore is never closed");
        drop(waiting);
        let running = self.counts.running.fetch_add(1, Ordering::Relaxed) + 1;
        self.counts.peak.fetch_max(running, Ordering::Relaxed);
        Turn {
            _permit: permit,
            counts: self.counts.clone(),
        }
    }

    /// For `/plugins`: the bound, and what runs and waits now.
    pub fn describe(&self) -> Value {
        json!({
            "limit": self.limit,
            "running": self.counts.running.load(Ordering::Relaxed),
            "waiting": self.counts.waiting.load(Ordering::Relaxed),
            "peak": self.counts.peak.load(Ordering::Relaxed),
        })
    }
}

/// Counts one waiter for as long as it waits, even one whose caller gives up.
struct Waiting<'a>(&'a Counts);

impl<'a> Waiting<'a> {
    fn counted(counts: &'a Counts) -> Waiting<'a> {
        counts.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(counts)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.counts.running.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_than_the_limit_run_and_the_rest_wait() {
        let turns = Arc::new(CompileTurns::new(2));
        let first = turns.take().await;
        let _second = turns.take().await;
        let waiting = tokio::spawn({
            let turns = turns.clone();
            async move { turns.take().await }
        });
        while turns.describe()["waiting"] != 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(turns.describe()["running"], 2);
        drop(first);
        let _third = waiting.await.expect("the waiting turn");
        assert_eq!(
            turns.describe(),
            json!({ "limit": 2, "running": 2, "waiting": 0, "peak": 2 })
        );
    }
}
