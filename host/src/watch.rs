//! Following the plugin folder: a change in it (a file written, renamed,
//! removed, a `..data` symlink swapped) triggers a reload once the folder has
//! been quiet for a moment, so a file still being copied is read whole. A
//! slow periodic rescan catches anything the kernel's notifications miss.
//!
//! A reload that reads a half-written component fails to load it and keeps
//! the previous version serving; the write's later events bring another
//! reload that succeeds.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use crate::registry::Registry;

/// How long the folder must stay quiet before a reload.
const QUIET: Duration = Duration::from_millis(250);
/// How often the folder is rescanned without any notification.
const RESCAN: Duration = Duration::from_secs(30);

/// Starts following `registry`'s folder. The watcher lives as long as the
/// returned task.
pub fn follow(registry: Arc<Registry>) -> notify::Result<tokio::task::JoinHandle<()>> {
    let changed = Arc::new(Notify::new());
    let signal = changed.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Err(error) = &event {
            tracing::warn!(%error, "plugin folder watch error; reloading");
        }
        signal.notify_one();
    })?;
    watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(RESCAN) => {}
            }
            // Wait until the folder has been quiet for QUIET.
            while tokio::time::timeout(QUIET, changed.notified())
                .await
                .is_ok()
            {}
            match registry.reload().await {
                Ok(changes) => {
                    if !(changes.loaded.is_empty()
                        && changes.failed.is_empty()
                        && changes.removed.is_empty())
                    {
                        tracing::info!(
                            loaded = ?changes.loaded,
                            failed = changes.failed.len(),
                            removed = ?changes.removed,
                            "plugin folder reloaded"
                        );
                    }
                }
                Err(error) => tracing::error!(%error, "cannot read the plugin folder"),
            }
        }
    }))
}
