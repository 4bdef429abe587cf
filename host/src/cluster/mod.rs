//! Other objects of the cluster, kept in the host for plugins to read
//! through the `cluster` interface: by name, by namespace and label
//! selector, or by an index a plugin declared. Reads are lookups in memory,
//! shared by every plugin and every review; a plugin's access (what it
//! declared, what the operator allows) is checked by `plugin::cluster`.
//!
//! The objects come from a source: the API server, followed by a watch
//! cache per declared kind (`live`, `watch`, `budget`); a folder of files
//! (`folder`) for local development and `wicket check`; or a test case's
//! cluster state.

pub mod allow;
mod budget;
pub mod cache;
pub mod folder;
pub mod index;
pub mod kind;
pub mod live;
pub mod rbac;
pub mod reads;
pub mod selector;
mod store;
mod watch;

pub use store::labels_of;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use arc_swap::ArcSwapOption;
use serde_json::{Value, json};

use crate::document::Document;
use crate::objects::ObjectsError;
use allow::AllowList;
use cache::SyncState;
use index::IndexPath;
use kind::KindKey;
use live::{LiveConfig, LiveSource};
use reads::ReadTally;
use selector::Selector;
use store::{KindStore, Stored, read_lock, write_lock};

/// What plugins may read, and where the objects come from.
#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    /// A folder of objects to serve as the cluster.
    pub objects: Option<PathBuf>,
    /// The kinds plugins may read.
    pub allow: AllowList,
}

/// Why a read of an allowed, declared kind has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Wicket was started without a cluster source.
    #[error(
        "Wicket has no cluster source: it follows the API server when it runs in a cluster or with KUBECONFIG, or serves a folder with --cluster-objects DIR"
    )]
    NoSource,
    /// The kind's cache has not completed its first list.
    #[error("the cache of {0} is not synced yet: its first list has not completed")]
    NotSynced(KindKey),
    /// The API server refused Wicket the kind's list or watch.
    #[error("the API server refused Wicket reading {0} (RBAC): {1}")]
    Forbidden(KindKey, String),
    /// The kind cannot be followed, or its cache was refused.
    #[error("{0} cannot be read: {1}")]
    Unavailable(KindKey, String),
}

/// The objects plugins read, from whichever source was set.
#[derive(Default)]
pub struct Cluster {
    objects: ArcSwapOption<Objects>,
    /// The indexes loaded plugins declared: built on every source's
    /// objects before they serve, so that no review pays for one (the
    /// first lookup on 10,000 Ingresses took 300 ms when built lazily).
    wanted: Mutex<BTreeSet<(KindKey, IndexPath)>>,
    /// The API server, when Wicket follows it (no folder is served).
    live: OnceLock<LiveSource>,
    /// Each plugin's reads, by plugin name (kept across its reloads).
    reads: Mutex<HashMap<String, Arc<ReadTally>>>,
}

/// Every object of a source, by kind. A kind the source does not hold
/// has no objects.
pub struct Objects {
    kinds: HashMap<KindKey, RwLock<KindStore>>,
    /// Where they came from, for `/plugins`.
    origin: String,
}

impl Objects {
    /// `objects` (each with `apiVersion`, `kind` and `metadata.name`), read
    /// from `origin`.
    pub fn new(objects: Vec<Value>, origin: impl Into<String>) -> Objects {
        // The texts kept are made while every parsed object is still held,
        // and the parsed objects then freed together: made as each object
        // was freed, 10,000 Ingresses' texts were strewn over the pages of
        // the whole parse, and the process kept 70 MiB for 12 MB of text.
        let texts = objects
            .iter()
            .filter_map(|object| Some((KindKey::of(object)?, store::pruned_text(object.clone()))))
            .collect();
        drop(objects);
        Objects::of_texts(texts, origin)
    }

    /// The objects read one at a time from `path` (a file or a folder).
    pub fn read(path: &Path, origin: impl Into<String>) -> Result<Objects, ObjectsError> {
        let mut texts = Vec::new();
        crate::objects::for_each(path, &mut |object| {
            if let Some(kind) = KindKey::of(&object) {
                texts.push((kind, store::pruned_text(object)));
            }
        })?;
        Ok(Objects::of_texts(texts, origin))
    }

    /// The objects whose texts, by kind, are `texts`.
    fn of_texts(texts: Vec<(KindKey, String)>, origin: impl Into<String>) -> Objects {
        let mut kinds: HashMap<KindKey, KindStore> = HashMap::new();
        for (kind, text) in texts {
            kinds.entry(kind).or_default().insert(text);
        }
        Objects {
            kinds: kinds
                .into_iter()
                .map(|(kind, store)| (kind, RwLock::new(store)))
                .collect(),
            origin: origin.into(),
        }
    }
}

impl Objects {
    /// Builds the index on `path` of `kind`, if this source holds the kind.
    fn build_index(&self, kind: &KindKey, path: &IndexPath) {
        if let Some(store) = self.kinds.get(kind) {
            write_lock(store).build_index(path);
        }
    }
}

impl Cluster {
    /// Serves `objects` from now on, in place of what was served.
    /// The declared indexes are built first.
    pub fn set(&self, objects: Objects) {
        for (kind, path) in self.wanted().iter() {
            objects.build_index(kind, path);
        }
        self.objects.store(Some(Arc::new(objects)));
        crate::freed::return_to_system();
    }

    /// Keeps the index on `path` of `kind`, from now on and on every later
    /// source's objects. Builds it at once when new: call it off the async
    /// workers.
    pub fn want_index(&self, kind: &KindKey, path: &IndexPath) {
        if !self.wanted().insert((kind.clone(), path.clone())) {
            return;
        }
        if let Some(objects) = self.objects.load_full() {
            objects.build_index(kind, path);
            crate::freed::return_to_system();
        }
        for (cache, _) in self.live.get().map(LiveSource::all).unwrap_or_default() {
            if cache.kind == *kind {
                cache.build_index(path);
            }
        }
    }

    /// Follows the API server through `client` from now on, for the kinds
    /// plugins declare, when no folder is served. Call it inside the Tokio
    /// runtime, before plugins load.
    pub fn go_live(&self, client: kube::Client, config: LiveConfig) {
        if self.live.set(LiveSource::new(client, config)).is_err() {
            tracing::warn!("the cluster is already followed");
        }
    }

    /// The live source, when Wicket follows the API server.
    pub fn live(&self) -> Option<&LiveSource> {
        self.live.get()
    }

    /// The reads of the plugin `name`, counted across its versions.
    pub fn reads_of(&self, name: &str) -> Arc<ReadTally> {
        self.reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Every plugin's reads, by plugin name.
    pub fn reads(&self) -> Vec<(String, Arc<ReadTally>)> {
        let mut reads: Vec<_> = self
            .reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(name, tally)| (name.clone(), tally.clone()))
            .collect();
        reads.sort_by(|(a, _), (b, _)| a.cmp(b));
        reads
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, BTreeSet<(KindKey, IndexPath)>> {
        self.wanted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Serves nothing from now on: every read is `unavailable`.
    pub fn clear(&self) {
        self.objects.store(None);
    }

    /// The object `name` of `kind` in `namespace` (`""`: cluster-scoped).
    pub fn get(
        &self,
        kind: &KindKey,
        namespace: &str,
        name: &str,
        metadata_only: bool,
    ) -> Result<Option<Arc<Document>>, ReadError> {
        self.read(kind, metadata_only, |store| {
            store
                .get(namespace, name)
                .map(|stored| stored.document(metadata_only))
        })
        .map(Option::flatten)
    }

    /// The objects of `kind` in `namespace` (all, if `None`) that
    /// `selector` selects, by namespace and name.
    pub fn list(
        &self,
        kind: &KindKey,
        namespace: Option<&str>,
        selector: &Selector,
        metadata_only: bool,
    ) -> Result<Vec<Arc<Document>>, ReadError> {
        self.read(kind, metadata_only, |store| {
            documents(store.list(namespace, selector), metadata_only)
        })
        .map(Option::unwrap_or_default)
    }

    /// The objects of `kind` whose `path` holds `value`, by namespace and
    /// name. An index no plugin declared (a source swapped in while the
    /// plugin loaded) is built on the first lookup; all are kept up to date.
    pub fn find(
        &self,
        kind: &KindKey,
        path: &IndexPath,
        value: &str,
        metadata_only: bool,
    ) -> Result<Vec<Arc<Document>>, ReadError> {
        let found = |store: &KindStore| {
            store
                .find(path, value)
                .map(|stored| documents(stored, metadata_only))
        };
        self.serve(kind, metadata_only, |store| {
            if let Some(found) = found(&read_lock(store)) {
                return found;
            }
            let mut writing = write_lock(store);
            writing.build_index(path);
            crate::freed::return_to_system();
            found(&writing).unwrap_or_default()
        })
        .map(Option::unwrap_or_default)
    }

    /// `read` on the objects of `kind`; `None` when the source holds none.
    fn read<R>(
        &self,
        kind: &KindKey,
        metadata_only: bool,
        read: impl FnOnce(&KindStore) -> R,
    ) -> Result<Option<R>, ReadError> {
        self.serve(kind, metadata_only, |store| read(&read_lock(store)))
    }

    /// `with` on the store that answers reads of `kind` (declared
    /// `metadata_only` or not): the folder's, or the kind's live cache once
    /// synced. `None` when the folder holds none of the kind.
    fn serve<R>(
        &self,
        kind: &KindKey,
        metadata_only: bool,
        with: impl FnOnce(&RwLock<KindStore>) -> R,
    ) -> Result<Option<R>, ReadError> {
        if let Some(objects) = self.objects.load().as_ref() {
            return Ok(objects.kinds.get(kind).map(with));
        }
        let live = self.live.get().ok_or(ReadError::NoSource)?;
        let cache = live
            .cache(&(kind.clone(), metadata_only))
            .ok_or_else(|| ReadError::NotSynced(kind.clone()))?;
        match cache.state() {
            SyncState::Synced => Ok(Some(with(cache.store()))),
            SyncState::Syncing => Err(ReadError::NotSynced(kind.clone())),
            SyncState::Forbidden(why) => Err(ReadError::Forbidden(kind.clone(), why)),
            SyncState::Failed(why) | SyncState::OverBudget(why) => {
                Err(ReadError::Unavailable(kind.clone(), why))
            }
        }
    }

    /// For `/plugins`: the source, and per kind the objects and bytes held.
    pub fn describe(&self) -> Value {
        let objects = self.objects.load();
        let Some(objects) = objects.as_ref() else {
            let Some(live) = self.live.get() else {
                return json!({ "source": null });
            };
            let kinds: Vec<Value> = live
                .all()
                .into_iter()
                .map(|(cache, users)| cache.describe(users))
                .collect();
            return json!({
                "source": "the API server (a watch cache per declared kind)",
                "memoryBudgetBytes": live.budget(),
                "refusedByBudget": live.refused(),
                "kinds": kinds,
            });
        };
        let kinds: Vec<Value> = objects
            .held()
            .into_iter()
            .map(|held| json!({ "kind": held.kind.to_string(), "objects": held.objects, "bytes": held.bytes }))
            .collect();
        json!({ "source": objects.origin, "kinds": kinds })
    }

    /// For `/readyz`: the followed kinds not synced, with their state and
    /// why.
    pub fn not_synced(&self) -> Vec<Value> {
        let caches = self.live.get().map(LiveSource::all).unwrap_or_default();
        caches
            .into_iter()
            .filter_map(|(cache, _)| {
                let state = cache.state();
                (state != SyncState::Synced).then(|| {
                    json!({ "kind": cache.kind.to_string(), "state": state.as_str(), "reason": state.reason() })
                })
            })
            .collect()
    }

    /// What is held of each kind, by kind; nothing without a source.
    pub fn held(&self) -> Vec<Held> {
        if let Some(objects) = self.objects.load().as_ref() {
            return objects.held();
        }
        let caches = self.live.get().map(LiveSource::all).unwrap_or_default();
        caches
            .into_iter()
            .map(|(cache, _)| Held::of(&cache.kind, cache.store()))
            .collect()
    }
}

impl Objects {
    /// What is held of each kind, by kind.
    fn held(&self) -> Vec<Held> {
        let mut held: Vec<Held> = self
            .kinds
            .iter()
            .map(|(kind, store)| Held::of(kind, store))
            .collect();
        held.sort_by(|a, b| a.kind.cmp(&b.kind));
        held
    }
}

/// What the host holds of one kind, for `/plugins` and `/metrics`.
pub struct Held {
    /// The kind.
    pub kind: KindKey,
    /// Its objects.
    pub objects: usize,
    /// Their JSON text, in bytes.
    pub bytes: usize,
}

impl Held {
    /// What `store`, of `kind`, holds.
    fn of(kind: &KindKey, store: &RwLock<KindStore>) -> Held {
        let store = read_lock(store);
        Held {
            kind: kind.clone(),
            objects: store.len(),
            bytes: store.bytes(),
        }
    }
}

fn documents<'a>(
    stored: impl IntoIterator<Item = &'a Stored>,
    metadata_only: bool,
) -> Vec<Arc<Document>> {
    stored
        .into_iter()
        .map(|stored| stored.document(metadata_only))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(namespace: &str, host: &str) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": namespace, "name": "web"}, "spec": {"rules": [{"host": host}]}})
    }

    /// Whether `kind`'s index on `path` exists in what is served now.
    fn built(cluster: &Cluster, kind: &KindKey, path: &IndexPath) -> bool {
        let objects = cluster.objects.load_full().unwrap();
        read_lock(&objects.kinds[kind]).find(path, "").is_some()
    }

    #[test]
    fn declared_indexes_are_built_before_objects_serve() {
        let cluster = Cluster::default();
        let kind = KindKey::new("networking.k8s.io/v1", "Ingress").unwrap();
        let hosts = IndexPath::parse("/spec/rules/*/host").unwrap();
        cluster.set(Objects::new(vec![ingress("a", "a.example.com")], "first"));
        assert!(!built(&cluster, &kind, &hosts));
        cluster.want_index(&kind, &hosts);
        assert!(
            built(&cluster, &kind, &hosts),
            "built at once on what serves"
        );
        cluster.set(Objects::new(vec![ingress("b", "b.example.com")], "second"));
        assert!(
            built(&cluster, &kind, &hosts),
            "built on the next source before it serves"
        );
        let found = cluster.find(&kind, &hosts, "b.example.com", false).unwrap();
        assert_eq!(found.len(), 1);
        assert!(
            cluster
                .find(&kind, &hosts, "a.example.com", false)
                .unwrap()
                .is_empty()
        );
        cluster.clear();
        assert!(matches!(
            cluster.find(&kind, &hosts, "b.example.com", false),
            Err(ReadError::NoSource)
        ));
    }
}
