//! The first-party plugins, built from `plugins/` and loaded with their worked
//! example manifests from `deploy/plugins/`, through the real binary: every
//! patch passes the API server's checks and applies, and a second pass over
//! the patched object changes nothing. Their refusals and skips are cases in
//! `plugins/*/cases/`, run by `wicket test` (tests/suite.rs).

use serde_json::{Value, json};
use wicket_tests::{Client, PluginDir, Wicket, apply, edited_fixture, fixture, with_object};

const INJECT: &str = "sidecar.wicket.dev/inject";

fn first_party() -> Wicket {
    let plugins = PluginDir::new()
        .bundled("sidecar-injector", "wicket-sidecar-injector")
        .bundled("configmap-mutator", "wicket-configmap-mutator");
    Wicket::start(plugins).unwrap()
}

/// Sends `request` to `path`, expects it admitted with a patch, checks that
/// the patched object gets no second patch, and returns the patched object.
async fn mutated_once(client: &Client, path: &str, request: &[u8]) -> Value {
    let reviewed = client.review(path, request).await.unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    let patch = reviewed.patch.expect("a patch");
    let object = apply(request, &patch);
    let again = client
        .review(path, &with_object(request, &object))
        .await
        .unwrap();
    assert_eq!(again.response["allowed"], true, "{}", again.response);
    assert!(
        again.patch.is_none(),
        "second pass patched: {}",
        again.response
    );
    object
}

/// The denial's code and message for `request` on `path`.
async fn denied(client: &Client, path: &str, request: &[u8]) -> (u64, String) {
    let reviewed = client.review(path, request).await.unwrap();
    let response = reviewed.response;
    assert_eq!(response["allowed"], false, "{response}");
    let status = &response["status"];
    (
        status["code"].as_u64().unwrap(),
        status["message"].as_str().unwrap().to_owned(),
    )
}

fn opt_in(request: &mut Value) {
    request["object"]["metadata"]["annotations"][INJECT] = json!("true");
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn injector_merges_sidecars_into_real_pods_once() {
    let wicket = first_party();
    let client = wicket.client();
    let path = "/mutate/sidecar-injector";

    let large = edited_fixture("v1-pod-create-large-orders-api.json", opt_in);
    let pod = mutated_once(&client, path, &large).await;
    assert_eq!(
        names(&pod["spec"]["containers"]),
        ["orders-api", "log-shipper", "envoy"]
    );
    assert!(names(&pod["spec"]["volumes"]).contains(&"envoy-config"));
    let envoy = &pod["spec"]["containers"][2];
    assert_eq!(
        envoy["env"][0],
        json!({"name": "ENVOY_UPSTREAM", "value": "127.0.0.1:8080"})
    );

    // No volumes and no initContainers: each list is created.
    let bare = edited_fixture("v1-pod-create-plain.json", |request| {
        let object = &mut request["object"];
        object["spec"].as_object_mut().unwrap().remove("volumes");
        object["metadata"]["annotations"] = json!({
            INJECT: "true",
            "sidecar.wicket.dev/sidecars": "proxy,log-agent",
            "sidecar.wicket.dev/log-target": "loki:3100",
        });
    });
    let pod = mutated_once(&client, path, &bare).await;
    assert_eq!(names(&pod["spec"]["initContainers"]), ["log-agent"]);
    assert_eq!(pod["spec"]["initContainers"][0]["restartPolicy"], "Always");
    assert_eq!(
        pod["spec"]["initContainers"][0]["env"],
        json!([{"name": "LOG_TARGET", "value": "loki:3100"}])
    );
    assert_eq!(names(&pod["spec"]["volumes"]), ["envoy-config", "varlog"]);

    // No annotations at all (opted in by label): the map is created.
    let unannotated = edited_fixture("v1-pod-create-plain.json", |request| {
        let metadata = &mut request["object"]["metadata"];
        metadata.as_object_mut().unwrap().remove("annotations");
        metadata["labels"][INJECT] = json!("true");
    });
    let pod = mutated_once(&client, path, &unannotated).await;
    let annotations = pod["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        ["sidecar.wicket.dev/status"]
    );

    // The label wins over the annotation.
    let opted_out = edited_fixture("v1-pod-create-large-orders-api.json", |request| {
        opt_in(request);
        request["object"]["metadata"]["labels"][INJECT] = json!("false");
    });
    let reviewed = client.review(path, &opted_out).await.unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    assert!(reviewed.patch.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn configmap_mutator_hashes_defaults_and_limits_real_configmaps() {
    let wicket = first_party();
    let client = wicket.client();
    let path = "/mutate/configmap-mutator";
    const HASH: &str = "wicket.dev/content-sha256";

    let created = mutated_once(&client, path, &fixture("v1-configmap-create.json")).await;
    assert_eq!(created["data"]["LOG_FORMAT"], "json");
    assert_eq!(
        created["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "wicket"
    );
    let created_hash = created["metadata"]["annotations"][HASH].clone();
    assert_eq!(created_hash.as_str().unwrap().len(), 64);

    // An update that changes data, carrying the hash from the create.
    let update = edited_fixture("v1-configmap-update.json", |request| {
        request["object"]["metadata"]["annotations"] = json!({HASH: created_hash.clone()});
    });
    let updated = mutated_once(&client, path, &update).await;
    assert_ne!(updated["metadata"]["annotations"][HASH], created_hash);

    let immutable = mutated_once(
        &client,
        path,
        &fixture("v1-configmap-create-immutable.json"),
    )
    .await;
    assert!(immutable["metadata"]["annotations"][HASH].is_string());

    let oversized = edited_fixture("v1-configmap-create.json", |request| {
        request["object"]["data"]["dump.sql"] = json!("x".repeat(1024 * 1024));
    });
    let (code, message) = denied(&client, path, &oversized).await;
    assert_eq!(code, 413);
    assert!(
        message.contains("holds 1.0 MiB of data (1048622 bytes), over the 900.0 KiB limit"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quick_starts_try_it_reviews_are_mutated() {
    let wicket = first_party();
    let client = wicket.client();
    let try_it = |plugin: &str| {
        std::fs::read(wicket_tests::workspace_root().join(format!("deploy/try/{plugin}.json")))
            .unwrap()
    };
    let pod = mutated_once(
        &client,
        "/mutate/sidecar-injector",
        &try_it("sidecar-injector"),
    )
    .await;
    assert!(names(&pod["spec"]["containers"]).contains(&"envoy"));
    let configmap = mutated_once(
        &client,
        "/mutate/configmap-mutator",
        &try_it("configmap-mutator"),
    )
    .await;
    assert!(configmap["metadata"]["annotations"].is_object());
}
