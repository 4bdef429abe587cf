//! `deploy/monitoring` checked by the tools that will read it: the alerts
//! by `promtool check rules` and their unit tests by `promtool test rules`
//! (one or more per alert), the dashboard's queries by promtool's parser,
//! each alert's runbook in the docs, and every `wicket_` series the rules
//! and the dashboard use is one the real binary's `/metrics` exports, and
//! the book's metrics table names exactly what it exports.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use wicket_tests::apiserver::ApiServer;
use wicket_tests::{Wicket, probe, probe_dir, workspace_root};

/// Series the alerts and the dashboard read from other exporters:
/// Prometheus's own scrape health and kube-state-metrics.
const OTHER_EXPORTERS: [&str; 3] = [
    "up",
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
];

fn monitoring(file: &str) -> String {
    std::fs::read_to_string(workspace_root().join("deploy/monitoring").join(file)).unwrap()
}

/// The PrometheusRule's spec: a Prometheus rule file.
fn rule_groups() -> Value {
    let rule: Value = serde_saphyr::from_str(&monitoring("prometheusrule.yaml")).unwrap();
    rule["spec"].clone()
}

fn alerts() -> Vec<Value> {
    let groups = rule_groups();
    groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap().clone())
        .collect()
}

/// The PromQL of every dashboard panel, with Grafana's variables filled in.
fn dashboard_queries() -> Vec<String> {
    let dashboard: Value = serde_json::from_str(&monitoring("grafana/wicket.json")).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            queries.push(
                expr.replace("$__rate_interval", "5m")
                    .replace("$namespace", ".*")
                    .replace("$pod", ".*")
                    .replace("$plugin", ".*"),
            );
        }
    }
    queries
}

/// `promtool ARGS` in `dir`: its output, which must say it succeeded.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect(
            "promtool runs (Debian's prometheus package; scripts/ensure-toolchain --monitoring)",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alerts_pass_promtool_and_each_fires_in_its_unit_test() {
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: the rule file as promtool reads it.
    let rules = serde_json::to_string_pretty(&rule_groups()).unwrap();
    std::fs::write(dir.path().join("wicket.rules.yaml"), rules).unwrap();
    std::fs::write(
        dir.path().join("alerts.test.yaml"),
        monitoring("alerts.test.yaml"),
    )
    .unwrap();
    let checked = promtool(dir.path(), &["check", "rules", "wicket.rules.yaml"]);
    let alerts = alerts();
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{checked}"
    );
    let tested = promtool(dir.path(), &["test", "rules", "alerts.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    let unit_tests = monitoring("alerts.test.yaml");
    let runbooks = std::fs::read_to_string(workspace_root().join("docs/src/operating/alerts.md"))
        .expect("the alerts' runbooks");
    for alert in &alerts {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            unit_tests.contains(&format!("alertname: {name}\n")),
            "{name} has no unit test"
        );
        let annotations = &alert["annotations"];
        for key in ["summary", "description"] {
            assert!(annotations[key].is_string(), "{name} has no {key}");
        }
        let anchor = name.to_lowercase();
        assert_eq!(
            annotations["runbook_url"],
            format!("operating/alerts.html#{anchor}"),
            "{name}'s runbook"
        );
        assert!(
            runbooks.contains(&format!("\n## {name}\n")),
            "docs/src/operating/alerts.md has no section for {name}"
        );
    }
}

#[test]
fn the_dashboards_queries_parse() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    // Each query as a recording rule: promtool parses it as Prometheus would.
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(n, expr)| json!({"record": format!("wicket:dashboard:{n}"), "expr": expr}))
        .collect();
    let file = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.rules.yaml"), file.to_string()).unwrap();
    promtool(dir.path(), &["check", "rules", "dashboard.rules.yaml"]);
}

/// Each metric family `/metrics` declares: its `# TYPE` line's name and
/// type (declared even while the family has no series).
fn declared(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|declared| declared.split_once(' ').unwrap())
}

/// Every name a metric of `/metrics` gives its samples: from its declared
/// type (so a family with no series yet counts) and from the samples.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, kind) in declared(text) {
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
    }
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        names.insert(name.to_owned());
    }
    names
}

/// The series names a PromQL text reads: every word that starts with
/// `wicket_` (all of Wicket's metrics do) and is not a recording rule's
/// name or a label value, and the other exporters' series it selects.
fn used_names(promql: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = promql;
    while let Some(start) = rest.find("wicket_") {
        let before = rest[..start].chars().last();
        let word: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `wicket:dashboard:0` and label values are not series.
        if !matches!(before, Some(':' | '"' | '=')) {
            names.insert(word.clone());
        }
        rest = &rest[start + word.len()..];
    }
    for other in OTHER_EXPORTERS {
        if promql.contains(&format!("{other}{{")) {
            names.insert(other.to_owned());
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn every_wicket_series_the_alerts_and_dashboard_read_is_exported() {
    // Wicket following a stand-in API server, so that the watch caches'
    // metrics are there too, with a plugin that has read the cluster.
    let api = ApiServer::start().await;
    api.add([json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a"}})]);
    let config = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(config.path());
    let plugins = probe_dir(
        "[cluster]\nread = [{ api-version = \"v1\", kind = \"Namespace\", metadata-only = true }]\n",
    );
    let wicket = tokio::task::spawn_blocking(move || {
        Wicket::start_with_env(plugins, &[], &[("KUBECONFIG", kubeconfig.as_os_str())])
    })
    .await
    .unwrap()
    .unwrap();
    let read = probe(
        &wicket,
        &[("call", "get"), ("kind", "Namespace"), ("name", "team-a")],
    )
    .await;
    assert!(read.contains("team-a"), "{read}");
    let text = wicket.metrics().await.text().to_owned();
    let exported = exported_names(&text);

    let mut used = BTreeSet::new();
    for alert in alerts() {
        used.extend(used_names(alert["expr"].as_str().unwrap()));
    }
    for query in dashboard_queries() {
        used.extend(used_names(&query));
    }
    assert!(used.len() >= 20, "{used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|name| !OTHER_EXPORTERS.contains(&name.as_str()))
        .filter(|name| !exported.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "read but not exported: {missing:?}\nexported: {exported:?}"
    );

    // The book's metrics table names exactly the metrics exported.
    let page =
        std::fs::read_to_string(workspace_root().join("docs/src/operating/metrics.md")).unwrap();
    let documented: BTreeSet<String> = page
        .lines()
        .filter_map(|line| line.strip_prefix("| `wicket_"))
        .map(|rest| format!("wicket_{}", rest.split('`').next().unwrap()))
        .collect();
    assert_eq!(documented, families(&text), "docs/src/operating/metrics.md");
}

/// Each metric family of `/metrics` by the name its samples have: a
/// counter's with `_total`, an info's with `_info`, a histogram's bare.
fn families(text: &str) -> BTreeSet<String> {
    declared(text)
        .map(|(name, kind)| match kind {
            "counter" => format!("{name}_total"),
            "info" => format!("{name}_info"),
            _ => name.to_owned(),
        })
        .collect()
}
