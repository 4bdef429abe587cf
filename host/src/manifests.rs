//! `wicket manifests`: load a plugin folder exactly as `wicket serve` would
//! and print the webhook configurations that register what it serves, and
//! the RBAC that lets Wicket read what its plugins read of the cluster.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cluster::rbac;
use crate::plugin::RuntimeConfig;
use crate::registry::Registry;
use crate::webhook::{Registration, render};

/// What to render.
#[derive(Debug, Clone)]
pub struct ManifestsConfig {
    /// The plugin folder.
    pub plugins_dir: PathBuf,
    /// Where the configurations point.
    pub registration: Registration,
    /// The CA bundle (PEM) the API server should trust; `None` leaves
    /// `caBundle` out, for a controller that injects it (cert-manager).
    pub ca_file: Option<PathBuf>,
    /// Wicket's namespace and service account, granted the plugins' reads.
    pub reader: Option<(String, String)>,
}

/// The name of the ClusterRole (and binding) granting the plugins' reads.
pub const CLUSTER_READS_ROLE: &str = "wicket-cluster-reads";

/// Prints the two configurations as YAML on stdout; what is served but not
/// registered, and why, goes to stderr.
pub async fn manifests(config: &ManifestsConfig) -> anyhow::Result<()> {
    let ca_bundle = match &config.ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the CA bundle {}", path.display()))?,
        ),
        None => None,
    };
    let runtime = RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    };
    let snapshot = Registry::load_once(&runtime, config.plugins_dir.clone()).await?;
    let mut stderr = std::io::stderr().lock();
    for (name, reason) in snapshot.refused() {
        writeln!(stderr, "not registered: {name}: not loaded: {reason}")?;
    }
    let targets = snapshot.webhook_targets();
    for target in targets.iter().filter(|target| target.webhooks.is_empty()) {
        writeln!(
            stderr,
            "not registered: {}: served on {} but has no [[webhook]] entries",
            target.name, target.path
        )?;
    }
    if ca_bundle.is_none() {
        writeln!(
            stderr,
            "no --ca-file or --tls-dir: caBundle left out for another controller to inject"
        )?;
    }
    let configurations = render::render(&targets, &config.registration, ca_bundle.as_deref());
    let mut yaml = render::to_yaml(&configurations).context("writing YAML")?;
    let reads = snapshot.cluster_reads();
    match &config.reader {
        _ if reads.is_empty() => {}
        Some((namespace, service_account)) => {
            let (role, binding) =
                rbac::grant(&reads, CLUSTER_READS_ROLE, namespace, service_account);
            yaml.push_str(&format!(
                "---\n{}---\n{}",
                serde_saphyr::to_string(&role).context("writing YAML")?,
                serde_saphyr::to_string(&binding).context("writing YAML")?,
            ));
        }
        None => writeln!(
            stderr,
            "no --namespace: the ClusterRole granting the plugins' reads of the cluster is left out"
        )?,
    }
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}
