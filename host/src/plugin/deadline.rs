//! How long a call may run: its own-time deadline (the manifest's
//! `timeout-ms`), the wall-clock bound past which the host gives up on it,
//! and what a running call does at each epoch tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::{StoreContextMut, UpdateDeadline};

use super::meter::Meter;

/// How long past its deadline a review may take in wall-clock time, waiting
/// for instance slots and the CPU included, before Wicket gives up on it as
/// overloaded (503). Webhook timeouts must leave room for it.
pub const WALL_HEADROOM: Duration = Duration::from_millis(500);

/// The wall-clock bound of a review starting now whose plugins may take
/// `deadline` of their own time: [`WALL_HEADROOM`] more.
pub fn wall_bound(deadline: Duration) -> Instant {
    Instant::now() + deadline + WALL_HEADROOM
}

/// Why the epoch callback stopped a call.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Interrupt {
    /// The call used its deadline of its own time.
    #[error("deadline reached")]
    Deadline,
    /// The call passed its wall-clock bound.
    #[error("wall-clock bound reached")]
    WallBound,
}

/// What a running call does at an epoch tick.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Tick {
    /// Stop it: the trap that follows is classified by the interrupt.
    Stop(Interrupt),
    /// Let it go on at once: it is short so far.
    Yield,
    /// Let it go on when a turn for long calls is free.
    TakeTurn,
}

/// Pure: a call that used its deadline of its own time stops as the
/// plugin's failure, whatever the clock says; one past its wall-clock bound
/// stops (whose fault that is, the caller decides from the meter); one that
/// has run `turns_after` ([`LONG_CALL`](super::meter::LONG_CALL), or nothing for a plugin that ran
/// long recently) takes turns with the other long calls; any other yields
/// and goes on.
pub(super) fn at_tick(
    used: Duration,
    deadline: Duration,
    turns_after: Duration,
    now: Instant,
    wall_bound: Instant,
) -> Tick {
    if used >= deadline {
        Tick::Stop(Interrupt::Deadline)
    } else if now >= wall_bound {
        Tick::Stop(Interrupt::WallBound)
    } else if used >= turns_after {
        Tick::TakeTurn
    } else {
        Tick::Yield
    }
}

/// The store's epoch callback for a call charging `meter`, with `deadline`
/// of its own time, taking `turns` with the long calls after `turns_after`
/// of it, and stopped at `wall_bound`.
pub(super) fn epoch_callback<T>(
    meter: Arc<Meter>,
    turns: Arc<Semaphore>,
    deadline: Duration,
    turns_after: Duration,
    wall_bound: Instant,
) -> impl FnMut(StoreContextMut<'_, T>) -> wasmtime::Result<UpdateDeadline> + Send + Sync + 'static
{
    move |_| {
        meter.end_turn();
        let tick = at_tick(
            meter.used(),
            deadline,
            turns_after,
            Instant::now(),
            wall_bound,
        );
        if let Tick::Stop(interrupt) = tick {
            return Err(wasmtime::Error::new(interrupt));
        }
        meter.yielding();
        Ok(match tick {
            Tick::TakeTurn => {
                UpdateDeadline::YieldCustom(1, Box::pin(meter.clone().take_turn(turns.clone())))
            }
            _ => UpdateDeadline::Yield(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::meter::LONG_CALL;
    use super::*;

    const DEADLINE: Duration = Duration::from_millis(100);

    fn tick(used_ms: u64, past_bound: bool) -> Tick {
        let now = Instant::now();
        let wall_bound = match past_bound {
            true => now,
            false => now + Duration::from_secs(1),
        };
        at_tick(
            Duration::from_millis(used_ms),
            DEADLINE,
            LONG_CALL,
            now,
            wall_bound,
        )
    }

    #[test]
    fn a_short_call_yields_and_a_long_one_takes_turns() {
        assert_eq!(tick(0, false), Tick::Yield);
        assert_eq!(tick(LONG_CALL.as_millis() as u64 - 1, false), Tick::Yield);
        assert_eq!(tick(LONG_CALL.as_millis() as u64, false), Tick::TakeTurn);
        assert_eq!(tick(99, false), Tick::TakeTurn);
    }

    #[test]
    fn a_plugin_that_ran_long_recently_takes_turns_from_the_start() {
        let bound = Instant::now() + Duration::from_secs(1);
        let at = |used| at_tick(used, DEADLINE, Duration::ZERO, Instant::now(), bound);
        assert_eq!(at(Duration::ZERO), Tick::TakeTurn);
        assert_eq!(at(DEADLINE), Tick::Stop(Interrupt::Deadline));
    }

    #[test]
    fn its_own_deadline_stops_a_call_before_the_wall_clock_does() {
        assert_eq!(tick(100, false), Tick::Stop(Interrupt::Deadline));
        // Both passed: the plugin used its own time, so it is its failure.
        assert_eq!(tick(150, true), Tick::Stop(Interrupt::Deadline));
    }

    #[test]
    fn the_wall_clock_stops_a_call_that_has_time_of_its_own_left() {
        assert_eq!(tick(0, true), Tick::Stop(Interrupt::WallBound));
        assert_eq!(tick(50, true), Tick::Stop(Interrupt::WallBound));
    }
}
