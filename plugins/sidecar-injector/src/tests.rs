//! The injector's logic, run natively on fixtures captured from a real API
//! server and on variations of them.

use serde_json::{Value, json};
use wicket_sdk::testing::{self, apply, with_object};
use wicket_sdk::{Plugin, Review, Verdict};

use crate::SidecarInjector;
use crate::settings::Settings;

const PREFIX: &str = "sidecar-injector-webhook.morven.me";

/// The captured fixture `name`, with `edit` applied to its object first.
fn review_of(name: &str, edit: impl FnOnce(&mut Value)) -> Review<'static> {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    testing::review_from_file(path, |request| edit(&mut request["object"]))
}

fn settings_json() -> Value {
    json!({
        "prefix": PREFIX,
        "default-sidecars": ["proxy"],
        "sidecars": {
            "proxy": {
                "containers": [{
                    "name": "envoy",
                    "image": "envoyproxy/envoy:v1.31.0",
                    "ports": [{"containerPort": 10000}],
                    "env": [{"name": "UPSTREAM", "value": "overridden"}],
                }],
                "init-containers": [{"name": "proxy-init", "image": "example.com/proxy-init:1"}],
                "volumes": [{"name": "envoy-config", "configMap": {"name": "envoy"}}],
                "image-pull-secrets": ["registry-creds", "proxy-registry"],
                "annotation-env": [
                    {"name": "UPSTREAM", "annotation": "proxy.example.com/upstream", "default": "127.0.0.1:8080"},
                ],
                "field-env": {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"},
            },
            "agent": {
                "init-containers": [{
                    "name": "xxl-agent",
                    "image": "example.com/xxl-agent:2",
                    "restartPolicy": "Always",
                }],
                "annotation-env": [
                    {"name": "JOB_ADDR", "annotation": "xxl-agent/job-addr", "required": true},
                    {"name": "JOB_NAME", "annotation": "xxl-agent/job-name", "required": true},
                ],
            },
        },
    })
}

fn settings() -> Settings {
    testing::settings(&SidecarInjector, &settings_json()).unwrap()
}

/// The code and message of the denial `review` gets.
fn denial(review: &Review) -> (u16, String) {
    let verdict = run(review);
    let (code, message) = verdict.denial().expect("a denial");
    (code, message.to_owned())
}

fn run(review: &Review) -> Verdict {
    SidecarInjector.review(review, &settings()).unwrap()
}

fn annotate(object: &mut Value, key: &str, value: &str) {
    object["metadata"]["annotations"][key] = json!(value);
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

/// Injects into `review`, checks the result is stable under reinvocation and
/// returns the injected pod.
fn injected(review: &Review) -> Value {
    let verdict = run(review);
    assert_eq!(verdict.denial(), None);
    assert!(verdict.patch_json().is_some(), "expected an injection");
    let pod = apply(review, &verdict);
    let again = run(&with_object(review, &pod));
    assert_eq!(
        again.patch_json(),
        None,
        "a second pass must change nothing"
    );
    pod
}

#[test]
fn large_pod_gets_the_default_sidecar_merged_into_its_lists() {
    let review = review_of("v1-pod-create-large-orders-api.json", |_| {});
    let pod = injected(&review);
    let spec = &pod["spec"];
    assert_eq!(
        names(&spec["containers"]),
        ["orders-api", "log-shipper", "envoy"]
    );
    assert_eq!(names(&spec["initContainers"]), ["proxy-init", "migrate"]);
    assert_eq!(
        names(&spec["volumes"]),
        ["config", "tmp", "kube-api-access-7qmpx", "envoy-config"]
    );
    assert_eq!(
        names(&spec["imagePullSecrets"]),
        ["registry-creds", "proxy-registry"]
    );
    let envoy = &spec["containers"][2];
    assert_eq!(
        envoy["env"],
        json!([
            {"name": "UPSTREAM", "value": "127.0.0.1:8080"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ])
    );
    let status: Value = serde_json::from_str(
        pod["metadata"]["annotations"][format!("{PREFIX}/status")]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        status,
        json!({
            "sidecars": ["proxy"],
            "containers": ["envoy"],
            "initContainers": ["proxy-init"],
            "volumes": ["envoy-config"],
            "imagePullSecrets": ["proxy-registry"],
        })
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"], "9090",
        "existing annotations stay"
    );
}

#[test]
fn bare_pod_gets_every_missing_list_and_map_created() {
    let review = review_of("v1-pod-create-plain.json", |pod| {
        let metadata = pod["metadata"].as_object_mut().unwrap();
        metadata.remove("annotations");
        metadata.insert("labels".into(), json!({format!("{PREFIX}/inject"): "true"}));
        let spec = pod["spec"].as_object_mut().unwrap();
        spec.remove("volumes");
        assert!(!spec.contains_key("initContainers") && !spec.contains_key("imagePullSecrets"));
    });
    let pod = injected(&review);
    assert_eq!(names(&pod["spec"]["initContainers"]), ["proxy-init"]);
    assert_eq!(names(&pod["spec"]["volumes"]), ["envoy-config"]);
    assert_eq!(
        names(&pod["spec"]["imagePullSecrets"]),
        ["registry-creds", "proxy-registry"]
    );
    let annotations = pod["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(annotations.len(), 1);
    assert!(annotations.contains_key(&format!("{PREFIX}/status")));
}

#[test]
fn native_sidecar_takes_env_from_the_pod_annotations() {
    let review = review_of("v1-pod-create-agent-annotations.json", |pod| {
        annotate(pod, &format!("{PREFIX}/inject"), "true");
        annotate(pod, &format!("{PREFIX}/sidecars"), "agent");
    });
    let pod = injected(&review);
    let agent = &pod["spec"]["initContainers"][0];
    assert_eq!(agent["restartPolicy"], "Always");
    assert_eq!(
        agent["env"],
        json!([
            {"name": "JOB_ADDR", "value": "http://xxl-job-admin.jobs:8080/xxl-job-admin"},
            {"name": "JOB_NAME", "value": "billing-nightly"},
        ])
    );
    assert_eq!(names(&pod["spec"]["containers"]), ["worker"]);
}

#[test]
fn missing_required_annotations_are_named_in_the_denial() {
    let review = review_of("v1-pod-create-agent-annotations.json", |pod| {
        annotate(pod, &format!("{PREFIX}/inject"), "true");
        annotate(pod, &format!("{PREFIX}/sidecars"), "agent");
        let annotations = pod["metadata"]["annotations"].as_object_mut().unwrap();
        annotations.remove("xxl-agent/job-addr");
        annotations.remove("xxl-agent/job-name");
    });
    let (code, message) = denial(&review);
    assert_eq!(code, 400);
    assert!(
        message.contains("xxl-agent/job-addr (for sidecar agent)"),
        "{message}"
    );
    assert!(message.contains("xxl-agent/job-name"), "{message}");
    assert!(message.starts_with("pod billing-worker: "), "{message}");
}

#[test]
fn sidecar_port_equal_to_an_app_port_is_refused() {
    let review = review_of("v1-pod-create-backend-port-10000.json", |_| {});
    let verdict = run(&review);
    let (code, message) = verdict.denial().unwrap();
    assert_eq!(code, 409);
    assert!(
        message.contains(r#"sidecar container "envoy" listens on 10000/TCP, which container "backend" also declares"#),
        "{message}"
    );
    assert_eq!(verdict.patch_json(), None);
}

#[test]
fn container_name_already_used_is_refused() {
    let review = review_of("v1-pod-create-large-orders-api.json", |pod| {
        pod["spec"]["initContainers"][0]["name"] = json!("proxy-init");
    });
    let (code, message) = denial(&review);
    assert_eq!(code, 409);
    assert!(
        message.contains(r#"container name "proxy-init" is already used"#),
        "{message}"
    );
}

#[test]
fn volume_with_the_same_name_is_shared_only_when_identical() {
    let same = review_of("v1-pod-create-large-orders-api.json", |pod| {
        pod["spec"]["volumes"][0] = json!({"name": "envoy-config", "configMap": {"name": "envoy"}});
    });
    let pod = injected(&same);
    let volumes = names(&pod["spec"]["volumes"]);
    assert_eq!(
        volumes
            .iter()
            .filter(|name| **name == "envoy-config")
            .count(),
        1
    );

    // The API server's copy carries defaultMode; it is still the same volume.
    let defaulted = review_of("v1-pod-create-large-orders-api.json", |pod| {
        pod["spec"]["volumes"][0] =
            json!({"name": "envoy-config", "configMap": {"name": "envoy", "defaultMode": 420}});
    });
    assert_eq!(
        names(&injected(&defaulted)["spec"]["volumes"]).len(),
        names(&pod["spec"]["volumes"]).len()
    );

    let other_mode = review_of("v1-pod-create-large-orders-api.json", |pod| {
        pod["spec"]["volumes"][0] =
            json!({"name": "envoy-config", "configMap": {"name": "envoy", "defaultMode": 256}});
    });
    assert_eq!(denial(&other_mode).0, 409);

    let different = review_of("v1-pod-create-large-orders-api.json", |pod| {
        pod["spec"]["volumes"][0] = json!({"name": "envoy-config", "emptyDir": {}});
    });
    let (code, message) = denial(&different);
    assert_eq!(code, 409);
    assert!(
        message.contains(r#"volume "envoy-config" already exists with another source"#),
        "{message}"
    );
}

#[test]
fn label_wins_over_annotation_and_silence_means_no() {
    let opted_out = review_of("v1-pod-create-large-orders-api.json", |pod| {
        pod["metadata"]["labels"][format!("{PREFIX}/inject")] = json!("false");
    });
    assert_eq!(run(&opted_out).patch_json(), None);
    let silent = review_of("v1-pod-create-plain.json", |_| {});
    let verdict = run(&silent);
    assert_eq!((verdict.denial(), verdict.patch_json()), (None, None));
}

#[test]
fn an_unreadable_opt_in_value_is_refused_not_ignored() {
    let review = review_of("v1-pod-create-plain.json", |pod| {
        annotate(pod, &format!("{PREFIX}/inject"), "ture");
    });
    let (code, message) = denial(&review);
    assert_eq!(code, 400);
    assert!(
        message.contains(r#"must be "true" or "false""#),
        "{message}"
    );
}

#[test]
fn unknown_sidecar_name_is_refused_with_the_known_ones() {
    let review = review_of("v1-pod-create-plain.json", |pod| {
        annotate(pod, &format!("{PREFIX}/inject"), "true");
        annotate(pod, &format!("{PREFIX}/sidecars"), "proxy, istio");
    });
    let (code, message) = denial(&review);
    assert_eq!(code, 400);
    assert!(
        message.contains(r#"unknown sidecar "istio"; known: agent, proxy"#),
        "{message}"
    );
}

#[test]
fn host_network_pods_are_skipped_unless_allowed() {
    let review = review_of("v1-pod-create-hostnetwork.json", |_| {});
    let verdict = run(&review);
    assert_eq!(verdict.patch_json(), None);
    assert!(
        verdict.warnings()[0].contains("hostNetwork"),
        "{:?}",
        verdict.warnings()
    );

    let mut allowing = settings_json();
    allowing["inject-host-network"] = json!(true);
    let allowing = testing::settings(&SidecarInjector, &allowing).unwrap();
    let verdict = SidecarInjector.review(&review, &allowing).unwrap();
    let pod = apply(&review, &verdict);
    assert_eq!(names(&pod["spec"]["containers"]), ["exporter", "envoy"]);
}

#[test]
fn other_requests_pass_untouched() {
    let update = review_of("v1-pod-update-label.json", |_| {});
    let verdict = run(&update);
    assert_eq!((verdict.denial(), verdict.patch_json()), (None, None));
}

#[test]
fn settings_are_checked_at_load() {
    let refused = |edit: fn(&mut Value)| {
        let mut settings = settings_json();
        edit(&mut settings);
        testing::settings(&SidecarInjector, &settings).unwrap_err()
    };
    assert!(
        refused(|s| s["default-sidecars"] = json!(["nope"]))
            .contains("\"nope\", which is not defined")
    );
    assert!(
        refused(|s| s["sidecars"]["proxy"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("image")
            .map(drop)
            .unwrap_or_default())
        .contains("needs a string \"image\"")
    );
    assert!(
        refused(|s| s["sidecars"]["agent"]["annotation-env"][0]["default"] = json!("x"))
            .contains("cannot have a default")
    );
    assert!(refused(|s| s["sidecar"] = json!({})).contains("unknown field `sidecar`"));
    assert!(refused(|s| s["sidecars"] = json!({})).contains("at least one sidecar"));
}
