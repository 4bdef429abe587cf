//! Reading the plugin folder: which plugins it holds and their bytes.
//!
//! A plugin's files are read (and then hashed) only when `stat` says they
//! changed since they were last read: a rescan of an unchanged folder costs
//! a few `stat` calls, whatever the size of the components.
//!
//! Files are read through symlinks, so Kubernetes' ConfigMap and Secret
//! volumes (files that are symlinks through a `..data` link swapped
//! atomically to a new directory) read as their current version. Names
//! starting with `.` are skipped: `..data`, the timestamped directories
//! behind it, and editors' temporary files.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt as _;
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
        /// What `stat` said just before they were read.
        stamp: Option<Stamp>,
    },
    /// `stat` says the files are the ones last read: they were not read.
    Unchanged,
    /// Why the name cannot be loaded at all.
    Broken(FilesError),
    /// A file is there but cannot be read (permissions, a link to nothing
    /// or to a folder): like any bad new version, it replaces nothing.
    Unreadable(FilesError),
}

/// What is wrong with a plugin's files.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The name cannot be a URL path segment.
    #[error("the name is not a valid plugin name (lower-case letters, digits and '-', at most 63)")]
    BadName,
    /// The name is the pipelines file's.
    #[error("the name is reserved for {PIPELINES_FILE}")]
    Reserved,
    /// `NAME.toml` without `NAME.wasm`.
    #[error("manifest has no {0}.wasm beside it")]
    NoComponent(String),
    /// A file could not be read.
    #[error("cannot read {0}")]
    Read(String, #[source] io::Error),
}

/// What `stat` says of a plugin's files (through symlinks). Any rewrite
/// changes the change time, and a rename or a ConfigMap's `..data` swap
/// changes the inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    wasm: FileStamp,
    manifest: Option<FileStamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl FileStamp {
    fn of(path: &Path) -> io::Result<FileStamp> {
        let metadata = std::fs::metadata(path)?;
        let ns = |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Ok(FileStamp {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            changed_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        })
    }
}

impl Stamp {
    /// The stamp of `NAME.wasm` and `NAME.toml` in `dir`, if both can be
    /// examined (a missing manifest is part of the stamp).
    fn of(dir: &Path, name: &str) -> Option<Stamp> {
        let wasm = FileStamp::of(&dir.join(format!("{name}.wasm"))).ok()?;
        let manifest = match FileStamp::of(&dir.join(format!("{name}.toml"))) {
            Ok(stamp) => Some(stamp),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(_) => return None,
        };
        Some(Stamp { wasm, manifest })
    }
}

/// The folder's contents.
pub struct Folder {
    /// Every plugin name seen, with its files.
    pub plugins: BTreeMap<String, PluginFiles>,
    /// The pipelines file's text (or why it could not be read), if present.
    pub pipelines: Option<io::Result<String>>,
}

/// Reads `dir`, skipping the plugins whose files still have the stamp in
/// `last_read`. Only an unreadable folder is an error; a bad file is
/// reported under its plugin's name.
pub fn scan(dir: &Path, last_read: &BTreeMap<String, Stamp>) -> io::Result<Folder> {
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
            pipelines = Some(std::fs::read_to_string(dir.join(file_name)));
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
            let files = read_plugin(dir, &name, has_component, last_read.get(&name));
            (name, files)
        })
        .collect();
    Ok(Folder { plugins, pipelines })
}

fn read_plugin(
    dir: &Path,
    name: &str,
    has_component: bool,
    last_read: Option<&Stamp>,
) -> PluginFiles {
    if !crate::text::is_dns_label(name) {
        return PluginFiles::Broken(FilesError::BadName);
    }
    if name == "pipelines" {
        return PluginFiles::Broken(FilesError::Reserved);
    }
    if !has_component {
        return PluginFiles::Broken(FilesError::NoComponent(name.to_owned()));
    }
    // Taken before reading: a change during the read shows at the next scan.
    let stamp = Stamp::of(dir, name);
    if stamp.is_some() && stamp.as_ref() == last_read {
        return PluginFiles::Unchanged;
    }
    tracing::debug!(plugin = %name, "reading plugin files");
    let wasm = match std::fs::read(dir.join(format!("{name}.wasm"))) {
        Ok(wasm) => wasm,
        Err(error) => {
            return PluginFiles::Unreadable(FilesError::Read(format!("{name}.wasm"), error));
        }
    };
    let manifest_path = dir.join(format!("{name}.toml"));
    let manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            return PluginFiles::Unreadable(FilesError::Read(format!("{name}.toml"), error));
        }
    };
    PluginFiles::Complete {
        wasm,
        manifest,
        stamp,
    }
}
