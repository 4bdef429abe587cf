//! `wicket-abuse`: the fault campaign of RELIABILITY.md. Each probe starts
//! the real `wicket` (default budgets) on 127.0.0.1, attacks it as a hostile
//! client or plugin would, for a bounded time, while a good client keeps
//! sending reviews; it prints one Markdown table row per probe: what was
//! done, what is expected, what was observed.
//!
//! ```text
//! scripts/abuse              # the full campaign, about three minutes
//! scripts/abuse --scale 0.05 # a quick pass (CI)
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::Channel;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;
use wicket_tests::{PluginDir, Wicket, fixture, fixture_with_uid};

/// Attacks a real Wicket and reports how it held up.
#[derive(Parser)]
struct Args {
    /// Multiplies every count and duration (0.05 for a quick pass).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

const POD: &str = "v1-pod-create-plain.json";
const MIB: f64 = 1024.0 * 1024.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = |n: usize| ((n as f64 * args.scale).ceil() as usize).max(1);
    let seconds = |s: u64| Duration::from_secs_f64((s as f64 * args.scale).max(1.0));
    println!("| probe | expected | observed |");
    println!("|---|---|---|");
    silent_connections(scale(2000)).await?;
    stalled_http1_bodies(scale(150), seconds(12)).await?;
    stalled_http2_streams(scale(200), seconds(12)).await?;
    looping_plugin(scale(300), seconds(8)).await?;
    memory_hungry_plugin(scale(8), seconds(5)).await?;
    idle_watcher(seconds(10)).await?;
    Ok(())
}

fn row(probe: &str, expected: &str, observed: &str) {
    println!("| {probe} | {expected} | {observed} |");
}

/// A good plugin and whatever else a probe needs.
fn plugins() -> PluginDir {
    PluginDir::new().misbehave("allow", "validating", "fail", "allow", "")
}

/// What the good client saw.
#[derive(Default)]
struct Good {
    latencies: Vec<Duration>,
    failed: usize,
}

impl Good {
    fn percentile(&mut self, fraction: f64) -> Duration {
        self.latencies.sort_unstable();
        self.latencies
            .get(((self.latencies.len().saturating_sub(1)) as f64 * fraction) as usize)
            .copied()
            .unwrap_or_default()
    }

    fn summary(&mut self) -> String {
        let (p50, p99) = (self.percentile(0.5), self.percentile(0.99));
        format!(
            "{} good reviews answered, {} not (p50 {:.1} ms, p99 {:.1} ms)",
            self.latencies.len(),
            self.failed,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        )
    }
}

/// Sends good reviews from `workers` connections until `stop` is set.
async fn good_client(wicket: &Wicket, workers: usize, stop: Arc<AtomicBool>) -> Good {
    let mut tasks = JoinSet::new();
    for worker in 0..workers {
        let client = wicket.client();
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut good = Good::default();
            let request = Bytes::from(fixture_with_uid(POD, &format!("good-{worker}")));
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match client.post("/validate/allow", request.clone()).await {
                    Ok(answer)
                        if answer.status == 200 && answer.json()["response"]["allowed"] == true =>
                    {
                        good.latencies.push(started.elapsed())
                    }
                    _ => good.failed += 1,
                }
            }
            good
        });
    }
    let mut all = Good::default();
    while let Some(Ok(good)) = tasks.join_next().await {
        all.latencies.extend(good.latencies);
        all.failed += good.failed;
    }
    all
}

/// Runs `attack` while a good client sends reviews, and returns both.
async fn during<T>(wicket: &Wicket, attack: impl Future<Output = T>) -> (T, Good) {
    let stop = Arc::new(AtomicBool::new(false));
    let good = good_client(wicket, 2, stop.clone());
    let attack = async {
        let result = attack.await;
        stop.store(true, Ordering::Relaxed);
        result
    };
    tokio::join!(attack, good)
}

/// The resident-memory row of a stalled-body probe: before, at the peak,
/// and two seconds after the attack ended.
async fn memory_row(pid: u32, before: u64, peak: u64) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    row(
        "… resident memory",
        "≤ 256 MiB",
        &format!(
            "before {:.0} MiB, peak {:.0} MiB, 2 s after {:.0} MiB",
            before as f64 / MIB,
            peak as f64 / MIB,
            rss(pid) as f64 / MIB
        ),
    );
}

/// Resident memory of the process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Samples the process's resident memory every 50 ms until `stop` is set,
/// returning the highest.
async fn peak_rss(pid: u32, stop: Arc<AtomicBool>) -> u64 {
    let mut peak = 0;
    while !stop.load(Ordering::Relaxed) {
        peak = peak.max(rss(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peak
}

/// Runs `attack` while sampling resident memory: (result, peak bytes).
async fn with_peak_rss<T>(pid: u32, attack: impl Future<Output = T>) -> (T, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = peak_rss(pid, stop.clone());
    let attack = async {
        let result = attack.await;
        stop.store(true, Ordering::Relaxed);
        result
    };
    tokio::join!(attack, sampler)
}

async fn silent_connections(count: usize) -> anyhow::Result<()> {
    let wicket = Wicket::start(plugins())?;
    let mut opened = Vec::with_capacity(count);
    for _ in 0..count {
        match wicket.tls(b"http/1.1").await {
            Ok(stream) => opened.push(stream),
            Err(_) => break,
        }
    }
    let held = opened.len();
    let started = Instant::now();
    let (closed_after, mut good) = during(&wicket, async {
        let mut waits = JoinSet::new();
        for mut stream in opened {
            waits.spawn(async move {
                let mut buffer = [0u8; 64];
                let _ =
                    tokio::time::timeout(Duration::from_secs(120), stream.read(&mut buffer)).await;
                started.elapsed()
            });
        }
        let mut last = Duration::ZERO;
        while let Some(Ok(closed)) = waits.join_next().await {
            last = last.max(closed);
        }
        last
    })
    .await;
    row(
        &format!("{held} TLS connections that send nothing after the handshake"),
        "all closed at the first-request deadline (10 s); good reviews answered throughout",
        &format!(
            "last closed after {:.1} s; {}",
            closed_after.as_secs_f64(),
            good.summary()
        ),
    );
    Ok(())
}

/// The head of a review declaring a 3 MiB body less one byte.
const STALLED_LENGTH: usize = 3 * 1024 * 1024;

async fn stalled_http1_bodies(count: usize, hold: Duration) -> anyhow::Result<()> {
    let wicket = Wicket::start(plugins())?;
    let pid = wicket.pid();
    let before = rss(pid);
    let ((), peak) = with_peak_rss(pid, async {
        let ((), mut good) = during(&wicket, async {
            let mut stalls = JoinSet::new();
            for _ in 0..count {
                let Ok(mut stream) = wicket.tls(b"http/1.1").await else {
                    continue;
                };
                stalls.spawn(async move {
                    let head = format!(
                        "POST /validate/allow HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {STALLED_LENGTH}\r\n\r\n"
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let chunk = vec![b' '; 64 * 1024];
                    let mut sent = 0;
                    while sent + chunk.len() < STALLED_LENGTH {
                        if stream.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += chunk.len();
                    }
                    let _ = stream.write_all(&chunk[..STALLED_LENGTH - sent - 1]).await;
                    tokio::time::sleep(hold).await;
                    drop(stream);
                });
            }
            while stalls.join_next().await.is_some() {}
        })
        .await;
        row(
            &format!("{count} HTTP/1.1 connections, each stalled 1 byte short of a 3 MiB body for {} s", hold.as_secs()),
            "memory bounded by the 64 MiB body budget; good reviews answered throughout",
            &good.summary(),
        );
    })
    .await;
    memory_row(pid, before, peak).await;
    Ok(())
}

async fn stalled_http2_streams(count: usize, hold: Duration) -> anyhow::Result<()> {
    let wicket = Wicket::start(plugins())?;
    let pid = wicket.pid();
    let before = rss(pid);
    let stream = wicket.tls(b"h2").await?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let ((), peak) = with_peak_rss(pid, async {
        let ((), mut good) = during(&wicket, async {
            let mut streams = JoinSet::new();
            for _ in 0..count {
                let (mut body, channel) = Channel::<Bytes, std::convert::Infallible>::new(4);
                let request = http::Request::post("/validate/allow")
                    .header("content-type", "application/json")
                    .header("content-length", STALLED_LENGTH)
                    .body(channel)
                    .expect("a request");
                let mut sender = sender.clone();
                streams.spawn(async move {
                    let answer = tokio::spawn(async move { sender.send_request(request).await });
                    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
                    let mut sent = 0;
                    while sent + chunk.len() < STALLED_LENGTH {
                        if body.send_data(chunk.clone()).await.is_err() {
                            break;
                        }
                        sent += chunk.len();
                    }
                    tokio::time::sleep(hold).await;
                    drop(body);
                    let _ = answer.await;
                });
            }
            while streams.join_next().await.is_some() {}
        })
        .await;
        row(
            &format!("one HTTP/2 connection, {count} streams each stalled short of a 3 MiB body for {} s", hold.as_secs()),
            "64 streams at a time, memory bounded by the body budget; good reviews answered throughout",
            &good.summary(),
        );
    })
    .await;
    connection.abort();
    memory_row(pid, before, peak).await;
    Ok(())
}

async fn looping_plugin(reviews: usize, window: Duration) -> anyhow::Result<()> {
    let plugins = plugins().misbehave(
        "loop",
        "validating",
        "fail",
        "loop",
        "[limits]\ntimeout-ms = 9000",
    );
    let wicket = Wicket::start(plugins)?;
    let (_, mut unloaded) = during(&wicket, tokio::time::sleep(window)).await;
    let started = Instant::now();
    let loops = wicket.client().post_each(
        "/validate/loop",
        POD,
        (0..reviews).map(|i| format!("loop-{i}")),
    );
    let (_, mut loaded) = during(&wicket, tokio::time::sleep(window)).await;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for answer in loops.join_all().await {
        let outcome = match answer {
            Ok(answer) if answer.status == 200 => {
                let message = answer.json()["response"]["status"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                match message {
                    m if m.contains("deadline") => "deadline".to_owned(),
                    m if m.contains("wall-clock") => "wall-clock bound".to_owned(),
                    m if m.contains("max-concurrency") => "own instances busy".to_owned(),
                    m => m,
                }
            }
            Ok(answer) => format!("HTTP {}", answer.status),
            Err(error) => format!("error: {error}"),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    row("good plugin, unloaded", "", &unloaded.summary());
    row(
        &format!("{reviews} concurrent reviews to a plugin that loops for its whole 9 s deadline"),
        "the good plugin's p99 within 2× unloaded; no good review denied",
        &format!(
            "{}; the loops ended as {:?} after {:.1} s",
            loaded.summary(),
            outcomes,
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

async fn memory_hungry_plugin(concurrency: usize, window: Duration) -> anyhow::Result<()> {
    let plugins = plugins().misbehave(
        "hog",
        "validating",
        "ignore",
        "oom",
        "[limits]\nmemory-mib = 256",
    );
    let wicket = Wicket::start(plugins)?;
    let pid = wicket.pid();
    let before = rss(pid);
    let ((outcomes, mut good), peak) = with_peak_rss(
        pid,
        during(&wicket, async {
            let deadline = Instant::now() + window;
            let mut hogs = JoinSet::new();
            for _ in 0..concurrency {
                let client = wicket.client();
                hogs.spawn(async move {
                    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
                    while Instant::now() < deadline {
                        let outcome = match client.post("/validate/hog", fixture(POD)).await {
                            Ok(answer) if answer.status == 200 => {
                                "answered: its failure, ignored".to_owned()
                            }
                            Ok(answer) => format!("HTTP {}", answer.status),
                            Err(error) => format!("error: {error}"),
                        };
                        *outcomes.entry(outcome).or_default() += 1;
                    }
                    outcomes
                });
            }
            let mut all = std::collections::BTreeMap::<String, usize>::new();
            for outcomes in hogs.join_all().await {
                for (outcome, count) in outcomes {
                    *all.entry(outcome).or_default() += count;
                }
            }
            all
        }),
    )
    .await;
    row(
        &format!(
            "{concurrency} concurrent reviews, again and again, to a plugin that grows to its 256 MiB cap"
        ),
        "resident memory bounded by the 1024 MiB plugin budget; good reviews answered",
        &format!(
            "before {:.0} MiB, peak {:.0} MiB; hog reviews {:?}; {}",
            before as f64 / MIB,
            peak as f64 / MIB,
            outcomes,
            good.summary()
        ),
    );
    Ok(())
}

/// CPU time (user + system) of the process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) end with ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

async fn idle_watcher(window: Duration) -> anyhow::Result<()> {
    let plugins = plugins().write("big.wasm", &vec![0u8; 200 << 20]);
    let wicket = Wicket::start_with_env(
        plugins,
        &[],
        &[("RUST_LOG", "info,wicket::registry=debug".as_ref())],
    )?;
    let pid = wicket.pid();
    let scans = || wicket.log().matches("scanning the plugin folder").count();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ticks, scanned) = (cpu_ticks(pid), scans());
    tokio::time::sleep(window).await;
    let used = cpu_ticks(pid) - ticks;
    row(
        &format!(
            "idle for {} s with a 200 MiB file in the plugin folder",
            window.as_secs()
        ),
        "no rescan without a change (one every 30 s at most); CPU ~0",
        &format!(
            "{} rescans; {} ms of CPU ({:.2} % of a core)",
            scans() - scanned,
            used * 10,
            used as f64 * 10.0 / window.as_millis() as f64 * 100.0
        ),
    );
    Ok(())
}
