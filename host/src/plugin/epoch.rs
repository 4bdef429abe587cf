//! The engine's epoch ticker, which drives deadlines: it advances the epoch
//! every millisecond while a call runs, and sleeps while none does, so an
//! idle Wicket uses no CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances while calls run: the granularity of
/// deadlines.
const TICK: Duration = Duration::from_millis(1);
/// How often an idle ticker checks whether the engine is gone.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The ticker thread and the count of calls running.
pub struct Ticker {
    running: Arc<AtomicUsize>,
    thread: Thread,
}

/// One running call: the ticker ticks while any exists.
pub struct Running<'a>(&'a Ticker);

impl Ticker {
    /// Starts the ticker for `engine`; it ends once the engine is dropped.
    pub fn start(engine: &Engine) -> std::io::Result<Ticker> {
        let engine = engine.weak();
        let running = Arc::new(AtomicUsize::new(0));
        let calls = running.clone();
        let thread = std::thread::Builder::new()
            .name("wicket-epoch".into())
            .spawn(move || {
                while let Some(engine) = engine.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    match calls.load(Ordering::Acquire) {
                        0 => std::thread::park_timeout(IDLE_CHECK),
                        _ => std::thread::sleep(TICK),
                    }
                }
            })?;
        Ok(Ticker {
            running,
            thread: thread.thread().clone(),
        })
    }

    /// Marks a call as running until the guard is dropped, waking the
    /// ticker if it was idle.
    pub fn running(&self) -> Running<'_> {
        if self.running.fetch_add(1, Ordering::AcqRel) == 0 {
            self.thread.unpark();
        }
        Running(self)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}
