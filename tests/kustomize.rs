//! Every combination of `deploy/kustomize/components` on each plugin
//! source, and the examples, rendered by the real `kubectl kustomize`: each
//! rendered object parses as its k8s-openapi type (or, for the CRDs'
//! objects, as the fields Wicket's files use) with no field lost, and the
//! pieces fit together: the memory limit holds what the flags let Wicket
//! hold, one certificate source, every mount has its volume, Services and
//! policies name ports the pod has, the ServiceMonitor finds its Service,
//! the audit mounts the served plugins, all in Wicket's namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodSpec, Service, ServiceAccount,
    Volume,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wicket_tests::kustomize::{Renderer, find, typed};

/// Where the plugins come from: a kustomization, and the component that
/// swaps the plugin volume (listed last: it patches the audit's CronJob too).
const SOURCES: [(&str, Option<&str>); 3] = [
    ("overlays/bundled", None),
    ("base", Some("plugins-image")),
    ("base", Some("plugins-pvc")),
];

/// The components any install may list, in the order they are listed.
const OPTIONAL: [&str; 7] = [
    "replicas-resources",
    "scheduling",
    "monitoring",
    "network-policy",
    "audit",
    "mtls",
    "cert-manager",
];

/// Wicket's namespace, where every namespaced object goes.
const NAMESPACE: &str = "wicket-system";

/// The process alone (runtime, TLS, tokio), in MiB: VmRSS serving nothing.
const PROCESS_MIB: u64 = 16;
/// One compile of a component under 1 MiB at its peak (VmHWM of a cold start
/// of the injector, less the process).
const COMPILE_PEAK_MIB: u64 = 30;
/// The bundled plugins' compiled code (VmRSS of a warm start, less the process).
const BUNDLED_CODE_MIB: u64 = 10;

#[test]
fn every_combination_of_components_renders_and_fits_together() {
    let renderer = Renderer::new();
    let mut combinations: Vec<(&str, Vec<&str>)> = Vec::new();
    for (resource, source) in SOURCES {
        for mask in 0..1u32 << OPTIONAL.len() {
            let mut components: Vec<&str> = OPTIONAL
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                .map(|(_, component)| *component)
                .collect();
            components.extend(source);
            combinations.push((resource, components));
        }
    }
    // kubectl is mostly process start-up: a few at a time.
    let workers = 4;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (renderer, combinations) = (&renderer, &combinations);
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (resource, components) in combinations.iter().skip(worker).step_by(workers)
                    {
                        let rendered = renderer.render(resource, components);
                        if let Err(failure) = rendered.and_then(|objects| {
                            check_install(&objects, components).map_err(|error| error.to_string())
                        }) {
                            failures.push(format!("{resource} + {components:?}: {failure}"));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    assert_eq!(combinations.len(), 3 << OPTIONAL.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_production_example_renders_with_what_it_lists() {
    let renderer = Renderer::new();
    let objects = renderer
        .render_path("examples/production")
        .unwrap_or_else(|error| panic!("kubectl kustomize: {error}"));
    let kustomization: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(
            wicket_tests::workspace_root()
                .join("deploy/kustomize/examples/production/kustomization.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = kustomization["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|path| {
            let path = path.as_str().unwrap();
            path.strip_prefix("../../components/").unwrap()
        })
        .collect();
    assert!(listed.len() >= 4, "{listed:?}");
    check_install(&objects, &listed).unwrap();
    let deployment: Deployment = typed(&objects, "Deployment", "wicket");
    let image = deployment.spec.template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    assert_eq!(image, "registry.example.com/platform/wicket:0.1.0");
}

/// Why a rendered install does not hold together.
#[derive(Debug, thiserror::Error)]
enum Broken {
    #[error("{kind} {name}: {reason}")]
    Object {
        kind: String,
        name: String,
        reason: String,
    },
    #[error("{0}")]
    Install(String),
}

fn broken(message: impl Into<String>) -> Broken {
    Broken::Install(message.into())
}

/// Checks one rendered install made with `components`.
fn check_install(objects: &[Value], components: &[&str]) -> Result<(), Broken> {
    for object in objects {
        parses_with_no_field_lost(object)?;
    }
    let with = |component: &str| components.contains(&component);
    let deployment: Deployment = typed(objects, "Deployment", "wicket");
    let pod = deployment.spec.template.spec.clone().unwrap();
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap_or_default();
    memory_limit_holds_the_flags(container, &args)?;
    every_mount_has_its_volume(&pod, container)?;

    // One certificate source, and Secret rights only for Wicket's own CA.
    let cert_secret = args.iter().any(|arg| arg.starts_with("--cert-secret="));
    let cert_files = args.iter().any(|arg| arg.starts_with("--tls-cert="));
    if cert_secret == cert_files {
        return Err(broken(format!(
            "one of --cert-secret, --tls-cert: {args:?}"
        )));
    }
    let secret_role = find(objects, "Role", "wicket-certificates").is_some();
    if secret_role != cert_secret {
        return Err(broken("the Secret Role goes with --cert-secret alone"));
    }
    if with("cert-manager") {
        let certificate: Custom<CertificateSpec> = typed(objects, "Certificate", "wicket-serving");
        let mounted = volume(&pod, "tls").and_then(|volume| volume.secret.as_ref());
        let secret = mounted.and_then(|secret| secret.secret_name.as_deref());
        if secret != Some(certificate.spec.secret_name.as_str()) {
            return Err(broken("the tls volume is not the Certificate's Secret"));
        }
        let service_name = format!("wicket.{NAMESPACE}.svc");
        if !certificate
            .spec
            .dns_names
            .unwrap_or_default()
            .contains(&service_name)
        {
            return Err(broken(format!(
                "the Certificate does not name {service_name}"
            )));
        }
    }
    if with("mtls")
        != args
            .iter()
            .any(|arg| arg == "--client-ca=/client-ca/ca.crt")
    {
        return Err(broken("--client-ca comes with the mtls component alone"));
    }

    // The plugins come from the volume the source says.
    let plugins = volume(&pod, "plugins").ok_or_else(|| broken("no plugins volume"))?;
    let source = if with("plugins-image") {
        plugins.image.is_some()
    } else if with("plugins-pvc") {
        plugins.persistent_volume_claim.is_some()
            && find(objects, "PersistentVolumeClaim", "wicket-plugins").is_some()
    } else {
        plugins.projected.is_some()
    };
    if !source {
        return Err(broken(format!("plugins volume {plugins:?}")));
    }
    if with("audit") {
        let cronjob: CronJob = typed(objects, "CronJob", "wicket-audit");
        let audit_pod = cronjob.spec.job_template.spec.unwrap().template.spec;
        let audited = audit_pod.as_ref().and_then(|pod| volume(pod, "plugins"));
        if audited != Some(plugins) {
            return Err(broken("the audit judges with other plugins than served"));
        }
    }

    let pod_labels = deployment
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|meta| meta.labels.clone())
        .unwrap_or_default();
    let port_names: Vec<String> = container
        .ports
        .iter()
        .flatten()
        .filter_map(|port| port.name.clone())
        .collect();
    services_reach_the_pod(objects, &pod_labels, &port_names)?;
    if with("network-policy") {
        let policy: NetworkPolicy = typed(objects, "NetworkPolicy", "wicket");
        for rule in policy.spec.unwrap().ingress.unwrap_or_default() {
            for port in rule.ports.unwrap_or_default() {
                if let Some(IntOrString::String(name)) = &port.port
                    && !port_names.contains(name)
                {
                    return Err(broken(format!("NetworkPolicy names no port {name}")));
                }
            }
        }
    }
    if with("monitoring") {
        let monitor: Custom<ServiceMonitorSpec> = typed(objects, "ServiceMonitor", "wicket");
        let wanted = monitor.spec.selector.match_labels.unwrap_or_default();
        let scraped: Vec<Service> = all::<Service>(objects, "Service")
            .into_iter()
            .filter(|service| {
                let labels = service.metadata.labels.clone().unwrap_or_default();
                wanted
                    .iter()
                    .all(|(key, value)| labels.get(key) == Some(value))
            })
            .collect();
        let [service] = scraped.as_slice() else {
            return Err(broken(format!(
                "the ServiceMonitor selects {} Services",
                scraped.len()
            )));
        };
        let ports = service.spec.clone().unwrap().ports.unwrap_or_default();
        for endpoint in &monitor.spec.endpoints {
            if !ports
                .iter()
                .any(|port| port.name.as_ref() == Some(&endpoint.port))
            {
                return Err(broken(format!(
                    "the ServiceMonitor scrapes no port {}",
                    endpoint.port
                )));
            }
        }
    }

    // Everything namespaced is in Wicket's namespace.
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let cluster_wide = matches!(
            kind,
            "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition"
        );
        let namespace = object["metadata"]["namespace"].as_str();
        if !cluster_wide && namespace != Some(NAMESPACE) {
            return Err(Broken::Object {
                kind: kind.to_owned(),
                name: object["metadata"]["name"].to_string(),
                reason: format!("in namespace {namespace:?}"),
            });
        }
    }
    Ok(())
}

/// The container's memory limit is at least what the flags let Wicket
/// hold (the sum written beside the limit in base/deployment.yaml).
fn memory_limit_holds_the_flags(container: &Container, args: &[String]) -> Result<(), Broken> {
    let flag = |name: &str| -> Result<u64, Broken> {
        let prefix = format!("--{name}=");
        let value = args.iter().find_map(|arg| arg.strip_prefix(&prefix));
        let value = value.ok_or_else(|| broken(format!("{prefix} missing")))?;
        value
            .parse()
            .map_err(|_| broken(format!("{prefix}{value}")))
    };
    let resources = container
        .resources
        .as_ref()
        .ok_or_else(|| broken("no resources"))?;
    let limit = resources
        .limits
        .as_ref()
        .and_then(|limits| limits.get("memory"))
        .ok_or_else(|| broken("no memory limit"))?;
    let limit_mib: u64 = match limit.0.strip_suffix("Gi") {
        Some(gib) => gib.parse::<u64>().map(|gib| gib << 10),
        None => limit.0.trim_end_matches("Mi").parse(),
    }
    .map_err(|_| broken(format!("memory limit {}", limit.0)))?;
    let held_mib = PROCESS_MIB
        + flag("plugin-memory-mib")?
        + flag("body-budget-mib")?
        + flag("max-compiles")? * COMPILE_PEAK_MIB
        + flag("cluster-memory-mib")?
        + BUNDLED_CODE_MIB;
    if held_mib > limit_mib {
        return Err(broken(format!("{held_mib} MiB held, limit {}", limit.0)));
    }
    Ok(())
}

fn every_mount_has_its_volume(pod: &PodSpec, container: &Container) -> Result<(), Broken> {
    for mount in container.volume_mounts.iter().flatten() {
        if volume(pod, &mount.name).is_none() {
            return Err(broken(format!("no volume for the mount {}", mount.name)));
        }
    }
    Ok(())
}

/// Each Service selects the pod and targets a port it names.
fn services_reach_the_pod(
    objects: &[Value],
    pod_labels: &BTreeMap<String, String>,
    port_names: &[String],
) -> Result<(), Broken> {
    for service in all::<Service>(objects, "Service") {
        let spec = service.spec.unwrap();
        let selector = spec.selector.unwrap_or_default();
        let name = service.metadata.name.unwrap_or_default();
        if !selector
            .iter()
            .all(|(key, value)| pod_labels.get(key) == Some(value))
        {
            return Err(broken(format!("Service {name} does not select the pod")));
        }
        for port in spec.ports.unwrap_or_default() {
            match port.target_port {
                Some(IntOrString::String(target)) if port_names.contains(&target) => {}
                other => return Err(broken(format!("Service {name} targets {other:?}"))),
            }
        }
    }
    Ok(())
}

fn volume<'a>(pod: &'a PodSpec, name: &str) -> Option<&'a Volume> {
    pod.volumes
        .iter()
        .flatten()
        .find(|volume| volume.name == name)
}

fn all<K: DeserializeOwned>(objects: &[Value], kind: &str) -> Vec<K> {
    objects
        .iter()
        .filter(|object| object["kind"] == kind)
        .map(|object| serde_json::from_value(object.clone()).unwrap())
        .collect()
}

/// `object` through its type and back: equal unless a field is unknown to
/// the type (a misspelt field would be dropped).
fn parses_with_no_field_lost(object: &Value) -> Result<(), Broken> {
    fn round_trip<K: Serialize + DeserializeOwned>(object: &Value) -> Result<Value, String> {
        let typed: K = serde_json::from_value(object.clone()).map_err(|error| error.to_string())?;
        serde_json::to_value(typed).map_err(|error| error.to_string())
    }
    let kind = object["kind"].as_str().unwrap_or_default();
    let parsed = match kind {
        "Namespace" => round_trip::<Namespace>(object),
        "ServiceAccount" => round_trip::<ServiceAccount>(object),
        "ClusterRole" => round_trip::<ClusterRole>(object),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(object),
        "Role" => round_trip::<Role>(object),
        "RoleBinding" => round_trip::<RoleBinding>(object),
        "Service" => round_trip::<Service>(object),
        "ConfigMap" => round_trip::<ConfigMap>(object),
        "Deployment" => round_trip::<Deployment>(object),
        "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(object),
        "CronJob" => round_trip::<CronJob>(object),
        "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(object),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(object),
        "PersistentVolumeClaim" => round_trip::<PersistentVolumeClaim>(object),
        "ServiceMonitor" => round_trip::<Custom<ServiceMonitorSpec>>(object),
        "PrometheusRule" => round_trip::<Custom<PrometheusRuleSpec>>(object),
        "Certificate" => round_trip::<Custom<CertificateSpec>>(object),
        "Issuer" => round_trip::<Custom<IssuerSpec>>(object),
        _ => Err("no type to check it against".to_owned()),
    };
    let problem = match parsed {
        Ok(parsed) if &parsed == object => return Ok(()),
        Ok(parsed) => format!("lost or changed a field: {parsed}"),
        Err(error) => error,
    };
    Err(Broken::Object {
        kind: kind.to_owned(),
        name: object["metadata"]["name"].to_string(),
        reason: problem,
    })
}

/// An object of a CRD k8s-openapi does not know: the fields Wicket's files
/// use, as the CRDs spell them (monitoring.coreos.com/v1, cert-manager.io/v1);
/// any other field is refused.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Custom<S> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: S,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    endpoints: Vec<MonitorEndpoint>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorEndpoint {
    port: String,
    path: String,
    interval: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    #[serde(rename = "isCA", skip_serializing_if = "Option::is_none")]
    is_ca: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    common_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renew_before: Option<String>,
    private_key: PrivateKey,
    issuer_ref: IssuerRef,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateKey {
    algorithm: String,
    size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_policy: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerRef {
    name: String,
    kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    self_signed: Option<BTreeMap<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<CaIssuer>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaIssuer {
    secret_name: String,
}
