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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;
use serde_json::{Value, json};

use crate::document::Document;
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
        let texts: Vec<(KindKey, String)> = objects
            .iter()
            .filter_map(|object| Some((KindKey::of(object)?, store::pruned_text(object.clone()))))
            .collect();
        drop(objects);
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

impl Cluster {
    /// Serves `objects` from now on, in place of what was served.
    pub fn set(&self, objects: Objects) {
        self.objects.store(Some(Arc::new(objects)));
        crate::freed::return_to_system();
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
    /// name. The index is built on the first lookup and kept up to date.
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
        let mut writing = store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
        let mut kinds: Vec<(&KindKey, Value)> = objects
            .kinds
            .iter()
            .map(|(kind, store)| {
                let store = read_lock(store);
                (kind, json!({ "kind": kind.to_string(), "objects": store.len(), "bytes": store.bytes() }))
            })
            .collect();
        kinds.sort_by(|a, b| a.0.cmp(b.0));
        json!({
            "source": objects.origin,
            "kinds": kinds.into_iter().map(|(_, kind)| kind).collect::<Vec<_>>(),
        })
    }
}

/// A kind's objects to read; a poisoned lock is still consistent (no
/// write panics half-way).
fn read_lock(store: &RwLock<KindStore>) -> std::sync::RwLockReadGuard<'_, KindStore> {
    store
        .read()
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
