//! `wicket audit --cluster`: the objects already in a cluster, judged by the
//! validating plugins and pipelines whose rules select them, as CREATEs (as
//! the peers' audits do), and the results written back as OpenReports. The
//! cluster is read a page at a time and each page judged before the next is
//! asked for, so memory does not grow with the cluster: what stays is each
//! report's summary and at most `--max-results` results.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;

use super::command::{AuditConfig, Ended, Reading, load_auditor, subject_of};
use super::listing::{Pager, Target, targets};
use super::openreports::Reports;
use super::progress::Progress;
use super::publish::publish;
use super::report::Row;
use super::resources::Resource;
use super::run::{Auditor, Outcome};
use crate::cluster::kind::KindKey;
use crate::plugin::manifest::webhook::Rule;
use crate::text::with_causes;

/// Audits the cluster the kubeconfig (or the pod's service account) names.
pub async fn audit(config: &AuditConfig, reading: Reading) -> anyhow::Result<Ended> {
    let started = Instant::now();
    let client = crate::webhook::register::client()
        .await
        .context("reaching the API server")?;
    let mut auditor = load_auditor(config, |cluster| {
        cluster.go_live(client.clone(), Default::default());
    })
    .await?
    .stored_objects();
    let mut pager = Pager::new(client.clone(), reading.page_size, reading.qps);
    let mut unread = Vec::new();
    // Namespace selectors read the namespaces' labels.
    if let Err(error) = learn_namespaces(&mut pager, &mut auditor).await {
        unread.push(format!(
            "cannot list namespaces (namespace selectors then match no label): {}",
            with_causes(&error)
        ));
    }
    let (rules, skipped) = selecting(&auditor);
    let targets = targets(&client, &rules)
        .await
        .context("discovering the resources the plugins' rules select")?;
    for target in &targets {
        auditor.discovered(&target.kind, target.resource.clone());
    }
    let mut reports = Reports::new(SystemTime::now(), config.max_results);
    let mut tally: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut progress = Progress::new();
    for target in &targets {
        let judged = pager
            .each_object(target, async |object| {
                let subject = subject_of(&object);
                let (findings, _) = auditor.judge(object).await;
                progress.judged();
                for finding in findings {
                    *tally
                        .entry(finding.plugin.clone())
                        .or_default()
                        .entry(finding.outcome.as_str())
                        .or_default() += 1;
                    reports.add(&Row {
                        object: String::new(),
                        source: String::new(),
                        plugin: finding.plugin,
                        outcome: finding.outcome,
                        message: finding.message,
                        patch: None,
                        conditions_unevaluated: finding.conditions_unevaluated,
                        subject: Some(subject.clone()),
                        severity: finding.severity,
                    });
                }
            })
            .await;
        if let Err(error) = judged {
            unread.push(format!(
                "cannot list {} (its objects were not audited): {}",
                target.name(),
                with_causes(&error)
            ));
        }
    }
    progress.clear();
    let namespaces = reports.namespaces().count();
    // A partial run keeps the reports it could not refresh: a namespace
    // whose objects were not listed is not one with no results.
    let prune = unread.is_empty();
    let published = publish(&client, reports.finish(), prune).await;
    // Locked only now, with nothing left to await: logs from other threads
    // wait on it.
    let mut stderr = std::io::stderr().lock();
    for error in &unread {
        writeln!(stderr, "{error}")?;
    }
    for error in &published.errors {
        writeln!(stderr, "{}", with_causes(error))?;
    }
    if !prune {
        writeln!(stderr, "stale reports kept: the run was partial")?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(summary(&tally).as_bytes())?;
    for name in auditor.unregistered() {
        writeln!(
            stdout,
            "{name}: skipped: no [[webhook]] entries, the API server never calls it"
        )?;
    }
    for name in &skipped {
        writeln!(
            stdout,
            "{name}: skipped: its rules select no CREATE, and an audit judges stored objects as CREATEs"
        )?;
    }
    writeln!(
        stdout,
        "{} objects of {} resources judged in {:.1}s; {} of {namespaces} reports applied, {} stale deleted",
        progress.count(),
        targets.len(),
        started.elapsed().as_secs_f64(),
        published.applied,
        published.deleted,
    )?;
    Ok(match unread.is_empty() && published.errors.is_empty() {
        true => Ended::Clean,
        false => Ended::Unread,
    })
}

/// The rules that select what the validating ones judge, and the names of
/// those whose rules select no CREATE of a resource (an audit judges stored
/// objects as CREATEs, so it never calls them). One named with `--plugin`
/// judges every object listed for the others.
fn selecting(auditor: &Auditor) -> (Vec<&Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for (name, entries) in auditor.validating() {
        let creating: Vec<&Rule> = entries
            .iter()
            .flat_map(|entry| &entry.rules)
            .filter(|rule| {
                let creates = (rule.operations.iter()).any(|op| op == "*" || op == "CREATE");
                // `pods/eviction` and the like: no stored object is one.
                let main = (rule.resources.iter()).any(|r| !r.contains('/') || r == "*/*");
                creates && main
            })
            .collect();
        match (entries.is_empty(), creating.is_empty()) {
            (false, true) => skipped.push(name.to_owned()),
            _ => rules.extend(creating),
        }
    }
    (rules, skipped)
}

/// Learns every namespace's labels.
async fn learn_namespaces(pager: &mut Pager, auditor: &mut Auditor) -> Result<(), kube::Error> {
    let gvk = GroupVersionKind::gvk("", "v1", "Namespace");
    let target = Target {
        api: ApiResource::from_gvk_with_plural(&gvk, "namespaces"),
        kind: KindKey {
            group: String::new(),
            version: "v1".to_owned(),
            kind: "Namespace".to_owned(),
        },
        resource: Resource {
            plural: "namespaces".to_owned(),
            namespaced: false,
        },
    };
    pager
        .each_object(&target, async |namespace| auditor.learn(&namespace))
        .await
}

/// Per plugin, how many objects had each outcome.
fn summary(tally: &BTreeMap<String, BTreeMap<&'static str, u64>>) -> String {
    let outcomes = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Warn,
        Outcome::Monitor,
        Outcome::Error,
        Outcome::Skip,
    ];
    let mut rows = vec![
        std::iter::once("PLUGIN".to_owned())
            .chain(outcomes.iter().map(|o| o.as_str().to_uppercase()))
            .collect::<Vec<_>>(),
    ];
    for (plugin, counts) in tally {
        rows.push(
            std::iter::once(plugin.clone())
                .chain(
                    outcomes
                        .iter()
                        .map(|o| counts.get(o.as_str()).copied().unwrap_or(0).to_string()),
                )
                .collect(),
        );
    }
    super::report::aligned(&rows)
}
