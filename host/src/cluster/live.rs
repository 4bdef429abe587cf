//! The live source: the API server's objects, followed by one watch cache
//! per kind that loaded plugins declare, shared by every plugin declaring
//! it, started with the first and stopped when the last one goes, all
//! within one memory budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

use super::budget::Budget;
use super::cache::{Cache, CacheKey};

/// The kinds followed, shared by the plugins that declare them.
pub struct LiveSource {
    client: kube::Client,
    /// Where the watches run: plugins load on blocking threads too.
    runtime: tokio::runtime::Handle,
    budget: Arc<Budget>,
    /// How long a plugin's load waits for its caches' first list.
    pub sync_timeout: Duration,
    caches: Mutex<HashMap<CacheKey, Followed>>,
}

/// One followed kind: its cache, how many plugin versions read it, and the
/// task following it (stopped when dropped).
struct Followed {
    cache: Arc<Cache>,
    users: usize,
    _task: AbortOnDropHandle<()>,
}

/// How the live source is set up.
#[derive(Debug, Clone, Copy)]
pub struct LiveConfig {
    /// The memory all caches together may hold, in bytes.
    pub memory_budget: usize,
    /// How long a plugin's load waits for the first list of its kinds
    /// before serving anyway (its reads then answer `not-synced`).
    pub sync_timeout: Duration,
}

/// The memory all caches together may hold unless told, in MiB, as the
/// budget counts it: 10,000 Ingresses and 1,000 Namespaces count 32 (and
/// take 41 of RSS, `scripts/bench-cluster`).
pub const DEFAULT_MEMORY_MIB: usize = 128;

/// How long a load waits for a first list unless told.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for LiveConfig {
    fn default() -> LiveConfig {
        LiveConfig {
            memory_budget: DEFAULT_MEMORY_MIB << 20,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
        }
    }
}

impl LiveSource {
    /// Follows kinds through `client`; call it inside the Tokio runtime.
    pub fn new(client: kube::Client, config: LiveConfig) -> LiveSource {
        LiveSource {
            client,
            runtime: tokio::runtime::Handle::current(),
            budget: Arc::new(Budget::new(config.memory_budget)),
            sync_timeout: config.sync_timeout,
            caches: Mutex::default(),
        }
    }

    fn caches(&self) -> MutexGuard<'_, HashMap<CacheKey, Followed>> {
        self.caches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One more plugin version reads `key`: its watch starts with the first.
    pub fn want(&self, key: &CacheKey) -> Arc<Cache> {
        let mut caches = self.caches();
        if let Some(followed) = caches.get_mut(key) {
            followed.users += 1;
            return followed.cache.clone();
        }
        let cache = Arc::new(Cache::new(key.0.clone(), key.1));
        self.budget.join(&cache);
        let task = self.runtime.spawn(super::watch::follow(
            self.client.clone(),
            cache.clone(),
            self.budget.clone(),
        ));
        caches.insert(
            key.clone(),
            Followed {
                cache: cache.clone(),
                users: 1,
                _task: AbortOnDropHandle::new(task),
            },
        );
        tracing::info!(kind = %key.0, metadata_only = key.1, "following the kind for plugins");
        cache
    }

    /// One plugin version fewer reads `key`: its watch stops with the last.
    pub fn release(&self, key: &CacheKey) {
        let mut caches = self.caches();
        let Some(followed) = caches.get_mut(key) else {
            return;
        };
        followed.users -= 1;
        if followed.users == 0 {
            caches.remove(key);
            tracing::info!(kind = %key.0, "no plugin reads the kind any more: no longer followed");
            crate::freed::return_to_system();
        }
    }

    /// The cache of `key`, if a plugin reads it.
    pub fn cache(&self, key: &CacheKey) -> Option<Arc<Cache>> {
        self.caches()
            .get(key)
            .map(|followed| followed.cache.clone())
    }

    /// Every cache with how many plugin versions read it, by kind.
    pub fn all(&self) -> Vec<(Arc<Cache>, usize)> {
        let mut all: Vec<(Arc<Cache>, usize)> = self
            .caches()
            .values()
            .map(|followed| (followed.cache.clone(), followed.users))
            .collect();
        all.sort_by(|(a, _), (b, _)| (&a.kind, a.metadata_only).cmp(&(&b.kind, b.metadata_only)));
        all
    }

    /// The memory budget of all caches, in bytes.
    pub fn budget(&self) -> usize {
        self.budget.limit()
    }

    /// Caches refused by the budget so far.
    pub fn refused(&self) -> u64 {
        self.budget.refused()
    }
}
