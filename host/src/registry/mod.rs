//! The plugins and pipelines being served: one immutable snapshot behind an
//! `ArcSwap`, replaced whole by [`Registry::reload`] while in-flight requests
//! finish on the snapshot they started with.
//!
//! # Reloading
//! A reload reads the folder and compares each plugin's files (component
//! digest and manifest text) with what was last tried for that name:
//! unchanged plugins are kept as they are, changed ones are loaded in
//! parallel, and a plugin whose files are gone stops being served. A new
//! version that fails to load (not wasm, wrong world, truncated, refused
//! settings, pin mismatch) never replaces a served one: the old version keeps
//! serving and the error is logged and shown by `/plugins`.

mod pipelines;
mod scan;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use tokio::task::JoinSet;

pub use pipelines::{PipelineError, PipelineSpec};
pub use scan::PIPELINES_FILE;

use crate::counters::Counters;
use crate::pipeline::Pipeline;
use crate::plugin::{LoadError, Manifest, ManifestError, Mode, Plugin, Runtime, digest};
use crate::served::{Served, Source};
use crate::text::{is_dns_label, with_causes};
use crate::webhook::Target;
use scan::{PluginFiles, Stamp};

/// One plugin name in a snapshot.
#[derive(Clone)]
struct Entry {
    /// The version served, if one ever loaded and its files are still there.
    served: Option<Arc<Served>>,
    /// Why the current files are not the served version.
    last_error: Option<String>,
    /// The files last tried, so unchanged files are not loaded again.
    attempted: Option<Source>,
    /// What `stat` said of those files, so unchanged ones are not even read.
    stamp: Option<Stamp>,
    counters: Arc<Counters>,
}

/// One pipeline name in a snapshot.
#[derive(Clone)]
struct PipelineEntry {
    spec: PipelineSpec,
    resolved: Result<Arc<Pipeline>, PipelineError>,
}

/// The plugins and pipelines of one snapshot, by name.
#[derive(Default)]
pub struct PluginSet {
    entries: BTreeMap<String, Entry>,
    pipelines: BTreeMap<String, PipelineEntry>,
    /// Why `pipelines.toml` was not (re)read; the previous pipelines stay.
    pipelines_error: Option<String>,
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
                mode: mode_name(served.plugin.manifest().mode),
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

    /// Whether nothing is served.
    pub fn is_empty(&self) -> bool {
        self.served_paths().is_empty()
    }

    /// Everything `GET /plugins` shows: for each plugin its paths, digest,
    /// mode, limits, load time, generation, last error and counters; each
    /// pipeline; and a pipelines-file error.
    pub fn describe(&self) -> Value {
        let plugins: Vec<Value> = self
            .entries
            .iter()
            .map(|(name, entry)| describe_plugin(name, entry))
            .collect();
        let pipelines: Vec<Value> = self
            .pipelines
            .iter()
            .map(|(name, entry)| {
                let (served, error) = match &entry.resolved {
                    Ok(pipeline) => (Some(pipeline), None),
                    Err(error) => (None, Some(error.to_string())),
                };
                json!({
                    "name": name,
                    "paths": served.map(|_| vec![served_path(entry.spec.mode, name)]).unwrap_or_default(),
                    "mode": mode_name(entry.spec.mode),
                    "plugins": entry.spec.plugins,
                    "enforcement": entry.spec.enforcement.as_str(),
                    "served": served.is_some(),
                    "error": error,
                    "counters": served.map(|pipeline| pipeline.counters.view()),
                })
            })
            .collect();
        json!({
            "plugins": plugins,
            "pipelines": pipelines,
            "pipelinesError": self.pipelines_error,
        })
    }

    /// The digests of the components served, to keep their compilations.
    fn digests(&self) -> Vec<&str> {
        self.entries
            .values()
            .filter_map(|entry| entry.served.as_ref())
            .map(|served| served.plugin.digest())
            .collect()
    }
}

fn describe_plugin(name: &str, entry: &Entry) -> Value {
    let served = entry.served.as_deref();
    let manifest = served.map(|served| served.plugin.manifest());
    json!({
        "name": name,
        "paths": manifest.map(|manifest| vec![served_path(manifest.mode, name)]).unwrap_or_default(),
        "served": served.is_some(),
        "digest": served.map(|served| format!("sha256:{}", served.plugin.digest())),
        "mode": manifest.map(|manifest| mode_name(manifest.mode)),
        "failurePolicy": manifest.map(|manifest| format!("{:?}", manifest.failure_policy).to_lowercase()),
        "enforcement": manifest.map(|manifest| manifest.enforcement.as_str()),
        "limits": manifest.map(|manifest| json!({
            "timeoutMs": manifest.limits.timeout_ms,
            "memoryMib": manifest.limits.memory_mib,
            "maxOutputKib": manifest.limits.max_output_kib,
            "maxConcurrency": manifest.limits.max_concurrency,
        })),
        "outbound": manifest.and_then(|manifest| manifest.outbound.as_ref()).map(|outbound| json!({
            "allowedHosts": outbound.host_list(),
            "timeoutMs": outbound.timeout_ms,
            "maxResponseKib": outbound.max_response_kib,
        })),
        "loadedAt": served.map(|served| rfc3339(served.loaded_at)),
        "generation": served.map_or(0, |served| served.generation),
        "lastError": entry.last_error,
        "counters": entry.counters.view(),
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Mutating => "mutating",
        Mode::Validating => "validating",
    }
}

fn rfc3339(time: SystemTime) -> String {
    let time = time::OffsetDateTime::from(time);
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
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

/// What one reload changed, for the log and the start-up announcement.
#[derive(Debug, Default)]
pub struct Changes {
    /// Plugins served for the first time or in a new version.
    pub loaded: Vec<String>,
    /// Plugins whose new files failed to load, with why.
    pub failed: Vec<(String, String)>,
    /// Plugins no longer in the folder.
    pub removed: Vec<String>,
}

/// The live plugin set, and how to refresh it from the folder.
pub struct Registry {
    current: ArcSwap<PluginSet>,
    runtime: Arc<Runtime>,
    dir: PathBuf,
    /// Reloads run one at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Counts the snapshots swapped in, for those that follow them.
    swapped: tokio::sync::watch::Sender<u64>,
    /// Why the folder could not be read at the last reload, if it could not.
    folder_error: arc_swap::ArcSwapOption<String>,
}

impl Registry {
    /// A registry for the folder `dir`, serving nothing until the first
    /// [`Registry::reload`].
    pub fn new(runtime: Arc<Runtime>, dir: PathBuf) -> Registry {
        Registry {
            current: ArcSwap::from_pointee(PluginSet::default()),
            runtime,
            dir,
            reloading: tokio::sync::Mutex::new(()),
            swapped: tokio::sync::watch::Sender::new(0),
            folder_error: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// Why the folder could not be read at the last reload (missing,
    /// unreadable), while what was loaded before keeps serving.
    pub fn folder_error(&self) -> Option<Arc<String>> {
        self.folder_error.load_full()
    }

    /// Notified each time a reload swaps in a snapshot (changed or not).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.swapped.subscribe()
    }

    /// The folder it serves.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current snapshot; a request keeps using it to the end even if the
    /// set is replaced meanwhile.
    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    /// Reads the folder and swaps in a snapshot that serves what it holds
    /// (see the module documentation). Only an unreadable folder is an error.
    pub async fn reload(&self) -> io::Result<Changes> {
        let _one_at_a_time = self.reloading.lock().await;
        let dir = self.dir.clone();
        let current = self.snapshot();
        let last_read: BTreeMap<String, Stamp> = current
            .entries
            .iter()
            .filter_map(|(name, entry)| Some((name.clone(), entry.stamp.clone()?)))
            .collect();
        let scanned = tokio::task::spawn_blocking(move || scan::scan(&dir, &last_read))
            .await
            .map_err(io::Error::other)?;
        let folder = match scanned {
            Ok(folder) => {
                self.folder_error.store(None);
                folder
            }
            Err(error) => {
                let reason = format!("cannot read {}: {error}", self.dir.display());
                self.folder_error.store(Some(Arc::new(reason)));
                return Err(error);
            }
        };
        tracing::debug!(dir = %self.dir.display(), "scanning the plugin folder");
        let mut changes = Changes::default();
        let mut entries = BTreeMap::new();
        let mut loading = JoinSet::new();
        for (name, files) in folder.plugins {
            let previous = current.entries.get(&name);
            let counters = previous.map_or_else(Arc::default, |entry| entry.counters.clone());
            let (wasm, manifest, stamp) = match files {
                PluginFiles::Complete {
                    wasm,
                    manifest,
                    stamp,
                } => (wasm, manifest, stamp),
                PluginFiles::Unchanged => {
                    if let Some(previous) = previous {
                        entries.insert(name, previous.clone());
                    }
                    continue;
                }
                PluginFiles::Broken(reason) => {
                    let entry = not_loaded(&name, reason, None, previous, &mut changes);
                    entries.insert(name, entry);
                    continue;
                }
                // An unreadable file is a bad new version: the served one stays.
                PluginFiles::Unreadable(reason) => {
                    let served = previous.and_then(|entry| entry.served.clone());
                    let entry = not_loaded(&name, reason, served, previous, &mut changes);
                    entries.insert(name, entry);
                    continue;
                }
            };
            let source = Source {
                digest: digest(&wasm),
                manifest,
            };
            if let Some(previous) = previous {
                if previous.attempted.as_ref() == Some(&source) {
                    entries.insert(
                        name,
                        Entry {
                            stamp,
                            ..previous.clone()
                        },
                    );
                    continue;
                }
                // Back to the served version's files after a failed one.
                if let Some(served) = previous
                    .served
                    .as_ref()
                    .filter(|served| served.source == source)
                {
                    tracing::info!(plugin = %name, "files are back to the served version");
                    let entry = Entry {
                        served: Some(served.clone()),
                        last_error: None,
                        attempted: Some(source),
                        stamp,
                        counters,
                    };
                    entries.insert(name, entry);
                    continue;
                }
            }
            let runtime = self.runtime.clone();
            loading.spawn(async move {
                let result = load_source(&runtime, &name, wasm, &source).await;
                (name, source, stamp, result)
            });
        }
        while let Some(joined) = loading.join_next().await {
            let (name, source, stamp, result) = joined.map_err(io::Error::other)?;
            let previous = current.entries.get(&name);
            let counters = previous.map_or_else(Arc::default, |entry| entry.counters.clone());
            let previous_served = previous.and_then(|entry| entry.served.clone());
            let entry = match result {
                Ok(plugin) => {
                    let generation = previous_served.map_or(1, |served| served.generation + 1);
                    log_loaded(&plugin, generation);
                    counters.loaded();
                    changes.loaded.push(name.clone());
                    let served = Served {
                        plugin: Arc::new(plugin),
                        counters: counters.clone(),
                        generation,
                        loaded_at: SystemTime::now(),
                        source: source.clone(),
                    };
                    Entry {
                        served: Some(Arc::new(served)),
                        last_error: None,
                        attempted: Some(source),
                        stamp,
                        counters,
                    }
                }
                Err(error) => {
                    // One line: some causes (wasm parse errors) span several.
                    let reason = one_line(&with_causes(&error));
                    match &previous_served {
                        Some(_) => {
                            tracing::error!(plugin = %name, %reason, "new version not loaded; the previous one keeps serving")
                        }
                        None => tracing::error!(plugin = %name, %reason, "plugin not loaded"),
                    }
                    changes.failed.push((name.clone(), reason.clone()));
                    counters.load_failed();
                    Entry {
                        served: previous_served,
                        last_error: Some(reason),
                        attempted: Some(source),
                        stamp,
                        counters,
                    }
                }
            };
            entries.insert(name, entry);
        }
        for name in current
            .entries
            .keys()
            .filter(|name| !entries.contains_key(*name))
        {
            tracing::info!(plugin = %name, "plugin removed");
            changes.removed.push(name.clone());
        }
        let (pipelines, pipelines_error) =
            self::pipelines_for(folder.pipelines, &current, &entries);
        let set = PluginSet {
            entries,
            pipelines,
            pipelines_error,
        };
        self.runtime.forget_unused(&set.digests());
        self.current.store(Arc::new(set));
        self.swapped.send_modify(|count| *count += 1);
        Ok(changes)
    }
}

/// The entry of a plugin whose files could not be loaded for `reason`,
/// still serving `served`; logged when the reason is new.
fn not_loaded(
    name: &str,
    reason: String,
    served: Option<Arc<Served>>,
    previous: Option<&Entry>,
    changes: &mut Changes,
) -> Entry {
    let counters = previous.map_or_else(Arc::default, |entry| entry.counters.clone());
    if previous.and_then(|entry| entry.last_error.as_ref()) != Some(&reason) {
        match &served {
            Some(_) => {
                tracing::error!(plugin = %name, %reason, "new version not loaded; the previous one keeps serving")
            }
            None => tracing::error!(plugin = %name, %reason, "plugin not loaded"),
        }
        changes.failed.push((name.to_owned(), reason.clone()));
        counters.load_failed();
    }
    Entry {
        served,
        last_error: Some(reason),
        // Nothing was tried: the files are read again on the next scan.
        attempted: None,
        stamp: None,
        counters,
    }
}

/// The pipelines of the new snapshot: from the file when it parses, else the
/// previous specs (a bad edit never takes working pipelines away), each
/// resolved against the new plugins.
fn pipelines_for(
    file: Option<Result<String, String>>,
    current: &PluginSet,
    entries: &BTreeMap<String, Entry>,
) -> (BTreeMap<String, PipelineEntry>, Option<String>) {
    let previous_specs = || {
        current
            .pipelines
            .iter()
            .map(|(name, entry)| (name.clone(), entry.spec.clone()))
            .collect()
    };
    let (specs, error) = match file.map(|text| text.and_then(|text| pipelines::parse(&text))) {
        None => (BTreeMap::new(), None),
        Some(Ok(specs)) => (specs, None),
        Some(Err(error)) => {
            if current.pipelines_error.as_ref() != Some(&error) {
                tracing::error!(%error, "pipelines not reloaded; the previous ones stay");
            }
            (previous_specs(), Some(error))
        }
    };
    let named = |name: &str| entries.contains_key(name);
    let served = |name: &str| entries.get(name).and_then(|entry| entry.served.clone());
    let plugins = pipelines::Plugins {
        named: &named,
        served: &served,
    };
    let resolved = specs
        .into_iter()
        .map(|(name, spec)| {
            let previous = current.pipelines.get(&name);
            let resolved = pipelines::resolve(
                &name,
                &spec,
                &plugins,
                previous.and_then(|entry| entry.resolved.as_ref().ok()),
            );
            if let Err(reason) = &resolved
                && previous.and_then(|entry| entry.resolved.as_ref().err()) != Some(reason)
            {
                tracing::error!(pipeline = %name, %reason, "pipeline not served");
            }
            (name, PipelineEntry { spec, resolved })
        })
        .collect();
    (resolved, error)
}

fn log_loaded(plugin: &Plugin, generation: u64) {
    let manifest = plugin.manifest();
    let allowed_hosts = manifest.outbound.as_ref().map_or_else(
        || "none".to_owned(),
        |outbound| outbound.host_list().join(","),
    );
    tracing::info!(
        plugin = %plugin.name(),
        path = %served_path(manifest.mode, plugin.name()),
        digest = %plugin.digest(),
        generation,
        failure_policy = ?manifest.failure_policy,
        timeout_ms = manifest.limits.timeout_ms,
        memory_mib = manifest.limits.memory_mib,
        %allowed_hosts,
        "plugin loaded"
    );
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why one plugin in the folder was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginLoadError {
    /// Its name cannot be a URL path segment.
    #[error("the name is not a valid plugin name (lower-case letters, digits and '-', at most 63)")]
    BadName,
    /// A file could not be read.
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] io::Error),
    /// The manifest is invalid.
    #[error("manifest {}", .0.display())]
    Manifest(PathBuf, #[source] ManifestError),
    /// The component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
}

async fn load_source(
    runtime: &Runtime,
    name: &str,
    wasm: Vec<u8>,
    source: &Source,
) -> Result<Plugin, PluginLoadError> {
    let manifest = match &source.manifest {
        Some(text) => Manifest::parse(text)
            .map_err(|err| PluginLoadError::Manifest(format!("{name}.toml").into(), err))?,
        None => Manifest::default(),
    };
    Ok(runtime.load(name, wasm, manifest).await?)
}

/// Loads the plugin `name` from the component `wasm` and the manifest
/// `manifest` (the defaults when that file does not exist), exactly as a
/// plugin folder is loaded.
pub async fn load_plugin(
    runtime: &Runtime,
    name: &str,
    wasm: &Path,
    manifest: &Path,
) -> Result<Plugin, PluginLoadError> {
    if !is_dns_label(name) {
        return Err(PluginLoadError::BadName);
    }
    let manifest = match tokio::fs::read_to_string(manifest).await {
        Ok(text) => Manifest::parse(&text)
            .map_err(|err| PluginLoadError::Manifest(manifest.to_owned(), err))?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => Manifest::default(),
        Err(err) => return Err(PluginLoadError::Read(manifest.to_owned(), err)),
    };
    let wasm = tokio::fs::read(wasm)
        .await
        .map_err(|err| PluginLoadError::Read(wasm.to_owned(), err))?;
    Ok(runtime.load(name, wasm, manifest).await?)
}
