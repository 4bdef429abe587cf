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

pub mod follow;
mod load;
mod pipelines;
mod reloads;
mod scan;
mod snapshot;
mod view;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::task::JoinSet;

pub use load::{PluginLoadError, load_plugin};
pub use pipelines::{PipelineError, PipelineSpec, PipelinesFileError};
pub use reloads::{Reloads, Trigger};
pub use scan::PIPELINES_FILE;
pub use snapshot::{Lookup, PluginSet, ServedVersion, Tally, Target, served_path};

use crate::counters::Counters;
use crate::plugin::{Plugin, Runtime, digest};
use crate::served::{Served, Source};
use crate::text::with_causes;
use load::{load_source, log_loaded};
use scan::{FilesError, PluginFiles, Stamp};
use snapshot::{Entry, PipelineEntry};

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
    /// What set the reloads off.
    reloads: Reloads,
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
            reloads: Reloads::default(),
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

    /// What set its reloads off.
    pub fn reloads(&self) -> &Reloads {
        &self.reloads
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

    /// Reads the folder and swaps in a snapshot that serves what it holds
    /// (see the module documentation). Only an unreadable folder is an error.
    pub async fn reload(&self, trigger: Trigger) -> io::Result<Changes> {
        let _one_at_a_time = self.reloading.lock().await;
        self.reloads.record(trigger);
        let current = self.snapshot();
        let folder = self.scan(&current).await?;
        let mut changes = Changes::default();
        let mut entries = BTreeMap::new();
        let mut loading = JoinSet::new();
        for (name, files) in folder.plugins {
            let previous = current.entries.get(&name);
            match settle(&name, files, previous, &mut changes) {
                Settled::Entry(entry) => {
                    entries.insert(name, entry);
                }
                Settled::Gone => {}
                Settled::Load {
                    wasm,
                    source,
                    stamp,
                } => {
                    let runtime = self.runtime.clone();
                    loading.spawn(async move {
                        let result = load_source(&runtime, &name, wasm, &source).await;
                        (name, source, stamp, result)
                    });
                }
            }
        }
        while let Some(joined) = loading.join_next().await {
            let (name, source, stamp, result) = joined.map_err(io::Error::other)?;
            let previous = current.entries.get(&name);
            let entry = tried(&name, source, stamp, result, previous, &mut changes);
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

/// What a plugin's files mean for its entry, before anything is loaded.
enum Settled {
    /// Its entry is known without loading.
    Entry(Entry),
    /// Unchanged files of a name that had no entry: nothing to keep.
    Gone,
    /// New files to load.
    Load {
        wasm: Vec<u8>,
        source: Source,
        stamp: Option<Stamp>,
    },
}

/// Settles `files` against the name's `previous` entry: kept, refused, back
/// to the served version, or to be loaded.
fn settle(
    name: &str,
    files: PluginFiles,
    previous: Option<&Entry>,
    changes: &mut Changes,
) -> Settled {
    let (wasm, manifest, stamp) = match files {
        PluginFiles::Complete {
            wasm,
            manifest,
            stamp,
        } => (wasm, manifest, stamp),
        PluginFiles::Unchanged => return previous.cloned().map_or(Settled::Gone, Settled::Entry),
        PluginFiles::Broken(problem) => {
            return Settled::Entry(not_loaded(name, problem, None, previous, changes));
        }
        // An unreadable file is a bad new version: the served one stays.
        PluginFiles::Unreadable(problem) => {
            let served = previous.and_then(|entry| entry.served.clone());
            return Settled::Entry(not_loaded(name, problem, served, previous, changes));
        }
    };
    let source = Source {
        digest: digest(&wasm),
        manifest,
    };
    let Some(previous) = previous else {
        return Settled::Load {
            wasm,
            source,
            stamp,
        };
    };
    if previous.attempted.as_ref() == Some(&source) {
        return Settled::Entry(Entry {
            stamp,
            ..previous.clone()
        });
    }
    // Back to the served version's files after a failed one.
    if let Some(served) = previous
        .served
        .as_ref()
        .filter(|served| served.source == source)
    {
        tracing::info!(plugin = %name, "files are back to the served version");
        return Settled::Entry(Entry {
            served: Some(served.clone()),
            last_error: None,
            attempted: Some(source),
            stamp,
            counters: previous.counters.clone(),
        });
    }
    Settled::Load {
        wasm,
        source,
        stamp,
    }
}

/// The entry after loading `source`: the new version served, or the error
/// recorded while the previous version (if any) keeps serving.
fn tried(
    name: &str,
    source: Source,
    stamp: Option<Stamp>,
    result: Result<Plugin, PluginLoadError>,
    previous: Option<&Entry>,
    changes: &mut Changes,
) -> Entry {
    let counters = previous.map_or_else(Arc::default, |entry| entry.counters.clone());
    let previous_served = previous.and_then(|entry| entry.served.clone());
    match result {
        Ok(plugin) => {
            let generation = previous_served.map_or(1, |served| served.generation + 1);
            log_loaded(&plugin, generation);
            counters.loaded();
            changes.loaded.push(name.to_owned());
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
            refused(name, &reason, previous_served.is_some(), &counters, changes);
            Entry {
                served: previous_served,
                last_error: Some(reason),
                attempted: Some(source),
                stamp,
                counters,
            }
        }
    }
}

/// Logs, records and counts a version of `name` refused for `reason`;
/// `still_serving` says whether an earlier version keeps serving.
fn refused(
    name: &str,
    reason: &str,
    still_serving: bool,
    counters: &Counters,
    changes: &mut Changes,
) {
    match still_serving {
        true => {
            tracing::error!(plugin = %name, %reason, "new version not loaded; the previous one keeps serving")
        }
        false => tracing::error!(plugin = %name, %reason, "plugin not loaded"),
    }
    changes.failed.push((name.to_owned(), reason.to_owned()));
    counters.load_failed();
}

/// The entry of a plugin whose files could not be loaded for `reason`,
/// still serving `served`; logged when the reason is new.
fn not_loaded(
    name: &str,
    problem: FilesError,
    served: Option<Arc<Served>>,
    previous: Option<&Entry>,
    changes: &mut Changes,
) -> Entry {
    let reason = with_causes(&problem);
    let counters = previous.map_or_else(Arc::default, |entry| entry.counters.clone());
    if previous.and_then(|entry| entry.last_error.as_ref()) != Some(&reason) {
        refused(name, &reason, served.is_some(), &counters, changes);
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
    file: Option<std::io::Result<String>>,
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
    let parsed = file.map(|text| {
        text.map_err(PipelinesFileError::Read)
            .and_then(|text| pipelines::parse(&text))
    });
    let (specs, error) = match parsed {
        None => (BTreeMap::new(), None),
        Some(Ok(specs)) => (specs, None),
        Some(Err(error)) => {
            // One line: TOML errors span several.
            let error = one_line(&with_causes(&error));
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

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
