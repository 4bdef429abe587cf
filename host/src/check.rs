//! `wicket check`: load one plugin exactly as `wicket serve` would and,
//! optionally, judge one captured `AdmissionReview` with it, without a
//! server. For pipelines that build plugins (does it load, does it accept its
//! settings?) and for trying a plugin on a real request.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::admit;
use crate::plugin::{Mode, Runtime, RuntimeConfig};
use crate::registry::{load_plugin, served_path};
use crate::review;
use crate::text::with_causes;

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// The component.
    pub wasm: PathBuf,
    /// Its manifest; `None` means `NAME.toml` beside the component.
    pub manifest: Option<PathBuf>,
    /// The plugin's name; `None` derives it from the file name (`_` → `-`,
    /// as cargo names `my-plugin`'s output `my_plugin.wasm`).
    pub name: Option<String>,
    /// A request to judge.
    pub review: Option<PathBuf>,
}

/// Loads the plugin, prints where it would be served and, given a request,
/// prints the `AdmissionReview` answer Wicket would send.
pub async fn check(config: &CheckConfig) -> anyhow::Result<()> {
    let stem = config
        .wasm
        .file_stem()
        .context("the component path has no file name")?
        .to_string_lossy();
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| stem.replace('_', "-"));
    let manifest = config
        .manifest
        .clone()
        .unwrap_or_else(|| config.wasm.with_file_name(format!("{stem}.toml")));
    let runtime = Runtime::new(&RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .context("starting the WebAssembly runtime")?;
    let plugin = load_plugin(&runtime, &name, &config.wasm, &manifest)
        .await
        .map_err(|error| anyhow::anyhow!("plugin {name} does not load: {}", with_causes(&error)))?;
    let mode = plugin.manifest().mode;
    let mut report = format!(
        "{name}: loads; a {} plugin served at {}\n",
        match mode {
            Mode::Mutating => "mutating",
            Mode::Validating => "validating",
        },
        served_path(mode, &name)
    );
    if let Some(path) = &config.review {
        report.push_str(&judge_file(&plugin, path).await?);
        report.push('\n');
    }
    print(&report)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

async fn judge_file(plugin: &crate::plugin::Plugin, path: &Path) -> anyhow::Result<String> {
    let body = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let review = review::decode(&body)
        .map_err(|error| anyhow::anyhow!("{}: {}", path.display(), with_causes(&error)))?;
    let decision = admit::judge(plugin, &review.request, plugin.wall_bound())
        .await
        .context("the plugin could not run")?;
    let encoded = review::encode(review.api_version, &review.request.uid, &decision.response);
    Ok(String::from_utf8(encoded)?)
}
