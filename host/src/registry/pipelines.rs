//! `pipelines.toml`: named, ordered lists of plugins served on one path.
//!
//! ```toml
//! [pipelines.pod-defaults]
//! mode = "mutating"
//! plugins = ["sidecar-injector", "add-label"]
//! [[pipelines.pod-defaults.webhook]]
//! rules = [{ operations = ["CREATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]
//! ```
//!
//! A pipeline is served only when every plugin it names is served, and (for
//! a validating pipeline) is validating. A pipeline may not take a plugin's
//! name: the clash is reported, neither silently wins.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::Entry;
use crate::pipeline::Pipeline;
use crate::plugin::{Enforcement, Mode};
use crate::webhook::spec::{self, WebhookSpec};

/// One pipeline as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PipelineSpec {
    /// Served on `/mutate/NAME` or `/validate/NAME`.
    pub mode: Mode,
    /// The plugins, in the order a mutating pipeline runs them.
    pub plugins: Vec<String>,
    /// Whether the merged verdict is enforced (each plugin's own
    /// enforcement applies to its step first).
    #[serde(default)]
    pub enforcement: Enforcement,
    /// How the API server should call it, as for a plugin.
    #[serde(default)]
    pub webhook: Vec<WebhookSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelinesFile {
    #[serde(default)]
    pipelines: BTreeMap<String, PipelineSpec>,
}

/// Parses the pipelines file.
pub fn parse(text: &str) -> Result<BTreeMap<String, PipelineSpec>, String> {
    let file: PipelinesFile = toml::from_str(text).map_err(|error| {
        format!(
            "{}: {}",
            super::scan::PIPELINES_FILE,
            one_line(&error.to_string())
        )
    })?;
    Ok(file.pipelines)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The pipeline `name` over the plugins in `entries`, or why it cannot be
/// served.
pub fn resolve(
    name: &str,
    spec: &PipelineSpec,
    entries: &BTreeMap<String, Entry>,
    previous: Option<&Arc<Pipeline>>,
) -> Result<Arc<Pipeline>, String> {
    if !crate::text::is_dns_label(name) {
        return Err(
            "the name is not a valid name (lower-case letters, digits and '-', at most 63)".into(),
        );
    }
    if entries.contains_key(name) {
        return Err(format!(
            "a plugin is also named {name:?}; rename the pipeline or the plugin"
        ));
    }
    if spec.plugins.is_empty() {
        return Err("it names no plugins".into());
    }
    let mut steps = Vec::with_capacity(spec.plugins.len());
    for (index, plugin) in spec.plugins.iter().enumerate() {
        if spec.plugins[..index].contains(plugin) {
            return Err(format!("it names plugin {plugin:?} twice"));
        }
        let served = entries
            .get(plugin)
            .and_then(|entry| entry.served.clone())
            .ok_or_else(|| format!("plugin {plugin:?} is not served"))?;
        let plugin_mode = served.plugin().manifest().mode;
        if spec.mode == Mode::Validating && plugin_mode == Mode::Mutating {
            return Err(format!(
                "plugin {plugin:?} is mutating; a validating pipeline runs validating plugins only"
            ));
        }
        steps.push(served);
    }
    let pipeline = Pipeline {
        name: name.to_owned(),
        mode: spec.mode,
        enforcement: spec.enforcement,
        steps,
        counters: previous.map_or_else(Arc::default, |pipeline| pipeline.counters.clone()),
    };
    spec::check(
        &spec.webhook,
        spec.mode == Mode::Mutating,
        pipeline.timeout_ms(),
    )
    .map_err(|error| error.to_string())?;
    Ok(Arc::new(pipeline))
}
