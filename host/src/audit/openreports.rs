//! The audit's results as OpenReports (`openreports.io/v1alpha1`, the
//! format Kubewarden's audit-scanner and Kyverno write): one `Report` per
//! namespace and one `ClusterReport` for cluster-scoped objects, each named
//! `wicket`, with a result per plugin and object and the summary counts.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::report::Row;
use super::run::Outcome;

/// The name of every report Wicket writes, and its `source`.
pub const NAME: &str = "wicket";

/// The reports of `rows` (those about an object), found at `now`, with at
/// most `max_results` results each (the rest counted in the summary only).
pub fn reports(rows: &[Row], now: SystemTime, max_results: Option<usize>) -> Vec<Value> {
    let seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut by_namespace: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let Some(subject) = &row.subject else {
            continue;
        };
        let namespace = subject
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        by_namespace.entry(namespace).or_default().push(row);
    }
    by_namespace
        .into_iter()
        .map(|(namespace, rows)| {
            let mut summary = BTreeMap::from([
                ("pass", 0),
                ("fail", 0),
                ("warn", 0),
                ("error", 0),
                ("skip", 0),
            ]);
            for row in &rows {
                *summary.entry(result_of(row.outcome)).or_default() += 1;
            }
            let results: Vec<Value> = rows
                .iter()
                .take(max_results.unwrap_or(usize::MAX))
                .map(|row| {
                    let mut result = json!({
                        "source": NAME,
                        "policy": row.plugin,
                        "result": result_of(row.outcome),
                        "message": row.message,
                        "scored": true,
                        "timestamp": {"seconds": seconds, "nanos": 0},
                        "resources": [row.subject],
                    });
                    if let Some(severity) = row.severity {
                        result["severity"] = json!(severity);
                    }
                    result
                })
                .collect();
            let mut metadata =
                json!({"name": NAME, "labels": {"app.kubernetes.io/managed-by": NAME}});
            let kind = match namespace {
                "" => "ClusterReport",
                namespace => {
                    metadata["namespace"] = json!(namespace);
                    "Report"
                }
            };
            let mut report = json!({
                "apiVersion": "openreports.io/v1alpha1",
                "kind": kind,
                "metadata": metadata,
                "source": NAME,
                "summary": summary,
                "results": results,
            });
            if let Some(max) = max_results {
                report["configuration"] = json!({"limits": {"maxResults": max}});
            }
            report
        })
        .collect()
}

/// The result word OpenReports uses: a monitored refusal is reported as
/// the warning it is (not scored against the object).
fn result_of(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Warn | Outcome::Monitor => "warn",
        Outcome::Error => "error",
        Outcome::Skip => "skip",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(namespace: &str, outcome: Outcome) -> Row {
        let mut subject = json!({"apiVersion": "v1", "kind": "Pod", "name": "web"});
        if !namespace.is_empty() {
            subject["namespace"] = json!(namespace);
        }
        Row {
            object: format!("Pod {namespace}/web"),
            source: "app.yaml:1".into(),
            plugin: "require-owner".into(),
            outcome,
            message: "m".into(),
            patch: None,
            conditions_unevaluated: false,
            subject: Some(subject),
            severity: Some("high"),
        }
    }

    #[test]
    fn a_report_per_namespace_with_counts_beyond_the_results_kept() {
        let rows = [
            row("a", Outcome::Fail),
            row("a", Outcome::Pass),
            row("b", Outcome::Monitor),
            row("", Outcome::Pass),
        ];
        let reports = reports(&rows, UNIX_EPOCH, Some(1));
        let kinds: Vec<(&str, &str)> = reports
            .iter()
            .map(|report| {
                (
                    report["kind"].as_str().unwrap(),
                    report["metadata"]["namespace"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [("ClusterReport", ""), ("Report", "a"), ("Report", "b")]
        );
        let a = &reports[1];
        assert_eq!(
            a["summary"],
            json!({"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 0})
        );
        assert_eq!(a["results"].as_array().unwrap().len(), 1, "maxResults kept");
        assert_eq!(a["results"][0]["resources"][0]["namespace"], "a");
        assert_eq!(reports[2]["results"][0]["result"], "warn");
        assert_eq!(reports[2]["results"][0]["severity"], "high");
    }
}
