//! The parts of a pod the injector reads, borrowed from the request's JSON.
//!
//! Everything else in the pod (env, probes, affinity, managedFields, the
//! annotations it does not ask for, ...) stays in Wicket.

use std::collections::BTreeMap;

use serde::Deserialize;
use wicket_sdk::view::{Names, Text};
use wicket_sdk::{Error, Review};

/// A pod, as far as injection cares.
#[derive(Deserialize)]
pub struct PodView<'a> {
    #[serde(borrow)]
    pub metadata: Names<'a>,
    #[serde(borrow)]
    pub spec: SpecView<'a>,
}

/// The pod spec's lists that injection extends or checks.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecView<'a> {
    #[serde(borrow)]
    pub containers: Vec<ContainerView<'a>>,
    #[serde(borrow, default)]
    pub init_containers: Option<Vec<ContainerView<'a>>>,
    /// Only the volumes' names: a volume is read whole (`PodVolume`) only
    /// when a sidecar's volume has the same name and the sources must be
    /// compared.
    #[serde(borrow, default)]
    pub volumes: Option<Vec<NameView<'a>>>,
    #[serde(borrow, default)]
    pub image_pull_secrets: Option<Vec<NameView<'a>>>,
    #[serde(default)]
    pub host_network: bool,
}

/// A container's name, ports and restart policy.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(default)]
    pub ports: Vec<PortView<'a>>,
    #[serde(borrow, default)]
    pub restart_policy: Option<Text<'a>>,
}

impl ContainerView<'_> {
    /// True for an init container that keeps running beside the app.
    pub fn is_native_sidecar(&self) -> bool {
        self.restart_policy.as_deref() == Some("Always")
    }
}

/// One declared container port.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortView<'a> {
    pub container_port: i64,
    #[serde(borrow, default)]
    pub protocol: Option<Text<'a>>,
}

/// Anything with a name (a volume, a pull secret reference).
#[derive(Deserialize)]
pub struct NameView<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
}

/// The pod's labels and annotations that injection reads, each fetched by
/// its key: a pod applied with `kubectl apply` carries itself again in an
/// annotation, which decoding cost an eighth of a review.
pub struct Marks<'r> {
    labels: BTreeMap<&'r str, Text<'r>>,
    annotations: BTreeMap<&'r str, Text<'r>>,
    /// Whether the pod has an `annotations` map (a patch adds one if not).
    pub has_annotations: bool,
}

impl<'r> Marks<'r> {
    /// Reads the labels `label_keys` and the annotations `annotation_keys`
    /// of the review's object.
    pub fn read(
        review: &'r Review<'_>,
        label_keys: &[&'r str],
        annotation_keys: &[&'r str],
    ) -> Result<Self, Error> {
        let set = |keys: &[&'r str], values: Vec<Option<Text<'r>>>| {
            keys.iter()
                .zip(values)
                .filter_map(|(key, value)| Some((*key, value?)))
                .collect()
        };
        Ok(Marks {
            labels: set(label_keys, review.labels(label_keys)?),
            annotations: set(annotation_keys, review.annotations(annotation_keys)?),
            has_annotations: review.object_has("/metadata/annotations")?,
        })
    }

    /// The value of label `key`, if it was read and is set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(|value| value.as_str())
    }

    /// The value of annotation `key`, if it was read and is set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(|value| value.as_str())
    }
}

/// The pod's volume at an index of `spec.volumes`, read whole.
pub type PodVolume<'f> = &'f dyn Fn(usize) -> Result<serde_json::Value, Error>;
