//! The mutator's logic, run natively on fixtures captured from a real API
//! server and on variations of them.

use serde_json::{Value, json};
use wicket_sdk::testing::{self, apply, with_object};
use wicket_sdk::{Plugin, Review, Verdict};

use crate::ConfigMapMutator;
use crate::content::content_hash;

const HASH: &str = "wicket.dev/content-sha256";

/// The captured fixture `name`, with `edit` applied to its `request` first.
fn review_of(name: &str, edit: impl FnOnce(&mut Value)) -> Review<'static> {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    testing::review_from_file(path, edit)
}

fn settings_json() -> Value {
    json!({
        "labels": {"managed-by": "wicket"},
        "annotations": {"example.com/owner": "platform"},
        "default-data": {"LOG_FORMAT": "json"},
        "deny-key-patterns": ["*password*", "*.pem"],
    })
}

fn run_with(review: &Review, settings: &Value) -> Verdict {
    let settings = testing::settings(&ConfigMapMutator, settings).unwrap();
    ConfigMapMutator.review(review, &settings).unwrap()
}

/// The code and message of the denial `review` gets.
fn denial(review: &Review) -> (u16, String) {
    let verdict = run(review);
    let (code, message) = verdict.denial().expect("a denial");
    (code, message.to_owned())
}

fn run(review: &Review) -> Verdict {
    run_with(review, &settings_json())
}

/// Mutates `review`, checks a second pass changes nothing, and returns the
/// stored ConfigMap.
fn mutated(review: &Review) -> Value {
    let verdict = run(review);
    assert_eq!(verdict.denial(), None);
    let config_map = apply(review, &verdict);
    let again = run(&with_object(review, &config_map));
    assert_eq!(
        again.patch_json(),
        None,
        "a second pass must change nothing"
    );
    config_map
}

fn hash_of(config_map: &Value) -> String {
    let pairs = |field: &str| -> Vec<(String, String)> {
        config_map[field]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap().to_owned()))
            .collect()
    };
    let (data, binary) = (pairs("data"), pairs("binaryData"));
    content_hash(
        data.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        binary.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

#[test]
fn create_gets_defaults_labels_annotations_and_the_hash() {
    let config_map = mutated(&review_of("v1-configmap-create.json", |_| {}));
    assert_eq!(
        config_map["data"],
        json!({"FEATURE_X": "on", "LOG_LEVEL": "info", "LOG_FORMAT": "json"})
    );
    assert_eq!(
        config_map["metadata"]["labels"],
        json!({"managed-by": "wicket"})
    );
    let annotations = &config_map["metadata"]["annotations"];
    assert_eq!(annotations["example.com/owner"], "platform");
    assert_eq!(annotations[HASH], hash_of(&config_map));
}

#[test]
fn update_that_changes_data_recomputes_the_hash() {
    let created = mutated(&review_of("v1-configmap-create.json", |_| {}));
    let old_hash = created["metadata"]["annotations"][HASH].clone();
    let review = review_of("v1-configmap-update.json", |request| {
        request["object"]["metadata"]["annotations"] = json!({HASH: old_hash.clone()});
    });
    let updated = mutated(&review);
    let new_hash = &updated["metadata"]["annotations"][HASH];
    assert_ne!(*new_hash, old_hash);
    assert_eq!(*new_hash, hash_of(&updated));
    let patch: Value = serde_json::from_str(run(&review).patch_json().unwrap()).unwrap();
    assert!(
        patch
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/metadata/annotations/wicket.dev~1content-sha256"),
        "{patch}"
    );
}

#[test]
fn values_users_set_win_unless_overwrite_is_on() {
    let review = review_of("v1-configmap-create.json", |request| {
        request["object"]["metadata"]["labels"] = json!({"managed-by": "helm"});
        request["object"]["data"]["LOG_FORMAT"] = json!("text");
    });
    let kept = mutated(&review);
    assert_eq!(kept["metadata"]["labels"]["managed-by"], "helm");
    assert_eq!(kept["data"]["LOG_FORMAT"], "text");

    let mut overwrite = settings_json();
    overwrite["overwrite"] = json!(true);
    let replaced = apply(&review, &run_with(&review, &overwrite));
    assert_eq!(replaced["metadata"]["labels"]["managed-by"], "wicket");
    assert_eq!(
        replaced["data"]["LOG_FORMAT"], "text",
        "data is never overwritten"
    );
}

#[test]
fn oversized_data_is_denied_with_its_size() {
    let review = review_of("v1-configmap-create.json", |request| {
        request["object"]["data"]["blob"] = json!("x".repeat(950 * 1024));
    });
    let verdict = run(&review);
    let (code, message) = verdict.denial().unwrap();
    assert_eq!(code, 413);
    assert!(
        message.contains("holds 950.0 KiB of data (972842 bytes), over the 900.0 KiB limit"),
        "{message}"
    );
}

#[test]
fn secret_looking_keys_are_denied_with_a_pointer_to_secrets() {
    for key in ["DB_PASSWORD", "tls.pem"] {
        let review = review_of("v1-configmap-create.json", |request| {
            request["object"]["data"][key] = json!("hunter2");
        });
        let (code, message) = denial(&review);
        assert_eq!(code, 403);
        assert!(
            message.contains(&format!("key {key:?} looks like a secret")),
            "{message}"
        );
        assert!(message.contains("store it in a Secret"), "{message}");
    }
}

#[test]
fn immutable_configmaps_are_annotated_on_create_and_left_alone_on_update() {
    let created = mutated(&review_of("v1-configmap-create-immutable.json", |_| {}));
    assert_eq!(created["metadata"]["annotations"][HASH], hash_of(&created));
    let update = review_of("v1-configmap-update.json", |request| {
        request["oldObject"]["immutable"] = json!(true);
    });
    let verdict = run(&update);
    assert_eq!((verdict.denial(), verdict.patch_json()), (None, None));
}

#[test]
fn binary_only_configmap_gets_a_data_map_and_a_hash_over_both() {
    let review = review_of("v1-configmap-create.json", |request| {
        let object = request["object"].as_object_mut().unwrap();
        object.remove("data");
        object.insert("binaryData".into(), json!({"logo.png": "iVBORw0KGgo="}));
    });
    let config_map = mutated(&review);
    assert_eq!(config_map["data"], json!({"LOG_FORMAT": "json"}));
    assert_eq!(
        config_map["metadata"]["annotations"][HASH],
        hash_of(&config_map)
    );
}

#[test]
fn deletes_and_other_kinds_pass_untouched() {
    let delete = review_of("v1-configmap-delete.json", |_| {});
    let verdict = run(&delete);
    assert_eq!((verdict.denial(), verdict.patch_json()), (None, None));
    let pod = review_of("v1-pod-create-plain.json", |_| {});
    assert_eq!(run(&pod).patch_json(), None);
}

#[test]
fn settings_are_checked_at_load() {
    let refused = |settings: Value| testing::settings(&ConfigMapMutator, &settings).unwrap_err();
    assert!(refused(json!({"max-data-bytes": 0})).contains("above 0"));
    assert!(refused(json!({"annotations": {HASH: "x"}})).contains("hash annotation"));
    assert!(refused(json!({"label": {}})).contains("unknown field `label`"));
    assert!(refused(json!({"deny-key-patterns": [""]})).contains("empty pattern"));
    assert!(testing::settings(&ConfigMapMutator, &json!({})).is_ok());
}
