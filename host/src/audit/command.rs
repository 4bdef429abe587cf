//! `wicket audit --plugins DIR PATHS...`: loads the folder as `serve`
//! does, reads the objects, judges each with the [`Auditor`] and prints one
//! row per result, as a table, JSON or JUnit.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use std::sync::Arc;

use super::progress::Progress;
use super::report::{self, Row};
use super::request::Requester;
use super::resources::Resources;
use super::run::{Auditor, Outcome};
use crate::cluster::{Cluster, ClusterConfig, Objects};
use crate::plugin::{Runtime, RuntimeConfig};
use crate::registry::{Registry, Trigger};

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The plugin folder.
    pub plugins_dir: PathBuf,
    /// Files and folders of objects.
    pub paths: Vec<PathBuf>,
    /// `Kind[.group]=plural[:cluster]` for kinds the table does not know.
    pub resources: Vec<String>,
    /// Who the reviews say asks.
    pub requester: Requester,
    /// What plugins may read of the cluster, and objects besides the
    /// audited ones to serve as the cluster.
    pub cluster: ClusterConfig,
    /// How to print the results.
    pub format: Format,
    /// Whether a warning or a monitored refusal counts as a refusal too.
    pub strict: bool,
    /// Plugins and pipelines that judge every object, whatever their
    /// `[[webhook]]` entries.
    pub forced: Vec<String>,
    /// Where to write each object as the mutating plugins left it.
    pub write_mutated: Option<PathBuf>,
    /// Whether plugins may make the outbound calls their manifests grant.
    pub allow_outbound: bool,
    /// Labels of namespaces the input does not hold.
    pub namespace_labels: Vec<(String, BTreeMap<String, String>)>,
    /// Results kept in each OpenReports report (the rest counted only).
    pub max_results: Option<usize>,
    /// Audit the cluster instead of files, read this way.
    pub in_cluster: Option<Reading>,
}

/// How `wicket audit` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table.
    Table,
    /// A JSON array.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
    /// OpenReports `Report`s and a `ClusterReport`, for `kubectl apply`.
    OpenReports,
}

/// How an audit ended, as its exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Nothing refused, every document read (exit 0).
    Clean,
    /// Something refused (exit 1).
    Refused,
    /// Nothing refused, but a document or file could not be read (exit 2).
    Unread,
}

/// How `wicket audit --cluster` reads the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Objects per list request.
    pub page_size: u32,
    /// List requests a second, at most.
    pub qps: f64,
}

/// Audits files (`config.in_cluster` is for [`super::in_cluster::audit`]).
pub async fn audit(config: &AuditConfig) -> anyhow::Result<Ended> {
    // Every object first: the audited ones are the cluster cluster-aware
    // plugins read (a Namespace in the input labels its pods), with
    // --cluster-objects besides.
    let input = super::input::read(&config.paths);
    // Locked only while written to: logs from other threads wait on it.
    for error in &input.errors {
        writeln!(std::io::stderr().lock(), "{error}")?;
    }
    let audited = input.objects;
    let mut cluster: Vec<_> = audited
        .iter()
        .map(|audited| audited.object.clone())
        .collect();
    if let Some(dir) = &config.cluster.objects {
        cluster.extend(crate::objects::read_path(dir).context("--cluster-objects")?);
    }
    // What objects tell of others (Namespaces' labels, CRDs' resources),
    // kept apart: the objects go to the cluster.
    let telling: Vec<serde_json::Value> = cluster
        .iter()
        .filter(|object| {
            let kind = object.get("kind").and_then(serde_json::Value::as_str);
            matches!(kind, Some("Namespace" | "CustomResourceDefinition"))
        })
        .cloned()
        .collect();
    let mut auditor = load_auditor(config, |plugins_cluster| {
        plugins_cluster.set(Objects::new(cluster, "the audited objects"));
    })
    .await?;
    for object in &telling {
        auditor.learn(object);
    }
    let mut rows: Vec<Row> = auditor
        .unregistered()
        .into_iter()
        .map(|name| Row {
            object: "-".to_owned(),
            source: "-".to_owned(),
            plugin: name,
            outcome: Outcome::Skip,
            message: "no [[webhook]] entries: the API server never calls it".to_owned(),
            patch: None,
            conditions_unevaluated: false,
            subject: None,
            severity: None,
        })
        .collect();
    let mut progress = Progress::new();
    for audited in audited {
        let name = object_name(&audited.object);
        let subject = subject_of(&audited.object);
        let (findings, mutated) = auditor.judge(audited.object).await;
        progress.judged();
        if let Some(dir) = &config.write_mutated {
            write_object(dir, &mutated)?;
        }
        rows.extend(findings.into_iter().map(|finding| Row {
            object: name.clone(),
            source: audited.source.clone(),
            plugin: finding.plugin,
            outcome: finding.outcome,
            message: finding.message,
            patch: finding.patch,
            conditions_unevaluated: finding.conditions_unevaluated,
            subject: Some(subject.clone()),
            severity: finding.severity,
        }));
    }
    progress.clear();
    let printed = match config.format {
        Format::Table => report::table(&rows),
        Format::Json => report::json(&rows),
        Format::Junit => report::junit(&rows),
        Format::OpenReports => {
            let reports = super::openreports::reports(
                &rows,
                std::time::SystemTime::now(),
                config.max_results,
            );
            let documents: Result<Vec<String>, _> =
                reports.iter().map(serde_saphyr::to_string).collect();
            documents
                .context("writing YAML")?
                .into_iter()
                .map(|document| format!("---\n{document}"))
                .collect()
        }
    };
    std::io::stdout()
        .lock()
        .write_all(printed.as_bytes())
        .context("writing the results")?;
    let refusal = |outcome: Outcome| match outcome {
        Outcome::Fail => true,
        Outcome::Warn | Outcome::Monitor => config.strict,
        Outcome::Pass | Outcome::Error | Outcome::Skip => false,
    };
    Ok(
        match (
            rows.iter().any(|row| refusal(row.outcome)),
            input.errors.is_empty(),
        ) {
            (true, _) => Ended::Refused,
            (false, true) => Ended::Clean,
            (false, false) => Ended::Unread,
        },
    )
}

/// Loads the plugin folder as `serve` does, with `attach` giving plugins
/// their cluster, and the auditor of what it serves.
pub async fn load_auditor(
    config: &AuditConfig,
    attach: impl FnOnce(&Cluster),
) -> anyhow::Result<Auditor> {
    let resources = Resources::new(&config.resources)?;
    let runtime = Arc::new(Runtime::new(&RuntimeConfig {
        cluster_allow: config.cluster.allow.clone(),
        outbound_denied: !config.allow_outbound,
        ..RuntimeConfig::default()
    })?);
    attach(runtime.cluster());
    let registry = Registry::new(runtime, config.plugins_dir.clone());
    registry
        .load_all(Trigger::Start)
        .await
        .with_context(|| format!("reading the plugin folder {}", config.plugins_dir.display()))?;
    let plugins = registry.snapshot();
    let mut stderr = std::io::stderr().lock();
    for (name, reason) in plugins.refused() {
        writeln!(stderr, "not loaded: {name}: {reason}")?;
    }
    let mut auditor = Auditor::new(
        &plugins,
        resources,
        config.requester.clone(),
        &config.forced,
    );
    for (namespace, labels) in &config.namespace_labels {
        auditor.namespace_labels(namespace, labels.clone());
    }
    Ok(auditor)
}

/// Writes `object` to `dir/NAMESPACE/KIND.NAME.yaml` (`_cluster` for a
/// cluster-scoped one), for `kubectl apply -R -f DIR`.
fn write_object(dir: &std::path::Path, object: &serde_json::Value) -> anyhow::Result<()> {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    let folder = dir.join(match text("/metadata/namespace") {
        "" => "_cluster",
        namespace => namespace,
    });
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let file = folder.join(format!(
        "{}.{}.yaml",
        text("/kind").to_lowercase(),
        text("/metadata/name")
    ));
    let yaml = serde_saphyr::to_string(object).context("writing YAML")?;
    std::fs::write(&file, yaml).with_context(|| format!("writing {}", file.display()))
}

/// `object` as an `ObjectReference`.
pub fn subject_of(object: &serde_json::Value) -> serde_json::Value {
    let mut subject = serde_json::Map::new();
    for (field, pointer) in [
        ("apiVersion", "/apiVersion"),
        ("kind", "/kind"),
        ("namespace", "/metadata/namespace"),
        ("name", "/metadata/name"),
        ("uid", "/metadata/uid"),
    ] {
        if let Some(value) = object.pointer(pointer).filter(|value| value.is_string()) {
            subject.insert(field.to_owned(), value.clone());
        }
    }
    serde_json::Value::Object(subject)
}

/// `Kind namespace/name`, as the rows name an object.
fn object_name(object: &serde_json::Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    match text("/metadata/namespace") {
        "" => format!("{} {}", text("/kind"), text("/metadata/name")),
        namespace => format!("{} {namespace}/{}", text("/kind"), text("/metadata/name")),
    }
}
