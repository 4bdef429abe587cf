//! A progress line for long audits: how many objects have been judged,
//! rewritten in place on a terminal a few times a second; nothing at all
//! when standard error is not a terminal (a CI log, a Job's log).

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// How often the line is rewritten.
const EVERY: Duration = Duration::from_millis(250);

/// The progress of one audit.
pub struct Progress {
    terminal: bool,
    judged: u64,
    shown: Option<Instant>,
}

impl Progress {
    /// Progress shown on standard error if it is a terminal.
    pub fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            judged: 0,
            shown: None,
        }
    }

    /// One more object judged.
    pub fn judged(&mut self) {
        self.judged += 1;
        let due = self.shown.is_none_or(|shown| shown.elapsed() >= EVERY);
        if self.terminal && due {
            eprint!("\r{} objects judged", self.judged);
            let _ = std::io::stderr().flush();
            self.shown = Some(Instant::now());
        }
    }

    /// How many objects were judged.
    pub fn count(&self) -> u64 {
        self.judged
    }

    /// Clears the line, for what is printed next.
    pub fn clear(&mut self) {
        if self.shown.take().is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}
