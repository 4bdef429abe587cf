//! What one call charges its plugin against `timeout-ms`: the CPU time of
//! the threads while they run it, and the time it waits on its own I/O (an
//! outbound request) — but not the time it waits for a worker thread, for
//! the CPU, or for its turn among long-running calls. A busy host therefore
//! never makes a plugin miss its deadline; the wall-clock bound around each
//! call catches the host being too busy, as an overload, not as a failure.
//!
//! Long-running calls (past [`LONG_CALL`] of their own time, or from their
//! start for a plugin whose calls ran long recently: [`LongCalls`]) take
//! turns: each slice of one needs a permit of a small semaphore, so looping
//! plugins share at most that many cores and the other plugins keep the rest.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Own time after which a call counts as long-running and takes turns.
pub const LONG_CALL: Duration = Duration::from_millis(10);
/// How long after one of its calls ran long a plugin's calls take turns
/// from their start.
const LONG_RECENTLY: Duration = Duration::from_secs(10);

/// When a plugin's calls last ran long. A plugin that looped recently has
/// its next calls take turns from their first tick: otherwise every
/// connection to it, answered at once at the wall-clock bound and sent
/// again at once, brings a burst of new calls that each run [`LONG_CALL`]
/// unthrottled, and the other plugins' short calls queue behind them.
#[derive(Default)]
pub struct LongCalls {
    /// Milliseconds after [`process_start`] of the last long call, plus one
    /// (0: never).
    last_ms: AtomicU64,
}

impl LongCalls {
    /// Notes how a call that ended ran. Only a call that used
    /// [`LONG_CALL`] of its own time counts: one that took turns from its
    /// start because an earlier call ran long must not keep its plugin
    /// throttled (a plugin that started slowly once would run one call at a
    /// time for as long as it had traffic).
    pub fn record(&self, meter: &Meter) {
        if meter.charged() >= LONG_CALL {
            let now = u64::try_from(process_start().elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_ms.store(now.saturating_add(1), Ordering::Relaxed);
        }
    }

    /// Own time after which a new call takes turns: none if a call ran long
    /// within [`LONG_RECENTLY`], else [`LONG_CALL`].
    pub fn turns_after(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        let recently = last != 0
            && process_start().elapsed() < Duration::from_millis(last - 1) + LONG_RECENTLY;
        match recently {
            true => Duration::ZERO,
            false => LONG_CALL,
        }
    }
}

/// A fixed instant early in the process, for times kept in atomics.
fn process_start() -> Instant {
    static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    *START
}

/// The running total of one call, shared by the poll wrapper ([`Metered`])
/// and the engine's epoch callback; both run on the thread polling the call.
#[derive(Default)]
pub struct Meter {
    /// Own time of the polls and I/O waits that have ended.
    charged_ns: AtomicU64,
    /// Thread CPU time when the current poll began.
    poll_cpu_start_ns: AtomicU64,
    /// Whether the call's last `Pending` was a yield to the scheduler (not
    /// charged) rather than a wait on its own I/O (charged).
    yielded: AtomicBool,
    /// Whether the call has been long-running (it took turns).
    long: AtomicBool,
    /// Whether the call had to wait for one of its plugin's own slots.
    waited_for_own_slot: AtomicBool,
    /// The turn a long-running call holds for its current slice.
    turn: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Meter {
    /// Own time so far, from inside a poll.
    pub fn used(&self) -> Duration {
        let polling =
            thread_cpu_ns().saturating_sub(self.poll_cpu_start_ns.load(Ordering::Relaxed));
        Duration::from_nanos(self.charged_ns.load(Ordering::Relaxed) + polling)
    }

    /// Own time charged, once the call has ended (or between polls, not
    /// counting the current wait).
    pub fn charged(&self) -> Duration {
        Duration::from_nanos(self.charged_ns.load(Ordering::Relaxed))
    }

    /// Own time so far, from outside a poll, while the call is `Pending`
    /// since `pending_since`.
    fn used_while_pending(&self, pending_since: Option<Instant>) -> Duration {
        let waiting = match (pending_since, self.yielded.load(Ordering::Relaxed)) {
            (Some(since), false) => since.elapsed(),
            _ => Duration::ZERO,
        };
        self.charged() + waiting
    }

    /// Whether the call ever took turns as a long-running call.
    pub fn was_long(&self) -> bool {
        self.long.load(Ordering::Relaxed)
    }

    /// Notes that the call had to wait for one of its plugin's own slots.
    pub fn waited_for_own_slot(&self) {
        self.waited_for_own_slot.store(true, Ordering::Relaxed);
    }

    /// Whether the call had to wait for one of its plugin's own slots: time
    /// it then lacks was lost to its own plugin's load.
    pub fn had_to_wait_for_own_slot(&self) -> bool {
        self.waited_for_own_slot.load(Ordering::Relaxed)
    }

    /// Marks the coming `Pending` as a yield to the scheduler, so the wait
    /// that follows is not charged.
    pub fn yielding(&self) {
        self.yielded.store(true, Ordering::Relaxed);
    }

    /// Ends the current slice's turn, if the call holds one.
    pub fn end_turn(&self) {
        self.turn
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
    }

    /// Waits for a turn among long-running calls and holds it until the next
    /// [`end_turn`](Meter::end_turn).
    pub async fn take_turn(self: Arc<Self>, turns: Arc<Semaphore>) {
        self.long.store(true, Ordering::Relaxed);
        // The semaphore is never closed; without a permit the call simply
        // runs its slice unthrottled.
        if let Ok(permit) = turns.acquire_owned().await {
            *self
                .turn
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()) = Some(permit);
        }
    }

    fn charge(&self, time: Duration) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        self.charged_ns.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A call's future, with each poll's CPU time and each wait on its own I/O
/// charged to its [`Meter`].
pub struct Metered<F> {
    inner: Pin<Box<F>>,
    meter: Arc<Meter>,
    pending_since: Option<Instant>,
}

impl<F: Future> Metered<F> {
    /// Wraps `inner`, charging `meter`.
    pub fn new(inner: F, meter: Arc<Meter>) -> Metered<F> {
        Metered {
            inner: Box::pin(inner),
            meter,
            pending_since: None,
        }
    }

    /// Own time so far, between polls.
    pub fn used(&self) -> Duration {
        self.meter.used_while_pending(self.pending_since)
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if let Some(since) = this.pending_since.take()
            && !this.meter.yielded.swap(false, Ordering::Relaxed)
        {
            this.meter.charge(since.elapsed());
        }
        let cpu_start = thread_cpu_ns();
        this.meter
            .poll_cpu_start_ns
            .store(cpu_start, Ordering::Relaxed);
        let poll = this.inner.as_mut().poll(cx);
        this.meter.charge(Duration::from_nanos(
            thread_cpu_ns().saturating_sub(cpu_start),
        ));
        if poll.is_pending() {
            this.pending_since = Some(Instant::now());
        }
        poll
    }
}

/// The CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let time = clock_gettime(ClockId::ThreadCPUTime);
    u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(time.tv_nsec).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs on this thread until it has used `time` of CPU.
    fn spin_cpu(time: Duration) {
        let start = thread_cpu_ns();
        while Duration::from_nanos(thread_cpu_ns() - start) < time {
            std::hint::black_box(());
        }
    }

    #[tokio::test]
    async fn running_is_charged_and_a_wait_after_a_yield_is_not() {
        let meter = Arc::new(Meter::default());
        let inner = meter.clone();
        Metered::new(
            async move {
                spin_cpu(Duration::from_millis(20));
                inner.yielding();
                tokio::time::sleep(Duration::from_millis(300)).await;
            },
            meter.clone(),
        )
        .await;
        let used = meter.charged();
        assert!(used >= Duration::from_millis(20), "{used:?}");
        assert!(used < Duration::from_millis(300), "{used:?}");
    }

    #[tokio::test]
    async fn a_wait_on_its_own_io_is_charged() {
        let meter = Arc::new(Meter::default());
        Metered::new(
            tokio::time::sleep(Duration::from_millis(300)),
            meter.clone(),
        )
        .await;
        assert!(meter.charged() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn only_a_call_that_used_long_call_time_keeps_its_plugin_taking_turns() {
        let long_calls = LongCalls::default();
        let short_in_turns = Arc::new(Meter::default());
        short_in_turns
            .clone()
            .take_turn(Arc::new(Semaphore::new(1)))
            .await;
        assert!(short_in_turns.was_long());
        short_in_turns.charge(LONG_CALL / 10);
        long_calls.record(&short_in_turns);
        assert_eq!(
            long_calls.turns_after(),
            LONG_CALL,
            "a short call that took turns leaves its plugin unthrottled"
        );
        let long = Meter::default();
        long.charge(LONG_CALL);
        long_calls.record(&long);
        assert_eq!(long_calls.turns_after(), Duration::ZERO);
    }
}
