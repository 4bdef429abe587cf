//! A plugin's answer, built with a few chained calls.

use serde::Serialize;

use crate::bindings::wicket::admission::types::{Denial, Mutation, Response};
use crate::{Error, Patch};

/// The answer to one review: admit or deny, plus an optional change to the
/// object, warnings for the client and annotations for the audit log.
///
/// ```
/// use wicket_sdk::Verdict;
/// let verdict = Verdict::deny("pods need an owner label").warn("see go/owners");
/// assert_eq!(verdict.denial(), Some((403, "pods need an owner label")));
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Verdict {
    denial: Option<(u16, String)>,
    mutation: Option<Mutation>,
    warnings: Vec<String>,
    audit_annotations: Vec<(String, String)>,
}

impl Verdict {
    /// Admit the request unchanged.
    pub fn allow() -> Self {
        Self::default()
    }

    /// Refuse the request with 403 Forbidden. The message is what `kubectl`
    /// shows (Wicket prefixes the plugin's name): say what to do instead.
    pub fn deny(message: impl Into<String>) -> Self {
        Self::deny_with_code(403, message)
    }

    /// Refuse the request with another 4xx/5xx code (400 for a malformed
    /// object, 422 for an invalid one, ...).
    pub fn deny_with_code(code: u16, message: impl Into<String>) -> Self {
        Self {
            denial: Some((code, message.into())),
            ..Self::default()
        }
    }

    /// Adds a warning for the client (keep it under 120 characters).
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Adds an audit annotation. The key has no `/`: the API server prefixes
    /// it with the webhook's name.
    pub fn audit(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.audit_annotations.push((key.into(), value.into()));
        self
    }

    /// Changes the object with `patch`; an empty patch changes nothing.
    pub fn with_patch(mut self, patch: &Patch) -> Self {
        self.mutation = (!patch.is_empty()).then(|| Mutation::JsonPatch(patch.to_json()));
        self
    }

    /// Changes the object into `object` (the whole object, changed). Wicket
    /// computes the JSON Patch natively, outside the sandbox.
    ///
    /// Round-tripping through a typed struct drops fields that type does not
    /// know (a newer API field), and the diff would then remove them; prefer
    /// [`Verdict::with_patch`], or mutate a `serde_json::Value`.
    pub fn with_object(mut self, object: &impl Serialize) -> Result<Self, Error> {
        self.mutation = Some(Mutation::Object(serde_json::to_string(object)?));
        Ok(self)
    }

    /// The code and message, if the request is denied.
    pub fn denial(&self) -> Option<(u16, &str)> {
        self.denial
            .as_ref()
            .map(|(code, message)| (*code, message.as_str()))
    }

    /// The JSON Patch text, if the verdict carries a patch.
    pub fn patch_json(&self) -> Option<&str> {
        match &self.mutation {
            Some(Mutation::JsonPatch(patch)) => Some(patch),
            _ => None,
        }
    }

    /// The whole changed object's JSON text, if the verdict carries one.
    pub fn object_json(&self) -> Option<&str> {
        match &self.mutation {
            Some(Mutation::Object(object)) => Some(object),
            _ => None,
        }
    }

    /// The warnings, in order.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The audit annotations, in order.
    pub fn audit_annotations(&self) -> &[(String, String)] {
        &self.audit_annotations
    }

    pub(crate) fn into_response(self) -> Response {
        Response {
            denied: self.denial.map(|(code, message)| Denial {
                code: Some(code),
                message,
            }),
            mutation: self.mutation,
            warnings: self.warnings,
            audit_annotations: self.audit_annotations,
        }
    }
}
