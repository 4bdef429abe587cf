//! `wicket-load`: a small closed-loop load generator for one review path.
//!
//! Each of `--concurrency` workers sends the same AdmissionReview over its own
//! keep-alive HTTPS connection, back to back, for `--duration` (after a
//! `--warmup` whose results are discarded), and checks every answer is an
//! HTTP 200 AdmissionReview. It prints reviews/s and latency percentiles.
//!
//! The body is sent as the API server sends it, compact JSON, whatever the
//! file's indentation (the captured fixtures are indented: the large pod is
//! 37 KB as stored, 19 KB compact), unless `--as-stored`.
//!
//! ```text
//! wicket-load --url https://127.0.0.1:8443/mutate/add-label --ca wicket-tls/ca.pem \
//!     --body tests/fixtures/v1-pod-create-plain.json --concurrency 8 --duration 10s
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use wicket_tests::{Client, compact};

/// Closed-loop load against one Wicket review path.
#[derive(Parser)]
struct Args {
    /// Full URL of the review path, e.g. https://127.0.0.1:8443/mutate/add-label.
    #[arg(long)]
    url: String,
    /// CA certificate (PEM) to trust.
    #[arg(long)]
    ca: PathBuf,
    /// AdmissionReview JSON file to send (compacted).
    #[arg(long)]
    body: PathBuf,
    /// Send the file's bytes as they are, not compacted.
    #[arg(long)]
    as_stored: bool,
    /// Concurrent workers (one connection each).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Measured duration, e.g. 10s or 500ms.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Warm-up before measuring.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// A pause after each answer, e.g. 10ms: a paced client (one whose
    /// latency is measured beside other load) instead of a saturating one.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    pause: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let parse = |digits: &str| {
        digits
            .parse::<u64>()
            .map_err(|err| format!("{text}: {err}"))
    };
    if let Some(ms) = text.strip_suffix("ms") {
        Ok(Duration::from_millis(parse(ms)?))
    } else if let Some(s) = text.strip_suffix('s') {
        Ok(Duration::from_secs(parse(s)?))
    } else {
        Err(format!("{text}: give a unit, e.g. 10s or 500ms"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stored =
        std::fs::read(&args.body).with_context(|| format!("reading {}", args.body.display()))?;
    let body = Bytes::from(match args.as_stored {
        true => stored,
        false => {
            serde_json::from_slice::<serde::de::IgnoredAny>(&stored)
                .with_context(|| format!("{} is not JSON", args.body.display()))?;
            compact(&stored)
        }
    });
    let (base, path) = split_url(&args.url)?;

    let started = Instant::now();
    let measure_from = started + args.warmup;
    let stop_at = measure_from + args.duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        // One client per worker: its own keep-alive connection.
        let client = Client::new(&args.ca, &base);
        let (path, body, pause) = (path.clone(), body.clone(), args.pause);
        workers.spawn(async move {
            let mut latencies_us = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    return Ok::<_, anyhow::Error>(latencies_us);
                }
                let answer = client.post(&path, body.clone()).await?;
                if answer.status != 200 || !answer.body.starts_with(b"{\"apiVersion\"") {
                    bail!("unexpected answer {}: {:?}", answer.status, answer.body);
                }
                if sent >= measure_from {
                    latencies_us.push(sent.elapsed().as_micros() as u64);
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        });
    }
    let mut latencies_us = Vec::new();
    while let Some(joined) = workers.join_next().await {
        latencies_us.extend(joined??);
    }
    latencies_us.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies_us.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies_us.get(index).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "{} body={}{}B concurrency={} reviews={} reviews/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        args.body.file_name().unwrap_or_default().to_string_lossy(),
        if args.as_stored {
            "as-stored:"
        } else {
            "compact:"
        },
        body.len(),
        args.concurrency,
        latencies_us.len(),
        latencies_us.len() as f64 / args.duration.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
    Ok(())
}

/// `https://host:port/path?query` → (`https://host:port`, `/path?query`).
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .context("the URL must start with https://")?;
    let slash = rest.find('/').context("the URL needs a path")?;
    Ok((
        format!("https://{}", &rest[..slash]),
        rest[slash..].to_owned(),
    ))
}
