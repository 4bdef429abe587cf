//! How long a call may run: its own-time deadline (the manifest's
//! `timeout-ms`), and the wall-clock bound past which the host gives up on it.

use std::time::{Duration, Instant};

/// How long past its deadline a review may take in wall-clock time, waiting
/// for instance slots and the CPU included, before Wicket gives up on it as
/// overloaded (503). Webhook timeouts must leave room for it.
pub const WALL_HEADROOM: Duration = Duration::from_millis(500);

/// The wall-clock bound of a review starting now whose plugins may take
/// `deadline` of their own time: [`WALL_HEADROOM`] more.
pub fn wall_bound(deadline: Duration) -> Instant {
    Instant::now() + deadline + WALL_HEADROOM
}
