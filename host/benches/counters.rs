//! The cost `/metrics` adds to every review: one `Counters::record` (an
//! atomic increment and two histogram observations), alone and with two
//! threads recording into the same plugin's counters at once.
//!
//! ```sh
//! cargo bench -p wicket --bench counters [-- RECORDS]
//! ```

mod args;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wicket::admit::{Decision, Verdict};
use wicket::counters::Counters;
use wicket::review::{AdmissionResponse, Operation};

fn main() {
    let records: u32 = args::args()
        .first()
        .map_or(1_000_000, |records| records.parse().expect("RECORDS"));
    let judged = Ok(Decision {
        response: AdmissionResponse {
            allowed: true,
            ..AdmissionResponse::default()
        },
        verdict: Verdict::Allowed,
        failures: Vec::new(),
        not_enforced: None,
        plugin_time: Duration::from_micros(40),
    });
    let counters = Arc::new(Counters::default());
    let run = |counters: &Counters| {
        let started = Instant::now();
        for _ in 0..records {
            counters.record(Operation::Create, &judged, Duration::from_micros(60));
        }
        started.elapsed() / records
    };
    println!("one thread:  {:?} per record", run(&counters));
    let per_record = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..2).map(|_| scope.spawn(|| run(&counters))).collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    });
    println!("two threads: {per_record:?} per record (slower thread)");
}
