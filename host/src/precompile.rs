//! `wicket compile`: fills a compile cache ahead of time, so that a start
//! from it (an image that ships the entries beside its plugins, a
//! persistent cache) compiles nothing. An entry is used only by a Wicket
//! with the same engine and configuration, on a CPU with the features it
//! was compiled for; any other start compiles the component as usual.

use std::path::PathBuf;

use anyhow::bail;

use crate::plugin::RuntimeConfig;
use crate::registry::Registry;

/// What `wicket compile` does.
pub struct PrecompileConfig {
    /// The plugin folder, as `serve` reads it.
    pub plugins_dir: PathBuf,
    /// The cache to fill.
    pub cache_dir: PathBuf,
    /// Components compiled at once.
    pub max_compiles: u16,
}

/// Loads every plugin in the folder as `serve` would (compiling into the
/// cache, checking each against the contract and its settings), and says
/// what it compiled; a plugin that does not load is an error.
pub async fn precompile(config: &PrecompileConfig) -> anyhow::Result<()> {
    let runtime = RuntimeConfig {
        max_instances: 1,
        cache_dir: Some(config.cache_dir.clone()),
        max_compiles: config.max_compiles,
        ..RuntimeConfig::default()
    };
    let snapshot = Registry::load_once(&runtime, config.plugins_dir.clone()).await?;
    let refused = snapshot.refused();
    for (name, reason) in &refused {
        eprintln!("not compiled: {name}: {reason}");
    }
    let paths = snapshot.served_paths();
    println!(
        "{} plugin(s) ready in {}: {}",
        paths.len(),
        config.cache_dir.display(),
        paths.join(" ")
    );
    if !refused.is_empty() {
        bail!("{} plugin(s) did not load", refused.len());
    }
    Ok(())
}
