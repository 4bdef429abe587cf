//! How one plugin name's files become its entry in the next snapshot: kept,
//! refused, back to the served version, or loaded, with the new version
//! served or its error recorded while the previous version keeps serving.

use std::sync::Arc;
use std::time::SystemTime;

use super::load::{PluginLoadError, log_loaded};
use super::scan::{FilesError, PluginFiles, Stamp};
use super::snapshot::Entry;
use crate::counters::Counters;
use crate::plugin::{Plugin, digest};
use crate::served::{Served, Source};
use crate::text::with_causes;

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

impl Changes {
    /// Adds `more`'s changes to these.
    pub fn absorb(&mut self, more: Changes) {
        self.loaded.extend(more.loaded);
        self.failed.extend(more.failed);
        self.removed.extend(more.removed);
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty() && self.failed.is_empty() && self.removed.is_empty()
    }
}

/// What a plugin's files mean for its entry, before anything is loaded.
pub(super) enum Settled {
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
pub(super) fn settle(
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
pub(super) fn tried(
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

/// `text` on one line: some causes (wasm parse and TOML errors) span several.
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
