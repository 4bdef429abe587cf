//! Kubernetes objects read from files, as `kubectl apply -f` reads them:
//! YAML (several documents per file) or JSON, `List` kinds flattened, empty
//! documents skipped, folders walked in name order. The cluster folder
//! source (`--cluster-objects`) and test cases' cluster state read objects
//! this way.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_json::value::RawValue;

/// Why objects could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// A file or folder could not be read.
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] io::Error),
    /// A file is neither YAML nor JSON.
    #[error("{} does not parse", .0.display())]
    Yaml(PathBuf, #[source] Box<serde_saphyr::Error>),
    /// A file is not JSON.
    #[error("{} is not JSON", .0.display())]
    Json(PathBuf, #[source] serde_json::Error),
    /// A document is not an object with `apiVersion`, `kind` and `metadata.name`.
    #[error("{}: document {number} is not a Kubernetes object ({why})", .file.display())]
    NotAnObject {
        /// The file.
        file: PathBuf,
        /// Which document of the file, from 1.
        number: usize,
        /// What it lacks.
        why: &'static str,
    },
}

/// Whether `path` names a file of objects: `.yaml`, `.yml` or `.json`.
pub fn is_object_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|extension| extension.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The objects in `path`: a file, or every object file under a folder (its
/// sub-folders included, hidden entries such as a ConfigMap volume's
/// `..data` left out).
pub fn read_path(path: &Path) -> Result<Vec<Value>, ObjectsError> {
    let mut objects = Vec::new();
    for_each(path, &mut |object| objects.push(object))?;
    Ok(objects)
}

/// Hands each object in `path` (as [`read_path`] reads them) to `each`, one
/// at a time: a JSON `List` is parsed an item at a time, so that a large
/// one (12 MB of Ingresses) never exists whole as parsed values, which take
/// ~20 times its text.
pub fn for_each(path: &Path, each: &mut dyn FnMut(Value)) -> Result<(), ObjectsError> {
    let metadata =
        std::fs::metadata(path).map_err(|error| ObjectsError::Read(path.into(), error))?;
    if !metadata.is_dir() {
        return read_file(path, each);
    }
    for file in files_under(path)? {
        read_file(&file, each)?;
    }
    Ok(())
}

/// The object files under `dir`, by path.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, ObjectsError> {
    let read_error = |error| ObjectsError::Read(dir.into(), error);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else if is_object_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A JSON document's `kind` and, for a `List`, its items as text.
#[derive(serde::Deserialize)]
struct ListHead<'a> {
    #[serde(borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

/// Hands each object of one file to `each`.
fn read_file(path: &Path, each: &mut dyn FnMut(Value)) -> Result<(), ObjectsError> {
    let text =
        std::fs::read_to_string(path).map_err(|error| ObjectsError::Read(path.into(), error))?;
    let json_error = |error| ObjectsError::Json(path.into(), error);
    let not_an_object = |(number, why)| ObjectsError::NotAnObject {
        file: path.into(),
        number,
        why,
    };
    if path.extension().and_then(|extension| extension.to_str()) != Some("json") {
        let documents = serde_saphyr::from_multiple(&text)
            .map_err(|error| ObjectsError::Yaml(path.into(), Box::new(error)))?;
        flatten(documents)
            .map_err(not_an_object)?
            .into_iter()
            .for_each(each);
        return Ok(());
    }
    let head: ListHead = serde_json::from_str(&text).map_err(json_error)?;
    match (head.kind, head.items) {
        (Some(kind), Some(items)) if kind.ends_with("List") => {
            for item in items {
                let item: Value = serde_json::from_str(item.get()).map_err(json_error)?;
                each(checked(item).map_err(|why| not_an_object((1, why)))?);
            }
        }
        _ => {
            let document: Value = serde_json::from_str(&text).map_err(json_error)?;
            flatten(vec![document])
                .map_err(not_an_object)?
                .into_iter()
                .for_each(each);
        }
    }
    Ok(())
}

/// `documents` with `List`s replaced by their items and empty documents
/// left out; every one checked to be an object; on error the document's
/// number (from 1) and what it lacks.
pub fn flatten(documents: Vec<Value>) -> Result<Vec<Value>, (usize, &'static str)> {
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let number = index + 1;
        match document {
            Value::Null => {}
            Value::Object(mut map) if is_list(&map) => match map.remove("items") {
                Some(Value::Array(items)) => {
                    for item in items {
                        objects.push(checked(item).map_err(|why| (number, why))?);
                    }
                }
                _ => return Err((number, "a List without items")),
            },
            document => objects.push(checked(document).map_err(|why| (number, why))?),
        }
    }
    Ok(objects)
}

/// A `List` (`v1 List`, or any `...List` kind with `items`, as `kubectl get
/// -o yaml` prints them).
fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("List"))
        && map.contains_key("items")
}

/// `object` if it has what every Kubernetes object has.
fn checked(object: Value) -> Result<Value, &'static str> {
    if !object.is_object() {
        return Err("not a mapping");
    }
    if !object.get("apiVersion").is_some_and(Value::is_string) {
        return Err("no apiVersion");
    }
    if !object.get("kind").is_some_and(Value::is_string) {
        return Err("no kind");
    }
    if !object
        .pointer("/metadata/name")
        .is_some_and(Value::is_string)
    {
        return Err("no metadata.name");
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_flattened_and_empty_documents_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "# comment only\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: team-b}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("more")).unwrap();
        std::fs::write(
            dir.path().join("more/c.json"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-c"}})
                .to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("more/d.json"),
            json!({"apiVersion": "v1", "kind": "NamespaceList", "items": [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-d"}}]})
            .to_string(),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not objects").unwrap();
        let names: Vec<String> = read_path(dir.path())
            .unwrap()
            .iter()
            .map(|object| object["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["team-a", "team-b", "team-c", "team-d"]);
    }

    #[test]
    fn a_bad_document_names_its_file_and_number() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: Pod\n",
        )
        .unwrap();
        let error = read_path(&file).unwrap_err().to_string();
        assert!(
            error.contains("bad.yaml")
                && error.contains("document 2")
                && error.contains("apiVersion"),
            "{error}"
        );
        std::fs::write(&file, "a: [unclosed\n").unwrap();
        assert!(matches!(read_path(&file), Err(ObjectsError::Yaml(..))));
    }
}
