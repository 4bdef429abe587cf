//! Loading one plugin from its files, as the folder and `wicket check` do.

use std::io;
use std::path::{Path, PathBuf};

use super::snapshot::served_path;
use crate::plugin::{LoadError, Manifest, ManifestError, Plugin, Runtime};
use crate::served::Source;
use crate::text::is_dns_label;

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

pub(super) async fn load_source(
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

/// The one log line for a plugin version now served.
pub(super) fn log_loaded(plugin: &Plugin, generation: u64) {
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
