//! Judging one object as the API server would on its CREATE: the mutating
//! plugins and pipelines whose entries select it, by name, each on the
//! object as the ones before changed it; then the validating ones on the
//! result. Each judges through [`Reviewer`], the server's own path.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::matching::{Candidate, Matched, matches};
use super::request::{Requester, create_review};
use super::resources::Resources;
use crate::admit::Verdict;
use crate::cluster::kind::KindKey;
use crate::cluster::labels_of;
use crate::document::Documents;
use crate::plugin::Mode;
use crate::plugin::manifest::webhook::WebhookSpec;
use crate::registry::{Lookup, PluginSet};
use crate::reviewer::Reviewer;

/// How one plugin or pipeline judged one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Admitted (a mutating one may have changed it: see the patch).
    Pass,
    /// Refused.
    Fail,
    /// Refused, admitted with a warning (`enforcement = "warn"`).
    Warn,
    /// Would have refused or changed it (`enforcement = "monitor"`).
    Monitor,
    /// The plugin failed (its failure policy decided), or the host could
    /// not run it.
    Error,
    /// Not judged: why is the message.
    Skip,
}

impl Outcome {
    /// The word the outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Monitor => "monitor",
            Outcome::Error => "error",
            Outcome::Skip => "skip",
        }
    }
}

/// One plugin's or pipeline's result on one object.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The plugin or pipeline, or `-` when the object itself is skipped.
    pub plugin: String,
    /// How it judged.
    pub outcome: Outcome,
    /// What it said (the refusal, the warning, the failure, why skipped).
    pub message: String,
    /// The JSON Patch a mutating one would apply.
    pub patch: Option<Value>,
    /// Whether its entries have match conditions the audit did not
    /// evaluate.
    pub conditions_unevaluated: bool,
    /// The plugin's `severity`, if its manifest says.
    pub severity: Option<&'static str>,
}

/// A plugin or pipeline with the entries that select what it judges.
struct Judge {
    name: String,
    entries: Vec<WebhookSpec>,
    reviewer: Reviewer,
    /// Named with `--plugin`: judges every object, whatever its entries.
    forced: bool,
    /// Its manifest's `severity` (a plugin's only).
    severity: Option<&'static str>,
}

/// Judges objects with a loaded plugin folder.
pub struct Auditor {
    mutating: Vec<Judge>,
    validating: Vec<Judge>,
    /// Served plugins and pipelines with no `[[webhook]]` entries.
    unregistered: Vec<String>,
    resources: Resources,
    requester: Requester,
    /// Labels of the namespaces met so far (Namespace objects in the input,
    /// `--namespace-labels`).
    namespace_labels: HashMap<String, BTreeMap<String, String>>,
    /// Reviews made so far, for their uids.
    serial: u64,
    /// Whether the mutating ones judge: not for objects already stored,
    /// which went through them when they were written.
    mutations: bool,
}

impl Auditor {
    /// An auditor of what `plugins` serves with `[[webhook]]` entries, and
    /// of those named in `forced`, which judge every object.
    pub fn new(
        plugins: &Arc<PluginSet>,
        resources: Resources,
        requester: Requester,
        forced: &[String],
    ) -> Auditor {
        let mut mutating = Vec::new();
        let mut validating = Vec::new();
        let mut unregistered = Vec::new();
        for target in plugins.webhook_targets() {
            let forced = forced.iter().any(|name| name == target.name);
            if target.webhooks.is_empty() && !forced {
                unregistered.push(target.name.to_owned());
                continue;
            }
            let mode = match target.mutating {
                true => Mode::Mutating,
                false => Mode::Validating,
            };
            let reviewer = match plugins.lookup(mode, target.name) {
                Lookup::Plugin(served) => Reviewer::Plugin(served.clone()),
                Lookup::Pipeline(pipeline) => Reviewer::Pipeline(pipeline.clone()),
                Lookup::OtherPath(_) | Lookup::Unknown => continue,
            };
            let severity = match &reviewer {
                Reviewer::Plugin(served) => served.plugin().manifest().severity.map(|s| s.as_str()),
                Reviewer::Pipeline(_) => None,
            };
            let judge = Judge {
                name: target.name.to_owned(),
                entries: target.webhooks.to_vec(),
                reviewer,
                forced,
                severity,
            };
            match target.mutating {
                true => mutating.push(judge),
                false => validating.push(judge),
            }
        }
        mutating.sort_by(|a, b| a.name.cmp(&b.name));
        validating.sort_by(|a, b| a.name.cmp(&b.name));
        unregistered.sort();
        Auditor {
            mutating,
            validating,
            unregistered,
            resources,
            requester,
            namespace_labels: HashMap::new(),
            serial: 0,
            mutations: true,
        }
    }

    /// For objects already stored: only the validating ones judge (the
    /// mutating ones had their turn when the object was written).
    pub fn stored_objects(mut self) -> Auditor {
        self.mutations = false;
        self
    }

    /// The validating plugins and pipelines with the entries that select
    /// what they judge (empty when named with `--plugin`: every object).
    pub fn validating(&self) -> impl Iterator<Item = (&str, &[WebhookSpec])> {
        self.validating.iter().map(|judge| {
            let entries: &[WebhookSpec] = match judge.forced {
                true => &[],
                false => &judge.entries,
            };
            (judge.name.as_str(), entries)
        })
    }

    /// Takes `resource` as `kind`'s, as the API server's discovery says.
    pub fn discovered(&mut self, kind: &KindKey, resource: super::resources::Resource) {
        self.resources.discovered(kind, resource);
    }

    /// The plugins and pipelines never called (no `[[webhook]]` entries).
    pub fn unregistered(&self) -> Vec<String> {
        self.unregistered.clone()
    }

    /// The labels of `namespace`, from now on, with the one the API
    /// server sets on every namespace (`kubernetes.io/metadata.name`).
    pub fn namespace_labels(&mut self, namespace: &str, mut labels: BTreeMap<String, String>) {
        labels.insert(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.to_owned(),
        );
        self.namespace_labels.insert(namespace.to_owned(), labels);
    }

    /// Learns what `object` tells of others: a Namespace's labels (for
    /// namespace selectors), a CustomResourceDefinition's resource. Called
    /// on every object before any is judged.
    pub fn learn(&mut self, object: &Value) {
        let Some(kind) = KindKey::of(object) else {
            return;
        };
        if kind.group == "apiextensions.k8s.io" && kind.kind == "CustomResourceDefinition" {
            self.resources.learn(object);
        }
        if kind.group.is_empty() && kind.kind == "Namespace" {
            let name = text(object, "/metadata/name").to_owned();
            self.namespace_labels(&name, labels_of(object));
        }
    }

    /// Judges `object`; returns each result and the object as the mutating
    /// ones left it.
    pub async fn judge(&mut self, mut object: Value) -> (Vec<Finding>, Value) {
        let skip = |message: String| Finding {
            plugin: "-".to_owned(),
            outcome: Outcome::Skip,
            message,
            patch: None,
            conditions_unevaluated: false,
            severity: None,
        };
        let Some(kind) = KindKey::of(&object) else {
            return (vec![skip("no apiVersion and kind".to_owned())], object);
        };
        let labels = labels_of(&object);
        let Some(resource) = self.resources.of(&kind).cloned() else {
            let message = format!(
                "{kind}: resource unknown (give it with --resource {}=PLURAL, or include its CustomResourceDefinition)",
                kind.kind_group()
            );
            return (vec![skip(message)], object);
        };
        let namespace = match text(&object, "/metadata/namespace") {
            "" => "default".to_owned(),
            namespace => namespace.to_owned(),
        };
        let mut findings = Vec::new();
        let passes: &[bool] = match self.mutations {
            true => &[true, false],
            false => &[false],
        };
        for &mutating in passes {
            let judges = match mutating {
                true => &self.mutating,
                false => &self.validating,
            };
            for judge in judges {
                let candidate = Candidate {
                    kind: &kind,
                    resource: &resource,
                    labels: &labels,
                    namespace_labels: self.namespace_labels.get(&namespace),
                };
                let matched = match judge.forced {
                    true => Matched::Yes,
                    false => matches(&judge.entries, &candidate),
                };
                if matched == Matched::No {
                    continue;
                }
                self.serial += 1;
                let review = create_review(
                    &object,
                    &kind,
                    &resource,
                    &namespace,
                    &self.requester,
                    self.serial,
                );
                let mut finding = judged(judge, &review).await;
                finding.conditions_unevaluated = matched == Matched::UnlessConditions;
                if let Some(patch) = &finding.patch
                    && let Ok(patch) = serde_json::from_value::<json_patch::Patch>(patch.clone())
                {
                    // A patch that does not apply was a plugin failure
                    // already (the host checks every patch).
                    let _ = crate::patch::apply(&mut object, &patch);
                }
                findings.push(finding);
            }
        }
        (findings, object)
    }
}

/// `judge`'s result on `review`.
async fn judged(judge: &Judge, review: &Value) -> Finding {
    let finding = |outcome, message: String| Finding {
        plugin: judge.name.clone(),
        outcome,
        message,
        patch: None,
        conditions_unevaluated: false,
        severity: judge.severity,
    };
    let bytes = serde_json::to_vec(review).unwrap_or_default();
    let decoded = match crate::review::decode(&bytes) {
        Ok(decoded) => decoded,
        Err(error) => return finding(Outcome::Error, crate::text::with_causes(&error)),
    };
    let documents = Documents::of(&decoded.request);
    let decision = match judge.reviewer.judge(&decoded.request, &documents).await {
        Ok(decision) => decision,
        Err(error) => return finding(Outcome::Error, crate::text::with_causes(&error)),
    };
    let response = &decision.response;
    let status = response
        .status
        .as_ref()
        .map(|status| status.message.clone())
        .unwrap_or_default();
    let (outcome, message) = match decision.verdict {
        Verdict::Allowed => (Outcome::Pass, response.warnings.join("; ")),
        Verdict::Denied => (Outcome::Fail, status),
        Verdict::Warned => (Outcome::Warn, response.warnings.join("; ")),
        Verdict::Monitored => (
            Outcome::Monitor,
            decision.not_enforced.clone().unwrap_or_default(),
        ),
        Verdict::FailedClosed | Verdict::FailedOpen => {
            (Outcome::Error, decision.causes().unwrap_or(status))
        }
    };
    let patch = response
        .patch
        .as_ref()
        .and_then(|patch| serde_json::from_slice(patch).ok());
    Finding {
        patch,
        ..finding(outcome, message)
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}
