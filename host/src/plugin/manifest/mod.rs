//! A plugin's manifest (`NAME.toml` beside `NAME.wasm`): how it is served,
//! what happens when it fails, its limits and its settings.
//!
//! Every field has a default, so a plugin without a manifest is a validating
//! plugin with `failure-policy = "fail"`, the default limits and `{}` settings.

pub mod cluster;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::grant::{GrantError, Outbound};
use cluster::{ClusterFile, ClusterReadError, Read};
use webhook::{WebhookError, WebhookSpec};

/// Whether a plugin may change objects. It is served on `/mutate/NAME` or
/// `/validate/NAME` accordingly, and never on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Judges requests; a mutation from it is a plugin failure.
    #[default]
    Validating,
    /// May also return a change to the object.
    Mutating,
}

impl Mode {
    /// As the manifest spells it: `mutating` or `validating`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Validating => "validating",
            Mode::Mutating => "mutating",
        }
    }

    /// The first segment of the URL path the plugin is served on.
    pub fn path_prefix(self) -> &'static str {
        match self {
            Mode::Validating => "validate",
            Mode::Mutating => "mutate",
        }
    }
}

/// What Wicket answers when the plugin itself fails (traps, times out, runs
/// out of memory, returns malformed output or a patch that does not apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Deny with code 500 and a message naming the plugin and the cause.
    #[default]
    Fail,
    /// Allow without a patch, with a warning naming the plugin and the cause.
    Ignore,
}

impl FailurePolicy {
    /// As the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "fail",
            FailurePolicy::Ignore => "ignore",
        }
    }
}

/// What Wicket does with a plugin's (or pipeline's) verdict: enforce it,
/// or roll a new policy out by letting requests through while reporting
/// what it would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Denials deny and patches apply.
    #[default]
    Deny,
    /// A denial admits with the denial as a warning and an audit
    /// annotation; patches still apply.
    Warn,
    /// Everything admits unchanged; what would have happened is logged and
    /// written as an audit annotation.
    Monitor,
}

/// How much a refusal by the plugin matters, for audit reports
/// (OpenReports' `severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Critical.
    Critical,
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
    /// Information only.
    Info,
}

impl Severity {
    /// As the manifest and OpenReports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

impl Enforcement {
    /// As the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Deny => "deny",
            Enforcement::Warn => "warn",
            Enforcement::Monitor => "monitor",
        }
    }
}

/// Resource limits for one call into the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Limits {
    /// Deadline for one review, instantiation included, in the plugin's own
    /// time: CPU time while it runs plus its waits on its own I/O, not the
    /// time it waits for a slot or the CPU.
    pub timeout_ms: u64,
    /// Cap on the plugin's linear memory.
    pub memory_mib: u64,
    /// Cap on the total size of what the plugin returns (patch or object,
    /// messages, warnings, annotations).
    pub max_output_kib: u64,
    /// Instances of this plugin that may run at once; further reviews wait
    /// for one until their wall-clock bound. Keeps a slow or hostile plugin
    /// from taking the slots the other plugins need.
    pub max_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 200,
            memory_mib: 64,
            max_output_kib: 1024,
            max_concurrency: 32,
        }
    }
}

impl Limits {
    /// The largest deadline accepted: it must stay below the API server's
    /// default webhook timeout of 10 s.
    pub const MAX_TIMEOUT_MS: u64 = 9_000;
    /// The largest memory cap accepted; the instance pool reserves this much
    /// address space per slot.
    pub const MAX_MEMORY_MIB: u64 = 1024;
    /// The largest output cap accepted: the API server's request limit.
    pub const MAX_OUTPUT_KIB: u64 = 3 * 1024;
    /// The largest `max-concurrency` accepted.
    pub const MAX_CONCURRENCY: u32 = 1024;

    /// The deadline as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize) << 20
    }

    /// The output cap in bytes.
    pub fn max_output_bytes(&self) -> usize {
        (self.max_output_kib as usize) << 10
    }

    fn check(&self) -> Result<(), ManifestError> {
        let in_range = |value: u64, max: u64| (1..=max).contains(&value);
        if !in_range(self.timeout_ms, Self::MAX_TIMEOUT_MS) {
            return Err(ManifestError::OutOfRange(
                "limits.timeout-ms",
                Self::MAX_TIMEOUT_MS,
            ));
        }
        if !in_range(self.memory_mib, Self::MAX_MEMORY_MIB) {
            return Err(ManifestError::OutOfRange(
                "limits.memory-mib",
                Self::MAX_MEMORY_MIB,
            ));
        }
        if !in_range(self.max_output_kib, Self::MAX_OUTPUT_KIB) {
            return Err(ManifestError::OutOfRange(
                "limits.max-output-kib",
                Self::MAX_OUTPUT_KIB,
            ));
        }
        if !in_range(
            u64::from(self.max_concurrency),
            u64::from(Self::MAX_CONCURRENCY),
        ) {
            return Err(ManifestError::OutOfRange(
                "limits.max-concurrency",
                u64::from(Self::MAX_CONCURRENCY),
            ));
        }
        Ok(())
    }
}

/// A parsed, checked manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Mutating or validating.
    pub mode: Mode,
    /// What a plugin failure answers.
    pub failure_policy: FailurePolicy,
    /// Whether its verdicts are enforced.
    pub enforcement: Enforcement,
    /// How much its refusals matter, in audit reports.
    pub severity: Option<Severity>,
    /// Per-call limits.
    pub limits: Limits,
    /// The `[settings]` table as JSON text, handed to the plugin unchanged.
    pub settings_json: String,
    /// The SHA-256 (lower-case hex) the component must have, if pinned: a
    /// component that does not match is refused.
    pub sha256: Option<String>,
    /// Where the plugin may send HTTP requests; `None` (the default) means
    /// nowhere, and `wasi:http` is not even linked.
    pub outbound: Option<Arc<Outbound>>,
    /// How the API server should call it (`[[webhook]]` entries); none:
    /// Wicket serves it but does not register it.
    pub webhooks: Vec<WebhookSpec>,
    /// The kinds of other objects it reads (`[cluster]`); none: it reads
    /// nothing but the review.
    pub cluster: Vec<Read>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            mode: Mode::default(),
            failure_policy: FailurePolicy::default(),
            enforcement: Enforcement::default(),
            severity: None,
            limits: Limits::default(),
            settings_json: "{}".to_owned(),
            sha256: None,
            outbound: None,
            webhooks: Vec::new(),
            cluster: Vec::new(),
        }
    }
}

/// The manifest as written in TOML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ManifestFile {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    failure_policy: FailurePolicy,
    #[serde(default)]
    enforcement: Enforcement,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    settings: toml::Table,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    outbound: Option<Outbound>,
    #[serde(default)]
    webhook: Vec<WebhookSpec>,
    #[serde(default)]
    cluster: Option<ClusterFile>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML, or an unknown or mistyped field.
    #[error("invalid manifest")]
    Syntax(#[from] toml::de::Error),
    /// The settings cannot be expressed as JSON.
    #[error("settings cannot be converted to JSON")]
    Settings(#[from] serde_json::Error),
    /// A limit outside what Wicket accepts.
    #[error("{0} must be between 1 and {1}")]
    OutOfRange(&'static str, u64),
    /// A `sha256` pin that is not 64 hex digits.
    #[error("sha256 must be 64 hexadecimal digits")]
    BadDigest,
    /// An `[outbound]` table that grants nothing or sets a limit out of
    /// range.
    #[error(transparent)]
    Outbound(#[from] GrantError),
    /// A `[[webhook]]` entry the API server would refuse or that could not work.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// A `[cluster]` table that declares no kind, a kind twice, or a bad
    /// kind or index path.
    #[error(transparent)]
    Cluster(#[from] ClusterReadError),
}

impl Manifest {
    /// Parses and checks a manifest's TOML text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let file: ManifestFile = toml::from_str(text)?;
        file.limits.check()?;
        let sha256 = file.sha256.map(|pin| pin.to_ascii_lowercase());
        if let Some(pin) = &sha256
            && !(pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ManifestError::BadDigest);
        }
        webhook::check(
            &file.webhook,
            file.mode == Mode::Mutating,
            file.limits.timeout_ms,
        )?;
        if let Some(outbound) = &file.outbound {
            outbound.check()?;
        }
        let cluster = match file.cluster {
            Some(cluster) => cluster.reads()?,
            None => Vec::new(),
        };
        Ok(Manifest {
            mode: file.mode,
            failure_policy: file.failure_policy,
            enforcement: file.enforcement,
            severity: file.severity,
            limits: file.limits,
            settings_json: serde_json::to_string(&file.settings)?,
            sha256,
            outbound: file.outbound.map(Arc::new),
            webhooks: file.webhook,
            cluster,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_manifest_is_all_defaults() {
        assert_eq!(Manifest::parse("").unwrap(), Manifest::default());
    }

    #[test]
    fn full_manifest_parses_and_settings_become_json() {
        let manifest = Manifest::parse(
            r#"
            mode = "mutating"
            failure-policy = "ignore"
            [limits]
            timeout-ms = 50
            memory-mib = 16
            [settings]
            prefix = "example.com"
            sidecars = [{ name = "proxy", port = 15001 }]
            "#,
        )
        .unwrap();
        assert_eq!(manifest.mode, Mode::Mutating);
        assert_eq!(manifest.failure_policy, FailurePolicy::Ignore);
        assert_eq!(manifest.limits.timeout_ms, 50);
        assert_eq!(manifest.limits.memory_bytes(), 16 << 20);
        assert_eq!(manifest.limits.max_output_kib, 1024);
        let settings: serde_json::Value = serde_json::from_str(&manifest.settings_json).unwrap();
        assert_eq!(
            settings,
            serde_json::json!({"prefix": "example.com", "sidecars": [{"name": "proxy", "port": 15001}]})
        );
    }

    #[test]
    fn unknown_fields_and_bad_limits_are_refused() {
        assert!(matches!(
            Manifest::parse("mdoe = \"mutating\""),
            Err(ManifestError::Syntax(_))
        ));
        assert!(matches!(
            Manifest::parse("mode = \"sideways\""),
            Err(ManifestError::Syntax(_))
        ));
        assert!(matches!(
            Manifest::parse("[limits]\ntimeout-ms = 0"),
            Err(ManifestError::OutOfRange("limits.timeout-ms", _))
        ));
        assert!(matches!(
            Manifest::parse("[limits]\nmemory-mib = 4096"),
            Err(ManifestError::OutOfRange("limits.memory-mib", _))
        ));
    }

    #[test]
    fn cluster_reads_are_parsed_and_checked() {
        let manifest = Manifest::parse(
            r#"[cluster]
            read = [
              { api-version = "networking.k8s.io/v1", kind = "Ingress", index = { host = "/spec/rules/*/host" } },
              { api-version = "v1", kind = "Namespace", metadata-only = true },
            ]"#,
        )
        .unwrap();
        let [ingress, namespace] = &manifest.cluster[..] else {
            panic!("{:?}", manifest.cluster);
        };
        assert_eq!(ingress.kind.kind_group(), "Ingress.networking.k8s.io");
        assert_eq!(ingress.indexes["host"].to_string(), "/spec/rules/*/host");
        assert!(namespace.metadata_only && !ingress.metadata_only);
        for (bad, why) in [
            ("[cluster]\nread = []", "no kind"),
            (
                "[cluster]\nread = [{ api-version = \"v1\", kind = \"\" }]",
                "kind",
            ),
            (
                "[cluster]\nread = [{ api-version = \"v1\", kind = \"Pod\" }, { api-version = \"v1\", kind = \"Pod\" }]",
                "twice",
            ),
            (
                "[cluster]\nread = [{ api-version = \"v1\", kind = \"Pod\", index = { x = \"spec\" } }]",
                "JSON Pointer",
            ),
            (
                "[cluster]\nread = [{ apiVersion = \"v1\", kind = \"Pod\" }]",
                "unknown field",
            ),
        ] {
            let error = Manifest::parse(bad).unwrap_err();
            let chain = crate::text::with_causes(&error);
            assert!(chain.contains(why), "{bad}: {chain}");
        }
    }

    #[test]
    fn outbound_grants_are_parsed_and_checked() {
        let manifest = Manifest::parse(
            "[outbound]\nallowed-hosts = [\"127.0.0.2:2379\", \"*.etcd.svc:2379\"]\ntimeout-ms = 300",
        )
        .unwrap();
        let outbound = manifest.outbound.unwrap();
        assert_eq!(outbound.timeout_ms, 300);
        assert_eq!(outbound.max_response_kib, 1024);
        assert_eq!(outbound.allowed_hosts[1].to_string(), "*.etcd.svc:2379");
        for (bad, why) in [
            ("[outbound]\nallowed-hosts = []", "at least one"),
            (
                "[outbound]\nallowed-hosts = [\"x:1\"]\ntimeout-ms = 0",
                "timeout-ms",
            ),
            ("[outbound]\nallowed-hosts = [\"*\"]", "HOST:PORT"),
        ] {
            let error = Manifest::parse(bad).unwrap_err();
            let chain = format!("{error} {:?}", std::error::Error::source(&error));
            assert!(chain.contains(why), "{bad}: {chain}");
        }
    }
}
