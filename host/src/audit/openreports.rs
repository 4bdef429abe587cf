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
    let mut reports = Reports::new(now, max_results);
    for row in rows {
        reports.add(row);
    }
    reports.finish().collect()
}

/// Reports being filled, a result at a time. What each keeps is bounded by
/// `max_results` whatever the number of objects: past it, a refusal,
/// warning or failure displaces a kept pass, and the rest is counted in
/// the summary only.
pub struct Reports {
    seconds: u64,
    max_results: Option<usize>,
    by_namespace: BTreeMap<String, Tally>,
}

/// One report's summary and the results it keeps, each as its JSON text:
/// one allocation a result, not one a field, so that results kept while
/// pages of objects come and go do not strew the heap (kept as values,
/// 20,000 results took RSS from 55 to 107 MiB over 60,000 pods; as text,
/// to 67).
#[derive(Default)]
struct Tally {
    summary: BTreeMap<&'static str, u64>,
    /// Results other than a pass or a skip.
    findings: Vec<Box<str>>,
    /// Passes and skips, first to go past the limit.
    passes: Vec<Box<str>>,
}

impl Reports {
    /// Empty reports of results found at `now`.
    pub fn new(now: SystemTime, max_results: Option<usize>) -> Reports {
        Reports {
            seconds: now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
            max_results,
            by_namespace: BTreeMap::new(),
        }
    }

    /// Counts `row` in its namespace's report, and keeps it if the limit
    /// allows; a row about no object is left out.
    pub fn add(&mut self, row: &Row) {
        let Some(subject) = &row.subject else {
            return;
        };
        let namespace = subject
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let tally = match self.by_namespace.get_mut(namespace) {
            Some(tally) => tally,
            None => self.by_namespace.entry(namespace.to_owned()).or_default(),
        };
        let result = result_of(row.outcome);
        *tally.summary.entry(result).or_default() += 1;
        let mut kept = json!({
            "source": NAME,
            "policy": row.plugin,
            "rule": row.plugin,
            "result": result,
            "message": row.message,
            "scored": true,
            "timestamp": {"seconds": self.seconds, "nanos": 0},
            "resources": [subject],
        });
        if let Some(severity) = row.severity {
            kept["severity"] = json!(severity);
        }
        let kept = kept.to_string().into_boxed_str();
        match result {
            "pass" | "skip" => tally.passes.push(kept),
            _ => tally.findings.push(kept),
        }
        let max = self.max_results.unwrap_or(usize::MAX);
        if tally.findings.len() + tally.passes.len() > max {
            match tally.passes.pop() {
                Some(_) => {}
                None => drop(tally.findings.pop()),
            }
        }
    }

    /// The namespaces with a report (`""` for the ClusterReport).
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.by_namespace.keys().map(String::as_str)
    }

    /// The `Report`s and the `ClusterReport`, findings first, each made
    /// as it is taken.
    pub fn finish(self) -> impl Iterator<Item = Value> {
        let max_results = self.max_results;
        self.by_namespace
            .into_iter()
            .map(move |(namespace, tally)| {
                let mut summary = json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0});
                for (result, count) in tally.summary {
                    summary[result] = json!(count);
                }
                let results: Vec<Value> = (tally.findings.iter())
                    .chain(&tally.passes)
                    .filter_map(|kept| serde_json::from_str(kept).ok())
                    .collect();
                let mut metadata =
                    json!({"name": NAME, "labels": {"app.kubernetes.io/managed-by": NAME}});
                let kind = match namespace.as_str() {
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
    }
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
            row("a", Outcome::Pass),
            row("a", Outcome::Fail),
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
        assert_eq!(
            a["results"][0]["result"], "fail",
            "a refusal displaces a pass"
        );
        assert_eq!(a["results"][0]["resources"][0]["namespace"], "a");
        assert_eq!(reports[2]["results"][0]["result"], "warn");
        assert_eq!(reports[2]["results"][0]["severity"], "high");
    }
}
