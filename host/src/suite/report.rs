//! Printing a run: per case `ok` or `FAIL` with what differs, per suite a
//! count; or all of it as one JSON document (`--format json`) for CI.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

/// How one case went.
#[derive(Debug, Serialize)]
pub struct CaseOutcome {
    /// The case's name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// What differs from what was expected, or why it could not run.
    pub differences: Vec<String>,
    /// The `AdmissionReview` answer, when there was one.
    pub answer: Option<Value>,
}

impl CaseOutcome {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// How one plugin's cases went.
#[derive(Debug, Serialize)]
pub struct SuiteOutcome {
    /// The plugin's name.
    pub plugin: String,
    /// Its cases, in order.
    pub cases: Vec<CaseOutcome>,
}

impl SuiteOutcome {
    fn passed(&self) -> usize {
        self.cases.iter().filter(|case| case.passed()).count()
    }
}

/// The text report.
pub fn text(suites: &[SuiteOutcome]) -> String {
    let mut out = String::new();
    for suite in suites {
        let _ = writeln!(out, "{}", suite.plugin);
        for case in &suite.cases {
            match case.passed() {
                true => {
                    let _ = writeln!(out, "  ok    {}", case.name);
                }
                false => {
                    let _ = writeln!(out, "  FAIL  {}  ({})", case.name, case.file.display());
                    for difference in &case.differences {
                        for line in difference.lines() {
                            let _ = writeln!(out, "        {line}");
                        }
                    }
                }
            }
        }
        let passed = suite.passed();
        let _ = writeln!(
            out,
            "{}: {passed} passed, {} failed\n",
            suite.plugin,
            suite.cases.len() - passed
        );
    }
    out
}

/// The JSON report: every suite and case, with totals.
pub fn json(suites: &[SuiteOutcome]) -> String {
    let passed: usize = suites.iter().map(SuiteOutcome::passed).sum();
    let total: usize = suites.iter().map(|suite| suite.cases.len()).sum();
    let report = serde_json::json!({
        "passed": passed,
        "failed": total - passed,
        "suites": suites,
    });
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}
