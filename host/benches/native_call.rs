//! The sidecar injector's logic compiled natively, judged the way
//! `plugin_call` judges its WebAssembly build: the review's documents, the
//! plugin reading them through the SDK's reader, and the host's check of
//! its answer (`admit::decide`), one call at a time. `plugin_call` on the
//! same request over this figure is what the sandbox costs.
//!
//! ```sh
//! cargo bench -p wicket --bench native_call -- MANIFEST REVIEW.json [CALLS [ROUNDS]]
//! ```
//!
//! Prints the same figures as `plugin_call`: after 500 warm-up calls, the
//! lowest and highest round median and the lowest round 99th percentile.

use std::path::Path;
use std::time::{Duration, Instant};

use wicket::admit::{self, Decision};
use wicket::document::{Document, Documents, Kind, Part as HostPart};
use wicket::plugin::{Manifest, types};
use wicket::review;
use wicket_sdk::bindings::wicket::admission::types::{self as sdk, JsonKind, Part};
use wicket_sdk::native::{self, Reader};
use wicket_sidecar_injector::SidecarInjector;

const WARM_UP_CALLS: usize = 500;

/// A host document as the SDK reads it.
struct Host<'a>(&'a Document);

impl Reader for Host<'_> {
    fn get(&self, pointer: &str) -> Option<String> {
        self.0.get(pointer).map(str::to_owned)
    }

    fn part(&self, pointer: &str, inline: u32) -> Option<Part> {
        self.0.part(pointer, inline as usize).map(part)
    }

    fn members(&self, pointer: &str, names: &[String], inline: u32) -> Option<Vec<Option<Part>>> {
        let members = self.0.members(pointer, names, inline as usize)?;
        Some(members.into_iter().map(|member| member.map(part)).collect())
    }

    fn elements(&self, pointer: &str, inline: u32) -> Option<Vec<Part>> {
        let elements = self.0.elements(pointer, inline as usize)?;
        Some(elements.into_iter().map(part).collect())
    }
}

fn part(part: HostPart<'_>) -> Part {
    Part {
        kind: match part.kind {
            Kind::Null => JsonKind::Null,
            Kind::Boolean => JsonKind::Boolean,
            Kind::Number => JsonKind::Number,
            Kind::String => JsonKind::String,
            Kind::Array => JsonKind::Array,
            Kind::Object => JsonKind::Object,
        },
        bytes: u32::try_from(part.bytes).unwrap_or(u32::MAX),
        text: part.text.map(str::to_owned),
    }
}

/// The SDK's answer as the host's.
fn answer(response: sdk::Response) -> types::Response {
    types::Response {
        denied: response.denied.map(|denial| types::Denial {
            code: denial.code,
            message: denial.message,
        }),
        mutation: response.mutation.map(|mutation| match mutation {
            sdk::Mutation::JsonPatch(patch) => types::Mutation::JsonPatch(patch),
            sdk::Mutation::Object(object) => types::Mutation::Object(object),
        }),
        warnings: response.warnings,
        audit_annotations: response.audit_annotations,
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [manifest_path, review_path, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: native_call MANIFEST REVIEW.json [CALLS [ROUNDS]]");
    };
    let calls: usize = rest.first().map_or(Ok(2000), |calls| calls.parse())?;
    let rounds: usize = rest.get(1).map_or(Ok(5), |rounds| rounds.parse())?;
    let manifest = Manifest::parse(&std::fs::read_to_string(manifest_path)?)?;
    let settings = Document::new(manifest.settings_json.as_str());
    let body = std::fs::read(review_path)?;
    let review = review::decode(&body)?;
    let request = wicket_sdk::testing::review_from_admission_review(std::str::from_utf8(&body)?)
        .request()
        .clone();

    let judge = || -> anyhow::Result<Decision> {
        let documents = Documents::of(&review.request);
        let object = documents.object.as_deref().map(Host);
        let readers = native::Documents {
            object: object.as_ref().map(|object| object as &dyn Reader),
            old_object: None,
            options: None,
            settings: &Host(&settings),
        };
        let answer = native::review(&SidecarInjector, request.clone(), readers)
            .map(answer)
            .map_err(|error| anyhow::anyhow!(error.message))?;
        Ok(admit::decide("native", &manifest, &documents, Ok(answer)))
    };
    let first = judge()?;
    for _ in 0..WARM_UP_CALLS {
        judge()?;
    }
    let mut medians = Vec::with_capacity(rounds);
    let mut p99s = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut times = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            judge()?;
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
        "{:<18} {:<38} p50 {:>6.1} µs (rounds up to {:>6.1})  p99 {:>6.1} µs  [{rounds}×{calls}; {}, patch {} B]",
        "injector (native)",
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
