//! Following the plugin folder: the registry's reload loop, woken by the
//! folder's watch, by SIGHUP and by a periodic rescan, and the loads it
//! starts, each swapped in when ready while the loop goes on.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::{Load, Registry, Reload, Trigger};
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
        // The loads under way: each swaps its plugin in when it is ready,
        // and all stop with this future.
        let mut loads = JoinSet::new();
        let mut missing = false;
        loop {
            let trigger = match watch.settled(RESCAN, &wake).await {
                Woken::Changed => Trigger::Watch,
                Woken::Asked => Trigger::Signal,
                Woken::Period => Trigger::Rescan,
            };
            while let Some(ended) = loads.try_join_next() {
                if let Err(error) = ended {
                    tracing::error!(%error, "a plugin load ended abnormally");
                }
            }
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
                Ok(Reload {
                    changes,
                    loads: new,
                }) => {
                    if !changes.is_empty() || !new.is_empty() {
                        let loading: Vec<&str> = new.iter().map(Load::name).collect();
                        tracing::info!(
                            ?loading,
                            failed = changes.failed.len(),
                            removed = ?changes.removed,
                            "plugin folder reloaded"
                        );
                    }
                    for load in new {
                        let registry = registry.clone();
                        loads.spawn(async move {
                            registry.finish(load.run().await).await;
                        });
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the plugin folder; what was loaded keeps serving")
                }
            }
        }
    })
}
