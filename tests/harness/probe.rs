//! The cluster-probe test plugin, served as `probe`: what it answered to
//! the reads a review's annotations ask of the `cluster` interface.

use serde_json::{Value, json};

use crate::{PluginDir, Wicket, edited_fixture, test_plugin};

/// The path the probe is served on.
pub const PROBE_PATH: &str = "/validate/probe";

/// A manifest declaring Namespaces (metadata only) and Ingresses indexed
/// by host.
pub const PROBE_MANIFEST: &str = r#"
[cluster]
read = [
  { api-version = "v1", kind = "Namespace", metadata-only = true },
  { api-version = "networking.k8s.io/v1", kind = "Ingress", index = { host = "/spec/rules/*/host" } },
]
"#;

/// A plugin folder with the probe and `manifest`.
pub fn probe_dir(manifest: &str) -> PluginDir {
    PluginDir::new().plugin(
        "probe",
        &test_plugin("test-plugin-cluster-probe"),
        Some(manifest),
    )
}

/// What the probe answered to the reads `asks` describes (`call`, `kind`,
/// `namespace`, `name`, `selector`, `index`, `value`).
pub async fn probe(wicket: &Wicket, asks: &[(&str, &str)]) -> String {
    let annotations: serde_json::Map<String, Value> = asks
        .iter()
        .map(|(key, value)| (format!("probe/{key}"), json!(value)))
        .collect();
    let review = edited_fixture("v1-configmap-create.json", |request| {
        request["object"]["metadata"]["annotations"] = Value::Object(annotations);
    });
    let answer = wicket.client().review(PROBE_PATH, &review).await.unwrap();
    let message = answer.response["status"]["message"].as_str();
    // Wicket names the plugin that refused.
    message
        .and_then(|message| message.strip_prefix("probe: "))
        .unwrap_or_else(|| panic!("the probe refuses: {}", answer.response))
        .to_owned()
}
