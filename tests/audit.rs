//! `wicket audit` through the real binary, on bundled plugins: a folder of
//! mixed manifests (a multi-document YAML file with a broken document, a
//! JSON `List`, a Namespace whose labels a namespace selector reads),
//! standard input, every output format, `--write-mutated`, exit codes.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;
use wicket_tests::{PluginDir, run_wicket, wicket_binary};

/// require-owner (pods in namespaces labelled
/// `wicket.dev/require-owner=enabled`) and namespace-labels (every pod).
fn plugins() -> PluginDir {
    PluginDir::new()
        .bundled("require-owner", "wicket-plugin-template")
        .bundled("namespace-labels", "wicket-namespace-labels")
}

const APP: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: strict
  labels: {wicket.dev/require-owner: enabled, team: payments}
---
apiVersion: v1
kind: Pod
metadata: {name: unowned, namespace: strict}
spec: {containers: [{name: app, image: nginx}]}
---
kind: [unclosed
---
# a comment only
---
apiVersion: v1
kind: Pod
metadata: {name: owned, namespace: strict, labels: {owner: team-a}}
spec: {containers: [{name: app, image: nginx}]}
";

const RELAXED: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "free", "namespace": "relaxed"},
   "spec": {"containers": [{"name": "app", "image": "nginx"}]}}]}"#;

fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(dir.path().join("more/relaxed.json"), RELAXED).unwrap();
    dir
}

/// The rows of a JSON report as (object, plugin, result).
fn rows(json: &str) -> Vec<(String, String, String)> {
    let rows: Vec<Value> =
        serde_json::from_str(json).unwrap_or_else(|error| panic!("{error}: {json}"));
    rows.iter()
        .map(|row| {
            let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
            (text("object"), text("plugin"), text("result"))
        })
        .collect()
}

#[test]
fn a_folder_is_judged_as_the_api_server_would_and_a_broken_document_is_reported() {
    let (plugins, objects) = (plugins(), manifests());
    let dir = |path: &std::path::Path| path.to_str().unwrap().to_owned();
    let (code, stdout, stderr) = run_wicket(&[
        "audit",
        "--plugins",
        &dir(plugins.path()),
        &dir(objects.path()),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(1), "a refusal: exit 1; {stderr}");
    let mut found = rows(&stdout);
    found.sort();
    let expected = [
        ("Pod relaxed/free", "namespace-labels", "pass"),
        ("Pod strict/owned", "namespace-labels", "pass"),
        ("Pod strict/owned", "require-owner", "pass"),
        ("Pod strict/unowned", "namespace-labels", "pass"),
        ("Pod strict/unowned", "require-owner", "fail"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(found, expected, "{stdout}");
    assert!(
        stderr.contains("app.yaml:12: the document does not parse"),
        "the broken document's file and line: {stderr}"
    );
    let report: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let labelled = report
        .iter()
        .find(|row| row["object"] == "Pod strict/unowned" && row["plugin"] == "namespace-labels")
        .unwrap();
    assert!(labelled["patch"].is_array(), "would change: {labelled}");
    let unowned = report
        .iter()
        .find(|row| row["object"] == "Pod strict/unowned" && row["plugin"] == "require-owner")
        .unwrap();
    assert_eq!(
        unowned["source"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .1,
        "7"
    );

    // JUnit: a failure per refusal; the table: a row per result.
    let (_, junit, _) = run_wicket(&[
        "audit",
        "--plugins",
        &dir(plugins.path()),
        &dir(objects.path()),
        "--format",
        "junit",
    ]);
    assert!(
        junit.contains("<testsuite name=\"require-owner\" tests=\"2\" failures=\"1\""),
        "{junit}"
    );
    let (_, table, _) = run_wicket(&[
        "audit",
        "--plugins",
        &dir(plugins.path()),
        &dir(objects.path()),
    ]);
    assert!(table.starts_with("OBJECT"), "{table}");
    assert_eq!(
        table.lines().filter(|line| line.contains(" fail ")).count(),
        1,
        "{table}"
    );
}

#[test]
fn standard_input_is_audited_and_mutated_objects_are_written() {
    let plugins = plugins();
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(wicket_binary())
        .args([
            "audit",
            "--plugins",
            plugins.path().to_str().unwrap(),
            "-",
            "--format",
            "json",
        ])
        .args([
            "--namespace-labels",
            "audited=wicket.dev/require-owner=enabled",
        ])
        .arg("--write-mutated")
        .arg(out.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The Namespace `shop` is read by namespace-labels (the audited objects
    // are its cluster); the labels given for `audited` by require-owner's
    // namespace selector.
    let objects = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: checkout}}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec: {containers: [{name: app, image: nginx}]}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: audited}\nspec: {containers: [{name: app, image: nginx}]}\n";
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(objects.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "a refusal: {stdout}");
    let row = |object: &str, plugin: &str, result: &str| {
        (object.to_owned(), plugin.to_owned(), result.to_owned())
    };
    assert_eq!(
        rows(&stdout),
        [
            row("Pod shop/web", "namespace-labels", "pass"),
            row("Pod audited/web", "namespace-labels", "pass"),
            row("Pod audited/web", "require-owner", "fail"),
        ]
    );
    let written = std::fs::read_to_string(out.path().join("shop/pod.web.yaml")).unwrap();
    assert!(
        written.contains("team: checkout"),
        "the label copied from the audited Namespace: {written}"
    );
}
