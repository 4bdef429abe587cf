//! The injector's settings: which sidecars exist and how pods ask for them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value};
use wicket_sdk::{Error, Validate};

/// The manifest's `[settings]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Prefix of the pod label/annotation keys `<prefix>/inject`,
    /// `<prefix>/sidecars` and `<prefix>/status`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Inject into pods that say nothing (for namespace-level opt-in, where
    /// the webhook's namespaceSelector picks the namespaces).
    #[serde(default)]
    pub inject_by_default: bool,
    /// Sidecars injected when a pod opts in without `<prefix>/sidecars`.
    #[serde(default)]
    pub default_sidecars: Vec<String>,
    /// Inject into `hostNetwork` pods too (their ports are the node's).
    #[serde(default)]
    pub inject_host_network: bool,
    /// The sidecars, by name.
    pub sidecars: BTreeMap<String, Sidecar>,
}

/// What one named sidecar adds to a pod.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Sidecar {
    /// Containers appended to `spec.containers` (Kubernetes Container specs,
    /// passed through as written).
    #[serde(default)]
    pub containers: Vec<Map<String, Value>>,
    /// Init containers put before the pod's own, in this order; give one
    /// `restartPolicy: Always` to make it a native sidecar.
    #[serde(default)]
    pub init_containers: Vec<Map<String, Value>>,
    /// Volumes appended to `spec.volumes` (Kubernetes Volume specs). A pod
    /// volume with the same name and the same source is shared.
    #[serde(default)]
    pub volumes: Vec<Map<String, Value>>,
    /// Names of image pull secrets to add to `spec.imagePullSecrets`.
    #[serde(default)]
    pub image_pull_secrets: Vec<String>,
    /// Env vars set in every container of this sidecar from pod annotations.
    #[serde(default)]
    pub annotation_env: Vec<AnnotationEnv>,
    /// Env vars set in every container of this sidecar from pod fields by
    /// fieldRef: env name → field path (`metadata.name`, `metadata.namespace`,
    /// `status.podIP`, ...).
    #[serde(default)]
    pub field_env: BTreeMap<String, String>,
}

/// An env var whose value is a pod annotation's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnnotationEnv {
    /// The env var's name.
    pub name: String,
    /// The pod annotation that holds the value.
    pub annotation: String,
    /// Deny pods that opt in without this annotation.
    #[serde(default)]
    pub required: bool,
    /// The value when the annotation is absent (not with `required`).
    #[serde(default)]
    pub default: Option<String>,
}

fn default_prefix() -> String {
    "sidecar.wicket.dev".to_owned()
}

impl Validate for Settings {
    /// Checks what serde cannot: names, references and required fields.
    fn validate(&self) -> Result<(), Error> {
        if self.prefix.is_empty() || self.prefix.contains('/') {
            return Err(Error::new(format!(
                "prefix {:?} must be a DNS subdomain without '/'",
                self.prefix
            )));
        }
        if self.sidecars.is_empty() {
            return Err("define at least one sidecar under [settings.sidecars.NAME]".into());
        }
        for name in &self.default_sidecars {
            if !self.sidecars.contains_key(name) {
                return Err(Error::new(format!(
                    "default-sidecars names {name:?}, which is not defined; defined: {}",
                    self.sidecar_names()
                )));
            }
        }
        for (name, sidecar) in &self.sidecars {
            sidecar
                .check()
                .map_err(|error| format!("sidecar {name:?}: {error}"))?;
        }
        Ok(())
    }
}

impl Settings {
    /// The defined sidecars' names, comma-separated, for messages.
    pub fn sidecar_names(&self) -> String {
        let names: Vec<&str> = self.sidecars.keys().map(String::as_str).collect();
        names.join(", ")
    }

    /// The pod annotations any sidecar's env is taken from.
    pub fn annotations_read(&self) -> impl Iterator<Item = &str> {
        self.sidecars
            .values()
            .flat_map(|sidecar| &sidecar.annotation_env)
            .map(|wanted| wanted.annotation.as_str())
    }
}

impl Sidecar {
    fn check(&self) -> Result<(), Error> {
        if self.containers.is_empty() && self.init_containers.is_empty() {
            return Err("needs at least one container or init container".into());
        }
        let mut names = BTreeSet::new();
        for container in self.containers.iter().chain(&self.init_containers) {
            let name =
                string_field(container, "name").ok_or("every container needs a string \"name\"")?;
            if string_field(container, "image").is_none() {
                return Err(Error::new(format!(
                    "container {name:?} needs a string \"image\""
                )));
            }
            if !names.insert(name) {
                return Err(Error::new(format!("container name {name:?} is used twice")));
            }
            container_ports(container).map_err(|error| format!("container {name:?}: {error}"))?;
        }
        for volume in &self.volumes {
            string_field(volume, "name").ok_or("every volume needs a string \"name\"")?;
        }
        for env in &self.annotation_env {
            if env.required && env.default.is_some() {
                return Err(Error::new(format!(
                    "annotation-env {:?} is required, so it cannot have a default",
                    env.name
                )));
            }
        }
        Ok(())
    }
}

/// The string field `key` of a JSON object, if it is a string.
pub fn string_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key)?.as_str()
}

/// The ports a container spec declares, as (containerPort, protocol) with
/// Kubernetes' default protocol, TCP.
pub fn container_ports(container: &Map<String, Value>) -> Result<Vec<(i64, String)>, String> {
    let Some(ports) = container.get("ports") else {
        return Ok(Vec::new());
    };
    let ports = ports.as_array().ok_or("\"ports\" must be a list")?;
    ports
        .iter()
        .map(|port| {
            let number = port
                .get("containerPort")
                .and_then(Value::as_i64)
                .ok_or("every port needs an integer \"containerPort\"")?;
            let protocol = port
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP");
            Ok((number, protocol.to_owned()))
        })
        .collect()
}
