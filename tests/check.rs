//! `wicket check`: the real binary loads one plugin as `serve` would and
//! judges a captured request without a server.

use serde_json::Value;
use wicket_tests::{run_wicket, test_plugin, workspace_root};

fn check(args: &[&str]) -> (bool, String, String) {
    let (code, stdout, stderr) = run_wicket(&[&["check"], args].concat());
    (code == Some(0), stdout, stderr)
}

#[test]
fn check_loads_a_plugin_and_judges_a_captured_request() {
    let template = test_plugin("wicket-plugin-template");
    let fixture = workspace_root().join("tests/fixtures/v1-pod-create-plain.json");
    let (ok, stdout, stderr) = check(&[
        template.to_str().unwrap(),
        "--review",
        fixture.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let (summary, answer) = stdout.split_once('\n').unwrap();
    assert_eq!(
        summary,
        "wicket-plugin-template: loads; a validating plugin served at /validate/wicket-plugin-template"
    );
    let answer: Value = serde_json::from_str(answer).unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(
        answer["response"]["status"]["message"],
        "wicket-plugin-template: pods need an 'owner' label; add metadata.labels.owner"
    );
}

#[test]
fn check_fails_with_the_reason_when_settings_are_refused() {
    let injector = test_plugin("wicket-sidecar-injector");
    let (ok, stdout, stderr) = check(&[injector.to_str().unwrap()]);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("plugin wicket-sidecar-injector does not load: settings refused by the plugin: invalid settings: missing field `sidecars`"),
        "{stderr}"
    );

    let manifest = workspace_root().join("deploy/plugins/sidecar-injector.toml");
    let (ok, stdout, stderr) = check(&[
        injector.to_str().unwrap(),
        "--name",
        "sidecar-injector",
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "sidecar-injector: loads; a mutating plugin served at /mutate/sidecar-injector\n"
    );
}

/// A cluster-aware plugin judges a request against `--cluster-objects`,
/// and without them its reads are `unavailable` (its failure policy then
/// decides: the bundled unique-ingress-host fails closed).
#[test]
fn check_reads_the_cluster_from_a_folder_of_objects() {
    let plugin = test_plugin("wicket-unique-ingress-host");
    let root = workspace_root();
    let manifest = root.join("deploy/plugins/unique-ingress-host.toml");
    let review = root.join("deploy/try/unique-ingress-host.json");
    let cluster = root.join("deploy/try/cluster");
    let args = |with_cluster: bool| {
        let mut args = vec![
            plugin.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--review",
            review.to_str().unwrap(),
        ];
        if with_cluster {
            args.extend(["--cluster-objects", cluster.to_str().unwrap()]);
        }
        args
    };
    let (ok, stdout, stderr) = check(&args(true));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("shop.example.com is already routed by Ingress team-a/shop"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = check(&args(false));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("cluster read unavailable"), "{stdout}");
}
