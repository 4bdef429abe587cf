//! The audit's results, as a reader, a program or a CI system takes them:
//! an aligned table, JSON, or JUnit XML (one test suite per plugin, one
//! case per object: a refusal is a failure, a plugin failure an error).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::run::Outcome;

/// One plugin's result on one object.
#[derive(Debug, Clone)]
pub struct Row {
    /// `Kind namespace/name`.
    pub object: String,
    /// Where the object was read.
    pub source: String,
    /// The plugin or pipeline (`-` when the object was not judged at all).
    pub plugin: String,
    /// How it judged.
    pub outcome: Outcome,
    /// What it said.
    pub message: String,
    /// The JSON Patch a mutating one would apply.
    pub patch: Option<Value>,
    /// Whether its entries' match conditions were not evaluated.
    pub conditions_unevaluated: bool,
    /// The object as an `ObjectReference` (apiVersion, kind, namespace,
    /// name, uid), for reports; `None` when no object is concerned.
    pub subject: Option<Value>,
    /// The plugin's `severity`, if its manifest says.
    pub severity: Option<&'static str>,
}

impl Row {
    /// The message, with what else the reader should know.
    fn said(&self) -> String {
        let mut said = self.message.clone();
        if let Some(Value::Array(operations)) = &self.patch {
            let change = format!("would change: {} patch operation(s)", operations.len());
            said = match said.is_empty() {
                true => change,
                false => format!("{said}; {change}"),
            };
        }
        if self.conditions_unevaluated {
            said.push_str(" (match conditions not evaluated)");
        }
        said
    }
}

/// An aligned table, a row per result.
pub fn table(rows: &[Row]) -> String {
    let mut lines = vec![
        ["OBJECT", "PLUGIN", "RESULT", "MESSAGE"]
            .map(str::to_owned)
            .to_vec(),
    ];
    lines.extend(rows.iter().map(|row| {
        vec![
            row.object.clone(),
            row.plugin.clone(),
            row.outcome.as_str().to_owned(),
            row.said(),
        ]
    }));
    aligned(&lines)
}

/// `lines` as columns two spaces apart, each as wide as its widest cell
/// (the last one left ragged).
pub fn aligned(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or_default();
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            let cells = lines.iter().filter_map(|line| line.get(column));
            cells
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or_default()
        })
        .collect();
    let mut text = String::new();
    for line in lines {
        let mut cells = line.iter().enumerate().peekable();
        while let Some((column, cell)) = cells.next() {
            match cells.peek() {
                Some(_) => {
                    let _ = write!(text, "{cell:width$}  ", width = widths[column]);
                }
                None => text.push_str(cell),
            }
        }
        text.push('\n');
    }
    text
}

/// A JSON array, an object per result.
pub fn json(rows: &[Row]) -> String {
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "object": row.object,
                "source": row.source,
                "plugin": row.plugin,
                "result": row.outcome.as_str(),
                "message": row.message,
                "patch": row.patch,
                "matchConditionsEvaluated": !row.conditions_unevaluated,
            })
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap_or_default()
}

/// JUnit XML: a suite per plugin, a case per object.
pub fn junit(rows: &[Row]) -> String {
    let mut suites: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        suites.entry(&row.plugin).or_default().push(row);
    }
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"wicket audit\">\n",
    );
    for (plugin, rows) in suites {
        let count = |outcome: Outcome| rows.iter().filter(|row| row.outcome == outcome).count();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            escape(plugin),
            rows.len(),
            count(Outcome::Fail),
            count(Outcome::Error),
            count(Outcome::Skip)
        );
        for row in rows {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\"",
                escape(plugin),
                escape(&row.object),
                escape(&row.source)
            );
            let said = escape(&row.said());
            let _ = match row.outcome {
                Outcome::Fail => writeln!(xml, "><failure message=\"{said}\"/></testcase>"),
                Outcome::Error => writeln!(xml, "><error message=\"{said}\"/></testcase>"),
                Outcome::Skip => writeln!(xml, "><skipped message=\"{said}\"/></testcase>"),
                Outcome::Pass | Outcome::Warn | Outcome::Monitor if said.is_empty() => {
                    writeln!(xml, "/>")
                }
                Outcome::Pass | Outcome::Warn | Outcome::Monitor => writeln!(
                    xml,
                    "><system-out>{}: {said}</system-out></testcase>",
                    row.outcome.as_str()
                ),
            };
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// `text` safe inside an XML attribute or element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(plugin: &str, outcome: Outcome, message: &str) -> Row {
        Row {
            object: "Pod shop/web".into(),
            source: "app.yaml".into(),
            plugin: plugin.into(),
            outcome,
            message: message.into(),
            patch: None,
            conditions_unevaluated: false,
            subject: None,
            severity: None,
        }
    }

    #[test]
    fn each_format_says_each_outcome() {
        let rows = vec![
            row("require-owner", Outcome::Fail, "needs an \"owner\" <label>"),
            row("namespace-labels", Outcome::Pass, ""),
            row("guard", Outcome::Error, "timed out"),
        ];
        let table = table(&rows);
        assert!(table.starts_with("OBJECT        PLUGIN"), "{table}");
        assert!(table.contains("require-owner     fail"), "{table}");
        let json: Value = serde_json::from_str(&json(&rows)).unwrap();
        assert_eq!(json[2]["result"], "error");
        let xml = junit(&rows);
        assert!(
            xml.contains("<failure message=\"needs an &quot;owner&quot; &lt;label&gt;\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<testsuite name=\"guard\" tests=\"1\" failures=\"0\" errors=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"Pod shop/web\" file=\"app.yaml\"/>"),
            "{xml}"
        );
    }
}
