//! Reading the plugin folder: which plugins it holds and their bytes.
//!
//! Files are read through symlinks, so Kubernetes' ConfigMap and Secret
//! volumes (files that are symlinks through a `..data` link swapped
//! atomically to a new directory) read as their current version. Names
//! starting with `.` are skipped: `..data`, the timestamped directories
//! behind it, and editors' temporary files.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// The file that defines pipelines; `pipelines` cannot name a plugin.
pub const PIPELINES_FILE: &str = "pipelines.toml";

/// What the folder holds for one plugin name.
pub enum PluginFiles {
    /// The component's bytes and the manifest's text, if there is one.
    Complete {
        /// `NAME.wasm`.
        wasm: Vec<u8>,
        /// `NAME.toml`, if present.
        manifest: Option<String>,
    },
    /// Why the name cannot be loaded at all.
    Broken(String),
    /// A file is there but cannot be read (permissions, a link to nothing
    /// or to a folder): like any bad new version, it replaces nothing.
    Unreadable(String),
}

/// The folder's contents.
pub struct Folder {
    /// Every plugin name seen, with its files.
    pub plugins: BTreeMap<String, PluginFiles>,
    /// The pipelines file's text (or why it could not be read), if present.
    pub pipelines: Option<Result<String, String>>,
}

/// Reads `dir`. Only an unreadable folder is an error; a bad file is
/// reported under its plugin's name.
pub fn scan(dir: &Path) -> io::Result<Folder> {
    let mut names: BTreeMap<String, bool> = BTreeMap::new();
    let mut pipelines = None;
    for entry in std::fs::read_dir(dir)? {
        let file_name = entry?.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        if file_name == PIPELINES_FILE {
            pipelines = Some(read_text(&dir.join(file_name)));
            continue;
        }
        let (stem, has_component) = match file_name.rsplit_once('.') {
            Some((stem, "wasm")) => (stem, true),
            Some((stem, "toml")) => (stem, false),
            _ => continue,
        };
        *names.entry(stem.to_owned()).or_insert(false) |= has_component;
    }
    let plugins = names
        .into_iter()
        .map(|(name, has_component)| {
            let files = read_plugin(dir, &name, has_component);
            (name, files)
        })
        .collect();
    Ok(Folder { plugins, pipelines })
}

fn read_plugin(dir: &Path, name: &str, has_component: bool) -> PluginFiles {
    if !crate::text::is_dns_label(name) {
        return PluginFiles::Broken(
            "the name is not a valid plugin name (lower-case letters, digits and '-', at most 63)"
                .into(),
        );
    }
    if name == "pipelines" {
        return PluginFiles::Broken(format!("the name is reserved for {PIPELINES_FILE}"));
    }
    if !has_component {
        return PluginFiles::Broken(format!("manifest has no {name}.wasm beside it"));
    }
    let wasm = match std::fs::read(dir.join(format!("{name}.wasm"))) {
        Ok(wasm) => wasm,
        Err(error) => return PluginFiles::Unreadable(format!("cannot read {name}.wasm: {error}")),
    };
    let manifest_path = dir.join(format!("{name}.toml"));
    let manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return PluginFiles::Unreadable(format!("cannot read {name}.toml: {error}")),
    };
    PluginFiles::Complete { wasm, manifest }
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}
