//! One snapshot of what is served: each plugin name with its served version,
//! last error and counters, and each pipeline; what a path names, the
//! served paths, what is refused, and what the API server and `/metrics`
//! read of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::pipelines::{PipelineError, PipelineSpec};
use super::scan::{PIPELINES_FILE, Stamp};
use crate::counters::Counters;
use crate::pipeline::Pipeline;
use crate::plugin::Mode;
use crate::plugin::manifest::webhook::WebhookSpec;
use crate::served::{Served, Source};

/// Something served that asks the API server for reviews.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The plugin's or pipeline's name.
    pub name: &'a str,
    /// Whether it is served on `/mutate/`.
    pub mutating: bool,
    /// Its URL path.
    pub path: String,
    /// The longest it may take, which its timeouts must exceed.
    pub timeout_ms: u64,
    /// Its `[[webhook]]` entries.
    pub webhooks: &'a [WebhookSpec],
}

/// One plugin name in a snapshot.
#[derive(Clone)]
pub(super) struct Entry {
    /// The version served, if one ever loaded and its files are still there.
    pub(super) served: Option<Arc<Served>>,
    /// Why the current files are not the served version.
    pub(super) last_error: Option<String>,
    /// The files last tried, so unchanged files are not loaded again.
    pub(super) attempted: Option<Source>,
    /// What `stat` said of those files, so unchanged ones are not even read.
    pub(super) stamp: Option<Stamp>,
    pub(super) counters: Arc<Counters>,
}

/// One pipeline name in a snapshot.
#[derive(Clone)]
pub(super) struct PipelineEntry {
    pub(super) spec: PipelineSpec,
    pub(super) resolved: Result<Arc<Pipeline>, PipelineError>,
}

/// The plugins and pipelines of one snapshot, by name.
#[derive(Default)]
pub struct PluginSet {
    pub(super) entries: BTreeMap<String, Entry>,
    pub(super) pipelines: BTreeMap<String, PipelineEntry>,
    /// Why `pipelines.toml` was not (re)read; the previous pipelines stay.
    pub(super) pipelines_error: Option<String>,
    /// Plugins whose new files are being loaded (the previous version, if
    /// any, serves meanwhile).
    pub(super) loading: BTreeSet<String>,
}

/// What a path names in a snapshot.
pub enum Lookup<'a> {
    /// A plugin served on this path.
    Plugin(&'a Arc<Served>),
    /// A pipeline served on this path.
    Pipeline(&'a Arc<Pipeline>),
    /// A plugin or pipeline served on the other path (`/mutate` vs `/validate`).
    OtherPath(Mode),
    /// Nothing of that name is served.
    Unknown,
}

impl PluginSet {
    /// Finds what `name` serves with `mode`.
    pub fn lookup(&self, mode: Mode, name: &str) -> Lookup<'_> {
        if let Some(Ok(pipeline)) = self.pipelines.get(name).map(|entry| &entry.resolved) {
            return match pipeline.mode == mode {
                true => Lookup::Pipeline(pipeline),
                false => Lookup::OtherPath(pipeline.mode),
            };
        }
        match self
            .entries
            .get(name)
            .and_then(|entry| entry.served.as_ref())
        {
            Some(served) if served.plugin.manifest().mode == mode => Lookup::Plugin(served),
            Some(served) => Lookup::OtherPath(served.plugin.manifest().mode),
            None => Lookup::Unknown,
        }
    }

    /// The served paths, e.g. `/mutate/sidecar-injector`.
    pub fn served_paths(&self) -> Vec<String> {
        let plugins = self.entries.iter().filter_map(|(name, entry)| {
            let served = entry.served.as_ref()?;
            Some(served_path(served.plugin.manifest().mode, name))
        });
        let pipelines = self.pipelines.iter().filter_map(|(name, entry)| {
            let pipeline = entry.resolved.as_ref().ok()?;
            Some(served_path(pipeline.mode, name))
        });
        plugins.chain(pipelines).collect()
    }

    /// Names that serve nothing, with the reason.
    pub fn refused(&self) -> BTreeMap<String, String> {
        let plugins = self.entries.iter().filter_map(|(name, entry)| {
            let reason = entry
                .last_error
                .as_ref()
                .filter(|_| entry.served.is_none())?;
            Some((name.clone(), reason.clone()))
        });
        let pipelines = self.pipelines.iter().filter_map(|(name, entry)| {
            let reason = entry.resolved.as_ref().err()?;
            Some((name.clone(), format!("pipeline: {reason}")))
        });
        let file = self
            .pipelines_error
            .iter()
            .map(|reason| (PIPELINES_FILE.to_owned(), reason.clone()));
        plugins.chain(pipelines).chain(file).collect()
    }

    /// The kinds the served plugins read of the cluster: what Wicket's
    /// service account must be allowed to get, list and watch.
    pub fn cluster_reads(&self) -> BTreeSet<crate::cluster::kind::KindKey> {
        self.entries
            .values()
            .filter_map(|entry| entry.served.as_ref())
            .flat_map(|served| served.plugin.manifest().cluster.iter())
            .map(|read| read.kind.clone())
            .collect()
    }

    /// What each served plugin and pipeline asks the API server for, by name.
    pub fn webhook_targets(&self) -> Vec<Target<'_>> {
        let plugins = self.entries.iter().filter_map(|(name, entry)| {
            let manifest = entry.served.as_ref()?.plugin.manifest();
            Some(Target {
                name,
                mutating: manifest.mode == Mode::Mutating,
                path: served_path(manifest.mode, name),
                timeout_ms: manifest.limits.timeout_ms,
                webhooks: &manifest.webhooks,
            })
        });
        let pipelines = self.pipelines.iter().filter_map(|(name, entry)| {
            let pipeline = entry.resolved.as_ref().ok()?;
            Some(Target {
                name,
                mutating: pipeline.mode == Mode::Mutating,
                path: served_path(pipeline.mode, name),
                timeout_ms: pipeline.timeout_ms(),
                webhooks: &entry.spec.webhook,
            })
        });
        plugins.chain(pipelines).collect()
    }

    /// Each plugin name and each served pipeline, with its counters.
    pub fn tallies(&self) -> impl Iterator<Item = Tally<'_>> {
        let plugins = self.entries.iter().map(|(name, entry)| Tally {
            kind: PLUGIN,
            name,
            counters: &entry.counters,
            served: entry.served.as_deref().map(|served| ServedVersion {
                digest: format!("sha256:{}", served.plugin.digest()),
                mode: served.plugin.manifest().mode.as_str(),
                enforcement: served.plugin.manifest().enforcement.as_str(),
            }),
            load_failing: entry.last_error.is_some(),
        });
        let pipelines = self.pipelines.iter().filter_map(|(name, entry)| {
            let pipeline = entry.resolved.as_ref().ok()?;
            Some(Tally {
                kind: PIPELINE,
                name,
                counters: &pipeline.counters,
                served: None,
                load_failing: false,
            })
        });
        plugins.chain(pipelines)
    }

    /// Each pipeline's spec as last read, served or not.
    pub(super) fn pipeline_specs(&self) -> BTreeMap<String, PipelineSpec> {
        self.pipelines
            .iter()
            .map(|(name, entry)| (name.clone(), entry.spec.clone()))
            .collect()
    }

    /// Plugins whose new files are being loaded.
    pub fn loading(&self) -> &BTreeSet<String> {
        &self.loading
    }

    /// Whether nothing is served.
    pub fn is_empty(&self) -> bool {
        self.served_paths().is_empty()
    }

    /// The digests of the components served, to keep their compilations.
    pub(super) fn digests(&self) -> Vec<&str> {
        self.entries
            .values()
            .filter_map(|entry| entry.served.as_ref())
            .map(|served| served.plugin.digest())
            .collect()
    }
}

/// The URL path a plugin or pipeline is served on.
pub fn served_path(mode: Mode, name: &str) -> String {
    format!("/{}/{name}", mode.path_prefix())
}

/// [`Tally::kind`] of a plugin.
const PLUGIN: &str = "plugin";
/// [`Tally::kind`] of a pipeline.
const PIPELINE: &str = "pipeline";

/// What `/metrics` reads of one plugin or pipeline name.
pub struct Tally<'a> {
    /// `plugin` or `pipeline`.
    pub kind: &'static str,
    /// Its name.
    pub name: &'a str,
    /// Its counters.
    pub counters: &'a Counters,
    /// The plugin version served, for a plugin that has one.
    pub served: Option<ServedVersion>,
    /// Whether a plugin's current files failed to load.
    pub load_failing: bool,
}

impl Tally<'_> {
    /// Whether it is a plugin (not a pipeline).
    pub fn is_plugin(&self) -> bool {
        self.kind == PLUGIN
    }
}

/// What identifies a served plugin version.
pub struct ServedVersion {
    /// `sha256:HEX` of its component.
    pub digest: String,
    /// `mutating` or `validating`.
    pub mode: &'static str,
    /// `deny`, `warn` or `monitor`.
    pub enforcement: &'static str,
}
