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

/// Reads the objects in `dir`.
pub fn read(dir: &Path) -> Result<Objects, ObjectsError> {
    Objects::read(dir, format!("folder {}", dir.display()))
}

/// Serves the objects of `dir` through `cluster` from now on, reading it
/// again on every change until the task is dropped. The first read has
/// been done by the caller (a start-up error is the operator's to see).
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
        let read_and_set = move || read(&dir_to_read).map(|objects| serving.set(objects));
        match tokio::task::spawn_blocking(read_and_set).await {
            Ok(Ok(())) => tracing::info!(folder = %dir.display(), "cluster objects read"),
            Ok(Err(error)) => tracing::warn!(
                error = %crate::text::with_causes(&error),
                "cluster objects folder does not read; the objects read last keep serving"
            ),
            Err(error) => tracing::error!(%error, "reading the cluster objects folder failed"),
        }
    }
}
