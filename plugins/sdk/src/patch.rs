//! Building RFC 6902 JSON Patches without hand-writing paths.

use serde::Serialize;

/// A JSON Patch under construction, kept as JSON text.
///
/// Paths are given as segments (`&["metadata", "labels", key]`) and escaped
/// here (`/` → `~1`, `~` → `~0`). The container-aware helpers
/// [`Patch::insert`] and [`Patch::push`] create a missing map or list instead
/// of adding into it, which is what a pod without `metadata.annotations` or
/// `spec.volumes` needs; the patch remembers what it created, so a second
/// insert into the same new map adds a key.
///
/// # Panics
///
/// Adding a value whose `Serialize` implementation fails (a map with
/// non-string keys) panics: that is a bug in the plugin, and Wicket reports
/// it as a plugin failure.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    text: String,
    created: Vec<String>,
}

impl Patch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no operation was added.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Adds `value` at `path`: a new map key, a list position (`"-"` appends),
    /// or a replacement of an existing key.
    pub fn add(&mut self, path: &[&str], value: &impl Serialize) -> &mut Self {
        self.op("add", &pointer(path), Some(value))
    }

    /// Replaces the value at `path`, which must exist.
    pub fn replace(&mut self, path: &[&str], value: &impl Serialize) -> &mut Self {
        self.op("replace", &pointer(path), Some(value))
    }

    /// Removes the value at `path`, which must exist.
    pub fn remove(&mut self, path: &[&str]) -> &mut Self {
        self.op::<()>("remove", &pointer(path), None)
    }

    /// Sets `key` to `value` in the map at `map` (labels, annotations, data).
    /// `map_exists` says whether the *original* object has that map; when it
    /// does not, the first insert creates it.
    pub fn insert(
        &mut self,
        map: &[&str],
        map_exists: bool,
        key: &str,
        value: &impl Serialize,
    ) -> &mut Self {
        let map_pointer = pointer(map);
        if map_exists || self.created.contains(&map_pointer) {
            let mut path = map_pointer;
            push_segment(&mut path, key);
            return self.op("add", &path, Some(value));
        }
        let mut one = serde_json::Map::new();
        one.insert(key.to_owned(), to_value(value));
        self.op("add", &map_pointer, Some(&one));
        self.created.push(map_pointer);
        self
    }

    /// Appends `value` to the list at `list` (containers, volumes, ...).
    /// `list_exists` says whether the *original* object has that list; when it
    /// does not, the first push creates it.
    pub fn push(&mut self, list: &[&str], list_exists: bool, value: &impl Serialize) -> &mut Self {
        let list_pointer = pointer(list);
        if list_exists || self.created.contains(&list_pointer) {
            let mut path = list_pointer;
            push_segment(&mut path, "-");
            return self.op("add", &path, Some(value));
        }
        self.op("add", &list_pointer, Some(&[to_value(value)]));
        self.created.push(list_pointer);
        self
    }

    /// The patch as JSON text (`[...]`).
    pub fn to_json(&self) -> String {
        format!("[{}]", self.text)
    }

    fn op<T: Serialize + ?Sized>(&mut self, op: &str, path: &str, value: Option<&T>) -> &mut Self {
        if !self.text.is_empty() {
            self.text.push(',');
        }
        self.text.push_str(r#"{"op":""#);
        self.text.push_str(op);
        self.text.push_str(r#"","path":"#);
        self.text.push_str(&to_json(path));
        if let Some(value) = value {
            self.text.push_str(r#","value":"#);
            self.text.push_str(&to_json(value));
        }
        self.text.push('}');
        self
    }
}

/// The JSON Pointer (RFC 6901) for `segments`, each escaped.
pub fn pointer(segments: &[&str]) -> String {
    let mut pointer = String::new();
    for segment in segments {
        push_segment(&mut pointer, segment);
    }
    pointer
}

/// Appends `/` and `segment`, escaped, to `pointer`.
pub(crate) fn push_segment(pointer: &mut String, segment: &str) {
    pointer.push('/');
    for c in segment.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("patch values serialise to JSON")
}

fn to_value<T: Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("patch values serialise to JSON")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(patch: &Patch) -> Value {
        serde_json::from_str(&patch.to_json()).unwrap()
    }

    #[test]
    fn pointer_escapes_slash_and_tilde() {
        assert_eq!(
            pointer(&["metadata", "annotations", "example.com/a~b"]),
            "/metadata/annotations/example.com~1a~0b"
        );
    }

    #[test]
    fn insert_creates_a_missing_map_once_then_adds_keys() {
        let mut patch = Patch::new();
        patch
            .insert(&["metadata", "annotations"], false, "a/b", &"1")
            .insert(&["metadata", "annotations"], false, "c", &"2");
        assert_eq!(
            parse(&patch),
            json!([
                {"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}},
                {"op": "add", "path": "/metadata/annotations/c", "value": "2"},
            ])
        );
    }

    #[test]
    fn push_creates_a_missing_list_once_then_appends() {
        let mut patch = Patch::new();
        patch
            .push(&["spec", "volumes"], false, &json!({"name": "a"}))
            .push(&["spec", "volumes"], false, &json!({"name": "b"}))
            .push(&["spec", "containers"], true, &json!({"name": "c"}));
        assert_eq!(
            parse(&patch),
            json!([
                {"op": "add", "path": "/spec/volumes", "value": [{"name": "a"}]},
                {"op": "add", "path": "/spec/volumes/-", "value": {"name": "b"}},
                {"op": "add", "path": "/spec/containers/-", "value": {"name": "c"}},
            ])
        );
    }

    #[test]
    fn replace_and_remove_carry_the_right_fields() {
        let mut patch = Patch::new();
        assert!(patch.is_empty());
        patch
            .replace(&["spec", "replicas"], &3)
            .remove(&["spec", "paused"]);
        assert_eq!(
            parse(&patch),
            json!([
                {"op": "replace", "path": "/spec/replicas", "value": 3},
                {"op": "remove", "path": "/spec/paused"},
            ])
        );
    }
}
