//! Registering Wicket with the API server, through the real binary:
//! `wicket manifests` renders the bundled plugins' `[[webhook]]` entries as
//! valid configurations, and `wicket serve --register` applies them with
//! server-side apply to a recording API server: created at start, updated
//! when a plugin goes, not written when nothing changed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use serde_json::{Value, json};
use wicket_tests::apiserver::{self, ApiServer};
use wicket_tests::pki::TestCa;
use wicket_tests::{PluginDir, Wicket, eventually, misbehave, wicket_binary, workspace_root};

const PATIENCE: Duration = Duration::from_secs(30);
const MUTATING: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/wicket";
const VALIDATING: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/wicket";

/// The bundled plugins, as `scripts/bundle` assembles them.
fn bundled() -> PluginDir {
    PluginDir::new()
        .bundled("sidecar-injector", "wicket-sidecar-injector")
        .bundled("configmap-mutator", "wicket-configmap-mutator")
        .bundled("etcd-leader-guard", "wicket-etcd-leader-guard")
        .bundled("require-owner", "wicket-plugin-template")
        .bundled("add-label", "test-plugin-misbehave")
}

/// A bundled manifest's `[[webhook]]` entries, as TOML.
fn manifest_entries(name: &str) -> Vec<toml::Value> {
    let path = workspace_root().join(format!("deploy/plugins/{name}.toml"));
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    manifest
        .get("webhook")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn strings(value: &toml::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

fn labels(selector: Option<&toml::Value>) -> Option<BTreeMap<String, String>> {
    let table = selector?.get("match-labels")?.as_table()?;
    Some(
        table
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap().to_owned()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_for_the_bundled_plugins_match_their_manifests() {
    let plugins = bundled();
    let state = tempfile::tempdir().unwrap();
    let ca_file = state.path().join("ca.pem");
    TestCa::new().write(&ca_file);
    let output = Command::new(wicket_binary())
        .arg("manifests")
        .arg("--plugins")
        .arg(plugins.path())
        .args(["--service", "wicket", "--namespace", "wicket-system"])
        .arg("--ca-file")
        .arg(&ca_file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "not registered: add-label: served on /mutate/add-label but has no [[webhook]] entries"
        ),
        "{stderr}"
    );

    let entries = rendered_entries(&output.stdout);
    let ca_bundle =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&ca_file).unwrap());
    let mut expected_names = Vec::new();
    for plugin in [
        "sidecar-injector",
        "configmap-mutator",
        "etcd-leader-guard",
        "require-owner",
    ] {
        let declared = manifest_entries(plugin);
        assert!(!declared.is_empty(), "{plugin} declares no [[webhook]]");
        for entry in declared {
            let name = match entry.get("name") {
                Some(name) => format!("{}.{plugin}.wicket.dev", name.as_str().unwrap()),
                None => format!("{plugin}.wicket.dev"),
            };
            let (webhook, prefix) = entries
                .get(&name)
                .unwrap_or_else(|| panic!("{name} missing from {entries:?}"));
            expected_names.push(name.clone());
            check_entry(&name, plugin, prefix, &entry, webhook, &ca_bundle);
        }
    }
    expected_names.sort();
    assert_eq!(entries.keys().cloned().collect::<Vec<_>>(), expected_names);
}

/// The entries `wicket manifests` printed (its stdout), as JSON by name,
/// with the path prefix each is served under.
fn rendered_entries(stdout: &[u8]) -> BTreeMap<String, (Value, &'static str)> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(stdout).unwrap()).unwrap();
    assert_eq!(documents.len(), 2);
    let mutating: MutatingWebhookConfiguration =
        serde_json::from_value(documents[0].clone()).unwrap();
    let validating: ValidatingWebhookConfiguration =
        serde_json::from_value(documents[1].clone()).unwrap();
    assert_eq!(mutating.metadata.name.as_deref(), Some("wicket"));
    assert_eq!(validating.metadata.name.as_deref(), Some("wicket"));

    // Every entry, as JSON, by name, with where it is served.
    let mut entries = BTreeMap::new();
    for webhook in mutating.webhooks.unwrap() {
        entries.insert(
            webhook.name.clone(),
            (serde_json::to_value(webhook).unwrap(), "mutate"),
        );
    }
    for webhook in validating.webhooks.unwrap() {
        entries.insert(
            webhook.name.clone(),
            (serde_json::to_value(webhook).unwrap(), "validate"),
        );
    }
    entries
}

/// Checks one rendered entry `webhook` (named `name`, for `plugin` on
/// `/{prefix}/`) against the `[[webhook]]` `entry` it came from.
fn check_entry(
    name: &str,
    plugin: &str,
    prefix: &str,
    entry: &toml::Value,
    webhook: &Value,
    ca_bundle: &str,
) {
    let declared =
        |key: &str, default: &'static str| entry.get(key).map_or(default, |v| v.as_str().unwrap());
    // Each rendered field, as a JSON pointer, and its value.
    #[rustfmt::skip]
    let fields = [
        ("/clientConfig/service/path", json!(format!("/{prefix}/{plugin}"))),
        ("/clientConfig/service/name", json!("wicket")),
        ("/clientConfig/service/namespace", json!("wicket-system")),
        ("/clientConfig/service/port", json!(443)),
        ("/clientConfig/caBundle", json!(ca_bundle)),
        ("/admissionReviewVersions", json!(["v1", "v1beta1"])),
        ("/failurePolicy", json!(declared("failure-policy", "Fail"))),
        ("/sideEffects", json!(declared("side-effects", "None"))),
    ];
    for (pointer, value) in fields {
        assert_eq!(webhook.pointer(pointer), Some(&value), "{name} {pointer}");
    }
    let rules = entry["rules"].as_array().unwrap();
    assert_eq!(webhook["rules"].as_array().unwrap().len(), rules.len());
    for (rule, rendered) in rules.iter().zip(webhook["rules"].as_array().unwrap()) {
        for (toml_key, json_key) in [
            ("operations", "operations"),
            ("api-groups", "apiGroups"),
            ("api-versions", "apiVersions"),
            ("resources", "resources"),
        ] {
            assert_eq!(
                rendered[json_key],
                serde_json::json!(strings(&rule[toml_key])),
                "{name} {json_key}"
            );
        }
    }
    let selector = &webhook["namespaceSelector"];
    if let Some(labels) = labels(entry.get("namespace-selector")) {
        assert_eq!(
            selector["matchLabels"],
            serde_json::to_value(labels).unwrap(),
            "{name}"
        );
    }
    // Wicket's own namespace and kube-system are never sent.
    let excluded = selector["matchExpressions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
        .unwrap_or_else(|| panic!("{name}: no exclusion in {selector}"));
    assert_eq!(
        excluded["values"],
        serde_json::json!(["kube-system", "wicket-system"])
    );
    match labels(entry.get("object-selector")) {
        Some(labels) => assert_eq!(
            webhook["objectSelector"]["matchLabels"],
            serde_json::to_value(labels).unwrap()
        ),
        None => assert!(webhook.get("objectSelector").is_none(), "{name}"),
    }
    let timeout = webhook["timeoutSeconds"].as_u64().unwrap();
    assert!((5..=30).contains(&timeout), "{name}: {timeout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_without_an_endpoint_is_a_usage_error() {
    let plugins = PluginDir::new();
    let output = Command::new(wicket_binary())
        .arg("manifests")
        .arg("--plugins")
        .arg(plugins.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--service NAME --namespace NS, or --url"),
        "{stderr}"
    );
}

/// A validating plugin `name` registered for pods CREATE.
fn with_registered_plugin(dir: PluginDir, name: &str, mode: &str) -> PluginDir {
    let manifest = format!(
        "mode = \"{mode}\"\n[[webhook]]\nrules = [{{ operations = [\"CREATE\"], api-groups = [\"\"], api-versions = [\"v1\"], resources = [\"pods\"] }}]\n[settings]\nbehave = \"allow\"\n"
    );
    dir.plugin(name, &misbehave(), Some(&manifest))
}

fn webhook_names(object: &Value) -> Vec<String> {
    object["webhooks"]
        .as_array()
        .map(|webhooks| {
            webhooks
                .iter()
                .map(|webhook| webhook["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn start_registered(plugins: PluginDir, tls_dir: &Path, kubeconfig: &Path) -> Wicket {
    let args = [
        "--register",
        "--url",
        "https://127.0.0.1:9443",
        "--namespace",
        "wicket-system",
    ];
    let env = [("KUBECONFIG", kubeconfig.as_os_str())];
    Wicket::start_with_tls_dir(plugins, tls_dir, &args, &env).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn register_applies_updates_and_leaves_unchanged_configurations_alone() {
    let api = ApiServer::start().await;
    let state = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(state.path());
    let tls_dir = state.path().join("tls");
    let plugins = with_registered_plugin(PluginDir::new(), "guard", "validating");
    let plugins = with_registered_plugin(plugins, "inject", "mutating").write(
        "pipelines.toml",
        b"[pipelines.pod-checks]\nmode = \"validating\"\nplugins = [\"guard\"]\n[[pipelines.pod-checks.webhook]]\nrules = [{ operations = [\"UPDATE\"], api-groups = [\"\"], api-versions = [\"v1\"], resources = [\"pods\"] }]\n",
    );
    let plugin_folder = plugins.path().to_owned();
    let wicket = start_registered(plugins, &tls_dir, &kubeconfig);

    let validating = eventually("the validating configuration", PATIENCE, async || {
        api.object(VALIDATING)
    })
    .await;
    let mutating = eventually("the mutating configuration", PATIENCE, async || {
        api.object(MUTATING)
    })
    .await;
    assert_eq!(
        webhook_names(&validating),
        ["guard.wicket.dev", "pod-checks.wicket.dev"]
    );
    assert_eq!(
        validating["webhooks"][1]["clientConfig"]["url"],
        "https://127.0.0.1:9443/validate/pod-checks"
    );
    assert_eq!(webhook_names(&mutating), ["inject.wicket.dev"]);
    let ca =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&wicket.ca_file).unwrap());
    assert_eq!(
        validating["webhooks"][0]["clientConfig"]["caBundle"],
        ca.as_str()
    );
    assert_eq!(
        validating["webhooks"][0]["clientConfig"]["url"],
        "https://127.0.0.1:9443/validate/guard"
    );
    for write in api.writes() {
        assert_eq!(write.method, "PATCH", "{write:?}");
        assert!(
            write.query.contains("fieldManager=wicket"),
            "{}",
            write.query
        );
        assert!(write.query.contains("force=true"), "{}", write.query);
        assert_eq!(write.content_type, "application/apply-patch+yaml");
        assert_eq!(write.authorization, format!("Bearer {}", apiserver::TOKEN));
        let body = write.json();
        assert_eq!(body["metadata"]["name"], "wicket");
        assert!(
            body["kind"] == "MutatingWebhookConfiguration"
                || body["kind"] == "ValidatingWebhookConfiguration"
        );
    }
    assert_eq!(api.writes().len(), 2, "{:?}", api.writes());

    // A plugin removed loses its entry, and so does the pipeline that needs
    // it; the other configuration is not written.
    std::fs::remove_file(plugin_folder.join("guard.wasm")).unwrap();
    std::fs::remove_file(plugin_folder.join("guard.toml")).unwrap();
    let validating = eventually("the removal to be applied", PATIENCE, async || {
        api.object(VALIDATING)
            .filter(|object| webhook_names(object).is_empty())
    })
    .await;
    assert_eq!(validating["webhooks"], serde_json::json!([]));
    let writes = api.writes();
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert_eq!(writes[2].path, VALIDATING);
    drop(wicket);

    // A replica serving the same folder with the same CA finds both objects
    // up to date and writes nothing.
    let same = with_registered_plugin(PluginDir::new(), "inject", "mutating");
    let replica = start_registered(same, &tls_dir, &kubeconfig);
    eventually(
        "the replica to check both configurations",
        PATIENCE,
        async || {
            (replica
                .log()
                .matches("webhook configuration already up to date")
                .count()
                == 2)
                .then_some(())
        },
    )
    .await;
    assert_eq!(api.writes().len(), 3, "{:?}", api.writes());
}

#[tokio::test(flavor = "multi_thread")]
async fn register_without_cluster_credentials_stops_start_up_with_the_reason() {
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("no-such-kubeconfig");
    let args = ["--register", "--url", "https://127.0.0.1:9443"];
    let env: [(&str, &OsStr); 3] = [
        ("KUBECONFIG", missing.as_os_str()),
        ("HOME", state.path().as_os_str()),
        ("KUBERNETES_SERVICE_HOST", OsStr::new("")),
    ];
    let error = Wicket::start_with_env(PluginDir::new(), &args, &env)
        .err()
        .expect("start-up fails");
    let error = format!("{error:#}");
    assert!(
        error.contains("--register or --cert-secret: cannot configure a Kubernetes client"),
        "{error}"
    );
}
