//! What `plugin_call` and `native_call` share: rounds of timed calls, and
//! one line of figures printed the same way, so the two compare directly.

use std::path::Path;
use std::time::{Duration, Instant};

use wicket::admit::Decision;

const WARM_UP_CALLS: usize = 500;

/// After 500 warm-up calls of `judge`, times `rounds` rounds of `calls`
/// calls and prints the lowest and highest round median and the lowest
/// round 99th percentile, labelled `name` and the review file's name.
pub async fn run(
    name: &str,
    review_path: &str,
    calls: usize,
    rounds: usize,
    mut judge: impl AsyncFnMut() -> anyhow::Result<Decision>,
) -> anyhow::Result<()> {
    let first = judge().await?;
    for _ in 0..WARM_UP_CALLS {
        judge().await?;
    }
    let mut medians = Vec::with_capacity(rounds);
    let mut p99s = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut times = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            judge().await?;
            times.push(started.elapsed());
        }
        times.sort_unstable();
        let at = |fraction: f64| times[((times.len() - 1) as f64 * fraction) as usize];
        medians.push(at(0.50));
        p99s.push(at(0.99));
    }
    medians.sort_unstable();
    p99s.sort_unstable();
    let micros = |time: Duration| time.as_secs_f64() * 1e6;
    println!(
        "{name:<18} {:<38} p50 {:>6.1} µs (rounds up to {:>6.1})  p99 {:>6.1} µs  [{rounds}×{calls}; {}, patch {} B]",
        Path::new(review_path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy(),
        micros(medians[0]),
        micros(medians[medians.len() - 1]),
        micros(p99s[0]),
        first.verdict.as_str(),
        first.response.patch.as_ref().map_or(0, Vec::len),
    );
    Ok(())
}

/// The arguments, without the `--bench` that `cargo bench` adds.
pub fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect()
}

/// CALLS and ROUNDS from the arguments after the required ones.
pub fn counts(rest: &[String]) -> anyhow::Result<(usize, usize)> {
    let calls = rest.first().map_or(Ok(2000), |calls| calls.parse())?;
    let rounds = rest.get(1).map_or(Ok(5), |rounds| rounds.parse())?;
    Ok((calls, rounds))
}
