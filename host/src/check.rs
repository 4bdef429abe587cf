//! `wicket check`: load one plugin exactly as `wicket serve` would and,
//! optionally, judge one captured `AdmissionReview` with it, without a
//! server. For pipelines that build plugins (does it load, does it accept its
//! settings?) and for trying a plugin on a real request. [`Standalone`] is
//! also what `wicket test` ([`crate::suite`]) runs its cases on.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cluster::{Cluster, ClusterConfig, folder};
use crate::document::Documents;
use crate::judge::judge;
use crate::plugin::{Overload, Plugin, Runtime, RuntimeConfig};
use crate::registry::{load_plugin, served_path};
use crate::review::{self, DecodeError};
use crate::text::with_causes;

/// A plugin given by its files.
#[derive(Debug, Clone)]
pub struct ComponentFiles {
    /// The component.
    pub wasm: PathBuf,
    /// Its manifest; `None` means `NAME.toml` beside the component.
    pub manifest: Option<PathBuf>,
    /// The plugin's name; `None` derives it from the file name (`_` → `-`,
    /// as cargo names `my-plugin`'s output `my_plugin.wasm`).
    pub name: Option<String>,
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The plugin.
    pub plugin: ComponentFiles,
    /// A request to judge.
    pub review: Option<PathBuf>,
    /// What the plugin may read of the cluster, and where from.
    pub cluster: ClusterConfig,
    /// The compile cache (`--cache-dir`), shared with `serve`.
    pub cache_dir: Option<PathBuf>,
}

/// A plugin loaded as `serve` loads it, on a runtime of its own.
pub struct Standalone {
    plugin: Plugin,
    /// Kept for as long as the plugin runs on it.
    runtime: Runtime,
}

/// Why a review body got no answer.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The body is not a usable `AdmissionReview` (`serve` answers 400).
    #[error("not a usable AdmissionReview")]
    BadReview(#[source] DecodeError),
    /// The host could not run the plugin in time (`serve` answers 503).
    #[error("the plugin could not run")]
    Overloaded(#[source] Overload),
}

impl ComponentFiles {
    /// Loads the plugin exactly as `serve` would: compiled, its world and
    /// imports checked, its manifest parsed (its cluster reads checked
    /// against `cluster.allow`), its `validate-settings` run; its cluster
    /// reads served from `cluster.objects`. Compiled through `cache_dir`
    /// when given: an interpreted plugin's component takes seconds to
    /// compile, and an author runs its cases again and again.
    pub async fn load(
        &self,
        cluster: &ClusterConfig,
        cache_dir: Option<&Path>,
    ) -> anyhow::Result<Standalone> {
        let stem = self
            .wasm
            .file_stem()
            .context("the component path has no file name")?
            .to_string_lossy();
        let name = self.name.clone().unwrap_or_else(|| stem.replace('_', "-"));
        let manifest = self
            .manifest
            .clone()
            .unwrap_or_else(|| self.wasm.with_file_name(format!("{stem}.toml")));
        let runtime = Runtime::new(&RuntimeConfig {
            cluster_allow: cluster.allow.clone(),
            cache_dir: cache_dir.map(Path::to_owned),
            ..RuntimeConfig::default()
        })
        .context("starting the WebAssembly runtime")?;
        if let Some(dir) = &cluster.objects {
            folder::serve(dir, runtime.cluster()).context("--cluster-objects")?;
        }
        let plugin = load_plugin(&runtime, &name, &self.wasm, &manifest)
            .await
            .map_err(|error| {
                anyhow::anyhow!("plugin {name} does not load: {}", with_causes(&error))
            })?;
        Ok(Standalone { plugin, runtime })
    }
}

impl Standalone {
    /// The plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The objects its cluster reads are served from.
    pub fn cluster(&self) -> &Cluster {
        self.runtime.cluster()
    }

    /// Judges one `AdmissionReview` body as `serve` would, and returns the
    /// `AdmissionReview` answer `serve` would send.
    pub async fn answer(&self, body: &[u8]) -> Result<Vec<u8>, JudgeError> {
        let review = review::decode(body).map_err(JudgeError::BadReview)?;
        let plugin = &self.plugin;
        let documents = Documents::of(&review.request);
        let decision = judge(plugin, &review.request, &documents, plugin.wall_bound())
            .await
            .map_err(JudgeError::Overloaded)?;
        Ok(review::encode(
            review.api_version,
            &review.request.uid,
            &decision.response,
        ))
    }
}

/// Loads the plugin, prints where it would be served and, given a request,
/// prints the `AdmissionReview` answer Wicket would send.
pub async fn check(config: &CheckConfig) -> anyhow::Result<()> {
    let loaded = config
        .plugin
        .load(&config.cluster, config.cache_dir.as_deref())
        .await?;
    let plugin = loaded.plugin();
    let mode = plugin.manifest().mode;
    let mut report = format!(
        "{}: loads; a {} plugin served at {}\n",
        plugin.name(),
        mode.as_str(),
        served_path(mode, plugin.name())
    );
    if let Some(path) = &config.review {
        let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let answer = loaded
            .answer(&body)
            .await
            .map_err(|error| anyhow::anyhow!("{}: {}", path.display(), with_causes(&error)))?;
        report.push_str(&String::from_utf8_lossy(&answer));
        report.push('\n');
    }
    print(&report)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
