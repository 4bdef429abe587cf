//! Noticing changes in folders: the plugin folder (followed by
//! `registry::follow`), the certificate files' folders (by `tls`) and the
//! cluster objects folder (by `cluster::folder`).
//! A change (a file written, renamed, removed, a `..data` symlink swapped)
//! counts once the folder has been quiet for a moment (at most a second
//! after it, however busy the folder), so a file still being copied is
//! usually read whole; a slow periodic recheck catches anything the
//! kernel's notifications miss. Reads — Wicket's own included — are not
//! changes.
//!
//! A reload that reads a half-written component fails to load it and keeps
//! the previous version serving; the write's later events bring another
//! reload that succeeds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// How long a folder must stay quiet before a change counts: long enough
/// for a copy's writes to run together, short enough that one changed plugin
/// among hundreds is served within half a second (a reload's compile of a
/// small component is ~0.25 s).
const QUIET: Duration = Duration::from_millis(100);
/// The longest a change waits for quiet: in a folder written to without
/// pause (a log, a sidecar's scratch file, a busy shared volume) changes
/// still count, at most this long after the first.
const SETTLE_AT_MOST: Duration = Duration::from_secs(1);

/// What ended a wait in [`DirWatch::settled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// A notification of a change.
    Changed,
    /// A `wake` (SIGHUP).
    Asked,
    /// The period, with neither.
    Period,
}

/// Notifications of changes in some folders.
pub struct DirWatch {
    _watcher: Option<RecommendedWatcher>,
    changed: Arc<Notify>,
}

impl DirWatch {
    /// No folder: only the periodic recheck and wake-ups.
    pub fn periodic() -> DirWatch {
        DirWatch {
            _watcher: None,
            changed: Arc::new(Notify::new()),
        }
    }

    /// Watches `folders`.
    pub fn new(folders: &[PathBuf]) -> notify::Result<DirWatch> {
        let (mut watcher, changed) = notifier(|_| true)?;
        for folder in folders {
            watcher.watch(folder, RecursiveMode::NonRecursive)?;
        }
        Ok(DirWatch {
            _watcher: Some(watcher),
            changed,
        })
    }

    /// Watches `folder` and, in its parent, the folder's own name: a folder
    /// deleted and made again (or swapped by a rename) is seen too. The
    /// folder may be missing; its parent may not.
    pub fn following(folder: &Path) -> notify::Result<DirWatch> {
        // notify reports absolute paths: compare in that form. Not
        // canonical: a folder swapped by a symlink is followed by its name.
        let folder = &std::path::absolute(folder).map_err(notify::Error::io)?;
        let inside = folder.to_owned();
        let (mut watcher, changed) =
            notifier(move |event| event.paths.iter().any(|path| path.starts_with(&inside)))?;
        watcher.watch(parent_of(folder), RecursiveMode::NonRecursive)?;
        if let Err(error) = watcher.watch(folder, RecursiveMode::NonRecursive) {
            tracing::debug!(%error, folder = %folder.display(), "watching only the parent");
        }
        Ok(DirWatch {
            _watcher: Some(watcher),
            changed,
        })
    }

    /// Watches `folder` and everything under it.
    pub fn tree(folder: &Path) -> notify::Result<DirWatch> {
        let (mut watcher, changed) = notifier(|_| true)?;
        watcher.watch(folder, RecursiveMode::Recursive)?;
        Ok(DirWatch {
            _watcher: Some(watcher),
            changed,
        })
    }

    /// Returns after a change, a `wake` or `period` without either, once the
    /// folders have then been quiet for a moment, or [`SETTLE_AT_MOST`]
    /// after, whichever comes first; says which of the three it was.
    pub async fn settled(&self, period: Duration, wake: &Notify) -> Woken {
        let woken = tokio::select! {
            _ = self.changed.notified() => Woken::Changed,
            _ = wake.notified() => Woken::Asked,
            _ = tokio::time::sleep(period) => Woken::Period,
        };
        let give_up = tokio::time::Instant::now() + SETTLE_AT_MOST;
        loop {
            let quiet_until = (tokio::time::Instant::now() + QUIET).min(give_up);
            let changed = tokio::time::timeout_at(quiet_until, self.changed.notified()).await;
            if changed.is_err() || tokio::time::Instant::now() >= give_up {
                return woken;
            }
        }
    }
}

/// The folder holding `path`: its parent, or `.` for a bare name.
pub fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A watcher that signals the events `relevant` keeps, and never reads.
fn notifier(
    relevant: impl Fn(&notify::Event) -> bool + Send + 'static,
) -> notify::Result<(RecommendedWatcher, Arc<Notify>)> {
    let changed = Arc::new(Notify::new());
    let signal = changed.clone();
    let watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if matches!(event.kind, EventKind::Access(_)) || !relevant(&event) => {}
            Ok(_) => signal.notify_one(),
            Err(error) => {
                tracing::warn!(%error, "folder watch error; rechecking");
                signal.notify_one();
            }
        })?;
    Ok((watcher, changed))
}
