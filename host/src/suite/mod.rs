//! `wicket test`: runs a plugin against folders of cases — each a review
//! and the answer expected — through the same load and judge path as
//! `serve` ([`Standalone`]), and reports each case as passed or failed.
//!
//! A case folder holds case files (`*.yaml`, `*.yml`, `*.json`; see
//! [`case`]) and, unless `--plugin` is given, a `suite.yaml` naming the
//! plugin's files relative to it:
//!
//! ```yaml
//! plugin: ../../../target/wasm32-wasip2/release/require_owner.wasm
//! manifest: ../../../deploy/plugins/require-owner.toml   # default: NAME.toml beside it
//! name: require-owner                                   # default: from the file name
//! cluster: [objects/]                                   # objects every case reads
//! ```
//!
//! A case's plugin reads the cluster (see `cluster`) from the objects of
//! `--cluster-objects`, its suite's `cluster:` and its own `cluster:`
//! together; when none of the three gives any, it has no cluster source
//! (its reads are `unavailable`).

mod case;
mod expect;
mod report;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

use crate::check::{self, ComponentFiles, Standalone};
use crate::cluster::{ClusterConfig, Objects};
use crate::text::with_causes;
use case::CaseError;
use case::ClusterEntry;
use report::{CaseOutcome, SuiteOutcome};

/// The file in a case folder that names its plugin.
pub const SUITE_FILE: &str = "suite.yaml";

/// How to print the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per case, what differs under a failed one.
    Text,
    /// One JSON document.
    Json,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// Case folders or case files.
    pub paths: Vec<PathBuf>,
    /// The plugin, instead of each folder's `suite.yaml`.
    pub plugin: Option<ComponentFiles>,
    /// How to print the results.
    pub format: Format,
    /// What plugins may read, and objects under every case's.
    pub cluster: ClusterConfig,
    /// The compile cache (`--cache-dir`), shared with `serve`.
    pub cache_dir: Option<PathBuf>,
}

/// `suite.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    plugin: PathBuf,
    manifest: Option<PathBuf>,
    name: Option<String>,
    cluster: Option<Vec<ClusterEntry>>,
}

/// A suite's plugin, its case files, and the objects all its cases read.
struct Suite {
    plugin: ComponentFiles,
    files: Vec<PathBuf>,
    cluster: Option<Vec<Value>>,
}

/// Runs every case and prints the report; `Ok(false)` when a case failed,
/// an error when a plugin does not load or a path names no cases.
pub async fn test(config: &TestConfig) -> anyhow::Result<bool> {
    let base = match &config.cluster.objects {
        Some(dir) => Some(crate::objects::read_path(dir).context("--cluster-objects")?),
        None => None,
    };
    let mut suites = Vec::new();
    for path in &config.paths {
        let suite = suite_at(path, config.plugin.as_ref())?;
        let loaded = suite
            .plugin
            .load(
                &ClusterConfig {
                    objects: None,
                    allow: config.cluster.allow.clone(),
                },
                config.cache_dir.as_deref(),
            )
            .await?;
        let shared = join(base.clone(), suite.cluster);
        let mut cases = Vec::new();
        for file in suite.files {
            cases.extend(run_file(&loaded, &file, &shared).await);
        }
        suites.push(SuiteOutcome {
            plugin: loaded.plugin().name().to_owned(),
            cases,
        });
    }
    let passed = suites
        .iter()
        .all(|suite| suite.cases.iter().all(CaseOutcome::passed));
    check::print(&match config.format {
        Format::Text => report::text(&suites),
        Format::Json => report::json(&suites),
    })?;
    Ok(passed)
}

/// The plugin and the case files of `path`: a folder's case files, or one
/// case file; the plugin from `given` or the `suite.yaml` beside them.
fn suite_at(path: &Path, given: Option<&ComponentFiles>) -> anyhow::Result<Suite> {
    let (dir, files) = match path.is_dir() {
        true => (path.to_owned(), case_files(path)?),
        false => (
            path.parent().unwrap_or(Path::new(".")).to_owned(),
            vec![path.to_owned()],
        ),
    };
    anyhow::ensure!(!files.is_empty(), "{} holds no case files", path.display());
    let suite_file = dir.join(SUITE_FILE);
    let (plugin, cluster) = match given {
        Some(plugin) if !suite_file.exists() => (plugin.clone(), None),
        Some(plugin) => (plugin.clone(), read_suite(&suite_file)?.1),
        None => read_suite(&suite_file)?,
    };
    Ok(Suite {
        plugin,
        files,
        cluster,
    })
}

/// The case files of `dir`, by name.
fn case_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let is_case = matches!(
            path.extension().and_then(|extension| extension.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if is_case && path.file_name() != Some(SUITE_FILE.as_ref()) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The plugin `suite.yaml` names and the objects its cases read, its paths
/// taken from the file's folder.
fn read_suite(file: &Path) -> anyhow::Result<(ComponentFiles, Option<Vec<Value>>)> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "reading {} (or name the plugin with --plugin)",
            file.display()
        )
    })?;
    let suite: SuiteFile =
        serde_saphyr::from_str(&text).with_context(|| format!("reading {}", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let cluster = suite
        .cluster
        .map(|entries| case::cluster_objects(entries, dir))
        .transpose()
        .with_context(|| format!("reading {}", file.display()))?;
    let plugin = ComponentFiles {
        wasm: dir.join(suite.plugin),
        manifest: suite.manifest.map(|manifest| dir.join(manifest)),
        name: suite.name,
    };
    Ok((plugin, cluster))
}

/// The objects of two layers of cluster state; none when neither gives any.
fn join(under: Option<Vec<Value>>, over: Option<Vec<Value>>) -> Option<Vec<Value>> {
    match (under, over) {
        (None, None) => None,
        (under, over) => Some(under.into_iter().chain(over).flatten().collect()),
    }
}

/// Runs the cases of one file; a file that gives no cases is one failed
/// case saying why.
async fn run_file(
    loaded: &Standalone,
    file: &Path,
    shared: &Option<Vec<Value>>,
) -> Vec<CaseOutcome> {
    let cases = match case::read(file) {
        Ok(cases) => cases,
        Err(error) => {
            return vec![unreadable(file, &error)];
        }
    };
    let mut outcomes = Vec::new();
    for mut case in cases {
        match join(shared.clone(), case.cluster.take()) {
            Some(objects) => loaded
                .cluster()
                .set(Objects::new(objects, "the case's cluster state")),
            None => loaded.cluster().clear(),
        }
        outcomes.push(run_case(loaded, file, case).await);
    }
    outcomes
}

async fn run_case(loaded: &Standalone, file: &Path, case: case::Case) -> CaseOutcome {
    let body = case.review.to_string();
    let answer = match loaded.answer(body.as_bytes()).await {
        Ok(answer) => answer,
        Err(error) => {
            return CaseOutcome {
                name: case.name,
                file: file.to_owned(),
                differences: vec![format!("no answer: {}", with_causes(&error))],
                answer: None,
            };
        }
    };
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
    CaseOutcome {
        name: case.name,
        file: file.to_owned(),
        differences: expect::differences(&case.expect, &case.review, &answer),
        answer: Some(answer),
    }
}

fn unreadable(file: &Path, error: &CaseError) -> CaseOutcome {
    CaseOutcome {
        name: case::default_name(file),
        file: file.to_owned(),
        differences: vec![format!("unreadable case file: {}", with_causes(error))],
        answer: None,
    }
}
