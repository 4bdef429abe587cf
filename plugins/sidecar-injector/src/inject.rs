//! Deciding whether and what to inject into one pod, and the patch that does it.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value, json};
use wicket_sdk::Patch;

use crate::pod::{Marks, PodView, PodVolume};
use crate::settings::{Settings, Sidecar, container_ports, string_field};

/// The pod label/annotation keys under the configured prefix.
pub struct Keys {
    /// `<prefix>/inject`: "true" or "false", as a label or an annotation.
    pub inject: String,
    /// `<prefix>/sidecars`: comma-separated sidecar names.
    pub sidecars: String,
    /// `<prefix>/status`: what was injected, as JSON.
    pub status: String,
}

impl Keys {
    /// The keys for `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            inject: format!("{prefix}/inject"),
            sidecars: format!("{prefix}/sidecars"),
            status: format!("{prefix}/status"),
        }
    }
}

/// Why a pod that opted in gets no injection.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Admit the pod unchanged, with this warning.
    Skip(String),
    /// Deny the pod with this code and message.
    Deny(u16, String),
}

/// What one pod gets.
pub struct Injection {
    /// The JSON Patch that adds the sidecars and the status annotation.
    pub patch: Patch,
    /// The injected sidecars' names, in order.
    pub sidecars: Vec<String>,
}

/// What was injected, recorded in `<prefix>/status` so that a reinvocation
/// (or an operator) can see it and nothing is injected twice.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Status {
    sidecars: Vec<String>,
    containers: Vec<String>,
    init_containers: Vec<String>,
    volumes: Vec<String>,
    image_pull_secrets: Vec<String>,
}

/// The injection for `pod`: `None` when it does not opt in or already has its
/// sidecars.
pub fn inject(
    pod: &PodView,
    marks: &Marks,
    pod_volume: PodVolume,
    settings: &Settings,
    keys: &Keys,
) -> Result<Option<Injection>, Refusal> {
    if !opted_in(marks, keys, settings.inject_by_default)? {
        return Ok(None);
    }
    if marks.annotation(&keys.status).is_some() {
        return Ok(None);
    }
    if pod.spec.host_network && !settings.inject_host_network {
        return Err(Refusal::Skip(
            "hostNetwork pod: no sidecars injected (the injector's inject-host-network is off)"
                .into(),
        ));
    }
    let sidecars = selected(marks, keys, settings)?;
    let containers = prepared_containers(marks, &sidecars)?;
    let mut clashes = name_and_port_clashes(pod, &containers);
    let volumes = volumes_to_add(pod, pod_volume, &sidecars, &mut clashes)?;
    if !clashes.is_empty() {
        return Err(Refusal::Deny(
            409,
            format!("cannot inject sidecars: {}", clashes.join("; ")),
        ));
    }
    Ok(Some(build(
        pod, marks, keys, &sidecars, containers, volumes,
    )))
}

/// Whether the pod asks for injection: the label first, then the annotation,
/// then the default.
fn opted_in(marks: &Marks, keys: &Keys, by_default: bool) -> Result<bool, Refusal> {
    let (value, source) = match (marks.label(&keys.inject), marks.annotation(&keys.inject)) {
        (Some(value), _) => (value, "label"),
        (None, Some(value)) => (value, "annotation"),
        (None, None) => return Ok(by_default),
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "enabled" => Ok(true),
        "false" | "no" | "n" | "off" | "disabled" => Ok(false),
        _ => Err(Refusal::Deny(
            400,
            format!(
                "{source} {}={value:?} must be \"true\" or \"false\"",
                keys.inject
            ),
        )),
    }
}

/// The sidecars the pod names in `<prefix>/sidecars`, or the defaults.
fn selected<'s>(
    marks: &Marks,
    keys: &Keys,
    settings: &'s Settings,
) -> Result<Vec<(&'s str, &'s Sidecar)>, Refusal> {
    let names: Vec<&str> = match marks.annotation(&keys.sidecars) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect(),
        None => settings
            .default_sidecars
            .iter()
            .map(String::as_str)
            .collect(),
    };
    if names.is_empty() {
        return Err(Refusal::Deny(
            400,
            format!(
                "it asks for injection but names no sidecars; set the annotation {} to some of: {}",
                keys.sidecars,
                settings.sidecar_names()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut sidecars = Vec::new();
    for name in names {
        let Some((name, sidecar)) = settings.sidecars.get_key_value(name) else {
            return Err(Refusal::Deny(
                400,
                format!(
                    "annotation {} names the unknown sidecar {name:?}; known: {}",
                    keys.sidecars,
                    settings.sidecar_names()
                ),
            ));
        };
        if seen.insert(name) {
            sidecars.push((name.as_str(), sidecar));
        }
    }
    Ok(sidecars)
}

/// The containers and init containers to add, each with its sidecar's env
/// from annotations and pod fields. Every required annotation that is missing
/// is named in one denial.
fn prepared_containers(
    marks: &Marks,
    sidecars: &[(&str, &Sidecar)],
) -> Result<Containers, Refusal> {
    let mut containers = Containers::default();
    let mut missing = Vec::new();
    for (name, sidecar) in sidecars {
        let mut env = Vec::new();
        for wanted in &sidecar.annotation_env {
            match (marks.annotation(&wanted.annotation), &wanted.default) {
                (Some(value), _) => env.push(json!({"name": wanted.name, "value": value})),
                (None, Some(default)) => env.push(json!({"name": wanted.name, "value": default})),
                (None, None) if wanted.required => {
                    missing.push(format!("{} (for sidecar {name})", wanted.annotation));
                }
                (None, None) => {}
            }
        }
        for (env_name, field_path) in &sidecar.field_env {
            env.push(json!({
                "name": env_name,
                "valueFrom": {"fieldRef": {"fieldPath": field_path}},
            }));
        }
        let with_env = |container: &Map<String, Value>| {
            let mut container = container.clone();
            set_env(&mut container, &env);
            container
        };
        containers
            .containers
            .extend(sidecar.containers.iter().map(with_env));
        containers
            .init_containers
            .extend(sidecar.init_containers.iter().map(with_env));
    }
    if !missing.is_empty() {
        return Err(Refusal::Deny(
            400,
            format!(
                "missing required annotation(s): {}; add them to the pod's metadata.annotations",
                missing.join(", ")
            ),
        ));
    }
    Ok(containers)
}

/// Containers to add, already carrying their env.
#[derive(Default)]
struct Containers {
    containers: Vec<Map<String, Value>>,
    init_containers: Vec<Map<String, Value>>,
}

impl Containers {
    fn all(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.containers.iter().chain(&self.init_containers)
    }
}

/// Sets each env var of `env` in `container`, replacing one of the same name.
fn set_env(container: &mut Map<String, Value>, env: &[Value]) {
    if env.is_empty() {
        return;
    }
    let list = container
        .entry("env")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        for var in env {
            list.retain(|existing| existing.get("name") != var.get("name"));
            list.push(var.clone());
        }
    }
}

/// Container names already used in the pod, and ports the app listens on.
fn name_and_port_clashes(pod: &PodView, containers: &Containers) -> Vec<String> {
    let pod_init = pod.spec.init_containers.as_deref().unwrap_or_default();
    let mut names: BTreeSet<&str> = pod
        .spec
        .containers
        .iter()
        .chain(pod_init)
        .map(|container| container.name.as_str())
        .collect();
    let mut ports: Vec<(i64, String, String)> = pod
        .spec
        .containers
        .iter()
        .chain(pod_init.iter().filter(|init| init.is_native_sidecar()))
        .flat_map(|container| {
            container.ports.iter().map(|port| {
                let protocol = port.protocol.as_deref().unwrap_or("TCP").to_owned();
                (port.container_port, protocol, container.name.to_string())
            })
        })
        .collect();
    let mut clashes = Vec::new();
    for container in containers.all() {
        let name = string_field(container, "name").unwrap_or_default();
        if !names.insert(name) {
            clashes.push(format!("container name {name:?} is already used"));
        }
        for (number, protocol) in container_ports(container).unwrap_or_default() {
            if let Some((_, _, owner)) = ports
                .iter()
                .find(|(taken, taken_protocol, _)| *taken == number && *taken_protocol == protocol)
            {
                clashes.push(format!(
                    "sidecar container {name:?} listens on {number}/{protocol}, which container {owner:?} also declares"
                ));
            }
            ports.push((number, protocol, name.to_owned()));
        }
    }
    clashes
}

/// The sidecars' volumes the pod lacks. A volume already in the pod (or in an
/// earlier sidecar) with the same name is shared when its source is the same
/// and a clash when it differs. Pod volumes are parsed in full only on a
/// name match.
fn volumes_to_add<'s>(
    pod: &PodView,
    pod_volume: PodVolume,
    sidecars: &[(&str, &'s Sidecar)],
    clashes: &mut Vec<String>,
) -> Result<Vec<&'s Map<String, Value>>, Refusal> {
    let pod_volume_names = pod.spec.volumes.as_deref().unwrap_or_default();
    let mut to_add: Vec<&Map<String, Value>> = Vec::new();
    for volume in sidecars.iter().flat_map(|(_, sidecar)| &sidecar.volumes) {
        let name = string_field(volume, "name").unwrap_or_default();
        let current =
            match pod_volume_names
                .iter()
                .position(|taken| taken.name.as_str() == name)
            {
                Some(index) => Some(pod_volume(index).map_err(|error| {
                    Refusal::Deny(400, format!("a volume is malformed: {error}"))
                })?),
                None => to_add
                    .iter()
                    .find(|added| string_field(added, "name") == Some(name))
                    .map(|added| Value::Object((*added).clone())),
            };
        match current {
            None => to_add.push(volume),
            Some(current) if defaulted(&current) == defaulted(&Value::Object(volume.clone())) => {}
            Some(current) => clashes.push(format!(
                "volume {name:?} already exists with another source ({current} vs {})",
                Value::Object(volume.clone())
            )),
        }
    }
    Ok(to_add)
}

/// `volume` with the defaults the API server fills in before storing a
/// pod, so a pod that declares the sidecar's volume (and got the defaults)
/// shares it instead of clashing.
fn defaulted(volume: &Value) -> Value {
    /// `0644`, the API server's default file mode for projected files.
    const DEFAULT_MODE: u32 = 420;
    let mut volume = volume.clone();
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(Value::Object(fields)) = volume.get_mut(source) {
            fields
                .entry("defaultMode")
                .or_insert(Value::from(DEFAULT_MODE));
        }
    }
    if let Some(Value::Object(fields)) = volume.get_mut("hostPath") {
        fields.entry("type").or_insert(Value::from(""));
    }
    volume
}

/// The patch: containers appended, init containers first, volumes and pull
/// secrets added, and the status annotation.
fn build(
    pod: &PodView,
    marks: &Marks,
    keys: &Keys,
    sidecars: &[(&str, &Sidecar)],
    containers: Containers,
    volumes: Vec<&Map<String, Value>>,
) -> Injection {
    let spec = &pod.spec;
    let mut patch = Patch::new();
    let mut status = Status {
        sidecars: sidecars
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect(),
        ..Status::default()
    };
    let name_of = |container: &Map<String, Value>| {
        string_field(container, "name")
            .unwrap_or_default()
            .to_owned()
    };
    for container in &containers.containers {
        status.containers.push(name_of(container));
        patch.push(&["spec", "containers"], true, container);
    }
    let has_init = spec.init_containers.is_some();
    for (index, container) in containers.init_containers.iter().enumerate() {
        status.init_containers.push(name_of(container));
        if has_init {
            patch.add(&["spec", "initContainers", &index.to_string()], container);
        } else {
            patch.push(&["spec", "initContainers"], false, container);
        }
    }
    for volume in volumes {
        status.volumes.push(name_of(volume));
        patch.push(&["spec", "volumes"], spec.volumes.is_some(), volume);
    }
    let present: BTreeSet<&str> = spec
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|secret| secret.name.as_str())
        .collect();
    for (_, sidecar) in sidecars {
        for secret in &sidecar.image_pull_secrets {
            if !present.contains(secret.as_str()) && !status.image_pull_secrets.contains(secret) {
                status.image_pull_secrets.push(secret.clone());
                patch.push(
                    &["spec", "imagePullSecrets"],
                    spec.image_pull_secrets.is_some(),
                    &json!({"name": secret}),
                );
            }
        }
    }
    let status_json = serde_json::to_string(&status).expect("status serialises");
    patch.insert(
        &["metadata", "annotations"],
        marks.has_annotations,
        &keys.status,
        &status_json,
    );
    Injection {
        patch,
        sidecars: status.sidecars,
    }
}
