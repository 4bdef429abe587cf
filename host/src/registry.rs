//! The set of plugins being served: one immutable snapshot behind an
//! `ArcSwap`, so a reload can replace the whole set atomically while
//! in-flight requests finish on the snapshot they started with.
//!
//! # Caveats
//! A plugin that fails to load is not served; the reason is logged and kept
//! in the snapshot (shown by the 404 for its name) so operators can see it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::task::JoinSet;

use crate::plugin::{LoadError, Manifest, ManifestError, Mode, Plugin, Runtime};
use crate::text::with_causes;

/// The plugins a snapshot serves, and the ones it refused, by name.
#[derive(Default)]
pub struct PluginSet {
    plugins: BTreeMap<String, Arc<Plugin>>,
    refused: BTreeMap<String, String>,
}

/// What a path names in a snapshot.
pub enum Lookup<'a> {
    /// A plugin served on this path.
    Served(&'a Arc<Plugin>),
    /// A plugin served on the other path (`/mutate` vs `/validate`).
    OtherPath(Mode),
    /// No plugin of that name is served.
    Unknown,
}

impl PluginSet {
    /// Finds the plugin `name` served with `mode`.
    pub fn lookup(&self, mode: Mode, name: &str) -> Lookup<'_> {
        match self.plugins.get(name) {
            Some(plugin) if plugin.manifest().mode == mode => Lookup::Served(plugin),
            Some(plugin) => Lookup::OtherPath(plugin.manifest().mode),
            None => Lookup::Unknown,
        }
    }

    /// The served plugins' paths, e.g. `/mutate/sidecar-injector`.
    pub fn served_paths(&self) -> Vec<String> {
        self.plugins
            .values()
            .map(|plugin| served_path(plugin.manifest().mode, plugin.name()))
            .collect()
    }

    /// Plugins that could not be loaded, with the reason.
    pub fn refused(&self) -> &BTreeMap<String, String> {
        &self.refused
    }

    /// Whether no plugin is served.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

/// The URL path a plugin is served on.
pub fn served_path(mode: Mode, name: &str) -> String {
    format!("/{}/{name}", mode.path_prefix())
}

/// The live plugin set.
pub struct Registry {
    current: ArcSwap<PluginSet>,
}

impl Registry {
    /// A registry serving `set`.
    pub fn new(set: PluginSet) -> Registry {
        Registry {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// The current snapshot; a request keeps using it to the end even if the
    /// set is replaced meanwhile.
    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }
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
    /// A manifest without a component.
    #[error("manifest has no {name}.wasm beside it")]
    NoComponent {
        /// The plugin name.
        name: String,
    },
    /// The component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Loads every `NAME.wasm` in `dir` (with its optional `NAME.toml`), compiling
/// them in parallel. A plugin that fails is refused and logged; only an
/// unreadable folder is an error.
pub async fn load_dir(runtime: &Arc<Runtime>, dir: &Path) -> io::Result<PluginSet> {
    let mut names = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let (Some(stem), Some(extension)) = (path.file_stem(), path.extension()) else {
            continue;
        };
        let has_component = match extension.to_str() {
            Some("wasm") => true,
            Some("toml") => false,
            _ => continue,
        };
        let seen = names
            .entry(stem.to_string_lossy().into_owned())
            .or_insert(false);
        *seen |= has_component;
    }

    let mut set = PluginSet::default();
    let mut loading = JoinSet::new();
    for (name, has_component) in names {
        if !has_component {
            let error = PluginLoadError::NoComponent { name: name.clone() };
            refuse(&mut set, name, &error);
            continue;
        }
        let runtime = runtime.clone();
        let dir = dir.to_owned();
        loading.spawn(async move {
            let result = load_one(&runtime, &dir, &name).await;
            (name, result)
        });
    }
    while let Some(joined) = loading.join_next().await {
        let (name, result) = joined.map_err(io::Error::other)?;
        match result {
            Ok(plugin) => {
                let manifest = plugin.manifest();
                tracing::info!(
                    plugin = %name,
                    path = %served_path(manifest.mode, &name),
                    failure_policy = ?manifest.failure_policy,
                    timeout_ms = manifest.limits.timeout_ms,
                    memory_mib = manifest.limits.memory_mib,
                    "plugin loaded"
                );
                set.plugins.insert(name, Arc::new(plugin));
            }
            Err(error) => refuse(&mut set, name, &error),
        }
    }
    Ok(set)
}

fn refuse(set: &mut PluginSet, name: String, error: &PluginLoadError) {
    // One line: some causes (wasm parse errors) span several.
    let reason = with_causes(error)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    tracing::error!(plugin = %name, %reason, "plugin not loaded");
    set.refused.insert(name, reason);
}

async fn load_one(runtime: &Runtime, dir: &Path, name: &str) -> Result<Plugin, PluginLoadError> {
    let wasm = dir.join(format!("{name}.wasm"));
    let manifest = dir.join(format!("{name}.toml"));
    load_plugin(runtime, name, &wasm, &manifest).await
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
    if !is_plugin_name(name) {
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

/// A DNS-label-like name: it becomes a URL path segment and a log field.
fn is_plugin_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_path_safe() {
        for good in ["a", "sidecar-injector", "guard2"] {
            assert!(is_plugin_name(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Upper",
            "a_b",
            "a.b",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(!is_plugin_name(bad), "{bad}");
        }
    }
}
