//! Wicket's namespace-labels: copies the labels its settings list (`team`,
//! `cost-center`) from a pod's namespace onto the pod, so that cost reports
//! and network policies that select pods by team work without every team
//! remembering to label every pod.
//!
//! A pod's own value is never overwritten, and a label the namespace does
//! not carry is left out; a second call (reinvocation) finds the labels set
//! and changes nothing. The namespace is read from the host's cache of
//! Namespaces, metadata only.

use serde::Deserialize;
use wicket_sdk::cluster::kinds::Namespace;
use wicket_sdk::view::Metadata;
use wicket_sdk::{Error, Operation, Patch, Plugin, Review, Validate, Verdict};

/// The plugin.
pub struct NamespaceLabels;

/// The `[settings]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The namespace labels to copy.
    labels: Vec<String>,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), Error> {
        match self.labels.is_empty() {
            true => Err(Error::new("labels must name at least one label to copy")),
            false => Ok(()),
        }
    }
}

impl Plugin for NamespaceLabels {
    type Settings = Settings;

    fn review(&self, review: &Review, settings: &Settings) -> Result<Verdict, Error> {
        let handled = review.operation() == Operation::Create
            && review.resource().resource == "pods"
            && review.sub_resource().is_none();
        if !handled {
            return Ok(Verdict::allow());
        }
        let keys: Vec<&str> = settings.labels.iter().map(String::as_str).collect();
        let own = review.labels(&keys)?;
        if own.iter().all(Option::is_some) {
            return Ok(Verdict::allow());
        }
        let Some(namespace) = review.cluster().get::<Namespace>("", review.namespace())? else {
            return Ok(Verdict::allow().warn(format!(
                "namespace-labels: namespace {} is not known yet; labels not copied",
                review.namespace()
            )));
        };
        let namespace: Metadata = namespace.read()?;
        let has_labels = review.object_has("/metadata/labels")?;
        let mut patch = Patch::new();
        for (key, own) in keys.iter().zip(&own) {
            if own.is_some() {
                continue;
            }
            if let Some(value) = namespace.metadata.label(key) {
                patch.insert(&["metadata", "labels"], has_labels, key, &value);
            }
        }
        Ok(match patch.is_empty() {
            true => Verdict::allow(),
            false => Verdict::allow().with_patch(&patch),
        })
    }
}

wicket_sdk::export_plugin!(NamespaceLabels);
