//! Index paths: where in an object the values a plugin looks objects up by
//! are, as a JSON Pointer whose `*` segments stand for every element of an
//! array (or value of a map): `/spec/rules/*/host` indexes an Ingress by
//! each of its hosts.

use std::fmt;

use serde_json::Value;

/// A checked index path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexPath {
    text: String,
    /// Its segments, unescaped (`~1` → `/`, `~0` → `~`); `None` for `*`.
    segments: Vec<Option<String>>,
}

/// An index path that is not a pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("index path {0:?} must be a JSON Pointer such as /spec/rules/*/host")]
pub struct IndexPathError(String);

impl IndexPath {
    /// Parses `text`: `/`-separated segments, at least one.
    pub fn parse(text: &str) -> Result<IndexPath, IndexPathError> {
        let bad = || IndexPathError(text.to_owned());
        let rest = text.strip_prefix('/').ok_or_else(bad)?;
        let segments = rest
            .split('/')
            .map(|segment| match segment {
                "*" => Ok(None),
                "" => Err(bad()),
                segment => Ok(Some(segment.replace("~1", "/").replace("~0", "~"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(IndexPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// The values at this path in `object`: strings as they are, numbers and
    /// booleans as their JSON text; duplicates kept once.
    pub fn values(&self, object: &Value) -> Vec<String> {
        let mut values = Vec::new();
        collect(object, &self.segments, &mut values);
        values.sort();
        values.dedup();
        values
    }
}

fn collect(value: &Value, segments: &[Option<String>], out: &mut Vec<String>) {
    let Some((segment, rest)) = segments.split_first() else {
        match value {
            Value::String(text) => out.push(text.clone()),
            Value::Number(_) | Value::Bool(_) => out.push(value.to_string()),
            _ => {}
        }
        return;
    };
    match (segment, value) {
        (None, Value::Array(items)) => items.iter().for_each(|item| collect(item, rest, out)),
        (None, Value::Object(map)) => map.values().for_each(|item| collect(item, rest, out)),
        (Some(key), Value::Object(map)) => {
            if let Some(item) = map.get(key) {
                collect(item, rest, out);
            }
        }
        (Some(index), Value::Array(items)) => {
            if let Some(item) = index
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index))
            {
                collect(item, rest, out);
            }
        }
        _ => {}
    }
}

impl fmt::Display for IndexPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_reach_every_element() {
        let ingress = json!({"spec": {"rules": [{"host": "a.example.com"}, {"http": {}}, {"host": "b.example.com"}, {"host": "a.example.com"}]}});
        let hosts = IndexPath::parse("/spec/rules/*/host").unwrap();
        assert_eq!(hosts.values(&ingress), ["a.example.com", "b.example.com"]);
        let labels = json!({"metadata": {"labels": {"a/b": "x", "n": 2}}});
        assert_eq!(
            IndexPath::parse("/metadata/labels/a~1b")
                .unwrap()
                .values(&labels),
            ["x"]
        );
        assert_eq!(
            IndexPath::parse("/metadata/labels/*")
                .unwrap()
                .values(&labels),
            ["2", "x"]
        );
        assert!(
            IndexPath::parse("/spec/rules/9/host")
                .unwrap()
                .values(&ingress)
                .is_empty()
        );
        for bad in ["", "spec", "/spec//host", "/"] {
            assert!(IndexPath::parse(bad).is_err(), "{bad}");
        }
    }
}
