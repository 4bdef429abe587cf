//! What indexing a review's object costs (the first read of a contract 0.2
//! document), beside what serde_json takes to skim the same text, with the
//! object indented as the fixtures are and compact as the API server sends
//! it.
//!
//! ```sh
//! cargo bench -p wicket --bench document_index -- REVIEW.json [CALLS]
//! ```

mod args;

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde_json::Value;
use wicket::document::Document;

const ROUNDS: usize = 3;

fn main() -> anyhow::Result<()> {
    let args = args::args();
    let [review_path, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: document_index REVIEW.json [CALLS]");
    };
    let calls: u32 = rest.first().map_or(Ok(20_000), |calls| calls.parse())?;
    let review: Value = serde_json::from_str(&std::fs::read_to_string(review_path)?)?;
    let object = &review["request"]["object"];
    let forms = [
        ("indented", serde_json::to_string_pretty(object)?),
        ("compact", serde_json::to_string(object)?),
    ];
    for (form, text) in &forms {
        // The lowest of a few rounds: the least disturbed by other work.
        let mut index = Duration::MAX;
        let mut skim = Duration::MAX;
        for _ in 0..ROUNDS {
            index = index.min(per_call(calls, || {
                let document = Document::new(text.as_str());
                black_box(document.part("/metadata", 0));
            }));
            skim = skim.min(per_call(calls, || {
                black_box(serde_json::from_str::<IgnoredAny>(text).ok());
            }));
        }
        println!(
            "{form:<8} {:>6} B: index {:>5.1} µs, serde_json skim {:>5.1} µs",
            text.len(),
            index.as_secs_f64() * 1e6,
            skim.as_secs_f64() * 1e6,
        );
    }
    Ok(())
}

/// The mean time of `calls` calls of `call`.
fn per_call(calls: u32, mut call: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..calls {
        call();
    }
    started.elapsed() / calls
}
