//! The API server's rules as an oracle: every answer a test reviews is
//! checked as the API server would check it before using it.

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use serde_json::Value;

/// An answer that passed every API-server check.
#[derive(Debug)]
pub struct Reviewed {
    /// The answer's `response` object.
    pub response: Value,
    /// Its patch, decoded and known to apply to the request's object.
    pub patch: Option<json_patch::Patch>,
}

/// Which kind of webhook path an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Webhook {
    /// `/mutate/...`
    Mutating,
    /// `/validate/...`
    Validating,
}

/// Asserts every check the API server's webhook dispatcher makes on an
/// answer (HTTP 200; `apiVersion` and `uid` echoed; a patch only as base64
/// `JSONPatch` from a mutating webhook, applying to the object; ...) given its
/// HTTP `status` and `body`, and returns the decoded patch, if any.
pub(crate) fn check_apiserver_rules(
    request: &[u8],
    status: u16,
    body: &[u8],
    webhook: Webhook,
) -> anyhow::Result<Option<json_patch::Patch>> {
    let request: Value = serde_json::from_slice(request)?;
    ensure!(
        status == 200,
        "HTTP {status} {:?}",
        String::from_utf8_lossy(body)
    );
    let review: Value = serde_json::from_slice(body).context("the answer is not JSON")?;
    ensure!(
        review["apiVersion"] == request["apiVersion"],
        "apiVersion not echoed: {review}"
    );
    ensure!(review["kind"] == "AdmissionReview", "kind: {review}");
    let response = review
        .get("response")
        .context("webhook response was absent")?;
    ensure!(
        response["uid"] == request["request"]["uid"],
        "expected response.uid={}, got {}",
        request["request"]["uid"],
        response["uid"]
    );
    ensure!(response["allowed"].is_boolean(), "allowed: {response}");
    if response["allowed"] == false {
        let status = &response["status"];
        let code = status["code"]
            .as_u64()
            .context("a denial has status.code")?;
        ensure!((400..600).contains(&code), "status.code {code}");
        ensure!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a denial has a message: {status}"
        );
    }
    for warning in response["warnings"].as_array().into_iter().flatten() {
        ensure!(
            warning.as_str().is_some_and(|w| w.len() <= 120),
            "warning {warning}"
        );
    }
    for key in response["auditAnnotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        ensure!(
            !key.contains('/'),
            "audit annotation key {key} would not be a qualified name"
        );
    }
    let patch = response.get("patch");
    let patch_type = response.get("patchType");
    match (patch, patch_type) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("a patch without patchType"),
        (None, Some(_)) => bail!("a patchType without a patch"),
        (Some(patch), Some(patch_type)) => {
            ensure!(
                webhook == Webhook::Mutating,
                "a validating webhook returned a patch"
            );
            ensure!(patch_type == "JSONPatch", "patchType {patch_type}");
            ensure!(response["allowed"] == true, "a patch on a denial");
            let object = &request["request"]["object"];
            ensure!(!object.is_null(), "a patch for a request without an object");
            let text = patch.as_str().context("patch is a string")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .context("patch is standard base64")?;
            let patch: json_patch::Patch =
                serde_json::from_slice(&bytes).context("patch is an RFC 6902 JSON Patch")?;
            let mut patched = object.clone();
            json_patch::patch(&mut patched, &patch).context("patch applies to the object")?;
            Ok(Some(patch))
        }
    }
}
