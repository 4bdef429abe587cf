//! The three ways to read a request's object, on a pod captured from a real
//! API server: a full `k8s-openapi` type, a `serde_json::Value`, and a light
//! view; labels and annotations one key at a time; and a whole-object
//! mutation through a typed pod.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use wicket_sdk::testing::{apply, review_from_file};
use wicket_sdk::view::{Metadata, Names};
use wicket_sdk::{Operation, Verdict};

const LARGE_POD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/v1-pod-create-large-orders-api.json"
);

fn large_pod() -> wicket_sdk::Review<'static> {
    review_from_file(LARGE_POD, |_| {})
}

#[test]
fn the_same_pod_reads_as_typed_value_and_view() {
    let review = large_pod();
    assert_eq!(review.operation(), Operation::Create);
    assert_eq!(review.resource().resource, "pods");

    let pod: Pod = review.object().unwrap();
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].name, "orders-api");
    assert_eq!(spec.containers[0].env.as_ref().unwrap().len(), 43);

    let value: Value = review.object().unwrap();
    assert_eq!(value["metadata"]["name"], "orders-api");

    let view: Metadata = review.object().unwrap();
    assert_eq!(view.metadata.label("team"), Some("payments"));
    assert!(
        review.old_object::<Value>().is_err(),
        "a create has no oldObject"
    );
}

#[test]
fn labels_and_annotations_read_one_key_at_a_time() {
    let review = large_pod();
    let names: Names = review.object_at("/metadata").unwrap();
    assert_eq!(names.display_name(), "orders-api");
    assert_eq!(review.label("team").unwrap().as_deref(), Some("payments"));
    assert_eq!(review.label("no-such-label").unwrap(), None);
    let applied = review
        .annotation("kubectl.kubernetes.io/last-applied-configuration")
        .unwrap()
        .unwrap();
    let applied: Value = serde_json::from_str(&applied).unwrap();
    assert_eq!(applied["metadata"]["name"], "orders-api");
    assert_eq!(review.annotation("no/such/annotation").unwrap(), None);
    let [port, missing, scrape] = review
        .annotations(&["prometheus.io/port", "no/such", "prometheus.io/scrape"])
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(port.as_deref(), Some("9090"));
    assert_eq!(missing, None);
    assert_eq!(scrape.as_deref(), Some("true"));
    assert_eq!(
        review.labels(&["team"]).unwrap()[0].as_deref(),
        Some("payments")
    );
    assert!(review.object_has("/metadata/annotations").unwrap());
    assert!(!review.object_has("/metadata/finalizers").unwrap());

    let without = review_from_file(LARGE_POD, |request| {
        request["object"]["metadata"]["annotations"] = Value::Null;
        request["object"]["metadata"]["labels"]["team"] = Value::from(7);
    });
    assert_eq!(without.annotation("prometheus.io/port").unwrap(), None);
    assert_eq!(
        without.annotations(&["prometheus.io/port"]).unwrap(),
        [None]
    );
    assert!(!without.object_has("/metadata/annotations").unwrap());
    let error = without.label("team").unwrap_err().to_string();
    assert!(error.contains("/metadata/labels/team"), "{error}");
    let error = without.labels(&["team"]).unwrap_err().to_string();
    assert!(error.contains("/metadata/labels/team"), "{error}");
}

#[test]
fn a_typed_pod_can_be_changed_and_returned_whole() {
    let review = large_pod();
    let mut pod: Pod = review.object().unwrap();
    pod.metadata
        .labels
        .get_or_insert_default()
        .insert("example.com/seen".into(), "yes".into());
    let verdict = Verdict::allow().with_object(&pod).unwrap();
    let stored = apply(&review, &verdict);
    assert_eq!(stored["metadata"]["labels"]["example.com/seen"], "yes");
    assert_eq!(stored["metadata"]["labels"]["team"], "payments");
}
