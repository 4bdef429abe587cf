//! What `plugin_call` and `native_call` share: the review's body, rounds of
//! timed calls, and one line of figures printed the same way, so the two
//! compare directly.

use std::path::Path;
use std::time::{Duration, Instant};

use wicket::admit::Decision;
use wicket_tests::compact;

const WARM_UP_CALLS: usize = 500;

/// After 500 warm-up calls of `judge`, times `rounds` rounds of `calls`
/// calls and prints the lowest and highest round median and the lowest
/// round 99th percentile, labelled `name` and `review` (its name).
pub async fn run(
    name: &str,
    review: &str,
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
        review,
        micros(medians[0]),
        micros(medians[medians.len() - 1]),
        micros(p99s[0]),
        first.verdict.as_str(),
        first.response.patch.as_ref().map_or(0, Vec::len),
    );
    Ok(())
}

/// The review at `path`, and how to name it. With `COMPACT=1` in the
/// environment, its whitespace is taken out first: the captured fixtures
/// are stored indented for reading, and the API server sends compact JSON.
pub fn review_body(path: &str) -> anyhow::Result<(Vec<u8>, String)> {
    let body = std::fs::read(path)?;
    let name = Path::new(path)
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok(match std::env::var_os("COMPACT") {
        Some(_) => (compact(&body), format!("{name} (compact)")),
        None => (body, name),
    })
}

/// CALLS and ROUNDS from the arguments after the required ones.
pub fn counts(rest: &[String]) -> anyhow::Result<(usize, usize)> {
    let calls = rest.first().map_or(Ok(2000), |calls| calls.parse())?;
    let rounds = rest.get(1).map_or(Ok(5), |rounds| rounds.parse())?;
    Ok((calls, rounds))
}
