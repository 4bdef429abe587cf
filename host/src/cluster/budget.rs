//! One memory budget for every watch cache: what each holds is counted as
//! it grows, and a cache whose kind would take the total past the budget
//! is refused (its plugins' reads answer `unavailable`), the newest first,
//! so that a cluster bigger than planned costs a plugin its reads and not
//! the process its life (the OOM kill that takes every webhook down).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};

use super::cache::{Cache, SyncState};
use super::store::KindStore;

/// The memory an object costs beyond its JSON text: its key, labels, index
/// entries, the tree node, the document handle and the allocator's share,
/// from `scripts/bench-cluster`: 10,000 Ingresses and 1,000 Namespaces
/// (10 MiB of text) take 41 MiB of RSS, about 2.9 KiB an object beyond the
/// text; the count leaves out the watch client itself (a few MiB).
const PER_OBJECT: usize = 2_048;

/// The memory `store` holds, as the budget counts it.
pub fn held(store: &KindStore) -> usize {
    held_by(store.bytes(), store.len())
}

/// The memory `objects` objects of `bytes` of JSON text hold, as the
/// budget counts it.
pub fn held_by(bytes: usize, objects: usize) -> usize {
    bytes + objects * PER_OBJECT
}

/// The budget and the caches it covers, oldest first.
pub struct Budget {
    limit: usize,
    caches: Mutex<Vec<Weak<Cache>>>,
    refused: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            caches: Mutex::default(),
            refused: AtomicU64::new(0),
        }
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Caches refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn caches(&self) -> MutexGuard<'_, Vec<Weak<Cache>>> {
        self.caches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `cache` is counted from now on, as the newest.
    pub fn join(&self, cache: &std::sync::Arc<Cache>) {
        let mut caches = self.caches();
        caches.retain(|cache| cache.strong_count() > 0);
        caches.push(std::sync::Arc::downgrade(cache));
    }

    /// `cache` now holds `bytes`. While all caches together pass the
    /// budget, the newest one holding anything is refused: emptied and
    /// marked [`SyncState::OverBudget`] (its watch then stops).
    pub fn grew(&self, cache: &Cache, bytes: usize) {
        cache.set_held(bytes);
        let caches: Vec<_> = self.caches().iter().filter_map(Weak::upgrade).collect();
        let mut total: usize = caches.iter().map(|cache| cache.held()).sum();
        for newest in caches.iter().rev() {
            if total <= self.limit {
                break;
            }
            let held = newest.held();
            if held == 0 {
                continue;
            }
            total -= held;
            let why = format!(
                "the caches would hold more than --cluster-memory-mib {} MiB ({} MiB with this kind); raise the budget (and the pod's memory limit) or drop the plugins reading {}",
                self.limit >> 20,
                (total + held) >> 20,
                newest.kind,
            );
            tracing::error!(kind = %newest.kind, reason = %why, "cluster cache refused");
            newest.empty();
            newest.set_state(SyncState::OverBudget(why));
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}
