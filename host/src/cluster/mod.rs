//! Other objects of the cluster, kept in the host for plugins to read
//! through the `cluster` interface: by name, by namespace and label
//! selector, or by an index a plugin declared. Reads are lookups in memory,
//! shared by every plugin and every review; a plugin's access (what it
//! declared, what the operator allows) is checked by `plugin::cluster`.
//!
//! The objects come from a source: a folder of files (`folder`) for local
//! development and `wicket check`, or a test case's cluster state.

pub mod allow;
pub mod folder;
pub mod index;
pub mod kind;
pub mod selector;
mod store;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwapOption;
use serde_json::{Value, json};

use crate::document::Document;
use crate::objects::ObjectsError;
use allow::AllowList;
use index::IndexPath;
use kind::KindKey;
use selector::Selector;
use store::{KindStore, Stored};

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
    #[error("Wicket has no cluster source (start it with --cluster-objects DIR)")]
    NoSource,
}

/// The objects plugins read, from whichever source was set.
#[derive(Default)]
pub struct Cluster {
    objects: ArcSwapOption<Objects>,
    /// The indexes loaded plugins declared: built on every source's
    /// objects before they serve, so that no review pays for one (the
    /// first lookup on 10,000 Ingresses took 300 ms when built lazily).
    wanted: Mutex<BTreeSet<(KindKey, IndexPath)>>,
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
        self.read(kind, |store| {
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
        self.read(kind, |store| {
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
        let objects = self.objects.load();
        let Some(objects) = objects.as_ref() else {
            return Err(ReadError::NoSource);
        };
        let Some(store) = objects.kinds.get(kind) else {
            return Ok(Vec::new());
        };
        if let Some(found) = found(&read_lock(store)) {
            return Ok(found);
        }
        let mut writing = write_lock(store);
        writing.build_index(path);
        crate::freed::return_to_system();
        Ok(found(&writing).unwrap_or_default())
    }

    /// `read` on the objects of `kind`; `None` when the source holds none.
    fn read<R>(
        &self,
        kind: &KindKey,
        read: impl FnOnce(&KindStore) -> R,
    ) -> Result<Option<R>, ReadError> {
        let objects = self.objects.load();
        let objects = objects.as_ref().ok_or(ReadError::NoSource)?;
        Ok(objects.kinds.get(kind).map(|store| read(&read_lock(store))))
    }

    /// For `/plugins`: the source, and per kind the objects and bytes held.
    pub fn describe(&self) -> Value {
        let objects = self.objects.load();
        let Some(objects) = objects.as_ref() else {
            return json!({ "source": null });
        };
        let kinds: Vec<Value> = objects
            .held()
            .into_iter()
            .map(|held| json!({ "kind": held.kind.to_string(), "objects": held.objects, "bytes": held.bytes }))
            .collect();
        json!({ "source": objects.origin, "kinds": kinds })
    }

    /// What is held of each kind, by kind; nothing without a source.
    pub fn held(&self) -> Vec<Held> {
        self.objects
            .load()
            .as_ref()
            .map(|objects| objects.held())
            .unwrap_or_default()
    }
}

impl Objects {
    /// What is held of each kind, by kind.
    fn held(&self) -> Vec<Held> {
        let mut held: Vec<Held> = self
            .kinds
            .iter()
            .map(|(kind, store)| {
                let store = read_lock(store);
                Held {
                    kind: kind.clone(),
                    objects: store.len(),
                    bytes: store.bytes(),
                }
            })
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

/// A kind's objects to read; a poisoned lock is still consistent (no
/// write panics half-way).
fn read_lock(store: &RwLock<KindStore>) -> std::sync::RwLockReadGuard<'_, KindStore> {
    store
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A kind's objects to change (an index to build), as [`read_lock`].
fn write_lock(store: &RwLock<KindStore>) -> std::sync::RwLockWriteGuard<'_, KindStore> {
    store
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
