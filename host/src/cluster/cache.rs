//! One kind's watch cache: the objects a list filled and the watch keeps
//! up to date, the indexes plugins declared, where it is (syncing, synced,
//! refused) and what happened to it, for `/plugins` and `/metrics`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::index::IndexPath;
use super::kind::KindKey;
use super::store::{KindStore, read_lock, write_lock};

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
    /// A cache of `kind` not synced yet.
    pub(super) fn new(kind: KindKey, metadata_only: bool) -> Cache {
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

    /// The store of a completed list's `texts` (made by `pruned_text`),
    /// with every declared index, built from copies made together: made
    /// one by one as the list's items were parsed, the texts lie strewn
    /// among the pages of the freed parse, and the process kept 55 MiB for
    /// 10,000 Ingresses and 1,000 Namespaces where copies made together
    /// take 41 MiB (`scripts/bench-cluster`).
    pub(super) fn filled(&self, texts: Vec<String>) -> KindStore {
        let copies: Vec<String> = texts.iter().map(|text| text.as_str().to_owned()).collect();
        drop(texts);
        crate::freed::return_to_system();
        let mut store = KindStore::default();
        for path in self.indexes().iter() {
            store.build_index(path);
        }
        for text in copies {
            store.insert(text);
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
