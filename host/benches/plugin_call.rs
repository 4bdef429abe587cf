//! The cost of one plugin call, without HTTP or TLS: a fresh instance from
//! the pre-instantiated template, the guest's work on the request, and the
//! host's check of the answer (`admit::judge`), one call at a time.
//!
//! ```sh
//! cargo bench -p wicket --bench plugin_call -- NAME WASM MANIFEST REVIEW.json [CALLS [ROUNDS]]
//! ```
//!
//! After 500 warm-up calls, runs ROUNDS rounds of CALLS calls (default 5 ×
//! 2000) and prints the lowest and highest round median and the lowest round
//! 99th percentile: on a shared 2-core VM single rounds swing by ±40%, and
//! the best round is the least disturbed one. `scripts/bench-plugins` runs it
//! on the bundled plugins and on a do-nothing baseline to isolate the guest's
//! share.

use std::path::Path;
use std::time::{Duration, Instant};

use wicket::admit;
use wicket::document::Documents;
use wicket::plugin::{Runtime, RuntimeConfig};
use wicket::registry::load_plugin;
use wicket::review;

const WARM_UP_CALLS: usize = 500;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [name, wasm, manifest, review_path, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: plugin_call NAME WASM MANIFEST REVIEW.json [CALLS]");
    };
    let calls: usize = rest.first().map_or(Ok(2000), |calls| calls.parse())?;
    let rounds: usize = rest.get(1).map_or(Ok(5), |rounds| rounds.parse())?;
    let runtime = Runtime::new(&RuntimeConfig::default()).map_err(anyhow::Error::new)?;
    let plugin = load_plugin(&runtime, name, Path::new(wasm), Path::new(manifest)).await?;
    let body = std::fs::read(review_path)?;
    let review = review::decode(&body)?;

    // The documents are built per review, as `serve` builds them.
    let judge = async || {
        let documents = Documents::of(&review.request);
        admit::judge(&plugin, &review.request, &documents, plugin.wall_bound()).await
    };
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
