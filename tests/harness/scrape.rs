//! Reading a `/metrics` scrape (OpenMetrics text) by metric name and labels.

use std::collections::BTreeMap;

/// One scrape: each sample's name and labels, with its value.
#[derive(Debug)]
pub struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Parses `text`; panics on a sample line it cannot read.
    pub fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("unreadable sample {line:?}")))
            .collect();
        Scrape { text, samples }
    }

    /// The value of the sample `name` whose labels include all of `labels`;
    /// panics (showing the scrape) unless exactly one matches.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self.matching(name, labels).collect();
        match matching.as_slice() {
            [value] => *value,
            _ => panic!(
                "{} samples of {name} with {labels:?} in:\n{}",
                matching.len(),
                self.text
            ),
        }
    }

    /// The sum of the samples `name` that have all of `labels`: 0 when
    /// there are none (a counter not yet created).
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).sum()
    }

    /// Whether a sample `name` has all of `labels`.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.matching(name, labels).next().is_some()
    }

    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> impl Iterator<Item = f64> {
        self.samples
            .iter()
            .filter(move |(sample, sample_labels, _)| {
                sample == name
                    && labels.iter().all(|(key, value)| {
                        sample_labels.get(*key).map(String::as_str) == Some(value)
                    })
            })
            .map(|(_, _, value)| *value)
    }

    /// The scrape as text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// `name{key="value",...} value` (label values without escaped quotes).
fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series.to_owned(), BTreeMap::new(), value));
    };
    let mut parsed = BTreeMap::new();
    let mut rest = labels.strip_suffix('}')?;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        parsed.insert(key.to_owned(), value.to_owned());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    Some((name.to_owned(), parsed, value))
}
