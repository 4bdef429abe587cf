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

use super::scan::PIPELINES_FILE;
use crate::pipeline::Pipeline;
use crate::plugin::manifest::webhook::{self, WebhookError, WebhookSpec};
use crate::plugin::{Enforcement, Mode};
use crate::served::Served;

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

/// Why the pipelines file was not (re)read.
#[derive(Debug, thiserror::Error)]
pub enum PipelinesFileError {
    /// It could not be read.
    #[error("cannot read {PIPELINES_FILE}")]
    Read(#[source] std::io::Error),
    /// It is not valid TOML or has unknown or mistyped fields.
    #[error("{PIPELINES_FILE}")]
    Syntax(#[source] toml::de::Error),
}

/// Parses the pipelines file.
pub fn parse(text: &str) -> Result<BTreeMap<String, PipelineSpec>, PipelinesFileError> {
    let file: PipelinesFile = toml::from_str(text).map_err(PipelinesFileError::Syntax)?;
    Ok(file.pipelines)
}

/// Why a pipeline cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// The name is not a DNS label.
    #[error("the name is not a valid name (lower-case letters, digits and '-', at most 63)")]
    BadName,
    /// A plugin has the same name (they would share a path).
    #[error("a plugin is also named {0:?}; rename the pipeline or the plugin")]
    NameTaken(String),
    /// `plugins` is empty.
    #[error("it names no plugins")]
    NoPlugins,
    /// `plugins` names a plugin twice.
    #[error("it names plugin {0:?} twice")]
    Repeated(String),
    /// A plugin it names is not served.
    #[error("plugin {0:?} is not served")]
    NotServed(String),
    /// A plugin it names is still loading (its first version): the
    /// pipeline is served once it is.
    #[error("plugin {0:?} is still loading")]
    Loading(String),
    /// A validating pipeline names a mutating plugin.
    #[error("plugin {0:?} is mutating; a validating pipeline runs validating plugins only")]
    MutatingStep(String),
    /// Its `[[webhook]]` entries are refused.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

/// What a pipeline is resolved against: the plugin names in the folder, and
/// the plugin versions served.
pub struct Plugins<'a> {
    /// Whether a plugin of this name is in the folder, served or not.
    pub named: &'a dyn Fn(&str) -> bool,
    /// The version served under this name, if any.
    pub served: &'a dyn Fn(&str) -> Option<Arc<Served>>,
    /// Whether a plugin of this name is being loaded.
    pub loading: &'a dyn Fn(&str) -> bool,
}

/// The pipeline `name` over `plugins`, or why it cannot be served.
pub fn resolve(
    name: &str,
    spec: &PipelineSpec,
    plugins: &Plugins<'_>,
    previous: Option<&Arc<Pipeline>>,
) -> Result<Arc<Pipeline>, PipelineError> {
    if !crate::text::is_dns_label(name) {
        return Err(PipelineError::BadName);
    }
    if (plugins.named)(name) {
        return Err(PipelineError::NameTaken(name.to_owned()));
    }
    if spec.plugins.is_empty() {
        return Err(PipelineError::NoPlugins);
    }
    let mut steps = Vec::with_capacity(spec.plugins.len());
    for (index, plugin) in spec.plugins.iter().enumerate() {
        if spec.plugins[..index].contains(plugin) {
            return Err(PipelineError::Repeated(plugin.clone()));
        }
        let served = (plugins.served)(plugin).ok_or_else(|| match (plugins.loading)(plugin) {
            true => PipelineError::Loading(plugin.clone()),
            false => PipelineError::NotServed(plugin.clone()),
        })?;
        let plugin_mode = served.plugin().manifest().mode;
        if spec.mode == Mode::Validating && plugin_mode == Mode::Mutating {
            return Err(PipelineError::MutatingStep(plugin.clone()));
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
    webhook::check(
        &spec.webhook,
        spec.mode == Mode::Mutating,
        pipeline.timeout_ms(),
    )?;
    Ok(Arc::new(pipeline))
}
