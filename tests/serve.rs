//! The admission protocol through the real binary over real HTTPS: captured
//! fixtures, request fields, bad input, load-time refusals, health.

use std::time::Duration;

use serde_json::{Value, json};
use wicket_tests::pki::TestCa;
use wicket_tests::raw::PATIENCE;
use wicket_tests::{
    Client, PluginDir, Wicket, apply, eventually, fixture, fixture_names, misbehave,
    slow_to_compile, test_plugin,
};

const LABEL: &str = "wicket.dev/touched";

#[derive(serde::Deserialize)]
struct RawObject<'a> {
    #[serde(borrow)]
    request: RawRequest<'a>,
}

#[derive(serde::Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow)]
    object: &'a serde_json::value::RawValue,
}

fn protocol_plugins() -> PluginDir {
    PluginDir::new()
        .misbehave("add-label", "mutating", "fail", "add-label", "")
        .misbehave(
            "add-label-object",
            "mutating",
            "fail",
            "add-label-object",
            "",
        )
        .misbehave("allow", "validating", "fail", "allow", "")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_gets_an_answer_the_api_server_accepts() {
    let wicket = Wicket::start(protocol_plugins()).unwrap();
    let client = wicket.client();
    for name in fixture_names() {
        let request = fixture(&name);
        let review: Value = serde_json::from_slice(&request).unwrap();
        let has_object = !review["request"]["object"].is_null();

        // The API server appends ?timeout=10s; it must make no difference.
        for path in ["/mutate/add-label?timeout=10s", "/mutate/add-label-object"] {
            let reviewed = client
                .review(path, &request)
                .await
                .unwrap_or_else(|err| panic!("{name}: {err:#}"));
            assert_eq!(reviewed.response["allowed"], true, "{name}");
            match reviewed.patch {
                Some(patch) => {
                    assert!(has_object, "{name}: a patch without an object");
                    let patched = apply(&request, &patch);
                    assert_eq!(
                        patched["metadata"]["labels"][LABEL], "true",
                        "{name} on {path}"
                    );
                }
                None => assert!(!has_object, "{name} on {path}: expected a patch"),
            }
        }

        let reviewed = client
            .review("/validate/allow", &request)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err:#}"));
        assert!(reviewed.patch.is_none());
        assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_without_labels_gets_the_labels_map_added_whole() {
    let wicket = Wicket::start(protocol_plugins()).unwrap();
    let mut review: Value = serde_json::from_slice(&fixture("v1-pod-create-plain.json")).unwrap();
    review["request"]["object"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    let request = serde_json::to_vec(&review).unwrap();
    for path in ["/mutate/add-label", "/mutate/add-label-object"] {
        let reviewed = wicket.client().review(path, &request).await.unwrap();
        let patch = reviewed.patch.expect("a patch");
        assert_eq!(
            apply(&request, &patch)["metadata"]["labels"],
            json!({LABEL: "true"})
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_receives_the_request_fields() {
    let wicket = Wicket::start(protocol_plugins()).unwrap();
    let client = wicket.client();
    let seen = async |name: &str| {
        let answer = client.post("/validate/allow", fixture(name)).await.unwrap();
        answer.json()["response"]["auditAnnotations"].clone()
    };

    let create = seen("v1-pod-create-plain.json").await;
    assert_eq!(create["operation"], "CREATE");
    assert_eq!(create["kind"], "Pod");
    assert_eq!(create["resource"], "pods");
    assert_eq!(create["target"], "fx/web");
    assert_eq!(create["user"], "admin");
    assert_eq!(create["groups"], "system:masters,system:authenticated");
    assert_eq!(create["dry-run"], "false");
    assert_eq!(create["old-object-bytes"], "none");
    // The object reaches the plugin as the exact bytes it arrived as (the
    // fixture is indented, so a re-serialised object would be shorter).
    let body = fixture("v1-pod-create-plain.json");
    let raw: RawObject = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        create["object-bytes"],
        raw.request.object.get().len().to_string()
    );
    let review: Value = serde_json::from_slice(&body).unwrap();
    assert_ne!(
        serde_json::to_string(&review["request"]["object"])
            .unwrap()
            .len(),
        raw.request.object.get().len()
    );

    let delete = seen("v1-pod-delete-etcd-1.json").await;
    assert_eq!(delete["operation"], "DELETE");
    assert_eq!(delete["object-bytes"], "none");
    assert_ne!(delete["old-object-bytes"], "none");

    let eviction = seen("v1-pod-eviction-etcd-0.json").await;
    assert_eq!(eviction["sub-resource"], "eviction");
    assert_eq!(eviction["kind"], "Eviction");

    let dry_run = seen("v1-pod-create-dryrun.json").await;
    assert_eq!(dry_run["dry-run"], "true");

    // The plugin's log import lands in Wicket's log, tagged.
    let uid = review["request"]["uid"].as_str().unwrap();
    let log = wicket.log();
    assert!(
        log.lines()
            .any(|line| line.contains(&format!("allowing {uid}")) && line.contains("plugin=allow ")),
        "{log}"
    );
    // One review line per request, with its verdict.
    assert!(log.lines().any(|line| line.contains("review")
        && line.contains(uid)
        && line.contains("verdict=allowed")));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_and_the_server_keeps_serving() {
    let wicket = Wicket::start_with(protocol_plugins(), &["--max-body-bytes", "100000"]).unwrap();
    let client = wicket.client();
    let good = fixture("v1-pod-create-plain.json");
    let mut no_uid: Value = serde_json::from_slice(&good).unwrap();
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let mut bad_operation: Value = serde_json::from_slice(&good).unwrap();
    bad_operation["request"]["operation"] = "EXPLODE".into();
    let mut string_object: Value = serde_json::from_slice(&good).unwrap();
    string_object["request"]["object"] = "a pod, honestly".into();

    let not_a_review = br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec();
    let v2 = br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{}}"#;
    let no_request = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
    let json = |value: &Value| serde_json::to_vec(value).unwrap();
    const ADD: &str = "/mutate/add-label";
    // Path, body, the status expected and what its error says.
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (ADD, b"{not json".to_vec(), 400, "not a JSON AdmissionReview"),
        (ADD, Vec::new(), 400, "not a JSON AdmissionReview"),
        (ADD, not_a_review, 400, "kind must be \"AdmissionReview\""),
        (ADD, v2.to_vec(), 400, "apiVersion must be"),
        (ADD, no_request.to_vec(), 400, "no request"),
        (ADD, json(&no_uid), 400, "missing field `uid`"),
        (ADD, json(&bad_operation), 400, "EXPLODE"),
        (ADD, json(&string_object), 400, "request.object must be a JSON object"),
        (ADD, vec![b' '; 200_000], 413, "larger than the limit of 100000 bytes"),
        ("/mutate/nope", good.clone(), 404, "no plugin named \"nope\""),
        ("/validate/add-label", good.clone(), 404, "served at /mutate/add-label"),
        ("/mutate/allow", good.clone(), 404, "served at /validate/allow"),
        ("/elsewhere", good.clone(), 404, "no such route"),
    ];
    let refusals = cases.len();
    for (path, body, status, message) in cases {
        let answer = client.post(path, body).await.unwrap();
        assert_eq!(answer.status, status, "{path}: {:?}", answer.body);
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(message), "{path}: {error}");
    }
    // Every refused request left one log line, with its status and error.
    let log = wicket.log();
    let logged: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("request refused"))
        .collect();
    assert_eq!(logged.len(), refusals, "{log}");
    assert!(
        logged
            .iter()
            .any(|line| line.contains("status=413") && line.contains("larger than the limit"))
    );

    let unknown = client
        .post("/mutate/nope", good.clone())
        .await
        .unwrap()
        .json();
    let served: Vec<&str> = unknown["served"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        served,
        [
            "/mutate/add-label",
            "/mutate/add-label-object",
            "/validate/allow"
        ]
    );

    assert_eq!(client.get("/mutate/add-label").await.unwrap().status, 405);

    client.review("/mutate/add-label", &good).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_that_cannot_load_are_refused_with_their_reason() {
    let plugins = PluginDir::new()
        .misbehave("good", "validating", "fail", "allow", "")
        .misbehave(
            "bad-settings",
            "validating",
            "fail",
            "no-such-behaviour",
            "",
        )
        .plugin("wrong-world", &test_plugin("test-plugin-wrong-world"), None)
        .write("not-wasm.wasm", b"this is not wasm")
        .plugin("bad-manifest", &misbehave(), Some("mode = \"sideways\""))
        .plugin(
            "big-limits",
            &misbehave(),
            Some("[limits]\ntimeout-ms = 60000"),
        )
        .plugin("Bad_Name", &misbehave(), None)
        .write("orphan.toml", b"mode = \"mutating\"");
    let wicket = Wicket::start(plugins).unwrap();
    let expected = [
        (
            "bad-settings",
            "settings refused by the plugin: misbehave settings: unknown variant `no-such-behaviour`",
        ),
        (
            "wrong-world",
            "does not export the wicket:admission/plugin interface",
        ),
        ("not-wasm", "not a valid WebAssembly component"),
        ("bad-manifest", "invalid manifest"),
        ("big-limits", "limits.timeout-ms must be between 1 and 9000"),
        ("Bad_Name", "not a valid plugin name"),
        ("orphan", "manifest has no orphan.wasm beside it"),
    ];
    let client = wicket.client();
    let ready = wicket.ops_client().get("/readyz").await.unwrap().json();
    assert_eq!(ready["plugins"], json!(["/validate/good"]));
    for (name, reason) in expected {
        let shown = ready["notLoaded"][name].as_str().unwrap_or_default();
        assert!(shown.contains(reason), "{name}: {shown}");
        assert!(
            wicket
                .banner
                .iter()
                .any(|line| line.starts_with(&format!("not loaded: {name}: "))),
            "{:?}",
            wicket.banner
        );
    }
    let answer = client
        .post(
            "/validate/bad-settings",
            fixture("v1-pod-create-plain.json"),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 404);
    let refusal = answer.json();
    let error = refusal["error"].as_str().unwrap();
    assert!(error.contains("\"bad-settings\" is not loaded"), "{error}");
    // The webhook port tells no one why: reasons name files and settings.
    assert!(!error.contains("settings refused"), "{error}");
    assert_eq!(refusal["served"], json!(["/validate/good"]));
    assert!(refusal.get("notLoaded").is_none(), "{refusal}");

    let answer = client
        .post("/validate/good", fixture("v1-pod-create-plain.json"))
        .await
        .unwrap();
    assert_eq!(answer.json()["response"]["allowed"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness() {
    let wicket = Wicket::start(protocol_plugins()).unwrap();
    let client = wicket.client();
    let health = client.get("/healthz").await.unwrap();
    assert_eq!((health.status, &health.body[..]), (200, &b"ok"[..]));
    let ready = client.get("/readyz").await.unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), json!({"ready": true}));
    // Introspection is on the ops listener only.
    assert_eq!(client.get("/plugins").await.unwrap().status, 404);
    let ops = wicket.ops_client();
    let health = ops.get("/healthz").await.unwrap();
    assert_eq!((health.status, &health.body[..]), (200, &b"ok"[..]));
    let ready = ops.get("/readyz").await.unwrap().json();
    assert_eq!(ready["ready"], true);
    assert!(
        ready["plugins"]
            .as_array()
            .is_some_and(|paths| !paths.is_empty())
    );
    let plugins = ops.get("/plugins").await.unwrap();
    assert_eq!(plugins.status, 200);
    assert!(plugins.json()["plugins"].is_array());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_has_no_environment_and_no_files() {
    let plugins = PluginDir::new().misbehave("probe", "validating", "fail", "probe", "");
    let wicket = Wicket::start(plugins).unwrap();
    let answer = wicket
        .client()
        .post("/validate/probe", fixture("v1-pod-create-plain.json"))
        .await
        .unwrap();
    let seen = &answer.json()["response"]["auditAnnotations"];
    assert_eq!(seen["env-vars"], "0");
    assert_eq!(seen["root-dir"], "denied");
    assert_eq!(seen["cwd-file"], "denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_template_plugin_works_as_documented() {
    let plugins = PluginDir::new().plugin(
        "require-owner",
        &test_plugin("wicket-plugin-template"),
        None,
    );
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    let request = fixture("v1-pod-create-plain.json");
    let response = client
        .review("/validate/require-owner", &request)
        .await
        .unwrap()
        .response;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "require-owner: pods need an 'owner' label; add metadata.labels.owner"
    );

    let mut owned: Value = serde_json::from_slice(&request).unwrap();
    owned["request"]["object"]["metadata"]["labels"]["owner"] = "team-a".into();
    let owned = serde_json::to_vec(&owned).unwrap();
    let reviewed = client
        .review("/validate/require-owner", &owned)
        .await
        .unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_with_a_certificate_and_key_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let pair = ca.issue();
    let (cert, key, ca_file) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, pair.cert).unwrap();
    std::fs::write(&key, pair.key).unwrap();
    ca.write(&ca_file);

    let wicket = Wicket::start_with_tls_files(protocol_plugins(), &cert, &key, &ca_file).unwrap();
    let request = fixture("v1-pod-create-plain.json");
    let reviewed = wicket
        .client()
        .review("/validate/allow", &request)
        .await
        .unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
}

#[tokio::test(flavor = "multi_thread")]
async fn reviews_are_served_over_http2_too() {
    let wicket = Wicket::start(protocol_plugins()).unwrap();
    let client = Client::http2(&wicket.ca_file, &wicket.base_url);
    let request = fixture("v1-pod-create-large-orders-api.json");
    let reviewed = client.review("/mutate/add-label", &request).await.unwrap();
    assert!(reviewed.patch.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_tells_the_truth_about_the_folder_and_the_drain() {
    let plugins = PluginDir::new()
        .misbehave("allow", "validating", "fail", "allow", "")
        .misbehave(
            "loop",
            "validating",
            "fail",
            "loop",
            "[limits]\ntimeout-ms = 5000",
        );
    let folder = plugins.path().to_owned();
    let wicket = Wicket::start(plugins).unwrap();
    let ops = wicket.ops_client();
    let readiness = async || {
        let answer = ops.get("/readyz").await.unwrap();
        (answer.status, answer.json())
    };
    let limit = std::time::Duration::from_secs(60);
    let (status, ready) = readiness().await;
    assert_eq!((status, &ready["ready"]), (200, &json!(true)), "{ready}");

    // The folder goes: not ready, and says why; it comes back: ready.
    let moved = folder.with_extension("away");
    std::fs::rename(&folder, &moved).unwrap();
    let ready = eventually("not ready without the folder", limit, async || {
        let (status, ready) = readiness().await;
        (status == 503).then_some(ready)
    })
    .await;
    assert_eq!(ready["reason"], "the plugin folder cannot be read");
    assert!(ready["folderError"].is_string(), "{ready}");
    std::fs::rename(&moved, &folder).unwrap();
    eventually("ready with the folder back", limit, async || {
        (readiness().await.0 == 200).then_some(())
    })
    .await;

    // A drain starts (SIGTERM) while a review is in flight: not ready, and
    // the ops listener keeps answering until the review is done.
    let client = wicket.client();
    let in_flight = tokio::spawn(async move {
        client
            .post("/validate/loop", fixture("v1-pod-create-plain.json"))
            .await
    });
    eventually("the review in flight", limit, async || {
        wicket.log().contains("looping on").then_some(())
    })
    .await;
    wicket.signal("TERM");
    let ready = eventually("not ready while draining", limit, async || {
        let (status, ready) = readiness().await;
        (status == 503).then_some(ready)
    })
    .await;
    assert_eq!(ready["reason"], "draining: shutting down");
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.status, 200, "the review in flight is answered");
}

/// SIGTERM while a reload compiles a large component (about 35 s on this
/// machine's two cores): the compile is abandoned, not awaited, and the
/// process exits within its 20 s shutdown grace.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_slow_compile_exits_within_the_grace() {
    let plugins = PluginDir::new();
    let folder = plugins.path().to_owned();
    let mut wicket = Wicket::start(plugins).unwrap();
    let slow = slow_to_compile(400, 4000);
    std::fs::write(folder.join(".slow.wasm"), &slow).unwrap();
    std::fs::rename(folder.join(".slow.wasm"), folder.join("slow.wasm")).unwrap();
    eventually("the reload compiling it", PATIENCE, async || {
        wicket.log().contains("compiling a component").then_some(())
    })
    .await;
    wicket.signal("TERM");
    let grace = Duration::from_secs(20);
    eventually("the process gone within its grace", grace, async || {
        (!wicket.is_running()).then_some(())
    })
    .await;
    let log = wicket.log();
    assert!(log.contains("stopped"), "a clean stop: {log}");
    assert!(
        !log.contains("does not export the wicket:admission/plugin interface"),
        "the compile was abandoned, not finished: {log}"
    );
}

/// A cold start is long with hundreds of plugins (or one large one): the
/// ops listener answers from the start, `/readyz` says 503 `starting` with
/// what is still loading until every plugin has been tried, and a SIGTERM
/// meanwhile ends the process at once, abandoning the loads.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_says_starting_while_the_plugins_load() {
    let plugins = PluginDir::new().write("slow.wasm", &slow_to_compile(400, 4000));
    let mut wicket = std::process::Command::new(wicket_tests::wicket_binary())
        .arg("serve")
        .arg("--plugins")
        .arg(plugins.path())
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .arg("--self-signed")
        .arg("--tls-dir")
        .arg(plugins.path().join(".tls"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(wicket.stdout.take().unwrap());
    let first = std::io::BufRead::lines(stdout).next().unwrap().unwrap();
    let ops = first
        .strip_prefix("ops on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the ops line first: {first}"));
    let ops = Client::plain(ops);
    eventually("the slow plugin loading", PATIENCE, async || {
        let ready = ops.get("/readyz").await.unwrap();
        let body = ready.json();
        assert_eq!(ready.status, 503, "{body}");
        assert_eq!(
            body["reason"], "starting: loading the plugins in the folder",
            "{body}"
        );
        assert_eq!(body["plugins"], json!([]), "{body}");
        (body["loading"] == json!(["slow"])).then_some(())
    })
    .await;
    let status = tokio::task::spawn_blocking(move || {
        let pid = wicket.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        wicket.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "a clean stop: {status}");
}
