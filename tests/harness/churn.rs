//! A busy folder: one file rewritten every 50 ms (a log, a sidecar's
//! scratch file), so the folder is never quiet.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Rewrites `scratch.log` in a folder every 50 ms until dropped.
pub struct Churn {
    running: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
}

impl Churn {
    /// Starts churning `dir`.
    pub fn start(dir: &Path) -> Churn {
        let running = Arc::new(AtomicBool::new(true));
        let scratch = dir.join("scratch.log");
        let writer = std::thread::spawn({
            let running = running.clone();
            move || {
                let mut written = 0u64;
                while running.load(Ordering::Relaxed) {
                    written += 1;
                    let _ = std::fs::write(&scratch, written.to_string());
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Churn {
            running,
            writer: Some(writer),
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
