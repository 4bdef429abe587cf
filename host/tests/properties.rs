//! Properties of the pure parts every review goes through, checked on
//! generated input (proptest; `PROPTEST_CASES` raises the number of cases,
//! `scripts/fuzz` runs a long campaign):
//! - decoding never panics, whatever the bytes, and a decoded review encodes
//!   to an answer with the same uid;
//! - a patch Wicket accepts from a plugin applies to the whole object (the
//!   check itself parses only the parts the patch touches);
//! - whatever a plugin answers, the decision is one the API server accepts;
//! - a document reads, at every pointer, what serde_json reads there.

use proptest::prelude::*;
use serde_json::{Value, json};
use wicket::admit::{self, Verdict};
use wicket::document::{Document, Documents};
use wicket::patch;
use wicket::plugin::types::{Denial, Mutation, Response};
use wicket::plugin::{FailurePolicy, Manifest, Mode, PluginFailure};
use wicket::review::{self, AdmissionResponse, ApiVersion};

const FIXTURES: &[&str] = &[
    include_str!("../../tests/fixtures/v1-pod-create-plain.json"),
    include_str!("../../tests/fixtures/v1-pod-create-large-orders-api.json"),
    include_str!("../../tests/fixtures/v1-configmap-update.json"),
    include_str!("../../tests/fixtures/v1-pod-delete-etcd-1.json"),
    include_str!("../../tests/fixtures/v1beta1-pod-create-plain.json"),
];

/// A fixture, damaged: bytes flipped, cut short, or spliced.
fn damaged_fixture() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(FIXTURES),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(fixture, flips, cut)| {
            let mut bytes = fixture.as_bytes().to_vec();
            for (at, byte) in flips {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// JSON values of a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z~/ ]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z/~]{1,4}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// JSON Pointers into a pod, real and made up, escaped or not.
fn pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "/metadata",
            "/metadata/labels",
            "/metadata/labels/app",
            "/metadata/labels/a~1b",
            "/metadata/annotations",
            "/metadata/annotations/x~0y",
            "/spec/containers",
            "/spec/containers/0",
            "/spec/containers/0/name",
            "/spec/containers/-",
            "/spec/containers/7",
            "/spec/containers/01",
            "/spec/volumes/0",
            "/nope/deeper",
            "/metadata/",
        ])
        .prop_map(str::to_owned),
        "(/[a-z0-9~-]{0,5}){0,4}",
    ]
}

/// One JSON Patch operation, well-formed or not.
fn operation() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "add", "remove", "replace", "move", "copy", "test", "bad",
        ]),
        pointer(),
        pointer(),
        json_value(),
    )
        .prop_map(
            |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
        )
}

fn mutating() -> Manifest {
    Manifest {
        mode: Mode::Mutating,
        failure_policy: FailurePolicy::Fail,
        ..Manifest::default()
    }
}

proptest! {
    #[test]
    fn decoding_never_panics_and_keeps_the_uid(body in damaged_fixture()) {
        if let Ok(review) = review::decode(&body) {
            let answer = review::encode(review.api_version, &review.request.uid, &AdmissionResponse::default());
            let answer: Value = serde_json::from_slice(&answer).unwrap();
            prop_assert_eq!(answer["response"]["uid"].as_str(), Some(&*review.request.uid));
        }
    }

    #[test]
    fn a_patch_is_accepted_exactly_when_it_applies_to_the_whole_object(
        fixture in prop::sample::select(&FIXTURES[..3]),
        operations in prop::collection::vec(operation(), 1..5),
    ) {
        let review = review::decode(fixture.as_bytes()).unwrap();
        let object = review.request.object.unwrap().get();
        let text = Value::from(operations).to_string();
        let checked = patch::checked(&Mutation::JsonPatch(text.clone()), &Document::new(object));
        if let Ok(Some(accepted)) = &checked {
            let accepted: json_patch::Patch = serde_json::from_slice(accepted).unwrap();
            let mut whole: Value = serde_json::from_str(object).unwrap();
            prop_assert!(json_patch::patch(&mut whole, &accepted).is_ok());
        }
        // And nothing that applies is refused (the sparse copy leaves out
        // what no operation reaches).
        if let Ok(parsed) = serde_json::from_str::<json_patch::Patch>(&text) {
            let mut whole: Value = serde_json::from_str(object).unwrap();
            let applies = patch::apply(&mut whole, &parsed).is_ok();
            prop_assert_eq!(checked.is_ok(), applies, "{}", text);
        }
    }

    #[test]
    fn every_decision_is_one_the_api_server_accepts(
        fixture in prop::sample::select(FIXTURES),
        code in any::<Option<u16>>(),
        denied in any::<bool>(),
        operations in prop::collection::vec(operation(), 0..3),
        warnings in prop::collection::vec(".{0,200}", 0..40),
        keys in prop::collection::vec("[a-z./-]{0,70}", 0..3),
        failed in any::<bool>(),
    ) {
        let review = review::decode(fixture.as_bytes()).unwrap();
        let answer = Response {
            denied: denied.then(|| Denial { code, message: "no".into() }),
            mutation: (!operations.is_empty())
                .then(|| Mutation::JsonPatch(Value::from(operations).to_string())),
            warnings,
            audit_annotations: keys.into_iter().map(|key| (key, "v".to_owned())).collect(),
        };
        let answer = match failed {
            true => Err(PluginFailure::Trap("generated".into())),
            false => Ok(answer),
        };
        let documents = Documents::of(&review.request);
        let decision = admit::decide("p", &mutating(), &documents, answer);
        let response = &decision.response;
        prop_assert_eq!(response.allowed, matches!(decision.verdict, Verdict::Allowed | Verdict::FailedOpen));
        if let Some(status) = &response.status {
            prop_assert!((400..=599).contains(&status.code));
        }
        if let Some(patch) = &response.patch {
            prop_assert!(response.allowed);
            let object = review.request.object.expect("a patch only for an object").get();
            let patch: json_patch::Patch = serde_json::from_slice(patch).unwrap();
            let mut whole: Value = serde_json::from_str(object).unwrap();
            prop_assert!(json_patch::patch(&mut whole, &patch).is_ok());
        }
        prop_assert!(response.warnings.iter().all(|warning| warning.len() <= admit::MAX_WARNING_BYTES));
        let total: usize = response.warnings.iter().map(String::len).sum();
        prop_assert!(total <= admit::MAX_WARNINGS_TOTAL_BYTES);
        for key in response.audit_annotations.keys() {
            prop_assert!((1..=63).contains(&key.len()) && !key.contains('/'), "{key}");
        }
        // The answer encodes for both API versions.
        for version in [ApiVersion::V1, ApiVersion::V1beta1] {
            let encoded = review::encode(version, &review.request.uid, response);
            prop_assert!(serde_json::from_slice::<Value>(&encoded).is_ok());
        }
    }
}

/// JSON values with awkward text: escapes and brackets in keys and strings,
/// long strings, numbers in every form, nesting deeper than the index's
/// first pass.
fn awkward_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |number| number.is_finite())
            .prop_map(Value::from),
        "[a-z\"\\\\{}\\[\\],:/~ \u{e9}\u{1F600}\n]{0,8}".prop_map(Value::from),
        // Long enough to cross the scanner's word boundaries and to reach
        // its `memchr` path.
        "[a-z\"\\\\ ]{8,80}".prop_map(Value::from),
    ];
    leaf.prop_recursive(7, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z\"\\\\/~{\\]]{0,4}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Every pointer into `value`, escaped as RFC 6901 says.
fn pointers(value: &Value, at: String, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{token}"), into);
            }
        }
        Value::Array(elements) => {
            for (index, child) in elements.iter().enumerate() {
                pointers(child, format!("{at}/{index}"), into);
            }
        }
        _ => {}
    }
    into.push(at);
}

proptest! {
    #[test]
    fn a_document_reads_what_serde_json_reads(value in awkward_json(), pretty in any::<bool>()) {
        let text = match pretty {
            true => serde_json::to_string_pretty(&value).unwrap(),
            false => serde_json::to_string(&value).unwrap(),
        };
        let document = Document::new(text.as_str());
        let mut every = Vec::new();
        pointers(&value, String::new(), &mut every);
        for pointer in every {
            // Both sides parsed from text: serde_json's float parsing does
            // not round-trip every last digit.
            let read: Value = serde_json::from_str(document.get(&pointer).unwrap()).unwrap();
            let expected = serde_json::to_string(&value.pointer(&pointer)).unwrap();
            let expected: Value = serde_json::from_str(&expected).unwrap();
            prop_assert_eq!(&read, &expected, "at {:?} in {}", pointer, text);
        }
        prop_assert_eq!(document.get("/no such key"), None);
    }
}
