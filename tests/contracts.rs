//! The plugin contracts side by side, through the real binary: a 0.1
//! component (the misbehave test plugin, written against `wit/0.1` without
//! the SDK) and 0.2 components (built with the SDK) served by one Wicket and
//! merged in one pipeline. And the ways a review ends, kept apart: a 0.2
//! plugin's own error, returned as a value, is a plugin failure under its
//! policy, never a denial; the host's own failure is an HTTP error, never
//! passed through a plugin's `ignore` policy into an admission.

use serde_json::{Value, json};
use wicket_tests::raw::PATIENCE;
use wicket_tests::{PluginDir, Wicket, apply, edited_fixture, eventually, fixture_with_uid};

const INJECT: &str = "sidecar.wicket.dev/inject";
const LABEL: &str = "wicket.dev/touched";

fn opted_in_pod() -> Vec<u8> {
    edited_fixture("v1-pod-create-plain.json", |request| {
        request["object"]["metadata"]["annotations"] = json!({ INJECT: "true" });
    })
}

fn contract<'a>(plugins: &'a Value, name: &str) -> &'a Value {
    let plugin = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plugin| plugin["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {plugins}"));
    &plugin["contract"]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_1_and_a_0_2_plugin_serve_side_by_side_and_in_one_pipeline() {
    let plugins = PluginDir::new()
        .misbehave("add-label", "mutating", "fail", "add-label", "")
        .bundled("sidecar-injector", "wicket-sidecar-injector")
        .write(
            "pipelines.toml",
            b"[pipelines.label-then-inject]\nmode = \"mutating\"\nplugins = [\"add-label\", \"sidecar-injector\"]\n",
        );
    let wicket = Wicket::start(plugins).unwrap();
    let listed = wicket.plugins().await;
    assert_eq!(contract(&listed, "add-label"), "0.1", "{listed}");
    assert_eq!(contract(&listed, "sidecar-injector"), "0.2", "{listed}");

    let pod = opted_in_pod();
    let client = wicket.client();
    for path in ["/mutate/add-label", "/mutate/sidecar-injector"] {
        let alone = client.review(path, &pod).await.unwrap();
        assert_eq!(
            alone.response["allowed"], true,
            "{path}: {}",
            alone.response
        );
        assert!(alone.patch.is_some(), "{path} patches on its own");
    }
    let reviewed = client
        .review("/mutate/label-then-inject", &pod)
        .await
        .unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    let object = apply(&pod, &reviewed.patch.expect("one merged patch"));
    assert!(object["metadata"]["labels"][LABEL].is_string(), "{object}");
    let containers: Vec<&str> = object["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|container| container["name"].as_str().unwrap())
        .collect();
    assert!(containers.len() > 1, "sidecars injected: {containers:?}");
    assert!(
        object["metadata"]["annotations"]["sidecar.wicket.dev/status"].is_string(),
        "{object}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_error_is_a_failure_under_its_policy_never_a_denial() {
    let manifest = std::fs::read_to_string(
        wicket_tests::workspace_root().join("deploy/plugins/sidecar-injector.toml"),
    )
    .unwrap();
    let ignoring = manifest.replacen(
        "failure-policy = \"fail\"",
        "failure-policy = \"ignore\"",
        1,
    );
    assert_ne!(ignoring, manifest, "the manifest sets its failure policy");
    let injector = wicket_tests::test_plugin("wicket-sidecar-injector");
    let plugins = PluginDir::new()
        .plugin(
            "inject-fail",
            &injector,
            Some(&manifest.replace("sidecar-injector", "inject-fail")),
        )
        .plugin(
            "inject-ignore",
            &injector,
            Some(&ignoring.replace("sidecar-injector", "inject-ignore")),
        );
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    // The SDK cannot read `spec.containers` as a list: the plugin's `Err`.
    let unreadable = edited_fixture("v1-pod-create-plain.json", |request| {
        request["object"]["metadata"]["annotations"] = json!({ INJECT: "true" });
        request["object"]["spec"]["containers"] = json!("not a list");
    });

    let closed = client
        .review("/mutate/inject-fail", &unreadable)
        .await
        .unwrap();
    assert_eq!(closed.response["allowed"], false, "{}", closed.response);
    assert_eq!(
        closed.response["status"]["code"], 500,
        "{}",
        closed.response
    );
    let message = closed.response["status"]["message"].as_str().unwrap();
    assert!(message.contains("could not judge the request"), "{message}");
    assert!(
        message.contains("\"not a list\""),
        "the plugin's own error reaches the answer: {message}"
    );

    let open = client
        .review("/mutate/inject-ignore", &unreadable)
        .await
        .unwrap();
    assert_eq!(open.response["allowed"], true, "{}", open.response);
    assert!(open.patch.is_none());
    let warnings = open.response["warnings"].to_string();
    assert!(
        warnings.contains("could not judge the request"),
        "{warnings}"
    );

    let metrics = wicket.metrics().await;
    for (name, result) in [
        ("inject-fail", "failed-closed"),
        ("inject-ignore", "failed-open"),
    ] {
        let failures = [("kind", "plugin"), ("name", name), ("cause", "error")];
        assert_eq!(
            metrics.value("wicket_plugin_failures_total", &failures),
            1.0,
            "{name}"
        );
        let reviews = |result| [("name", name), ("operation", "CREATE"), ("result", result)];
        assert_eq!(
            metrics.value("wicket_reviews_total", &reviews(result)),
            1.0,
            "{name}"
        );
        let denials = metrics.count("wicket_reviews_total", &reviews("denied"));
        assert_eq!(denials, 0.0, "{name}: a failure is not a denial");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_failure_under_an_ignore_plugin_is_never_an_admission() {
    // One instance slot, held by a looping plugin: the `ignore` plugin's
    // review cannot get a slot before its bound. That is the host's lack of
    // capacity, answered 503, not the plugin's failure admitted by `ignore`.
    let plugins = PluginDir::new()
        .misbehave(
            "loop",
            "validating",
            "fail",
            "loop",
            "[limits]\ntimeout-ms = 5000",
        )
        .misbehave(
            "allow-ignore",
            "validating",
            "ignore",
            "allow",
            "[limits]\ntimeout-ms = 100",
        );
    let wicket = Wicket::start_with(plugins, &["--max-instances", "1"]).unwrap();
    let client = wicket.client();
    let pod = "v1-pod-create-plain.json";
    let mut looping = client.post_each("/validate/loop", pod, ["loop-0".to_owned()]);
    eventually("the looping plugin to spin", PATIENCE, async || {
        wicket.log().contains("looping on loop-0").then_some(())
    })
    .await;
    let answer = client
        .post("/validate/allow-ignore", fixture_with_uid(pod, "shed"))
        .await
        .unwrap();
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert!(answer.retry_after.is_some());
    looping.join_next().await.unwrap().unwrap().unwrap();

    let metrics = wicket.metrics().await;
    let reviews = |result| {
        [
            ("name", "allow-ignore"),
            ("operation", "CREATE"),
            ("result", result),
        ]
    };
    assert_eq!(metrics.value("wicket_reviews_total", &reviews("shed")), 1.0);
    for admitted in ["allowed", "failed-open"] {
        let count = metrics.count("wicket_reviews_total", &reviews(admitted));
        assert_eq!(count, 0.0, "counted as {admitted}");
    }
}

/// A component built against contract 0.2.0 as published, before 0.2.1
/// added `cluster`: the host's 0.2.1 definitions satisfy its 0.2.0 imports.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_built_against_0_2_0_still_loads_and_judges() {
    let plugins = PluginDir::new().plugin(
        "frozen",
        &wicket_tests::test_plugin("test-plugin-contract-0-2-0"),
        None,
    );
    let wicket = Wicket::start(plugins).unwrap();
    let listed = wicket.plugins().await;
    assert_eq!(contract(&listed, "frozen"), "0.2", "{listed}");
    let client = wicket.client();
    let plain = wicket_tests::fixture("v1-pod-create-plain.json");
    let admitted = client.review("/validate/frozen", &plain).await.unwrap();
    assert_eq!(admitted.response["allowed"], true, "{}", admitted.response);
    let labelled = edited_fixture("v1-pod-create-plain.json", |request| {
        request["object"]["metadata"]["labels"]["deny"] = json!("yes");
    });
    let refused = client.review("/validate/frozen", &labelled).await.unwrap();
    assert_eq!(
        refused.response["status"]["message"], "frozen: refused by a contract 0.2.0 plugin",
        "{}",
        refused.response
    );
}
