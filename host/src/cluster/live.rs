//! The live source: the API server's objects, followed by one watch cache
//! per kind that loaded plugins declare, shared by every plugin declaring
//! it, started with the first and stopped when the last one goes, all
//! within one memory budget.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use super::budget::Budget;
use super::index::IndexPath;
use super::kind::KindKey;
use super::store::KindStore;
use super::{read_lock, write_lock};

/// Where a kind's cache is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// The first list has not completed: reads answer `not-synced`.
    Syncing,
    /// Serving; the watch follows changes (and relists when it must).
    Synced,
    /// The API server refused the list or watch (RBAC); retried.
    Forbidden(String),
    /// The kind cannot be followed (not served by the API server, or the
    /// API server cannot be reached before the first list); retried.
    Failed(String),
    /// Refused: holding it would pass the memory budget of all caches.
    OverBudget(String),
}

impl SyncState {
    /// A word for `/plugins`, `/readyz` and the metrics' labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            SyncState::Syncing => "syncing",
            SyncState::Synced => "synced",
            SyncState::Forbidden(_) => "forbidden",
            SyncState::Failed(_) => "failed",
            SyncState::OverBudget(_) => "over-budget",
        }
    }

    /// Every state's word, for the metrics.
    pub const NAMES: [&'static str; 5] =
        ["syncing", "synced", "forbidden", "failed", "over-budget"];

    /// Why the cache does not serve, if it does not.
    pub fn reason(&self) -> Option<&str> {
        match self {
            SyncState::Syncing | SyncState::Synced => None,
            SyncState::Forbidden(why) | SyncState::Failed(why) | SyncState::OverBudget(why) => {
                Some(why)
            }
        }
    }
}

/// What a kind's cache is keyed by: the kind, and whether only metadata
/// is followed (through the metadata API: a fraction of the memory).
pub type CacheKey = (KindKey, bool);

/// One kind's cache: its objects, its state, and what happened to it.
pub struct Cache {
    /// The kind followed.
    pub kind: KindKey,
    /// Whether only metadata is followed.
    pub metadata_only: bool,
    /// The objects, once synced.
    store: RwLock<KindStore>,
    /// The indexes plugins declared, built on every store it fills.
    indexes: Mutex<BTreeSet<IndexPath>>,
    state: watch::Sender<SyncState>,
    /// Lists after the first: a watch that expired (410) or broke.
    pub relists: AtomicU64,
    /// Failed lists and watches.
    pub errors: AtomicU64,
    /// When the last event (list item, change, deletion) came, in seconds
    /// since the Unix epoch; 0 before any.
    last_event: AtomicU64,
    /// The memory it holds, as the budget counts it.
    held: AtomicUsize,
}

impl Cache {
    fn new(kind: KindKey, metadata_only: bool) -> Cache {
        Cache {
            kind,
            metadata_only,
            store: RwLock::default(),
            indexes: Mutex::default(),
            state: watch::Sender::new(SyncState::Syncing),
            relists: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_event: AtomicU64::new(0),
            held: AtomicUsize::new(0),
        }
    }

    /// Where it is now.
    pub fn state(&self) -> SyncState {
        self.state.borrow().clone()
    }

    pub(super) fn set_state(&self, state: SyncState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// Waits until it is out of [`SyncState::Syncing`].
    pub async fn settled(&self) {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|state| *state != SyncState::Syncing).await;
    }

    /// Its objects, to read.
    pub(super) fn store(&self) -> &RwLock<KindStore> {
        &self.store
    }

    /// An empty store with every declared index, to fill by a list.
    pub(super) fn fresh_store(&self) -> KindStore {
        let mut store = KindStore::default();
        for path in self.indexes().iter() {
            store.build_index(path);
        }
        store
    }

    /// Serves `store` from now on (a list completed).
    pub(super) fn replace(&self, store: KindStore) {
        *write_lock(&self.store) = store;
        crate::freed::return_to_system();
    }

    /// Changes the objects served (a watch event).
    pub(super) fn change(&self, change: impl FnOnce(&mut KindStore)) {
        change(&mut write_lock(&self.store));
    }

    /// Keeps the index on `path` on this cache and every later list.
    pub(super) fn build_index(&self, path: &IndexPath) {
        if self.indexes().insert(path.clone()) {
            write_lock(&self.store).build_index(path);
        }
    }

    fn indexes(&self) -> MutexGuard<'_, BTreeSet<IndexPath>> {
        self.indexes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An event came now.
    pub(super) fn touched(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_event.store(now.as_secs(), Ordering::Relaxed);
    }

    /// When the last event came, in seconds since the Unix epoch.
    pub fn last_event(&self) -> Option<u64> {
        Some(self.last_event.load(Ordering::Relaxed)).filter(|&seconds| seconds > 0)
    }

    /// The memory it holds, as the budget counts it.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    pub(super) fn set_held(&self, bytes: usize) {
        self.held.store(bytes, Ordering::Relaxed);
    }

    /// Drops every object (refused by the budget).
    pub(super) fn empty(&self) {
        self.replace(KindStore::default());
        self.set_held(0);
    }

    /// For `/plugins`.
    pub fn describe(&self, users: usize) -> Value {
        let state = self.state();
        let age = self.last_event().map(|seconds| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            now.as_secs().saturating_sub(seconds)
        });
        let (objects, bytes) = {
            let store = read_lock(&self.store);
            (store.len(), store.bytes())
        };
        json!({
            "kind": self.kind.to_string(),
            "metadataOnly": self.metadata_only,
            "state": state.as_str(),
            "reason": state.reason(),
            "objects": objects,
            "bytes": bytes,
            "heldBytes": self.held(),
            "relists": self.relists.load(Ordering::Relaxed),
            "watchErrors": self.errors.load(Ordering::Relaxed),
            "lastEventSecondsAgo": age,
            "plugins": users,
        })
    }
}

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
