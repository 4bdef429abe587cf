//! Plugins written in Python and TypeScript, built from this repository
//! during the run by the same scripts authors use, served by the real
//! binary: verdicts, patches, their own errors, traps, settings refused at
//! load, the sandbox (no files, no environment, no sockets, a fresh instance
//! per review), and the plugins' case folders through `wicket test`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wicket_tests::{
    PluginDir, Wicket, fixture, js_plugin, python_plugin, run_wicket, workspace_root,
};

const POD: &str = "v1-pod-create-plain.json";

/// A folder with the probe `wasm` under one name per behaviour, and one
/// whose settings its `validate-settings` refuses.
fn probes(wasm: &Path, trap: &str) -> PluginDir {
    let mut plugins = PluginDir::new();
    for (name, mode, behave, limits) in [
        ("allow", "validating", "allow", ""),
        ("deny", "validating", "deny", ""),
        ("add-label", "mutating", "add-label", ""),
        ("error", "validating", "error", ""),
        ("trap", "validating", trap, "[limits]\ntimeout-ms = 300\n"),
        ("sandbox", "validating", "sandbox", ""),
        ("bad-settings", "validating", "no-such-behaviour", ""),
    ] {
        let manifest = format!("mode = \"{mode}\"\n{limits}[settings]\nbehave = \"{behave}\"\n");
        plugins = plugins.plugin(name, wasm, Some(&manifest));
    }
    plugins
}

/// What one language's probe must answer.
struct Expected {
    language: &'static str,
    /// The behaviour that traps, and the failure it makes.
    trap: (&'static str, &'static str),
    sandbox: Value,
}

async fn every_outcome_is_served(wasm: &Path, expected: Expected) {
    let Expected {
        language,
        trap,
        sandbox,
    } = expected;
    let wicket = Wicket::start(probes(wasm, trap.0)).unwrap();
    let client = wicket.client();

    let allowed = client
        .review("/validate/allow", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(allowed.response["allowed"], true, "{}", allowed.response);
    assert_eq!(allowed.response["auditAnnotations"], json!({"seen": "1"}));
    assert!(
        wicket.log().contains(&format!("{language} probe allow")),
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
        format!("deny: {language} says no to Pod web")
    );

    let patched = client
        .review("/mutate/add-label", &fixture(POD))
        .await
        .unwrap();
    let mut object =
        serde_json::from_slice::<Value>(&fixture(POD)).unwrap()["request"]["object"].clone();
    json_patch::patch(&mut object, &patched.patch.expect("a patch")).unwrap();
    assert_eq!(object["metadata"]["labels"]["wicket.dev/touched"], language);

    let failed = client
        .review("/validate/error", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(failed.response["allowed"], false);
    assert_eq!(failed.response["status"]["code"], 500);
    assert_eq!(
        failed.response["status"]["message"],
        format!(
            "plugin error failed: it could not judge the request: the {language} probe cannot judge this"
        )
    );

    let trapped = client
        .review("/validate/trap", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(trapped.response["allowed"], false);
    assert_eq!(trapped.response["status"]["message"], trap.1);

    for _ in 0..2 {
        let sandboxed = client
            .review("/validate/sandbox", &fixture(POD))
            .await
            .unwrap();
        assert_eq!(
            sandboxed.response["warnings"], sandbox,
            "a fresh instance per review, in the sandbox"
        );
    }

    let refused = wicket.plugin("bad-settings").await.unwrap();
    assert_eq!(refused["served"], false);
    let error = refused["lastError"].as_str().unwrap();
    assert!(
        error.contains("settings refused by the plugin: behave must be one of"),
        "{error}"
    );
    // Each probe was compiled once, whatever the number of names it has,
    // and /plugins says where each name's component came from.
    assert_eq!(wicket.log().matches("compiling a component").count(), 1);
    let plugins = wicket.plugins().await;
    let origins: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|plugin| plugin["served"] == true)
        .map(|plugin| plugin["component"]["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins.len(), 6, "{plugins}");
    assert_eq!(
        origins
            .iter()
            .filter(|origin| **origin == "compiled")
            .count(),
        1,
        "{origins:?}"
    );
    assert!(
        origins
            .iter()
            .all(|origin| ["compiled", "memory"].contains(origin))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_plugins_are_served_with_every_outcome_in_the_sandbox() {
    let probe = python_plugin("tests/plugins/python-probe");
    every_outcome_is_served(
        &probe,
        Expected {
            language: "python",
            trap: (
                "trap",
                "plugin trap failed: it crashed: panicked: Python function threw an unexpected exception",
            ),
            sandbox: json!([
                "reviews seen: 1",
                "file: FileNotFoundError",
                "env: {}",
                "socket: ModuleNotFoundError",
            ]),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn typescript_plugins_are_served_with_every_outcome_in_the_sandbox() {
    let probe = js_plugin("tests/plugins/js-probe");
    every_outcome_is_served(
        &probe,
        Expected {
            language: "js",
            trap: ("loop", "plugin trap failed: it ran past its 300ms deadline"),
            sandbox: json!([
                "reviews seen: 1",
                "require: undefined, process: undefined, Deno: undefined",
            ]),
        },
    )
    .await;
}

/// Runs the case folder of the plugin in `dir` through `wicket test` with
/// the compile cache `cache`; all `cases` must pass.
fn passes_its_case_folder(dir: &str, cases: usize, cache: &Path) {
    let folder = workspace_root().join(dir).join("cases");
    let (code, stdout, stderr) = run_wicket(&[
        "test",
        folder.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{cases} passed, 0 failed")),
        "{stdout}"
    );
}

/// Builds each plugin folder with `build` and runs its case folder, all
/// through one compile cache, which must then hold one entry per plugin.
fn plugins_pass_their_case_folders(build: fn(&str) -> PathBuf, plugins: &[(&str, usize)]) {
    let cache = tempfile::tempdir().unwrap();
    for &(dir, cases) in plugins {
        build(dir);
        passes_its_case_folder(dir, cases, cache.path());
    }
    // An author's next run reads each component from the cache.
    let compiled = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(compiled, plugins.len(), "one cache entry per component");
}

#[test]
fn the_python_plugins_pass_their_case_folders() {
    plugins_pass_their_case_folders(
        python_plugin,
        &[
            ("plugins/python/template", 2),
            ("plugins/python/image-allowlist", 5),
        ],
    );
}

#[test]
fn the_typescript_plugins_pass_their_case_folders() {
    plugins_pass_their_case_folders(
        js_plugin,
        &[
            ("plugins/js/template", 2),
            ("plugins/js/default-resources", 4),
        ],
    );
}
