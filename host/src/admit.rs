//! Pure: turning what a plugin answered (or how it failed) into the answer
//! the API server gets, enforcing the rules the API server itself enforces.
//! Running the plugin is [`crate::judge`]'s.
//!
//! # Guarantees
//! - A validating plugin never produces a patch; a mutation from one is a
//!   plugin failure.
//! - A request without an object (DELETE, most CONNECTs) never gets a patch;
//!   a mutation for one is a plugin failure.
//! - A patch always applies to the request's object (see [`crate::patch`]).
//! - Warnings are bounded as the API server bounds them; audit annotation
//!   keys are checked so the API server's prefixing yields valid keys.
//! - A plugin failure becomes a 500 denial (`failure-policy = "fail"`) or an
//!   allowance with a warning and an audit annotation (`"ignore"`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::document::{Document, Documents};
use crate::patch::{self, PatchError};
use crate::plugin::types::{self, Mutation};
use crate::plugin::{Enforcement, FailurePolicy, Manifest, Mode, PluginFailure};
use crate::review::{AdmissionResponse, Status};
use crate::text::{truncate, with_causes};

/// The longest warning kept, in bytes; the API server may cut longer ones.
pub const MAX_WARNING_BYTES: usize = 120;
/// The most warning text kept per answer; past about 4 KiB the API server
/// drops warnings.
pub const MAX_WARNINGS_TOTAL_BYTES: usize = 4000;
/// The longest denial message kept.
const MAX_MESSAGE_BYTES: usize = 4096;

/// How a review ended, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted, with or without a patch.
    Allowed,
    /// Refused by the plugin.
    Denied,
    /// The plugin failed and its policy refused the request.
    FailedClosed,
    /// The plugin failed and its policy admitted the request.
    FailedOpen,
    /// Refused by the plugin, admitted with a warning (`enforcement = "warn"`).
    Warned,
    /// Refused or changed by the plugin, admitted unchanged
    /// (`enforcement = "monitor"`).
    Monitored,
}

impl Verdict {
    /// A short lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::FailedClosed => "failed-closed",
            Verdict::FailedOpen => "failed-open",
            Verdict::Warned => "warned",
            Verdict::Monitored => "monitored",
        }
    }
}

/// The answer to send, and how it came about.
#[derive(Debug)]
pub struct Decision {
    /// The response to encode.
    pub response: AdmissionResponse,
    /// What happened.
    pub verdict: Verdict,
    /// Each plugin that failed (one at most, but for a pipeline), in order.
    pub failures: Vec<Failed>,
    /// What `enforcement = "monitor"` let through (`deny: ...; patch: ...`),
    /// for the review's log line.
    pub not_enforced: Option<String>,
    /// The plugins' own time (CPU and their own I/O waits): the rest of a
    /// review's time is the host's.
    pub plugin_time: Duration,
}

impl Decision {
    /// The first plugin failure, the one the counters count.
    pub fn failure(&self) -> Option<&PluginFailure> {
        self.failures.first().map(|failed| &failed.failure)
    }

    /// Each failure as `PLUGIN: CAUSE`, for the review's log line.
    pub fn causes(&self) -> Option<String> {
        let causes: Vec<String> = self
            .failures
            .iter()
            .map(|failed| format!("{}: {}", failed.plugin, failed.failure))
            .collect();
        (!causes.is_empty()).then(|| causes.join("; "))
    }
}

/// A plugin that failed, and how.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The plugin's name.
    pub plugin: String,
    /// How it failed.
    pub failure: PluginFailure,
}

/// Applies the plugin's or pipeline's `enforcement` to its decision. A
/// failure is left to the failure policy; `warn` lets a denial through as a
/// warning and a `would-deny` audit annotation; `monitor` lets everything
/// through unchanged, with `would-deny` or `would-patch` annotations, and
/// says what it let through in [`Decision::not_enforced`].
pub fn enforce(enforcement: Enforcement, mut decision: Decision) -> Decision {
    let denied = decision.verdict == Verdict::Denied;
    match enforcement {
        Enforcement::Deny => return decision,
        _ if !decision.failures.is_empty() => return decision,
        Enforcement::Warn if denied => {
            let message = let_denial_through(&mut decision.response);
            decision
                .response
                .warnings
                .push(format!("{message} (warn mode: not enforced)"));
            decision.response.warnings =
                bounded_warnings(std::mem::take(&mut decision.response.warnings));
            decision.verdict = Verdict::Warned;
        }
        Enforcement::Warn => {}
        Enforcement::Monitor => {
            let mut would = Vec::new();
            if denied {
                let message = let_denial_through(&mut decision.response);
                would.push(format!("deny: {message}"));
            }
            if let Some(patch) = decision.response.patch.take() {
                let summary = patch_summary(&patch);
                would.push(format!("patch: {summary}"));
                decision
                    .response
                    .audit_annotations
                    .insert("would-patch".into(), summary);
            }
            if !would.is_empty() {
                // A pipeline's steps may have said what they let through.
                would.extend(decision.not_enforced.take());
                decision.not_enforced = Some(would.join("; "));
                decision.verdict = Verdict::Monitored;
            }
        }
    }
    decision
}

/// Turns a denial into an admission that records it as a `would-deny` audit
/// annotation, and returns its message.
fn let_denial_through(response: &mut AdmissionResponse) -> String {
    let message = response
        .status
        .take()
        .map(|status| status.message)
        .unwrap_or_default();
    response.allowed = true;
    response
        .audit_annotations
        .insert("would-deny".into(), message.clone());
    message
}

/// A patch's size and the paths it touches, for a monitor-mode report.
fn patch_summary(patch: &[u8]) -> String {
    let paths: Vec<String> = serde_json::from_slice::<Vec<serde_json::Value>>(patch)
        .unwrap_or_default()
        .iter()
        .filter_map(|operation| operation["path"].as_str().map(str::to_owned))
        .collect();
    truncate(
        &format!("{} bytes, {}", patch.len(), paths.join(" ")),
        MAX_MESSAGE_BYTES,
    )
    .to_owned()
}

/// Decides the answer for `request` from the plugin `name`'s `answer`.
pub fn decide(
    name: &str,
    manifest: &Manifest,
    documents: &Documents,
    answer: Result<types::Response, PluginFailure>,
) -> Decision {
    match answer.and_then(|answer| check(manifest, documents, answer)) {
        Ok(response) => Decision {
            verdict: if response.allowed {
                Verdict::Allowed
            } else {
                Verdict::Denied
            },
            response: with_plugin_name(name, response),
            failures: Vec::new(),
            not_enforced: None,
            plugin_time: Duration::ZERO,
        },
        Err(failure) => failed(name, manifest.failure_policy, failure),
    }
}

/// Checks a plugin's answer against the contract and builds the response.
fn check(
    manifest: &Manifest,
    documents: &Documents,
    answer: types::Response,
) -> Result<AdmissionResponse, PluginFailure> {
    let size = output_size(&answer);
    let limit = manifest.limits.max_output_bytes();
    if size > limit {
        return Err(PluginFailure::OutputTooLarge { size, limit });
    }
    let audit_annotations = audit_annotations(answer.audit_annotations)?;
    let warnings = bounded_warnings(answer.warnings);
    if let Some(denial) = answer.denied {
        let code = match denial.code {
            None => 403,
            Some(code @ 400..=599) => code,
            Some(code) => {
                return Err(PluginFailure::Malformed(format!(
                    "denial code {code} is not a 4xx or 5xx code"
                )));
            }
        };
        return Ok(AdmissionResponse {
            allowed: false,
            status: Some(Status {
                code,
                message: denial.message,
                causes: Vec::new(),
            }),
            patch: None,
            warnings,
            audit_annotations,
        });
    }
    let patch = match &answer.mutation {
        None => None,
        Some(mutation) => mutation_patch(manifest.mode, documents.object.as_deref(), mutation)?,
    };
    Ok(AdmissionResponse {
        allowed: true,
        status: None,
        patch,
        warnings,
        audit_annotations,
    })
}

/// The checked patch for a mutation, refusing mutations the API server
/// would refuse.
fn mutation_patch(
    mode: Mode,
    object: Option<&Document>,
    mutation: &Mutation,
) -> Result<Option<Vec<u8>>, PluginFailure> {
    if mode == Mode::Validating {
        return Err(PluginFailure::ForbiddenMutation(
            "it is a validating plugin but returned a mutation",
        ));
    }
    let Some(object) = object else {
        return Err(PluginFailure::ForbiddenMutation(
            "it returned a mutation for a request without an object (a DELETE has none)",
        ));
    };
    patch::checked(mutation, object).map_err(|err| match err {
        PatchError::Malformed { .. } => PluginFailure::Malformed(with_causes(&err)),
        PatchError::DoesNotApply(err) => PluginFailure::PatchDoesNotApply(with_causes(&err)),
    })
}

/// Total bytes of text in an answer.
fn output_size(answer: &types::Response) -> usize {
    let denial = answer
        .denied
        .as_ref()
        .map_or(0, |denial| denial.message.len());
    let mutation = answer
        .mutation
        .as_ref()
        .map_or(0, |mutation| match mutation {
            Mutation::JsonPatch(text) | Mutation::Object(text) => text.len(),
        });
    let warnings: usize = answer.warnings.iter().map(String::len).sum();
    let audit: usize = answer
        .audit_annotations
        .iter()
        .map(|(key, value)| key.len() + value.len())
        .sum();
    denial + mutation + warnings + audit
}

/// Warnings cut to [`MAX_WARNING_BYTES`] each and [`MAX_WARNINGS_TOTAL_BYTES`]
/// in all; what does not fit is dropped.
/// Cuts warnings to what the API server keeps (each and in total).
pub fn bounded_warnings(warnings: Vec<String>) -> Vec<String> {
    let mut total = 0;
    let mut kept = Vec::new();
    for warning in warnings {
        let warning = truncate(&warning, MAX_WARNING_BYTES);
        total += warning.len();
        if total > MAX_WARNINGS_TOTAL_BYTES {
            break;
        }
        kept.push(warning.to_owned());
    }
    kept
}

/// Audit annotations as a map, refusing keys the API server could not prefix
/// into a valid qualified name.
fn audit_annotations(
    pairs: Vec<(String, String)>,
) -> Result<BTreeMap<String, String>, PluginFailure> {
    let mut annotations = BTreeMap::new();
    for (key, value) in pairs {
        if !is_qualified_name_part(&key) {
            return Err(PluginFailure::Malformed(format!(
                "audit annotation key {key:?} is not a name of at most 63 letters, digits, '-', '_' or '.'"
            )));
        }
        if annotations.insert(key.clone(), value).is_some() {
            return Err(PluginFailure::Malformed(format!(
                "audit annotation key {key:?} appears twice"
            )));
        }
    }
    Ok(annotations)
}

/// The name part of a Kubernetes qualified name: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
fn is_qualified_name_part(key: &str) -> bool {
    let bytes = key.as_bytes();
    let inner_ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(inner_ok)
}

/// Prefixes a denial message with the plugin's name, so `kubectl` users know
/// which of Wicket's plugins refused them.
fn with_plugin_name(name: &str, mut response: AdmissionResponse) -> AdmissionResponse {
    if let Some(status) = &mut response.status {
        let message = truncate(status.message.trim(), MAX_MESSAGE_BYTES);
        status.message = if message.is_empty() {
            format!("{name}: denied")
        } else {
            format!("{name}: {message}")
        };
    }
    response
}

/// The answer for a failed plugin, per its failure policy.
fn failed(name: &str, policy: FailurePolicy, failure: PluginFailure) -> Decision {
    let cause = format!("plugin {name} failed: {failure}");
    let (response, verdict) = match policy {
        FailurePolicy::Fail => (
            AdmissionResponse {
                allowed: false,
                status: Some(Status {
                    code: 500,
                    message: cause,
                    causes: Vec::new(),
                }),
                ..AdmissionResponse::default()
            },
            Verdict::FailedClosed,
        ),
        FailurePolicy::Ignore => (
            AdmissionResponse {
                allowed: true,
                warnings: bounded_warnings(vec![format!("{cause} (ignored)")]),
                audit_annotations: BTreeMap::from([("plugin-failure".to_owned(), cause)]),
                ..AdmissionResponse::default()
            },
            Verdict::FailedOpen,
        ),
    };
    Decision {
        response,
        verdict,
        failures: vec![Failed {
            plugin: name.to_owned(),
            failure,
        }],
        not_enforced: None,
        plugin_time: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::decode;
    use types::{Denial, Response};

    const POD_CREATE: &str = include_str!("../../tests/fixtures/v1-pod-create-plain.json");
    const POD_DELETE: &str = include_str!("../../tests/fixtures/v1-pod-delete-etcd-1.json");

    fn manifest(mode: Mode, failure_policy: FailurePolicy) -> Manifest {
        Manifest {
            mode,
            failure_policy,
            ..Manifest::default()
        }
    }

    fn allow() -> Response {
        Response {
            denied: None,
            mutation: None,
            warnings: vec![],
            audit_annotations: vec![],
        }
    }

    fn add_label() -> Response {
        Response {
            mutation: Some(Mutation::JsonPatch(
                r#"[{"op":"add","path":"/metadata/labels/x","value":"y"}]"#.into(),
            )),
            ..allow()
        }
    }

    fn decide_on(
        fixture: &str,
        manifest: &Manifest,
        answer: Result<Response, PluginFailure>,
    ) -> Decision {
        let review = decode(fixture.as_bytes()).unwrap();
        decide("p", manifest, &Documents::of(&review.request), answer)
    }

    #[test]
    fn a_mutating_plugin_gets_its_patch() {
        let decision = decide_on(
            POD_CREATE,
            &manifest(Mode::Mutating, FailurePolicy::Fail),
            Ok(add_label()),
        );
        assert_eq!(decision.verdict, Verdict::Allowed);
        assert!(decision.response.patch.is_some());
    }

    #[test]
    fn a_validating_plugin_that_mutates_has_failed() {
        let decision = decide_on(
            POD_CREATE,
            &manifest(Mode::Validating, FailurePolicy::Fail),
            Ok(add_label()),
        );
        assert_eq!(decision.verdict, Verdict::FailedClosed);
        assert!(decision.response.patch.is_none());
        let status = decision.response.status.unwrap();
        assert_eq!(status.code, 500);
        assert!(
            status.message.contains("validating plugin"),
            "{}",
            status.message
        );
    }

    #[test]
    fn a_mutation_on_delete_has_failed_and_ignore_allows_without_patch() {
        let decision = decide_on(
            POD_DELETE,
            &manifest(Mode::Mutating, FailurePolicy::Ignore),
            Ok(add_label()),
        );
        assert_eq!(decision.verdict, Verdict::FailedOpen);
        assert!(decision.response.allowed);
        assert!(decision.response.patch.is_none());
        assert!(decision.response.warnings[0].contains("plugin p failed"));
        assert!(
            decision
                .response
                .audit_annotations
                .contains_key("plugin-failure")
        );
    }

    #[test]
    fn a_denial_names_the_plugin_and_drops_any_mutation() {
        let answer = Response {
            denied: Some(Denial {
                code: None,
                message: "not today".into(),
            }),
            ..add_label()
        };
        let decision = decide_on(
            POD_CREATE,
            &manifest(Mode::Mutating, FailurePolicy::Fail),
            Ok(answer),
        );
        assert_eq!(decision.verdict, Verdict::Denied);
        assert_eq!(
            decision.response.status,
            Some(Status {
                code: 403,
                message: "p: not today".into(),
                causes: Vec::new(),
            })
        );
        assert!(decision.response.patch.is_none());
    }

    #[test]
    fn malformed_answers_are_failures() {
        let fail = manifest(Mode::Mutating, FailurePolicy::Fail);
        let bad_code = Response {
            denied: Some(Denial {
                code: Some(200),
                message: String::new(),
            }),
            ..allow()
        };
        let bad_key = Response {
            audit_annotations: vec![("a/b".into(), "v".into())],
            ..allow()
        };
        let bad_patch = Response {
            mutation: Some(Mutation::JsonPatch(
                r#"[{"op":"replace","path":"/nope","value":1}]"#.into(),
            )),
            ..allow()
        };
        for answer in [bad_code, bad_key, bad_patch] {
            let decision = decide_on(POD_CREATE, &fail, Ok(answer));
            assert_eq!(decision.verdict, Verdict::FailedClosed);
        }
    }

    #[test]
    fn output_over_the_cap_is_a_failure() {
        let mut small = manifest(Mode::Validating, FailurePolicy::Fail);
        small.limits.max_output_kib = 1;
        let answer = Response {
            warnings: vec!["w".repeat(2048)],
            ..allow()
        };
        let decision = decide_on(POD_CREATE, &small, Ok(answer));
        assert!(matches!(
            decision.failure(),
            Some(PluginFailure::OutputTooLarge {
                size: 2048,
                limit: 1024
            })
        ));
    }

    #[test]
    fn warn_lets_a_denial_through_and_monitor_lets_everything_through() {
        let mutating = manifest(Mode::Mutating, FailurePolicy::Fail);
        let denial = || Response {
            denied: Some(Denial {
                code: Some(403),
                message: "not today".into(),
            }),
            ..allow()
        };
        let warned = enforce(
            Enforcement::Warn,
            decide_on(POD_CREATE, &mutating, Ok(denial())),
        );
        assert_eq!(warned.verdict, Verdict::Warned);
        assert!(warned.response.allowed && warned.response.status.is_none());
        assert_eq!(
            warned.response.warnings,
            ["p: not today (warn mode: not enforced)"]
        );
        assert_eq!(
            warned.response.audit_annotations["would-deny"],
            "p: not today"
        );
        // A patch still applies in warn mode.
        let patched = enforce(
            Enforcement::Warn,
            decide_on(POD_CREATE, &mutating, Ok(add_label())),
        );
        assert!(patched.response.patch.is_some());

        let monitored = enforce(
            Enforcement::Monitor,
            decide_on(POD_CREATE, &mutating, Ok(add_label())),
        );
        assert_eq!(monitored.verdict, Verdict::Monitored);
        assert!(monitored.response.patch.is_none());
        let said = monitored.not_enforced.as_deref().unwrap_or_default();
        assert!(
            said.starts_with("patch: ") && said.contains("/metadata/labels/x"),
            "{said}"
        );
        assert!(
            monitored.response.audit_annotations["would-patch"].contains("/metadata/labels/x"),
            "{:?}",
            monitored.response.audit_annotations
        );
        // Failures stay with the failure policy.
        let failed = enforce(
            Enforcement::Monitor,
            decide_on(POD_CREATE, &mutating, Err(PluginFailure::Trap("x".into()))),
        );
        assert_eq!(failed.verdict, Verdict::FailedClosed);
    }

    #[test]
    fn warnings_are_bounded() {
        let warnings = bounded_warnings(vec!["é".repeat(100); 100]);
        assert!(warnings.iter().all(|w| w.len() <= MAX_WARNING_BYTES));
        let total: usize = warnings.iter().map(String::len).sum();
        assert!(total <= MAX_WARNINGS_TOTAL_BYTES);
        assert_eq!(warnings.len(), MAX_WARNINGS_TOTAL_BYTES / 120);
    }

    #[test]
    fn qualified_name_parts() {
        for good in ["a", "plugin-failure", "x.y_z", "A1"] {
            assert!(is_qualified_name_part(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a/b", "a b", &"a".repeat(64)] {
            assert!(!is_qualified_name_part(bad), "{bad}");
        }
    }
}
