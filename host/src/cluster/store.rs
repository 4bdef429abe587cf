//! The objects of one kind, as the host keeps them for plugins to read:
//! pruned of what no admission decision reads, by namespace and name, with
//! their labels for selectors and the indexes plugins declared.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;

use super::index::IndexPath;
use super::selector::Selector;
use crate::document::Document;

/// An object's namespace (empty when cluster-scoped) and name.
pub type ObjectKey = (String, String);

/// The annotation `kubectl apply` keeps the whole object in, again.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One object held.
pub struct Stored {
    document: Arc<Document>,
    /// `apiVersion`, `kind` and `metadata` alone, made on first read by a
    /// plugin that declared the kind `metadata-only`.
    metadata: OnceLock<Arc<Document>>,
    labels: BTreeMap<String, String>,
}

impl Stored {
    /// The object, or only its metadata.
    pub fn document(&self, metadata_only: bool) -> Arc<Document> {
        if !metadata_only {
            return self.document.clone();
        }
        self.metadata
            .get_or_init(|| {
                let object: Value = serde_json::from_str(self.document.text()).unwrap_or_default();
                let part = |name: &str| object.get(name).cloned().unwrap_or_default();
                let view = serde_json::json!({
                    "apiVersion": part("apiVersion"),
                    "kind": part("kind"),
                    "metadata": part("metadata"),
                });
                Arc::new(Document::new(view.to_string()))
            })
            .clone()
    }
}

/// Objects of one kind.
#[derive(Default)]
pub struct KindStore {
    objects: BTreeMap<ObjectKey, Stored>,
    /// For each index path asked for so far: each value, and the objects
    /// holding it.
    indexes: HashMap<IndexPath, HashMap<String, BTreeSet<ObjectKey>>>,
    /// The JSON text held, in bytes.
    bytes: usize,
}

/// An object's labels (those whose value is not a string left out).
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl KindStore {
    /// Adds the object whose text is `text` (made by [`pruned_text`]), or
    /// replaces the one of the same namespace and name.
    pub fn insert(&mut self, text: String) {
        let object: Value = serde_json::from_str(&text).unwrap_or_default();
        let text_at = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let key = (text_at("/metadata/namespace"), text_at("/metadata/name"));
        let labels = labels_of(&object);
        self.remove(&key);
        for (path, index) in &mut self.indexes {
            for value in path.values(&object) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
        let document = Arc::new(Document::new(text));
        self.bytes += document.text().len();
        self.objects.insert(
            key,
            Stored {
                document,
                metadata: OnceLock::new(),
                labels,
            },
        );
    }

    /// Drops the object `key`, if held.
    pub fn remove(&mut self, key: &ObjectKey) {
        let Some(old) = self.objects.remove(key) else {
            return;
        };
        self.bytes -= old.document.text().len();
        if self.indexes.is_empty() {
            return;
        }
        let object: Value = serde_json::from_str(old.document.text()).unwrap_or_default();
        for (path, index) in &mut self.indexes {
            for value in path.values(&object) {
                if let Some(keys) = index.get_mut(&value) {
                    keys.remove(key);
                    if keys.is_empty() {
                        index.remove(&value);
                    }
                }
            }
        }
    }

    /// The object `name` in `namespace`.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Stored> {
        self.objects.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// The objects in `namespace` (all, if `None`) that `selector` selects.
    pub fn list<'a>(
        &'a self,
        namespace: Option<&'a str>,
        selector: &'a Selector,
    ) -> impl Iterator<Item = &'a Stored> + 'a {
        let in_scope: Box<dyn Iterator<Item = &Stored>> = match namespace {
            Some(namespace) => Box::new(
                self.objects
                    .range((namespace.to_owned(), String::new())..)
                    .take_while(move |((object_namespace, _), _)| object_namespace == namespace)
                    .map(|(_, stored)| stored),
            ),
            None => Box::new(self.objects.values()),
        };
        in_scope.filter(|stored| selector.matches(&stored.labels))
    }

    /// The objects whose `path` holds `value`, or `None` when that index
    /// has not been built.
    pub fn find(&self, path: &IndexPath, value: &str) -> Option<Vec<&Stored>> {
        let index = self.indexes.get(path)?;
        let keys = index.get(value).into_iter().flatten();
        Some(keys.filter_map(|key| self.objects.get(key)).collect())
    }

    /// Builds the index on `path` from the objects held; later inserts and
    /// removals keep it up to date.
    pub fn build_index(&mut self, path: &IndexPath) {
        if self.indexes.contains_key(path) {
            return;
        }
        let mut index: HashMap<String, BTreeSet<ObjectKey>> = HashMap::new();
        for (key, stored) in &self.objects {
            let object: Value = serde_json::from_str(stored.document.text()).unwrap_or_default();
            for value in path.values(&object) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
        self.indexes.insert(path.clone(), index);
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// The JSON text held, in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// `object` as a store keeps it: compact JSON text without what no
/// admission decision reads and would only cost memory (`managedFields`,
/// the last-applied annotation).
pub fn pruned_text(mut object: Value) -> String {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED);
        }
    }
    object.to_string()
}

/// A kind's objects to read; a poisoned lock is still consistent (no
/// write panics half-way).
pub fn read_lock(store: &RwLock<KindStore>) -> std::sync::RwLockReadGuard<'_, KindStore> {
    store
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A kind's objects to change (an index to build), as [`read_lock`].
pub fn write_lock(store: &RwLock<KindStore>) -> std::sync::RwLockWriteGuard<'_, KindStore> {
    store
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(namespace: &str, name: &str, hosts: &[&str]) -> Value {
        let rules: Vec<Value> = hosts.iter().map(|host| json!({"host": host})).collect();
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": namespace, "name": name, "labels": {"team": namespace},
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {LAST_APPLIED: "{...}", "keep": "me"}},
            "spec": {"rules": rules}
        })
    }

    fn names(stored: &[&Stored]) -> Vec<String> {
        stored
            .iter()
            .map(|stored| {
                stored
                    .document(false)
                    .get("/metadata/name")
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn indexes_follow_inserts_replacements_and_removals() {
        let mut store = KindStore::default();
        let hosts = IndexPath::parse("/spec/rules/*/host").unwrap();
        store.insert(pruned_text(ingress("a", "web", &["a.example.com"])));
        store.build_index(&hosts);
        store.insert(pruned_text(ingress(
            "b",
            "web",
            &["a.example.com", "b.example.com"],
        )));
        assert_eq!(
            names(&store.find(&hosts, "a.example.com").unwrap()),
            ["\"web\"", "\"web\""]
        );
        store.insert(pruned_text(ingress("b", "web", &["b.example.com"])));
        assert_eq!(store.find(&hosts, "a.example.com").unwrap().len(), 1);
        store.remove(&("a".to_owned(), "web".to_owned()));
        assert!(store.find(&hosts, "a.example.com").unwrap().is_empty());
        assert_eq!(store.len(), 1);
        let unbuilt = IndexPath::parse("/spec/ingressClassName").unwrap();
        assert!(store.find(&unbuilt, "x").is_none());
    }

    #[test]
    fn objects_are_pruned_and_listed_by_namespace_and_labels() {
        let mut store = KindStore::default();
        for namespace in ["a", "b", "c"] {
            store.insert(pruned_text(ingress(namespace, "web", &[])));
        }
        let document = store.get("a", "web").unwrap().document(false);
        assert_eq!(document.get("/metadata/managedFields"), None);
        assert_eq!(
            document.get(&format!(
                "/metadata/annotations/{}",
                LAST_APPLIED.replace('/', "~1")
            )),
            None
        );
        assert_eq!(document.get("/metadata/annotations/keep"), Some("\"me\""));
        let metadata = store.get("a", "web").unwrap().document(true);
        assert_eq!(metadata.get("/spec"), None);
        assert_eq!(metadata.get("/metadata/labels/team"), Some("\"a\""));
        let all = Selector::default();
        assert_eq!(store.list(Some("b"), &all).count(), 1);
        assert_eq!(store.list(None, &all).count(), 3);
        let team_c = Selector::parse("team=c").unwrap();
        assert_eq!(store.list(None, &team_c).count(), 1);
        assert_eq!(store.list(Some("a"), &team_c).count(), 0);
        assert_eq!(
            store.bytes(),
            (0..3).map(|_| document.text().len()).sum::<usize>()
        );
    }
}
