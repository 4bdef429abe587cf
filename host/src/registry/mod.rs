//! The plugins and pipelines being served: one immutable snapshot behind an
//! `ArcSwap`, replaced whole by each update while in-flight requests finish
//! on the snapshot they started with.
//!
//! # Reloading
//! A reload ([`Registry::reload`]) reads the folder and compares each
//! plugin's files (component digest and manifest text) with what was last
//! tried for that name: unchanged plugins are kept as they are, a plugin
//! whose files are gone stops being served, and changed ones are handed back
//! as [`Load`]s. Each load, once run, is published on its own
//! ([`Registry::finish`]): a plugin that takes seconds to compile delays no
//! other plugin's change, and a change that arrives meanwhile is read by the
//! next reload at once (a load superseded by newer files is dropped when it
//! ends). A new version that fails to load (not wasm, wrong world,
//! truncated, refused settings, pin mismatch) never replaces a served one:
//! the old version keeps serving and the error is logged and shown by
//! `/plugins`.

pub mod follow;
mod load;
mod pipelines;
mod reloads;
mod scan;
mod settle;
mod snapshot;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio::task::JoinSet;

pub use load::{PluginLoadError, load_plugin};
pub use pipelines::{PipelineError, PipelineSpec, PipelinesFileError};
pub use reloads::{Reloads, Trigger};
pub use scan::PIPELINES_FILE;
pub use settle::Changes;
pub use snapshot::{Lookup, PluginSet, ServedVersion, Tally, Target, served_path};

use crate::plugin::{Plugin, Runtime, RuntimeConfig, WasmError};
use crate::served::Source;
use crate::text::with_causes;
use load::load_source;
use scan::Stamp;
use settle::{Settled, one_line, settle, tried};
use snapshot::{Entry, PipelineEntry};

/// The live plugin set, and how to refresh it from the folder.
pub struct Registry {
    current: ArcSwap<PluginSet>,
    runtime: Arc<Runtime>,
    dir: PathBuf,
    /// The loads under way, by plugin name, with the files each loads.
    /// Held while the snapshot is updated, so updates run one at a time.
    loading: tokio::sync::Mutex<BTreeMap<String, Source>>,
    /// Counts the snapshots swapped in, for those that follow them.
    swapped: tokio::sync::watch::Sender<u64>,
    /// Why the folder could not be read at the last reload, if it could not.
    folder_error: arc_swap::ArcSwapOption<String>,
    /// What set the reloads off.
    reloads: Reloads,
    /// Whether every plugin in the folder at start-up has been tried.
    started: AtomicBool,
}

/// Why [`Registry::load_once`] could not load a folder.
#[derive(Debug, thiserror::Error)]
pub enum LoadOnceError {
    /// The WebAssembly runtime did not start.
    #[error("starting the WebAssembly runtime")]
    Runtime(#[source] WasmError),
    /// The folder could not be read.
    #[error("reading the plugin folder {}", .0.display())]
    Folder(PathBuf, #[source] io::Error),
}

/// What a reload found: the changes known at once, and the plugins to load.
#[must_use = "the loads must be run and finished to be served"]
pub struct Reload {
    /// Plugins refused or removed without loading anything.
    pub changes: Changes,
    /// New files to load, each to be handed to [`Registry::finish`].
    pub loads: Vec<Load>,
}

/// One plugin's new files, to be loaded.
pub struct Load {
    name: String,
    wasm: Vec<u8>,
    source: Source,
    stamp: Option<Stamp>,
    runtime: Arc<Runtime>,
}

/// A load's result, for [`Registry::finish`].
pub struct Loaded {
    name: String,
    source: Source,
    stamp: Option<Stamp>,
    result: Result<Plugin, PluginLoadError>,
}

impl Load {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Compiles, links and checks the plugin: seconds for a large component
    /// not yet in the compile cache.
    pub async fn run(self) -> Loaded {
        let result = load_source(&self.runtime, &self.name, self.wasm, &self.source).await;
        Loaded {
            name: self.name,
            source: self.source,
            stamp: self.stamp,
            result,
        }
    }
}

impl Registry {
    /// A registry for the folder `dir`, serving nothing until the first
    /// [`Registry::reload`].
    pub fn new(runtime: Arc<Runtime>, dir: PathBuf) -> Registry {
        Registry {
            current: ArcSwap::from_pointee(PluginSet::default()),
            runtime,
            dir,
            loading: tokio::sync::Mutex::new(BTreeMap::new()),
            swapped: tokio::sync::watch::Sender::new(0),
            folder_error: arc_swap::ArcSwapOption::empty(),
            reloads: Reloads::default(),
            started: AtomicBool::new(false),
        }
    }

    /// Why the folder could not be read at the last reload (missing,
    /// unreadable), while what was loaded before keeps serving.
    pub fn folder_error(&self) -> Option<Arc<String>> {
        self.folder_error.load_full()
    }

    /// Notified each time a snapshot is swapped in (changed or not).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.swapped.subscribe()
    }

    /// What set its reloads off.
    pub fn reloads(&self) -> &Reloads {
        &self.reloads
    }

    /// For `/plugins`: the bound on compilations, what runs and what waits.
    pub fn compiles(&self) -> serde_json::Value {
        self.runtime.describe_compiles()
    }

    /// What the running instances use of the shared limits (`/metrics`).
    pub fn usage(&self) -> crate::plugin::Usage {
        self.runtime.usage()
    }

    /// The objects plugins read (`/plugins`, `/metrics`).
    pub fn cluster(&self) -> &crate::cluster::Cluster {
        self.runtime.cluster()
    }

    /// Whether every plugin in the folder at start-up has been tried
    /// ([`Registry::load_all`] ended once).
    pub fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    /// The folder it serves.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Scans the folder, skipping the files unchanged since `current` read
    /// them, and records whether the folder could be read.
    async fn scan(&self, current: &PluginSet) -> io::Result<scan::Folder> {
        let dir = self.dir.clone();
        let last_read: BTreeMap<String, Stamp> = current
            .entries
            .iter()
            .filter_map(|(name, entry)| Some((name.clone(), entry.stamp.clone()?)))
            .collect();
        tracing::debug!(dir = %self.dir.display(), "scanning the plugin folder");
        let scanned = tokio::task::spawn_blocking(move || scan::scan(&dir, &last_read))
            .await
            .map_err(io::Error::other)?;
        match scanned {
            Ok(folder) => {
                self.folder_error.store(None);
                Ok(folder)
            }
            Err(error) => {
                let reason = format!("cannot read {}: {error}", self.dir.display());
                self.folder_error.store(Some(Arc::new(reason)));
                Err(error)
            }
        }
    }

    /// The current snapshot; a request keeps using it to the end even if the
    /// set is replaced meanwhile.
    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    /// Reads the folder and swaps in a snapshot of what is known without
    /// loading (see the module documentation); the new files are returned as
    /// loads, not started. Files already being loaded are not loaded again.
    /// Only an unreadable folder is an error.
    pub async fn reload(&self, trigger: Trigger) -> io::Result<Reload> {
        let mut loading = self.loading.lock().await;
        self.reloads.record(trigger);
        let current = self.snapshot();
        let folder = self.scan(&current).await?;
        let mut changes = Changes::default();
        let mut entries = BTreeMap::new();
        let mut loads = Vec::new();
        let mut in_folder = BTreeSet::new();
        for (name, files) in folder.plugins {
            in_folder.insert(name.clone());
            let previous = current.entries.get(&name);
            match settle(&name, files, previous, &mut changes) {
                Settled::Entry(entry) => {
                    // Whatever was being loaded is superseded.
                    loading.remove(&name);
                    entries.insert(name, entry);
                }
                Settled::Gone => {
                    loading.remove(&name);
                }
                Settled::Load {
                    wasm,
                    source,
                    stamp,
                } => {
                    // The previous version serves until the new one is ready.
                    if let Some(previous) = previous {
                        entries.insert(name.clone(), previous.clone());
                    }
                    if loading.get(&name) != Some(&source) {
                        loading.insert(name.clone(), source.clone());
                        loads.push(Load {
                            name,
                            wasm,
                            source,
                            stamp,
                            runtime: self.runtime.clone(),
                        });
                    }
                }
            }
        }
        loading.retain(|name, _| in_folder.contains(name));
        for name in current
            .entries
            .keys()
            .filter(|name| !entries.contains_key(*name))
        {
            tracing::info!(plugin = %name, "plugin removed");
            changes.removed.push(name.clone());
        }
        let (specs, pipelines_error) = pipeline_specs(folder.pipelines, &current);
        self.publish(&current, entries, specs, pipelines_error, &loading);
        Ok(Reload { changes, loads })
    }

    /// Swaps in `loaded`'s plugin (or records its error while the previous
    /// version keeps serving), unless newer files for its name were read
    /// since it started: those are being loaded, or serve already.
    pub async fn finish(&self, loaded: Loaded) -> Changes {
        let mut loading = self.loading.lock().await;
        let mut changes = Changes::default();
        if loading.get(&loaded.name) != Some(&loaded.source) {
            tracing::debug!(plugin = %loaded.name, "load superseded by newer files; dropped");
            return changes;
        }
        loading.remove(&loaded.name);
        let current = self.snapshot();
        let previous = current.entries.get(&loaded.name);
        let entry = tried(
            &loaded.name,
            loaded.source,
            loaded.stamp,
            loaded.result,
            previous,
            &mut changes,
        );
        let mut entries = current.entries.clone();
        entries.insert(loaded.name, entry);
        let pipelines_error = current.pipelines_error.clone();
        self.publish(
            &current,
            entries,
            current.pipeline_specs(),
            pipelines_error,
            &loading,
        );
        changes
    }

    /// Reloads, then runs every load and finishes it, each swapped in as it
    /// is ready: start-up (then [`Registry::started`]) and `wicket manifests`.
    pub async fn load_all(&self, trigger: Trigger) -> io::Result<Changes> {
        let Reload { mut changes, loads } = self.reload(trigger).await?;
        let mut running: JoinSet<Loaded> = loads.into_iter().map(Load::run).collect();
        while let Some(joined) = running.join_next().await {
            changes.absorb(self.finish(joined.map_err(io::Error::other)?).await);
        }
        self.started.store(true, Ordering::Relaxed);
        Ok(changes)
    }

    /// Loads the folder `dir` once, every plugin tried, with a runtime of
    /// `config`: what the one-shot commands (`manifests`, `compile`) read.
    pub async fn load_once(
        config: &RuntimeConfig,
        dir: PathBuf,
    ) -> Result<Arc<PluginSet>, LoadOnceError> {
        let runtime = Runtime::new(config).map_err(LoadOnceError::Runtime)?;
        let registry = Registry::new(Arc::new(runtime), dir);
        registry
            .load_all(Trigger::Start)
            .await
            .map_err(|error| LoadOnceError::Folder(registry.dir.clone(), error))?;
        Ok(registry.snapshot())
    }

    /// Swaps in the snapshot of `entries` and `specs` after `current`, with
    /// the names in `loading` shown as loading, and drops the compilations
    /// nothing serves or loads any more.
    fn publish(
        &self,
        current: &PluginSet,
        entries: BTreeMap<String, Entry>,
        specs: BTreeMap<String, PipelineSpec>,
        pipelines_error: Option<String>,
        loading: &BTreeMap<String, Source>,
    ) {
        let pipelines = resolve_pipelines(specs, current, &entries, loading);
        let set = PluginSet {
            entries,
            pipelines,
            pipelines_error,
            loading: loading.keys().cloned().collect(),
        };
        let mut in_use = set.digests();
        in_use.extend(loading.values().map(|source| source.digest.as_str()));
        self.runtime.forget_unused(&in_use);
        self.current.store(Arc::new(set));
        self.swapped.send_modify(|count| *count += 1);
    }
}

/// The pipelines the new snapshot serves: from the file when it parses,
/// else the previous specs (a bad edit never takes working pipelines away),
/// with why the file was not read.
fn pipeline_specs(
    file: Option<std::io::Result<String>>,
    current: &PluginSet,
) -> (BTreeMap<String, PipelineSpec>, Option<String>) {
    let parsed = file.map(|text| {
        text.map_err(PipelinesFileError::Read)
            .and_then(|text| pipelines::parse(&text))
    });
    match parsed {
        None => (BTreeMap::new(), None),
        Some(Ok(specs)) => (specs, None),
        Some(Err(error)) => {
            let error = one_line(&with_causes(&error));
            if current.pipelines_error.as_ref() != Some(&error) {
                tracing::error!(%error, "pipelines not reloaded; the previous ones stay");
            }
            (current.pipeline_specs(), Some(error))
        }
    }
}

/// Each pipeline of `specs` resolved against the plugins of `entries` (and
/// those still `loading`), logging the ones newly not served.
fn resolve_pipelines(
    specs: BTreeMap<String, PipelineSpec>,
    current: &PluginSet,
    entries: &BTreeMap<String, Entry>,
    loading: &BTreeMap<String, Source>,
) -> BTreeMap<String, PipelineEntry> {
    let named = |name: &str| entries.contains_key(name) || loading.contains_key(name);
    let served = |name: &str| entries.get(name).and_then(|entry| entry.served.clone());
    let is_loading = |name: &str| loading.contains_key(name);
    let plugins = pipelines::Plugins {
        named: &named,
        served: &served,
        loading: &is_loading,
    };
    specs
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
                && !matches!(reason, PipelineError::Loading(_))
                && previous.and_then(|entry| entry.resolved.as_ref().err()) != Some(reason)
            {
                tracing::error!(pipeline = %name, %reason, "pipeline not served");
            }
            (name, PipelineEntry { spec, resolved })
        })
        .collect()
}
