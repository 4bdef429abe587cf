//! A case file: one case, or a list of them, in YAML or JSON. A case names
//! a review (a file beside it, such as a captured fixture, or one written
//! inline), fields to set or remove in it (JSON pointers from the review's
//! root), the cluster state its plugin reads (`cluster:` objects inline or
//! files of them), and the answer expected ([`Expect`]).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::expect::Expect;
use crate::objects::ObjectsError;

/// One case, ready to run.
#[derive(Debug)]
pub struct Case {
    /// Its `name`, or its file's name.
    pub name: String,
    /// The review to send, edited.
    pub review: Value,
    /// The objects its plugin reads of the cluster, if it says.
    pub cluster: Option<Vec<Value>>,
    /// What the answer must be.
    pub expect: Expect,
}

/// A case as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Spec {
    name: Option<String>,
    review: Source,
    #[serde(default)]
    set: BTreeMap<String, Value>,
    #[serde(default)]
    remove: Vec<String>,
    cluster: Option<Vec<ClusterEntry>>,
    expect: Expect,
}

/// An entry of a `cluster:` list: a file or folder of objects (relative to
/// the file naming it), or an object written inline.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ClusterEntry {
    /// YAML or JSON objects.
    Path(PathBuf),
    /// One object (or a `List`).
    Inline(Value),
}

/// Where a case's review comes from.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Source {
    /// A JSON file, relative to the case file.
    File(PathBuf),
    /// The review itself.
    Inline(Value),
}

/// Why a case file gave no cases.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// A file could not be read.
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] io::Error),
    /// The case file is not YAML.
    #[error("not YAML")]
    Yaml(#[source] serde_saphyr::Error),
    /// A file is not JSON.
    #[error("{} is not JSON", .0.display())]
    Json(PathBuf, #[source] serde_json::Error),
    /// A case does not have the fields a case has.
    #[error("case {0} is not a case")]
    Shape(usize, #[source] serde_json::Error),
    /// A `set` pointer goes through something that is not an object.
    #[error("cannot set {0}: a parent is not an object or an array")]
    Set(String),
    /// A `remove` pointer names nothing.
    #[error("cannot remove {0}: there is nothing there")]
    Remove(String),
    /// A file of cluster objects does not read.
    #[error("cluster")]
    Objects(#[from] ObjectsError),
    /// An inline cluster object lacks what objects have.
    #[error("cluster: entry {0} is not a Kubernetes object ({1})")]
    NotAnObject(usize, &'static str),
}

/// The objects of a `cluster:` list; paths are relative to `dir`.
pub fn cluster_objects(entries: Vec<ClusterEntry>, dir: &Path) -> Result<Vec<Value>, CaseError> {
    let mut objects = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        match entry {
            ClusterEntry::Path(path) => objects.extend(crate::objects::read_path(&dir.join(path))?),
            ClusterEntry::Inline(object) => objects.extend(
                crate::objects::flatten(vec![object])
                    .map_err(|(_, why)| CaseError::NotAnObject(index + 1, why))?,
            ),
        }
    }
    Ok(objects)
}

/// Reads the cases in `path`.
pub fn read(path: &Path) -> Result<Vec<Case>, CaseError> {
    let text =
        std::fs::read_to_string(path).map_err(|error| CaseError::Read(path.into(), error))?;
    let parsed: Value = match path.extension().and_then(|extension| extension.to_str()) {
        Some("json") => {
            serde_json::from_str(&text).map_err(|error| CaseError::Json(path.into(), error))?
        }
        _ => serde_saphyr::from_str(&text).map_err(CaseError::Yaml)?,
    };
    let (specs, listed) = match parsed {
        Value::Array(specs) => (specs, true),
        spec => (vec![spec], false),
    };
    let stem = default_name(path);
    let dir = path.parent().unwrap_or(Path::new("."));
    specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            let spec: Spec =
                serde_json::from_value(spec).map_err(|error| CaseError::Shape(index + 1, error))?;
            let name = match (spec.name.clone(), listed) {
                (Some(name), _) => name,
                (None, true) => format!("{stem}[{}]", index + 1),
                (None, false) => stem.clone(),
            };
            Ok(Case {
                name,
                review: review_of(spec.review, dir, &spec.set, &spec.remove)?,
                cluster: spec
                    .cluster
                    .map(|entries| cluster_objects(entries, dir))
                    .transpose()?,
                expect: spec.expect,
            })
        })
        .collect()
}

/// The name of a case (or of a file of cases) that does not give one: its
/// file's name without the extension.
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned())
}

/// The review of a case: its source, with `set` and `remove` applied.
fn review_of(
    source: Source,
    dir: &Path,
    set: &BTreeMap<String, Value>,
    remove: &[String],
) -> Result<Value, CaseError> {
    let mut review = match source {
        Source::Inline(review) => review,
        Source::File(file) => {
            let file = dir.join(file);
            let text =
                std::fs::read(&file).map_err(|error| CaseError::Read(file.clone(), error))?;
            serde_json::from_slice(&text).map_err(|error| CaseError::Json(file, error))?
        }
    };
    for (pointer, value) in set {
        set_at(&mut review, pointer, value.clone())
            .ok_or_else(|| CaseError::Set(pointer.clone()))?;
    }
    for pointer in remove {
        remove_at(&mut review, pointer).ok_or_else(|| CaseError::Remove(pointer.clone()))?;
    }
    Ok(review)
}

/// The reference tokens of a JSON pointer, unescaped.
fn tokens(pointer: &str) -> impl Iterator<Item = String> {
    pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
}

/// Sets `pointer` to `value`, creating missing objects on the way (`-`
/// appends to an array).
fn set_at(root: &mut Value, pointer: &str, value: Value) -> Option<()> {
    let mut target = root;
    for token in tokens(pointer) {
        if target.is_null() {
            *target = Value::Object(Default::default());
        }
        target = match target {
            Value::Object(object) => object.entry(token).or_insert(Value::Null),
            Value::Array(array) => {
                let index = match token.as_str() {
                    "-" => {
                        array.push(Value::Null);
                        array.len() - 1
                    }
                    index => index.parse::<usize>().ok()?,
                };
                array.get_mut(index)?
            }
            _ => return None,
        };
    }
    *target = value;
    Some(())
}

/// Removes what `pointer` names.
fn remove_at(root: &mut Value, pointer: &str) -> Option<()> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let last = tokens(&format!("/{last}")).next()?;
    match root.pointer_mut(parent)? {
        Value::Object(object) => object.remove(&last).map(drop),
        Value::Array(array) => {
            let index = last
                .parse::<usize>()
                .ok()
                .filter(|&index| index < array.len())?;
            array.remove(index);
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_creates_missing_objects_and_remove_takes_fields_away() {
        let mut review = json!({"request": {"object": {"metadata": {"name": "a"}}}});
        set_at(
            &mut review,
            "/request/object/metadata/annotations/example.com~1inject",
            json!("true"),
        )
        .unwrap();
        set_at(&mut review, "/request/operation", json!("DELETE")).unwrap();
        remove_at(&mut review, "/request/object/metadata/name").unwrap();
        assert_eq!(
            review,
            json!({"request": {"operation": "DELETE", "object": {"metadata": {
                "annotations": {"example.com/inject": "true"}}}}})
        );
        assert!(set_at(&mut review, "/request/operation/x", json!(1)).is_none());
        assert!(remove_at(&mut review, "/request/nothing").is_none());
    }
}
