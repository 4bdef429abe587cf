//! What a case expects of the answer, and what differs: each expectation
//! is checked on the `AdmissionReview` answer exactly as `serve` sends it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::patch;
use crate::text::with_causes;

/// The answer a case expects; a field left out is not checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Expect {
    /// `response.allowed`.
    pub allowed: Option<bool>,
    /// `response.status.code` of a denial.
    pub code: Option<u16>,
    /// A substring of `response.status.message`.
    pub message: Option<String>,
    /// One substring per expected warning; `[]` expects none.
    pub warnings: Option<Vec<String>>,
    /// A substring of each audit annotation's value, by key.
    pub audit_annotations: Option<BTreeMap<String, String>>,
    /// Whether the answer carries a patch.
    pub mutated: Option<bool>,
    /// The patch operations, exactly.
    pub patch: Option<Vec<Value>>,
    /// The object once the patch is applied (the object unchanged when there
    /// is no patch).
    pub patched: Option<Value>,
}

/// How `answer` (an `AdmissionReview` answer to `review`) differs from
/// `expect`: one line or block per difference, none when the case passes.
pub fn differences(expect: &Expect, review: &Value, answer: &Value) -> Vec<String> {
    let response = &answer["response"];
    let mut found = Vec::new();
    if let Some(allowed) = expect.allowed
        && response["allowed"] != allowed
    {
        found.push(format!(
            "allowed: expected {allowed}, got {}{}",
            response["allowed"],
            denial_note(response)
        ));
    }
    if let Some(code) = expect.code
        && response["status"]["code"] != code
    {
        found.push(format!(
            "code: expected {code}, got {}",
            response["status"]["code"]
        ));
    }
    if let Some(message) = &expect.message {
        let actual = response["status"]["message"].as_str().unwrap_or_default();
        if !actual.contains(message.as_str()) {
            found.push(format!(
                "message: expected one containing {message:?}, got {actual:?}"
            ));
        }
    }
    if let Some(expected) = &expect.warnings {
        found.extend(warning_differences(expected, response));
    }
    for (key, expected) in expect.audit_annotations.iter().flatten() {
        match response["auditAnnotations"][key].as_str() {
            Some(value) if value.contains(expected.as_str()) => {}
            actual => found.push(format!(
                "audit annotation {key}: expected one containing {expected:?}, got {actual:?}"
            )),
        }
    }
    let patch = match decoded_patch(response) {
        Ok(patch) => patch,
        Err(problem) => {
            found.push(with_causes(&problem));
            return found;
        }
    };
    if let Some(mutated) = expect.mutated
        && patch.is_some() != mutated
    {
        found.push(match &patch {
            Some(patch) => format!("mutated: expected no patch, got {patch}"),
            None => "mutated: expected a patch, got none".to_owned(),
        });
    }
    if let Some(expected) = &expect.patch {
        let expected = Value::Array(expected.clone());
        match &patch {
            Some(actual) if *actual == expected => {}
            actual => found.push(format!(
                "patch differs:\n{}",
                diff(&expected, actual.as_ref().unwrap_or(&Value::Null))
            )),
        }
    }
    if let Some(expected) = &expect.patched {
        match patched(&review["request"]["object"], patch.as_ref()) {
            Ok(actual) if actual == *expected => {}
            Ok(actual) => found.push(format!(
                "patched object differs:\n{}",
                diff(expected, &actual)
            )),
            Err(problem) => found.push(with_causes(&problem)),
        }
    }
    found
}

/// The denial's message, to say why a request expected allowed was not.
fn denial_note(response: &Value) -> String {
    match response["status"]["message"].as_str() {
        Some(message) => format!(" ({message})"),
        None => String::new(),
    }
}

fn warning_differences(expected: &[String], response: &Value) -> Vec<String> {
    let actual: Vec<&str> = response["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if expected.is_empty() && !actual.is_empty() {
        return vec![format!("warnings: expected none, got {actual:?}")];
    }
    expected
        .iter()
        .filter(|expected| {
            !actual
                .iter()
                .any(|warning| warning.contains(expected.as_str()))
        })
        .map(|expected| format!("warnings: expected one containing {expected:?}, got {actual:?}"))
        .collect()
}

/// Why an answer's patch could not be checked.
#[derive(Debug, thiserror::Error)]
enum PatchProblem {
    #[error("the patch is not base64")]
    NotBase64(#[source] base64::DecodeError),
    #[error("the patch is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("the patch does not apply to the object")]
    DoesNotApply(#[source] patch::PatchError),
}

/// The answer's patch, as JSON.
fn decoded_patch(response: &Value) -> Result<Option<Value>, PatchProblem> {
    let Some(encoded) = response["patch"].as_str() else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(PatchProblem::NotBase64)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(PatchProblem::NotJson)
}

/// `object` with `patch` applied.
fn patched(object: &Value, patch: Option<&Value>) -> Result<Value, PatchProblem> {
    let mut object = object.clone();
    if let Some(patch) = patch {
        patch::apply_text(&mut object, patch.to_string().as_bytes())
            .map_err(PatchProblem::DoesNotApply)?;
    }
    Ok(object)
}

/// A unified diff of `expected` and `actual`, pretty-printed.
fn diff(expected: &Value, actual: &Value) -> String {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    let (expected, actual) = (pretty(expected), pretty(actual));
    similar::TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(response: Value) -> Value {
        json!({ "response": response })
    }

    #[test]
    fn a_matching_answer_has_no_differences() {
        let expect = Expect {
            allowed: Some(false),
            code: Some(403),
            message: Some("owner".into()),
            warnings: Some(vec![]),
            mutated: Some(false),
            ..Expect::default()
        };
        let answer = answer(json!({
            "allowed": false, "status": {"code": 403, "message": "require-owner: no owner label"}
        }));
        assert_eq!(
            differences(&expect, &json!({}), &answer),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_patched_object_that_differs_is_shown_as_a_diff() {
        let review = json!({"request": {"object": {"metadata": {"name": "a"}}}});
        let patch = json!([{"op": "add", "path": "/metadata/labels", "value": {"x": "1"}}]);
        let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
        let expect = Expect {
            patched: Some(json!({"metadata": {"name": "a", "labels": {"x": "2"}}})),
            ..Expect::default()
        };
        let found = differences(
            &expect,
            &review,
            &answer(json!({"allowed": true, "patch": encoded})),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("-      \"x\": \"2\""), "{}", found[0]);
        assert!(found[0].contains("+      \"x\": \"1\""), "{}", found[0]);
    }
}
