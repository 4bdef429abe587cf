//! Pipelines: several plugins on one path, with one merged answer.
//!
//! - **Mutating**: the plugins run in order, each seeing the object as the
//!   ones before it changed it; the answer carries one JSON Patch, the
//!   steps' patches in turn (each was checked against the object its step
//!   saw, so together they apply to the original). The first denial stops
//!   the pipeline and is its answer (the message names the plugin).
//! - **Validating**: the plugins run concurrently; every denial is reported,
//!   joined in the message and one per `status.details.causes`, with the
//!   first denying plugin's code.
//!
//! Each plugin's own failure policy holds: a failing `fail` plugin denies
//! (500), a failing `ignore` plugin is skipped with a warning. A fault in
//! merging the answers is the host's own ([`PipelineFault`]), answered as
//! an HTTP 500 whatever the plugins' policies say. Warnings are
//! concatenated and bounded as the API server bounds them; audit annotation
//! keys are prefixed with the plugin's name (`PLUGIN.KEY`) so that two
//! plugins cannot overwrite each other's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::admit::{self, Decision, Failed, Verdict};
use crate::counters::Counters;
use crate::document::Documents;
use crate::fault::{HostError, PipelineFault};
use crate::patch;
use crate::plugin::{Enforcement, Mode};
use crate::review::{AdmissionRequest, AdmissionResponse, Status};
use crate::served::Served;

/// The longest audit annotation key the API server accepts (the name part
/// of a qualified name).
const MAX_AUDIT_KEY: usize = 63;

/// A resolved pipeline: the served plugin versions it runs.
pub struct Pipeline {
    /// Its name, the last segment of its path.
    pub name: String,
    /// Mutating or validating.
    pub mode: Mode,
    /// Whether its merged verdict is enforced.
    pub enforcement: Enforcement,
    /// The plugins, in order.
    pub steps: Vec<Arc<Served>>,
    /// How its reviews ended (kept across reloads).
    pub counters: Arc<Counters>,
}

impl Pipeline {
    /// The longest it may take: its steps' deadlines in turn (mutating) or
    /// at once (validating).
    pub fn timeout_ms(&self) -> u64 {
        let deadlines = self
            .steps
            .iter()
            .map(|step| step.plugin().manifest().limits.timeout_ms);
        match self.mode {
            Mode::Mutating => deadlines.sum(),
            Mode::Validating => deadlines.max().unwrap_or(0),
        }
    }

    /// Runs the pipeline on `request` and counts the result. Every step is
    /// given up as overloaded at the pipeline's one `wall_bound`, and an
    /// overloaded step makes the whole review overloaded; a fault in merging
    /// the steps' answers is the host's, never a denial.
    pub async fn judge(
        &self,
        request: &AdmissionRequest<'_>,
        documents: &Documents,
        wall_bound: Instant,
    ) -> Result<Decision, HostError> {
        let judging = async {
            match self.mode {
                Mode::Mutating => self.mutate(request, documents, wall_bound).await,
                Mode::Validating => self.validate(request, documents, wall_bound).await,
            }
            .map(|decision| admit::enforce(self.enforcement, decision))
        };
        self.counters.counted(request.operation, judging).await
    }

    async fn mutate(
        &self,
        request: &AdmissionRequest<'_>,
        documents: &Documents,
        wall_bound: Instant,
    ) -> Result<Decision, HostError> {
        // The object as the steps so far changed it: parsed at the first
        // change, written back to a document after each for the later steps,
        // which read the object only through their documents.
        let mut current: Option<Value> = None;
        let mut changed: Option<Documents> = None;
        let mut patches = Vec::new();
        let mut merged = Merged::default();
        for step in &self.steps {
            let step_documents = changed.as_ref().unwrap_or(documents);
            let mut decision = step.judge(request, step_documents, wall_bound).await?;
            merged.add(step.plugin().name(), &decision);
            if !decision.response.allowed {
                return Ok(merged.finish(decision.response.status, None, decision.verdict));
            }
            // A patch is checked against the object the step saw, so only a
            // request with an object has one.
            let (Some(patch), Some(original)) = (decision.response.patch.take(), request.object)
            else {
                continue;
            };
            let object = match &mut current {
                Some(object) => object,
                None => current.insert(serde_json::from_str(original.get()).map_err(|source| {
                    PipelineFault::Object {
                        pipeline: self.name.clone(),
                        source,
                    }
                })?),
            };
            patch::apply_text(object, &patch).map_err(|source| PipelineFault::StepPatch {
                pipeline: self.name.clone(),
                plugin: step.plugin().name().to_owned(),
                source,
            })?;
            let text =
                serde_json::to_string(object).map_err(|source| self.unserialisable(source))?;
            changed = Some(documents.with_object(text));
            patches.push(patch);
        }
        let patch = match patches.is_empty() {
            true => None,
            false => Some(self.in_turn(&patches)?),
        };
        let verdict = merged.allowed_verdict();
        Ok(merged.finish(None, patch, verdict))
    }

    async fn validate(
        &self,
        request: &AdmissionRequest<'_>,
        documents: &Documents,
        wall_bound: Instant,
    ) -> Result<Decision, HostError> {
        let decisions: Vec<Decision> = join_all(
            self.steps
                .iter()
                .map(|step| step.judge(request, documents, wall_bound)),
        )
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
        let mut merged = Merged {
            at_once: true,
            ..Merged::default()
        };
        let mut denials = Vec::new();
        for (step, decision) in self.steps.iter().zip(&decisions) {
            merged.add(step.plugin().name(), decision);
            if let (false, Some(status)) = (decision.response.allowed, &decision.response.status) {
                denials.push((status, decision.verdict));
            }
        }
        let Some(&(first, verdict)) = denials.first() else {
            let verdict = merged.allowed_verdict();
            return Ok(merged.finish(None, None, verdict));
        };
        let causes: Vec<String> = denials
            .iter()
            .map(|(status, _)| status.message.clone())
            .collect();
        let status = Status {
            code: first.code,
            message: causes.join("; "),
            causes: if causes.len() > 1 { causes } else { Vec::new() },
        };
        Ok(merged.finish(Some(status), None, verdict))
    }

    /// One JSON Patch that applies the steps' patches in turn: their
    /// operations, in order. Applied to the original object it makes the
    /// same changes as the steps one after another, without diffing two
    /// whole objects.
    fn in_turn(&self, patches: &[Vec<u8>]) -> Result<Vec<u8>, PipelineFault> {
        let mut operations: Vec<&RawValue> = Vec::new();
        for patch in patches {
            let step: Vec<&RawValue> =
                serde_json::from_slice(patch).map_err(|source| self.unserialisable(source))?;
            operations.extend(step);
        }
        serde_json::to_vec(&operations).map_err(|source| self.unserialisable(source))
    }

    /// The fault of a merged object or patch that cannot be written out.
    fn unserialisable(&self, source: serde_json::Error) -> PipelineFault {
        PipelineFault::Serialise {
            pipeline: self.name.clone(),
            source,
        }
    }
}

/// What the plugins of one pipeline run said, merged.
#[derive(Default)]
struct Merged {
    warnings: Vec<String>,
    audit_annotations: BTreeMap<String, String>,
    failed_open: bool,
    failures: Vec<Failed>,
    /// What steps in monitor mode let through, each `PLUGIN: ...`.
    not_enforced: Vec<String>,
    /// Whether the steps ran at once (validating) rather than in turn.
    at_once: bool,
    /// The steps' own time: the longest when they ran at once, else the sum.
    plugin_time: Duration,
}

impl Merged {
    fn add(&mut self, plugin: &str, decision: &Decision) {
        self.warnings
            .extend(decision.response.warnings.iter().cloned());
        for (key, value) in &decision.response.audit_annotations {
            self.audit_annotations
                .insert(prefixed_key(plugin, key), value.clone());
        }
        self.failed_open |= decision.verdict == Verdict::FailedOpen;
        self.failures.extend(decision.failures.iter().cloned());
        if let Some(let_through) = &decision.not_enforced {
            self.not_enforced.push(format!("{plugin}: {let_through}"));
        }
        self.plugin_time = match self.at_once {
            true => self.plugin_time.max(decision.plugin_time),
            false => self.plugin_time + decision.plugin_time,
        };
    }

    fn allowed_verdict(&self) -> Verdict {
        if self.failed_open {
            Verdict::FailedOpen
        } else {
            Verdict::Allowed
        }
    }

    fn finish(self, denial: Option<Status>, patch: Option<Vec<u8>>, verdict: Verdict) -> Decision {
        Decision {
            response: AdmissionResponse {
                allowed: denial.is_none(),
                status: denial,
                patch,
                warnings: admit::bounded_warnings(self.warnings),
                audit_annotations: self.audit_annotations,
            },
            verdict,
            failures: self.failures,
            not_enforced: (!self.not_enforced.is_empty()).then(|| self.not_enforced.join("; ")),
            plugin_time: self.plugin_time,
        }
    }
}

/// `PLUGIN.KEY`, cut to the longest key the API server accepts.
fn prefixed_key(plugin: &str, key: &str) -> String {
    let mut prefixed = format!("{plugin}.{key}");
    prefixed.truncate(MAX_AUDIT_KEY);
    while prefixed.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        prefixed.pop();
    }
    prefixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_keys_are_prefixed_and_stay_valid() {
        assert_eq!(prefixed_key("injector", "injected"), "injector.injected");
        assert_eq!(
            prefixed_key(&"a".repeat(60), "key"),
            format!("{}.ke", "a".repeat(60))
        );
        // Cut right after the dot: the dot goes too.
        assert_eq!(prefixed_key(&"a".repeat(62), "key"), "a".repeat(62));
    }
}
