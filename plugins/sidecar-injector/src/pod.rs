//! The parts of a pod the injector reads, borrowed from the request's JSON.
//!
//! Everything else in the pod (env, probes, affinity, managedFields, ...) is
//! skipped by serde without being built.

use serde::Deserialize;
use serde_json::value::RawValue;
use wicket_sdk::view::{ObjectMeta, Text};

/// A pod, as far as injection cares.
#[derive(Deserialize)]
pub struct PodView<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
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
    /// Volumes stay raw: only their names are read, unless a sidecar's volume
    /// has the same name and the sources must be compared.
    #[serde(borrow, default)]
    pub volumes: Option<Vec<&'a RawValue>>,
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
