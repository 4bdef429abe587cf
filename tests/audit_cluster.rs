//! `wicket audit --cluster` through the real binary against the stand-in API
//! server (`harness::apiserver`): the objects the validating plugins' rules
//! select are listed page by page, judged as CREATEs, and written back as
//! OpenReports (a Report per namespace, applied server-side); a stale report
//! of Wicket's is deleted, anyone else's kept; a resource the audit may not
//! list is reported and the rest still audited.

use serde_json::{Value, json};
use wicket_tests::apiserver::ApiServer;
use wicket_tests::{PluginDir, wicket_binary};

const REPORTS: &str = "/apis/openreports.io/v1alpha1/namespaces";

/// require-owner (validating: pods in namespaces labelled
/// `wicket.dev/require-owner=enabled`), unique-ingress-host (validating,
/// reads Ingresses) and namespace-labels (mutating: never judges stored
/// objects).
fn plugins() -> PluginDir {
    PluginDir::new()
        .bundled("require-owner", "wicket-plugin-template")
        .bundled("unique-ingress-host", "wicket-unique-ingress-host")
        .bundled("namespace-labels", "wicket-namespace-labels")
}

fn pod(namespace: &str, name: &str, owner: Option<&str>) -> Value {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name, "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
    if let Some(owner) = owner {
        pod["metadata"]["labels"] = json!({ "owner": owner });
    }
    pod
}

fn report(namespace: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
        "summary": {"pass": 1}, "results": []})
}

/// A cluster with a namespace that opts in to require-owner (two pods
/// without an owner, one with), one that does not, two Ingresses routing
/// the same host from two namespaces, a stale report of Wicket's and a
/// report of someone else's.
async fn cluster() -> ApiServer {
    let server = ApiServer::start().await;
    let managed = json!({"app.kubernetes.io/managed-by": "wicket"});
    server.add([
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "strict",
            "labels": {"wicket.dev/require-owner": "enabled"}}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "relaxed"}}),
        pod("strict", "unowned-1", None),
        pod("strict", "unowned-2", None),
        pod("strict", "owned", Some("team-a")),
        pod("relaxed", "free", None),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": "team-a", "name": "shop"},
            "spec": {"rules": [{"host": "shop.example.com"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"namespace": "team-b", "name": "shop"},
            "spec": {"rules": [{"host": "shop.example.com"}]}}),
        report("emptied", "wicket", managed),
        report(
            "relaxed",
            "kyverno",
            json!({"app.kubernetes.io/managed-by": "kyverno"}),
        ),
    ]);
    server
}

/// Runs `wicket audit --cluster` against `server`: exit code, stdout, stderr.
async fn audit(server: &ApiServer, plugins: &PluginDir) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(home.path());
    let output = tokio::process::Command::new(wicket_binary())
        .args(["audit", "--cluster", "--page-size", "2", "--qps", "1000"])
        .arg("--plugins")
        .arg(plugins.path())
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .expect("running wicket audit");
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// (policy, result, object name) of a report's results, sorted.
fn results(report: &Value) -> Vec<(String, String, String)> {
    let mut found: Vec<_> = report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results: {report}"))
        .iter()
        .map(|result| {
            let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
            (
                text(&result["policy"]),
                text(&result["result"]),
                text(&result["resources"][0]["name"]),
            )
        })
        .collect();
    found.sort();
    found
}

fn owned(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_is_audited_page_by_page_and_written_back_as_reports() {
    let plugins = plugins();
    let server = cluster().await;
    let (code, stdout, stderr) = audit(&server, &plugins).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    // Listed in pages: every list carries the limit, and the pods took
    // more than one page.
    let pods = server.lists_and_watches("/api/v1/pods");
    assert!(
        pods.iter().all(|list| list.query.contains("limit=2")),
        "{pods:?}"
    );
    assert!(
        pods.iter().any(|list| list.query.contains("continue=")),
        "{pods:?}"
    );

    let strict = server
        .object(&format!("{REPORTS}/strict/reports/wicket"))
        .expect("a Report for strict");
    assert_eq!(strict["source"], "wicket");
    assert_eq!(
        strict["summary"],
        json!({"pass": 1, "fail": 2, "warn": 0, "error": 0, "skip": 0})
    );
    assert_eq!(
        results(&strict),
        owned(&[
            ("require-owner", "fail", "unowned-1"),
            ("require-owner", "fail", "unowned-2"),
            ("require-owner", "pass", "owned"),
        ])
    );
    let message = strict["results"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("owner"), "{strict}");
    for namespace in ["team-a", "team-b"] {
        let ingresses = server
            .object(&format!("{REPORTS}/{namespace}/reports/wicket"))
            .unwrap_or_else(|| panic!("a Report for {namespace}"));
        assert_eq!(
            results(&ingresses),
            owned(&[("unique-ingress-host", "fail", "shop")]),
            "each Ingress routes the host the other one does"
        );
    }
    // require-owner does not select relaxed's pods: no results, no report.
    assert!(
        server
            .object(&format!("{REPORTS}/relaxed/reports/wicket"))
            .is_none()
    );

    // Applied server-side by the audit's own field manager.
    let applies: Vec<_> = server
        .writes()
        .into_iter()
        .filter(|write| write.path.contains("/reports/"))
        .filter(|write| write.method == "PATCH")
        .collect();
    assert_eq!(applies.len(), 3, "{applies:?}");
    for apply in &applies {
        assert!(
            apply.query.contains("fieldManager=wicket-audit"),
            "{}",
            apply.query
        );
        assert!(apply.query.contains("force=true"), "{}", apply.query);
        assert_eq!(apply.content_type, "application/apply-patch+yaml");
    }
    // Wicket's stale report is deleted; someone else's stays.
    assert!(
        server
            .object(&format!("{REPORTS}/emptied/reports/wicket"))
            .is_none()
    );
    assert!(
        server
            .object(&format!("{REPORTS}/relaxed/reports/kyverno"))
            .is_some()
    );

    // The summary: per plugin and outcome, the mutating one not judging.
    let line = |plugin: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(plugin))
            .unwrap_or_else(|| panic!("{plugin} in {stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(line("require-owner")[1..3], ["1", "2"], "{stdout}");
    assert_eq!(line("unique-ingress-host")[1..3], ["0", "2"], "{stdout}");
    assert!(!stdout.contains("namespace-labels "), "{stdout}");
    assert!(
        stdout.contains("3 of 3 reports applied, 1 stale deleted"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_the_audit_may_not_list_is_reported_and_the_rest_still_audited() {
    let plugins = plugins();
    let server = cluster().await;
    server.forbid("ingresses", true);
    let (code, stdout, stderr) = audit(&server, &plugins).await;
    assert_eq!(code, Some(2), "a partial run: exit 2; {stdout}{stderr}");
    assert!(
        stderr.contains("cannot list ingresses.networking.k8s.io"),
        "{stderr}"
    );
    assert!(
        stderr.contains("forbidden"),
        "the API server's reason: {stderr}"
    );
    let strict = server
        .object(&format!("{REPORTS}/strict/reports/wicket"))
        .expect("the pods are still audited");
    assert_eq!(strict["summary"]["fail"], 2, "{strict}");
    assert!(
        server
            .object(&format!("{REPORTS}/emptied/reports/wicket"))
            .is_some(),
        "a partial run deletes no report: {stderr}"
    );
    assert!(stderr.contains("stale reports kept"), "{stderr}");
}
