//! The cost of one plugin call, without HTTP or TLS: a fresh instance from
//! the pre-instantiated template, the guest's work on the request, and the
//! host's check of the answer (`admit::judge`), one call at a time.
//!
//! ```sh
//! cargo bench -p wicket --bench plugin_call -- NAME WASM MANIFEST REVIEW.json [CALLS]
//! ```
//!
//! Prints the median and the 99th percentile over CALLS calls (default 5000)
//! after 500 warm-up calls. `scripts/bench-plugins` runs it on the bundled
//! plugins and on a do-nothing baseline to isolate the guest's share.

use std::path::Path;
use std::time::{Duration, Instant};

use wicket::admit;
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
    let calls: usize = rest.first().map_or(Ok(5000), |calls| calls.parse())?;
    let runtime = Runtime::new(&RuntimeConfig::default()).map_err(anyhow::Error::new)?;
    let plugin = load_plugin(&runtime, name, Path::new(wasm), Path::new(manifest)).await?;
    let body = std::fs::read(review_path)?;
    let review = review::decode(&body)?;

    let first = admit::judge(&plugin, &review.request).await;
    for _ in 0..WARM_UP_CALLS {
        admit::judge(&plugin, &review.request).await;
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        admit::judge(&plugin, &review.request).await;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    let at = |fraction: f64| times[((times.len() - 1) as f64 * fraction) as usize];
    let micros = |time: Duration| time.as_secs_f64() * 1e6;
    println!(
        "{name:<20} {:<40} p50 {:>7.1} µs  p99 {:>7.1} µs  ({calls} calls; {}, patch {} bytes)",
        Path::new(review_path)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy(),
        micros(at(0.50)),
        micros(at(0.99)),
        first.verdict.as_str(),
        first.response.patch.as_ref().map_or(0, Vec::len),
    );
    Ok(())
}
