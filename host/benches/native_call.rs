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
//! Prints the same figures as `plugin_call` (see `rounds`).

mod rounds;

use wicket::admit::{self, Decision};
use wicket::document::{Document, Documents, Kind, Part as HostPart};
use wicket::plugin::{Manifest, types};
use wicket::review;
use wicket_sdk::bindings::wicket::admission::types::{self as sdk, JsonKind, Part};
use wicket_sdk::native::{self, Reader};
use wicket_sidecar_injector::SidecarInjector;

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

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = rounds::args();
    let [manifest_path, review_path, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: native_call MANIFEST REVIEW.json [CALLS [ROUNDS]]");
    };
    let (calls, rounds) = rounds::counts(rest)?;
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
    rounds::run(
        "injector (native)",
        review_path,
        calls,
        rounds,
        async || judge(),
    )
    .await
}
