//! Plugins written in Python, built from this repository during the run by
//! the same scripts authors use, served by the real binary beside nothing
//! else: verdicts, patches, their own errors, traps, settings refused at
//! load, the sandbox (no files, no environment, no sockets, a fresh instance
//! per review), and the templates' case folders through `wicket test`.

use serde_json::json;
use wicket_tests::{PluginDir, Wicket, fixture, python_plugin, run_wicket, workspace_root};

const POD: &str = "v1-pod-create-plain.json";

/// The Python probe as `name`, doing what `behave` says, with `mode`.
fn python_probe(plugins: PluginDir, name: &str, mode: &str, behave: &str) -> PluginDir {
    let manifest = format!("mode = \"{mode}\"\n[settings]\nbehave = \"{behave}\"\n");
    plugins.plugin(
        name,
        &python_plugin("tests/plugins/python-probe"),
        Some(&manifest),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn python_plugins_are_served_with_every_outcome_in_the_sandbox() {
    let mut plugins = PluginDir::new();
    for (name, mode, behave) in [
        ("allow", "validating", "allow"),
        ("deny", "validating", "deny"),
        ("add-label", "mutating", "add-label"),
        ("error", "validating", "error"),
        ("trap", "validating", "trap"),
        ("sandbox", "validating", "sandbox"),
        ("bad-settings", "validating", "no-such-behaviour"),
    ] {
        plugins = python_probe(plugins, name, mode, behave);
    }
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();

    let allowed = client
        .review("/validate/allow", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(allowed.response["allowed"], true, "{}", allowed.response);
    assert_eq!(allowed.response["auditAnnotations"], json!({"seen": "1"}));
    assert!(
        wicket.log().contains("python probe allow"),
        "the plugin's log line reaches Wicket's log"
    );

    let denied = client
        .review("/validate/deny", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(denied.response["allowed"], false);
    assert_eq!(denied.response["status"]["code"], 418);
    assert_eq!(
        denied.response["status"]["message"],
        "deny: python says no to Pod web"
    );

    let patched = client
        .review("/mutate/add-label", &fixture(POD))
        .await
        .unwrap();
    let mut object = serde_json::from_slice::<serde_json::Value>(&fixture(POD)).unwrap()["request"]
        ["object"]
        .clone();
    json_patch::patch(&mut object, &patched.patch.expect("a patch")).unwrap();
    assert_eq!(object["metadata"]["labels"]["wicket.dev/touched"], "python");

    for (path, message) in [
        (
            "/validate/error",
            "plugin error failed: it could not judge the request: the python probe cannot judge this",
        ),
        (
            "/validate/trap",
            "plugin trap failed: it crashed: panicked: Python function threw an unexpected exception",
        ),
    ] {
        let failed = client.review(path, &fixture(POD)).await.unwrap();
        assert_eq!(failed.response["allowed"], false, "{path}");
        assert_eq!(failed.response["status"]["code"], 500, "{path}");
        assert_eq!(failed.response["status"]["message"], message, "{path}");
    }
    assert!(
        wicket
            .log()
            .contains("RuntimeError: an uncaught python exception"),
        "the traceback is logged"
    );

    for _ in 0..2 {
        let sandboxed = client
            .review("/validate/sandbox", &fixture(POD))
            .await
            .unwrap();
        assert_eq!(
            sandboxed.response["warnings"],
            json!([
                "reviews seen: 1",
                "file: FileNotFoundError",
                "env: {}",
                "socket: ModuleNotFoundError",
            ]),
            "a fresh instance per review, with no files, env or sockets"
        );
    }

    let refused = wicket.plugin("bad-settings").await.unwrap();
    assert_eq!(refused["served"], false);
    let error = refused["lastError"].as_str().unwrap();
    assert!(
        error.contains("settings refused by the plugin: behave must be one of"),
        "{error}"
    );
}

#[test]
fn the_python_template_passes_its_case_folder() {
    python_plugin("plugins/python/template");
    let cases = workspace_root().join("plugins/python/template/cases");
    let (code, stdout, stderr) = run_wicket(&["test", cases.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}
