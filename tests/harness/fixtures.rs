//! Captured AdmissionReviews from `tests/fixtures/`, and edits of them.

use serde_json::Value;

use crate::builds::workspace_root;

/// A captured AdmissionReview from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = workspace_root().join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// `json` without the whitespace between its tokens (keys keep their
/// order): the fixtures are stored indented for reading, and the API server
/// sends compact JSON.
pub fn compact(json: &[u8]) -> Vec<u8> {
    let mut compacted = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        match (in_string, byte) {
            (false, b' ' | b'\t' | b'\n' | b'\r') => continue,
            (false, b'"') => in_string = true,
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            _ => {}
        }
        compacted.push(byte);
    }
    compacted
}

/// Every fixture's file name.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("tests/fixtures"))
        .expect("tests/fixtures")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// A fixture with its uid replaced, for telling concurrent answers apart.
pub fn fixture_with_uid(name: &str, uid: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture(name)).unwrap();
    review["request"]["uid"] = uid.into();
    serde_json::to_vec(&review).unwrap()
}

/// The fixture `name` with `edit` applied to its `request`.
pub fn edited_fixture(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture(name)).unwrap();
    edit(&mut review["request"]);
    serde_json::to_vec(&review).unwrap()
}

/// `request` with its object replaced, as the API server sends it when it
/// reinvokes a mutating webhook after a change.
pub fn with_object(request: &[u8], object: &Value) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(request).unwrap();
    review["request"]["object"] = object.clone();
    serde_json::to_vec(&review).unwrap()
}

/// Applies a patch to a request's object.
pub fn apply(request: &[u8], patch: &json_patch::Patch) -> Value {
    let request: Value = serde_json::from_slice(request).unwrap();
    let mut object = request["request"]["object"].clone();
    json_patch::patch(&mut object, patch).unwrap();
    object
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn compacting_drops_whitespace_between_tokens_only() {
        let indented = b"{\n  \"a\" : \"x y\\\" z\\\\\",\n\t\"b\": [1, 2]\n}\n";
        assert_eq!(
            compact(indented),
            br#"{"a":"x y\" z\\","b":[1,2]}"#.to_vec()
        );
    }
}
