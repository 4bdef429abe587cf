//! Turning component bytes into a compiled `Component`, at most once per
//! distinct file: an in-memory table shares one compilation between plugins
//! and reloads of the same bytes, and an optional on-disk cache (`--cache-dir`)
//! carries compilations across restarts.
//!
//! # The disk cache
//! An entry is named after the SHA-256 of the component and a hash of the
//! engine's compilation settings (wasmtime's own compatibility hash), so a
//! different Wicket build or configuration never finds a foreign entry. Each
//! entry starts with a magic string, the SHA-256 of the component it was
//! compiled from and the SHA-256 of the compiled artifact, all checked before
//! wasmtime sees a byte: a truncated, corrupted or misplaced entry (another
//! component's, copied under this name) is detected, logged and replaced by a
//! fresh compilation, never loaded. wasmtime then refuses an artifact built
//! for another version or configuration.
//!
//! Loading a compiled artifact runs native code that the artifact describes,
//! so the cache directory must be writable only by Wicket: it is as trusted
//! as the binary itself.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::compile_turns::CompileTurns;
use super::outcome::{LoadError, WasmError};

/// Marks a cache entry written by this code.
const MAGIC: &[u8; 8] = b"WICKETC1";
/// The magic, the component's SHA-256, then the artifact's SHA-256.
const HEADER_LEN: usize = MAGIC.len() + 32 + 32;

/// The SHA-256 of a component's bytes, as lower-case hex: the plugin's
/// identity in `/plugins`, in a manifest's `sha256` pin and in cache names.
pub fn digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compiles components, each distinct one once.
pub struct Compiler {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    /// The engine's compatibility hash, in every cache entry's name.
    engine_key: String,
    /// One cell per digest: concurrent loads of the same bytes (one
    /// component under several names) wait for a single compilation.
    compiled: Mutex<HashMap<String, Arc<OnceCell<Component>>>>,
    /// Compilations (not cache reads) take turns.
    turns: CompileTurns,
}

/// Where a compiled component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Already compiled in this process (same bytes under another name, or
    /// unchanged on reload).
    Memory,
    /// Loaded from the disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

impl Origin {
    /// A short name for logs: `memory`, `disk` or `compiled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Memory => "memory",
            Origin::Disk => "disk",
            Origin::Compiled => "compiled",
        }
    }
}

impl Compiler {
    /// A compiler for `engine`, caching on disk in `cache_dir` if given,
    /// running at most `max_compiles` compilations at once.
    pub fn new(engine: Engine, cache_dir: Option<PathBuf>, max_compiles: usize) -> Compiler {
        let mut hasher = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..8]);
        Compiler {
            engine,
            cache_dir,
            engine_key,
            compiled: Mutex::new(HashMap::new()),
            turns: CompileTurns::new(max_compiles),
        }
    }

    /// For `/plugins`: the compilations' bound and what runs and waits.
    pub fn describe_turns(&self) -> serde_json::Value {
        self.turns.describe()
    }

    /// The compiled component for `wasm`, whose SHA-256 is `digest`. Slow
    /// work runs on the blocking pool.
    pub async fn component(
        &self,
        wasm: Vec<u8>,
        digest: &str,
    ) -> Result<(Component, Origin), LoadError> {
        let cell = self
            .compiled
            .lock()
            .expect("compiled table")
            .entry(digest.to_owned())
            .or_default()
            .clone();
        let mut produced = Origin::Memory;
        let engine = self.engine.clone();
        let entry = self
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{digest}-{}.cwasm", self.engine_key)));
        let component = cell
            .get_or_try_init(|| async {
                // The disk cache first: reading an entry needs no turn.
                let (wasm, source_digest, cached) = tokio::task::spawn_blocking({
                    let (engine, entry) = (engine.clone(), entry.clone());
                    move || {
                        // Hashed again rather than decoded from `digest`: the
                        // cache entry is checked against the bytes themselves.
                        let source_digest: [u8; 32] = Sha256::digest(&wasm).into();
                        let cached = entry
                            .as_deref()
                            .and_then(|entry| cached(&engine, entry, &source_digest));
                        (wasm, source_digest, cached)
                    }
                })
                .await?;
                if let Some(component) = cached {
                    produced = Origin::Disk;
                    return Ok(component);
                }
                let turn = self.turns.take().await;
                let component = tokio::task::spawn_blocking(move || {
                    let compiled = compile(&engine, &wasm, &source_digest, entry.as_deref());
                    drop(wasm);
                    crate::freed::return_to_system();
                    drop(turn);
                    compiled
                })
                .await??;
                produced = Origin::Compiled;
                Ok::<_, LoadError>(component)
            })
            .await?;
        Ok((component.clone(), produced))
    }

    /// Forgets compilations of components no longer in `in_use`, so memory
    /// does not grow with every replaced plugin.
    pub fn retain(&self, in_use: &[&str]) {
        self.compiled
            .lock()
            .expect("compiled table")
            .retain(|digest, _| in_use.contains(&digest.as_str()));
    }
}

/// The component cached at `entry`, if there is one that can be trusted.
fn cached(engine: &Engine, entry: &Path, source_digest: &[u8; 32]) -> Option<Component> {
    load_entry(engine, entry, source_digest).unwrap_or_else(|reason| {
        tracing::warn!(
            entry = %entry.display(),
            %reason,
            "compile cache entry rejected; compiling again"
        );
        None
    })
}

/// Compiles `wasm`, and caches the result at `entry` if given.
fn compile(
    engine: &Engine,
    wasm: &[u8],
    source_digest: &[u8; 32],
    entry: Option<&Path>,
) -> Result<Component, LoadError> {
    // A large component takes seconds: say so before, not only after.
    tracing::info!(bytes = wasm.len(), "compiling a component");
    let component =
        Component::new(engine, wasm).map_err(|err| LoadError::Compile(WasmError(err)))?;
    if let Some(entry) = entry
        && let Err(error) = store_entry(&component, source_digest, entry)
    {
        tracing::warn!(entry = %entry.display(), %error, "cannot write compile cache entry");
    }
    Ok(component)
}

/// The cached component at `entry`: `None` when there is none, an error
/// (the reason) when there is one that cannot be trusted or used.
fn load_entry(
    engine: &Engine,
    entry: &Path,
    source_digest: &[u8; 32],
) -> Result<Option<Component>, String> {
    let bytes = match std::fs::read(entry) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a Wicket cache entry".into());
    }
    let (header, artifact) = bytes.split_at(HEADER_LEN);
    let (compiled_from, checksum) = header[MAGIC.len()..].split_at(32);
    if compiled_from != source_digest {
        return Err("the entry was compiled from another component".into());
    }
    if Sha256::digest(artifact).as_slice() != checksum {
        return Err("the artifact does not match its checksum (truncated or corrupted)".into());
    }
    // SAFETY: `artifact` is, byte for byte (checked above), what
    // `store_entry` wrote from `Component::serialize` of this very component
    // for an engine with the same compatibility hash (in the entry's name);
    // wasmtime checks version and configuration again. The cache directory is as trusted as the
    // binary (see the module documentation).
    let component = unsafe { Component::deserialize(engine, artifact) }
        .map_err(|error| format!("{error:#}"))?;
    Ok(Some(component))
}

/// Writes `component` to `entry` atomically (a temporary file, then rename).
fn store_entry(
    component: &Component,
    source_digest: &[u8; 32],
    entry: &Path,
) -> std::io::Result<()> {
    let artifact = component.serialize().map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + artifact.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(source_digest);
    bytes.extend_from_slice(&Sha256::digest(&artifact));
    bytes.extend_from_slice(&artifact);
    if let Some(dir) = entry.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = entry.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, &bytes)?;
    std::fs::rename(&temporary, entry)
}

/// Feeds `Hash` output into SHA-256, for a hash that is stable across runs.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 state is read")
    }
}
