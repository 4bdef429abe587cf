//! The folder source (`--cluster-objects DIR`): the objects in a folder of
//! YAML and JSON files served as the cluster, read again whenever the
//! folder changes. A folder that no longer reads (a half-written or broken
//! file) keeps the objects read last serving and says why in the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{Cluster, Objects};
use crate::objects::ObjectsError;
use crate::watch::DirWatch;

/// How often the folder is read again without a notification of a change.
const RECHECK: Duration = Duration::from_secs(30);

/// Serves the objects in `dir` through `cluster` (their declared indexes
/// built first), in place of what it served; on error it serves what it
/// did.
pub fn serve(dir: &Path, cluster: &Cluster) -> Result<(), ObjectsError> {
    cluster.set(Objects::read(dir, format!("folder {}", dir.display()))?);
    Ok(())
}

/// Serves the objects of `dir` through `cluster` from now on, reading it
/// again on every change until the task is dropped. The first [`serve`] is
/// the caller's (a start-up error is the operator's to see).
pub async fn follow(dir: PathBuf, cluster: Arc<Cluster>) {
    let watch = match DirWatch::tree(&dir) {
        Ok(watch) => watch,
        Err(error) => {
            tracing::warn!(%error, folder = %dir.display(), "cannot watch the cluster objects folder; rereading it every {}s", RECHECK.as_secs());
            DirWatch::periodic()
        }
    };
    let never = Notify::new();
    loop {
        watch.settled(RECHECK, &never).await;
        let (dir_to_read, serving) = (dir.clone(), cluster.clone());
        // Off the async workers: the read, and the indexes built on it.
        match tokio::task::spawn_blocking(move || serve(&dir_to_read, &serving)).await {
            Ok(Ok(())) => tracing::info!(folder = %dir.display(), "cluster objects read"),
            Ok(Err(error)) => tracing::warn!(
                error = %crate::text::with_causes(&error),
                "cluster objects folder does not read; the objects read last keep serving"
            ),
            Err(error) => tracing::error!(%error, "reading the cluster objects folder failed"),
        }
    }
}
