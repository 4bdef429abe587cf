//! Ending instances that grew large, off the request path and at low
//! priority. Returning hundreds of MiB to the kernel takes milliseconds of
//! system calls (and interrupts every core to flush its TLB): on an async
//! worker it stalls every review queued there, and even on a thread of its
//! own at normal priority it takes the CPU from the reviews of plugins that
//! grew nothing. One thread at the lowest priority ends them in turn; until
//! it has, the memory stays charged to the plugin that grew it, so a plugin
//! that grows faster than its instances can be ended runs into its own cap.
//!
//! What counts is growth, not size: an instance that starts with a large
//! heap (an interpreter's snapshot) and grows nothing resets only the pages
//! it wrote, and sending every one of them to the one low-priority thread
//! would make that thread the plugin's throughput.

use std::sync::mpsc::{Sender, channel};

use wasmtime::Store;

use super::host::InstanceState;

/// An instance whose memory grew by more than this is ended by the teardown
/// thread.
const LARGE_BYTES: usize = 4 << 20;

/// Where large instances go to end.
pub(super) struct Teardown {
    large: Sender<Store<InstanceState>>,
}

impl Teardown {
    /// Starts the teardown thread.
    pub(super) fn start() -> std::io::Result<Teardown> {
        let (large, ending) = channel::<Store<InstanceState>>();
        std::thread::Builder::new()
            .name("wicket-teardown".into())
            .spawn(move || {
                // Linux: the nice value is the calling thread's alone.
                if let Err(error) =
                    rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19)
                {
                    tracing::warn!(%error, "cannot lower the teardown thread's priority");
                }
                for store in ending {
                    drop(store);
                }
            })?;
        Ok(Teardown { large })
    }

    /// Ends `store`'s instance: here if it grew little, else on the
    /// teardown thread.
    pub(super) fn end(&self, store: Store<InstanceState>) {
        if store.data().memory_grown() <= LARGE_BYTES {
            return drop(store);
        }
        // The thread ends only with the process; if it is gone, end it here.
        if let Err(returned) = self.large.send(store) {
            drop(returned.0);
        }
    }
}
