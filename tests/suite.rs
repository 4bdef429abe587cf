//! `wicket test`: the real binary runs folders of cases against a plugin,
//! reports each case (with a diff for a patched object that differs), exits
//! non-zero when one fails, and runs the first-party plugins' own cases.

use std::path::Path;

use serde_json::Value;
use wicket_tests::{misbehave, run_wicket, test_plugin, workspace_root};

/// Runs `wicket test ARGS`: exit code, stdout, stderr.
fn wicket_test(args: &[&str]) -> (Option<i32>, String, String) {
    run_wicket(&[&["test"], args].concat())
}

/// A case folder with the misbehave plugin `behave`ing, named in its
/// `suite.yaml`, and the given case files.
fn case_folder(mode: &str, behave: &str, cases: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugin")).unwrap();
    std::fs::copy(misbehave(), dir.path().join("plugin/guard.wasm")).unwrap();
    let manifest = format!("mode = \"{mode}\"\n[settings]\nbehave = \"{behave}\"\n");
    std::fs::write(dir.path().join("plugin/guard.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("suite.yaml"), "plugin: plugin/guard.wasm\n").unwrap();
    for (name, text) in cases {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn fixture_path(name: &str) -> String {
    workspace_root()
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn passing_and_failing_cases_are_reported_and_failures_exit_1() {
    let pod = fixture_path("v1-pod-create-plain.json");
    let cases = [
        (
            "a-passes.yaml",
            format!(
                "review: {pod}\nexpect:\n  allowed: true\n  patch:\n    - {{op: add, path: /metadata/labels/wicket.dev~1touched, value: \"true\"}}\n"
            ),
        ),
        (
            "b-fails.yaml",
            format!(
                "- name: expects a denial\n  review: {pod}\n  expect:\n    allowed: false\n    code: 403\n"
            ),
        ),
        (
            "c-wrong-object.yaml",
            format!(
                "review: {pod}\nset:\n  /request/object: {{metadata: {{name: a, labels: {{app: web}}}}}}\nexpect:\n  patched: {{metadata: {{name: a, labels: {{app: web, wicket.dev/touched: \"false\"}}}}}}\n"
            ),
        ),
        (
            "d-unreadable.yaml",
            "review: x.json\nexpect: {allowd: true}\n".to_owned(),
        ),
    ];
    let folder = case_folder("mutating", "add-label", &cases);
    let (code, stdout, stderr) = wicket_test(&[arg(folder.path())]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("guard\n  ok    a-passes\n"), "{stdout}");
    assert!(stdout.contains("  FAIL  expects a denial  ("), "{stdout}");
    assert!(
        stdout.contains("allowed: expected false, got true"),
        "{stdout}"
    );
    assert!(stdout.contains("code: expected 403, got null"), "{stdout}");
    // The patched object's diff, line by line.
    assert!(
        stdout.contains("-      \"wicket.dev/touched\": \"false\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+      \"wicket.dev/touched\": \"true\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("unreadable case file: case 1 is not a case: unknown field `allowd`"),
        "{stdout}"
    );
    assert!(stdout.contains("guard: 1 passed, 3 failed"), "{stdout}");
}

#[test]
fn json_format_reports_every_case_with_its_answer() {
    let pod = fixture_path("v1-pod-create-plain.json");
    let cases = [(
        "denied.json",
        serde_json::json!([
            {"name": "denied", "review": pod, "expect": {"allowed": false, "message": "denied by test"}},
            {"name": "not denied", "review": pod, "expect": {"allowed": true}},
        ])
        .to_string(),
    )];
    let folder = case_folder("validating", "deny", &cases);
    let (code, stdout, stderr) = wicket_test(&[arg(folder.path()), "--format", "json"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], 1, "{report}");
    assert_eq!(report["failed"], 1, "{report}");
    let cases = &report["suites"][0]["cases"];
    assert_eq!(cases[0]["differences"], serde_json::json!([]));
    assert_eq!(cases[0]["answer"]["response"]["allowed"], false);
    let difference = cases[1]["differences"][0].as_str().unwrap();
    assert!(
        difference.starts_with("allowed: expected true, got false (guard: denied by test)"),
        "{difference}"
    );
}

#[test]
fn a_plugin_that_does_not_load_exits_2_with_the_reason() {
    let pod = fixture_path("v1-pod-create-plain.json");
    let case = format!("review: {pod}\nexpect: {{allowed: true}}\n");
    let folder = case_folder("validating", "allow", &[("case.yaml", case)]);
    let wrong = test_plugin("test-plugin-wrong-world");
    let (code, stdout, stderr) = wicket_test(&["--plugin", arg(&wrong), arg(folder.path())]);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stderr.contains("plugin test-plugin-wrong-world does not load"),
        "{stderr}"
    );

    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = wicket_test(&[arg(empty.path())]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("holds no case files"), "{stderr}");
}

/// The first-party plugins' own case folders, run on the plugins as built
/// for this test run with their bundled manifests.
#[test]
fn the_first_party_case_folders_pass() {
    let folders = [
        (
            "sidecar-injector",
            "wicket-sidecar-injector",
            "sidecar-injector",
        ),
        (
            "configmap-mutator",
            "wicket-configmap-mutator",
            "configmap-mutator",
        ),
        ("template", "wicket-plugin-template", "require-owner"),
        (
            "etcd-leader-guard",
            "wicket-etcd-leader-guard",
            "etcd-leader-guard",
        ),
        (
            "unique-ingress-host",
            "wicket-unique-ingress-host",
            "unique-ingress-host",
        ),
        (
            "namespace-labels",
            "wicket-namespace-labels",
            "namespace-labels",
        ),
    ];
    for (folder, crate_name, name) in folders {
        let cases = workspace_root().join("plugins").join(folder).join("cases");
        let manifest = workspace_root().join(format!("deploy/plugins/{name}.toml"));
        let (code, stdout, stderr) = wicket_test(&[
            "--plugin",
            arg(&test_plugin(crate_name)),
            "--manifest",
            arg(&manifest),
            "--name",
            name,
            "--format",
            "json",
            arg(&cases),
        ]);
        assert_eq!(code, Some(0), "{folder}: {stdout}{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["failed"], 0, "{folder}: {report}");
        assert!(
            report["passed"].as_u64().unwrap() >= 1,
            "{folder}: {report}"
        );
    }
}
