//! Pipelines through the real binary: patch composition, a denial in the
//! middle, failures under both policies, a validating pipeline reporting
//! every denial, name clashes, and live edits of `pipelines.toml`.

use std::time::Duration;

use serde_json::{Value, json};
use wicket_tests::{PluginDir, Wicket, apply, eventually, fixture, misbehave, with_object};

const POD: &str = "v1-pod-create-plain.json";
const LABEL: &str = "wicket.dev/touched";
const LIMIT: Duration = Duration::from_secs(20);

const PIPELINES: &str = r#"
[pipelines.label-then-edit]
mode = "mutating"
plugins = ["add-label", "edit-label"]

[pipelines.deny-in-the-middle]
mode = "mutating"
plugins = ["add-label", "deny-a", "edit-label"]

[pipelines.fail-closed]
mode = "mutating"
plugins = ["add-label", "trap-fail"]

[pipelines.fail-open]
mode = "mutating"
plugins = ["trap-ignore", "add-label", "allow"]

[pipelines.all-checks]
mode = "validating"
plugins = ["deny-a", "allow", "deny-b", "counter"]

[pipelines.add-label]
mode = "mutating"
plugins = ["edit-label"]

[pipelines.dangling]
mode = "validating"
plugins = ["no-such-plugin"]
"#;

fn manifest(mode: &str, policy: &str, behave: &str, message: &str) -> String {
    format!(
        "mode = \"{mode}\"\nfailure-policy = \"{policy}\"\n[settings]\nbehave = \"{behave}\"\nmessage = \"{message}\"\n"
    )
}

fn start() -> (Wicket, std::path::PathBuf) {
    let wasm = misbehave();
    let plugins = [
        ("add-label", manifest("mutating", "fail", "add-label", "")),
        (
            "edit-label",
            manifest("mutating", "fail", "edit-label", "edited"),
        ),
        (
            "deny-a",
            manifest("validating", "fail", "deny", "no from a"),
        ),
        (
            "deny-b",
            manifest("validating", "fail", "deny", "no from b"),
        ),
        ("allow", manifest("validating", "fail", "allow", "")),
        ("counter", manifest("validating", "fail", "counter", "")),
        ("trap-fail", manifest("mutating", "fail", "trap", "")),
        ("trap-ignore", manifest("mutating", "ignore", "trap", "")),
    ]
    .into_iter()
    .fold(PluginDir::new(), |dir, (name, manifest)| {
        dir.plugin(name, &wasm, Some(&manifest))
    })
    .write("pipelines.toml", PIPELINES.as_bytes());
    let dir = plugins.path().to_owned();
    (Wicket::start(plugins).unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mutating_pipeline_composes_patches_into_one() {
    let (wicket, _dir) = start();
    let client = wicket.client();
    let request = fixture(POD);

    let merged = client
        .review("/mutate/label-then-edit", &request)
        .await
        .unwrap();
    assert_eq!(merged.response["allowed"], true, "{}", merged.response);
    let merged = apply(&request, &merged.patch.expect("one merged patch"));
    assert_eq!(
        merged["metadata"]["labels"][LABEL], "edited",
        "the second step saw the first's label"
    );

    // The same two plugins, one after the other, as separate webhooks.
    let first = client.review("/mutate/add-label", &request).await.unwrap();
    let after_first = apply(&request, &first.patch.unwrap());
    let second_request = with_object(&request, &after_first);
    let second = client
        .review("/mutate/edit-label", &second_request)
        .await
        .unwrap();
    let after_second = apply(&second_request, &second.patch.unwrap());
    assert_eq!(
        merged, after_second,
        "the merged patch equals applying each step"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn denials_and_failures_follow_each_plugins_policy() {
    let (wicket, _dir) = start();
    let client = wicket.client();
    let request = fixture(POD);

    let denied = client
        .review("/mutate/deny-in-the-middle", &request)
        .await
        .unwrap();
    assert_eq!(denied.response["allowed"], false, "{}", denied.response);
    assert_eq!(denied.response["status"]["code"], 403);
    assert_eq!(denied.response["status"]["message"], "deny-a: no from a");

    let closed = client
        .review("/mutate/fail-closed", &request)
        .await
        .unwrap();
    assert_eq!(closed.response["allowed"], false, "{}", closed.response);
    assert_eq!(closed.response["status"]["code"], 500);
    let message = closed.response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("plugin trap-fail failed: it crashed"),
        "{message}"
    );

    let open = client.review("/mutate/fail-open", &request).await.unwrap();
    assert_eq!(open.response["allowed"], true, "{}", open.response);
    let patched = apply(&request, &open.patch.expect("the later steps still patch"));
    assert_eq!(patched["metadata"]["labels"][LABEL], "true");
    let warnings = open.response["warnings"].to_string();
    assert!(warnings.contains("plugin trap-ignore failed"), "{warnings}");
    let audit = &open.response["auditAnnotations"];
    assert!(audit["trap-ignore.plugin-failure"].is_string(), "{audit}");
    assert_eq!(
        audit["allow.operation"], "CREATE",
        "keys are prefixed by plugin: {audit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validating_pipeline_reports_every_denial() {
    let (wicket, _dir) = start();
    let client = wicket.client();
    let reviewed = client
        .review("/validate/all-checks", &fixture(POD))
        .await
        .unwrap();
    let response = reviewed.response;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "deny-a: no from a; deny-b: no from b"
    );
    assert_eq!(
        response["status"]["details"]["causes"],
        json!([{"message": "deny-a: no from a"}, {"message": "deny-b: no from b"}])
    );
    assert_eq!(response["warnings"], json!(["seen=1"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn clashes_and_dangling_names_are_reported_and_edits_are_followed() {
    let (wicket, dir) = start();
    let client = wicket.client();
    let view = wicket.plugins().await;
    let pipeline = |name: &str| -> Value {
        view["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pipeline| pipeline["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(pipeline("add-label")["served"], false);
    assert!(
        pipeline("add-label")["error"]
            .as_str()
            .unwrap()
            .contains("a plugin is also named")
    );
    assert!(
        pipeline("dangling")["error"]
            .as_str()
            .unwrap()
            .contains("\"no-such-plugin\" is not served")
    );
    assert_eq!(
        pipeline("label-then-edit")["paths"],
        json!(["/mutate/label-then-edit"])
    );

    // The plugin keeps its path; the clashing pipeline took nothing.
    let plugin = client
        .review("/mutate/add-label", &fixture(POD))
        .await
        .unwrap();
    let patched = apply(&fixture(POD), &plugin.patch.unwrap());
    assert_eq!(patched["metadata"]["labels"][LABEL], "true");
    let dangling = client
        .post("/validate/dangling", fixture(POD))
        .await
        .unwrap();
    assert_eq!(dangling.status, 404);
    assert!(
        dangling.json()["error"]
            .as_str()
            .unwrap()
            .contains("\"dangling\" is not loaded")
    );
    let ready = wicket.ops_client().get("/readyz").await.unwrap().json();
    let reason = ready["notLoaded"]["dangling"].as_str().unwrap_or_default();
    assert!(reason.starts_with("pipeline"), "{reason}");

    // A bad edit keeps the pipelines that were served.
    std::fs::write(dir.join("pipelines.toml"), "[pipelines.broken\n").unwrap();
    eventually("the bad pipelines.toml to be reported", LIMIT, async || {
        let view = wicket.plugins().await;
        view["pipelinesError"].is_string().then_some(())
    })
    .await;
    let still = client
        .review("/mutate/label-then-edit", &fixture(POD))
        .await
        .unwrap();
    assert!(still.patch.is_some());

    // A good edit replaces them.
    std::fs::write(
        dir.join("pipelines.toml"),
        "[pipelines.late]\nmode = \"validating\"\nplugins = [\"deny-b\"]\n",
    )
    .unwrap();
    eventually("the new pipeline to be served", LIMIT, async || {
        let answer = client.post("/validate/late", fixture(POD)).await.ok()?;
        (answer.status == 200).then_some(())
    })
    .await;
    let gone = client
        .post("/mutate/label-then-edit", fixture(POD))
        .await
        .unwrap();
    assert_eq!(gone.status, 404);
}
