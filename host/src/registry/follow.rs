//! Following the plugin folder: the registry's reload loop, woken by the
//! folder's watch, by SIGHUP and by a periodic rescan.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{Registry, Trigger};
use crate::watch::{DirWatch, Woken};

/// How often the plugin folder is rescanned without any notification.
const RESCAN: Duration = Duration::from_secs(30);

/// Follows `registry`'s folder: reloads on a change, on `wake` (SIGHUP) and
/// every 30 s. A folder that goes missing keeps what is served (and
/// `/plugins` says so); once it is back, its new self is watched. The watch
/// is armed now, so nothing changed before the returned future first runs
/// is missed; it lasts as long as the future.
pub fn start(
    registry: Arc<Registry>,
    wake: Arc<Notify>,
) -> notify::Result<impl Future<Output = ()> + Send + 'static> {
    let dir = registry.dir().to_owned();
    let mut watch = DirWatch::following(&dir)?;
    Ok(async move {
        let mut missing = false;
        loop {
            let trigger = match watch.settled(RESCAN, &wake).await {
                Woken::Changed => Trigger::Watch,
                Woken::Asked => Trigger::Signal,
                Woken::Period => Trigger::Rescan,
            };
            if missing {
                // The old watch died with the old folder: arm one on the new
                // folder before reading it, so no change slips between.
                match DirWatch::following(&dir) {
                    Ok(rearmed) => watch = rearmed,
                    Err(error) => tracing::warn!(%error, "cannot watch the plugin folder again"),
                }
            }
            let reloaded = registry.reload(trigger).await;
            if missing && reloaded.is_ok() {
                tracing::info!(dir = %dir.display(), "the plugin folder is back");
            }
            missing = reloaded.is_err();
            match reloaded {
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
                Err(error) => {
                    tracing::error!(%error, "cannot read the plugin folder; what was loaded keeps serving")
                }
            }
        }
    })
}
