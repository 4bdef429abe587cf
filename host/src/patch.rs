//! Pure: turning a plugin's mutation into an RFC 6902 JSON Patch that is
//! known to apply to the object under review.
//!
//! A plugin may return a patch (cheap when it knows what it changed) or the
//! whole changed object (Wicket diffs it against the original). Either way the
//! result is checked against the real object here, so the API server never
//! receives a patch that fails to apply.

use json_patch::Patch;
use serde_json::Value;

use crate::plugin::types::Mutation;

/// Why a mutation cannot be turned into a patch.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch or object text is not the JSON it claims to be.
    #[error("{what} is not valid JSON")]
    Malformed {
        /// Which text.
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The patch is well-formed but does not apply to the object.
    #[error(transparent)]
    DoesNotApply(#[from] json_patch::PatchError),
}

/// The patch (as JSON bytes) that `mutation` makes to `object`, or `None`
/// when it changes nothing.
pub fn checked(mutation: &Mutation, object: &str) -> Result<Option<Vec<u8>>, PatchError> {
    let patch = match mutation {
        Mutation::JsonPatch(text) => {
            let patch: Patch = parse("the patch", text)?;
            if patch.0.is_empty() {
                return Ok(None);
            }
            let mut document: Value = parse("the object", object)?;
            json_patch::patch(&mut document, &patch)?;
            patch
        }
        Mutation::Object(text) => {
            let changed: Value = parse("the returned object", text)?;
            let original: Value = parse("the object", object)?;
            json_patch::diff(&original, &changed)
        }
    };
    if patch.0.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        serde_json::to_vec(&patch).expect("a JSON Patch always serialises"),
    ))
}

fn parse<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T, PatchError> {
    serde_json::from_str(text).map_err(|source| PatchError::Malformed { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POD: &str = r#"{"metadata":{"name":"web","labels":{"app":"web"}},"spec":{"containers":[{"name":"c"}]}}"#;

    fn apply(object: &str, patch: &[u8]) -> Value {
        let mut document: Value = serde_json::from_str(object).unwrap();
        let patch: Patch = serde_json::from_slice(patch).unwrap();
        json_patch::patch(&mut document, &patch).unwrap();
        document
    }

    #[test]
    fn a_patch_that_applies_is_returned() {
        let mutation = Mutation::JsonPatch(
            r#"[{"op":"add","path":"/metadata/labels/team","value":"a"}]"#.into(),
        );
        let patch = checked(&mutation, POD).unwrap().unwrap();
        assert_eq!(apply(POD, &patch)["metadata"]["labels"]["team"], "a");
    }

    #[test]
    fn an_object_is_diffed_into_a_patch_that_adds_missing_parents() {
        let mut changed: Value = serde_json::from_str(POD).unwrap();
        changed["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
        let patch = checked(&Mutation::Object(changed.to_string()), POD)
            .unwrap()
            .unwrap();
        let ops: Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(ops[0]["path"], "/spec/volumes", "the array is added whole");
        assert_eq!(apply(POD, &patch), changed);
    }

    #[test]
    fn no_change_is_no_patch() {
        assert_eq!(
            checked(&Mutation::JsonPatch("[]".into()), POD).unwrap(),
            None
        );
        assert_eq!(checked(&Mutation::Object(POD.into()), POD).unwrap(), None);
    }

    #[test]
    fn bad_patches_are_refused() {
        let missing = Mutation::JsonPatch(r#"[{"op":"remove","path":"/spec/nothing"}]"#.into());
        assert!(matches!(
            checked(&missing, POD),
            Err(PatchError::DoesNotApply(_))
        ));
        let garbage = Mutation::JsonPatch("nope".into());
        assert!(matches!(
            checked(&garbage, POD),
            Err(PatchError::Malformed { .. })
        ));
        let bad_op = Mutation::JsonPatch(r#"[{"op":"frobnicate","path":"/a"}]"#.into());
        assert!(matches!(
            checked(&bad_op, POD),
            Err(PatchError::Malformed { .. })
        ));
        let bad_object = Mutation::Object("{".into());
        assert!(matches!(
            checked(&bad_object, POD),
            Err(PatchError::Malformed { .. })
        ));
    }
}
