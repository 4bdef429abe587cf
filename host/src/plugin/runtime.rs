//! The wasmtime side of Wicket: one engine for the process, plugins compiled
//! once into pre-instantiated templates, and a fresh, limited instance for
//! every call.
//!
//! # Guarantees
//! - No state survives between calls: each call instantiates the plugin anew
//!   from its template (pooling allocator, copy-on-write memory images).
//! - A call ends within its deadline: the engine's epoch ticks every
//!   millisecond and a plugin past its deadline traps; a host call that
//!   blocks (an outbound HTTP request) is cut off by a timer just after.
//! - A plugin reaches the network only if its manifest grants hosts, and
//!   only those: `wasi:http` is linked for granted plugins alone, and every
//!   request is checked against the grant (see `outbound`).
//! - A plugin's failure is reported as a [`PluginFailure`], never as a panic
//!   or a host error.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

use super::bindings::{AdmissionPlugin, AdmissionPluginPre, types};
use super::compile::{self, Compiler};
use super::host::{CapturedOutput, InstanceState, LogTag};
use super::manifest::{Limits, Manifest};
use super::request::to_wit;
use crate::review::AdmissionRequest;
use crate::text::truncate;

/// How often the engine's epoch advances: the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Bytes of each instance slot's memory reset in place rather than returned
/// to the kernel; a typical plugin's whole heap fits.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;
/// Slot decommits batched into one round of system calls.
const DECOMMIT_BATCH: usize = 16;
/// Extra time a call gets past its deadline before the host abandons it; the
/// epoch trap normally ends it well before.
const ABANDON_GRACE: Duration = Duration::from_millis(50);

/// Sizing of the instance pool, and where compilations are cached.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many plugin instances may run at once; further calls wait for a
    /// free slot rather than fail.
    pub max_instances: u32,
    /// A folder for compiled components, reused across restarts.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 256,
            cache_dir: None,
        }
    }
}

/// The engine, the compiler, the linkers with the host imports, and the
/// instance slots.
pub struct Runtime {
    compiler: Compiler,
    /// WASI (without capabilities) and Wicket's imports: what every plugin gets.
    linker: Linker<InstanceState>,
    /// The same plus `wasi:http`, for plugins granted outbound hosts.
    outbound_linker: Linker<InstanceState>,
    slots: Arc<Semaphore>,
}

/// A wasmtime error with its cause chain, usable as a `#[source]`.
pub struct WasmError(pub(super) wasmtime::Error);

impl fmt::Display for WasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for WasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for WasmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component")]
    Compile(#[source] WasmError),
    /// The component imports something Wicket does not grant it.
    #[error("the component needs imports Wicket does not provide")]
    Link(#[source] WasmError),
    /// The component imports `wasi:http` but its manifest grants no hosts.
    #[error(
        "the component imports wasi:http, but its manifest grants no outbound hosts \
         (add [outbound] allowed-hosts)"
    )]
    OutboundNotGranted,
    /// The component does not export Wicket's `admission-plugin` world.
    #[error("the component does not export the wicket:admission/plugin interface")]
    WrongWorld(#[source] WasmError),
    /// The component is not the one its manifest pins.
    #[error("its sha256 is {actual}, but the manifest pins {expected}")]
    DigestMismatch {
        /// The pinned digest.
        expected: String,
        /// The component's digest.
        actual: String,
    },
    /// The plugin's own `validate-settings` refused its settings.
    #[error("settings refused by the plugin: {0}")]
    Settings(String),
    /// `validate-settings` itself failed (trapped, timed out, ...).
    #[error("validate-settings failed")]
    ValidateFailed(#[source] PluginFailure),
    /// The compile task died.
    #[error("the compile task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Why a plugin call produced no usable answer. Distinct from a denial (a
/// verdict) and from a host failure: each plugin's failure policy decides
/// what the API server is told.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginFailure {
    /// The plugin trapped or panicked.
    #[error("it crashed: {0}")]
    Trap(String),
    /// The plugin ran past its deadline.
    #[error("it ran past its {}ms deadline", .0.as_millis())]
    Deadline(Duration),
    /// The plugin tried to grow its memory past its cap.
    #[error("it exceeded its memory limit of {} MiB", .0 >> 20)]
    Memory(usize),
    /// The plugin could not be instantiated.
    #[error("it could not be instantiated: {0}")]
    Instantiate(String),
    /// The answer was larger than the plugin's output cap.
    #[error("its answer is {size} bytes, over its limit of {limit}")]
    OutputTooLarge {
        /// Bytes returned.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The answer broke the contract (bad code, bad key, unparsable patch).
    #[error("its answer is malformed: {0}")]
    Malformed(String),
    /// The plugin returned a mutation it may not make.
    #[error("{0}")]
    ForbiddenMutation(&'static str),
    /// The plugin's patch does not apply to the object.
    #[error("its patch does not apply to the object: {0}")]
    PatchDoesNotApply(String),
}

/// Where in a call an error arose.
enum Stage {
    Instantiate,
    Call,
}

/// The error the epoch callback raises when a call passes its deadline.
#[derive(Debug)]
struct DeadlineReached;

impl fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption, async
    /// support), links WASI and the host imports, and starts the epoch ticker.
    pub fn new(config: &RuntimeConfig) -> Result<Runtime, WasmError> {
        let instances = config.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        // A Rust plugin is one component with a few core instances (the main
        // module plus shims), one memory and a couple of tables.
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .total_stacks(instances)
            .max_memory_size((Limits::MAX_MEMORY_MIB as usize) << 20)
            // Reset the first pages of a used slot with memset instead of
            // madvise, and batch the rest: each madvise costs a TLB
            // shootdown on every core, which dominated kernel time per review.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
            .decommit_batch_size(DECOMMIT_BATCH)
            // Linux ≥ 6.7: reset only the pages a plugin touched.
            .pagemap_scan(Enabled::Auto);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(WasmError)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(WasmError)?;
        AdmissionPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(WasmError)?;
        let mut outbound_linker = linker.clone();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut outbound_linker)
            .map_err(WasmError)?;
        spawn_epoch_ticker(&engine);
        Ok(Runtime {
            compiler: Compiler::new(engine, config.cache_dir.clone()),
            linker,
            outbound_linker,
            slots: Arc::new(Semaphore::new(instances as usize)),
        })
    }

    /// Compiles `wasm` (off the async threads, or not at all when these bytes
    /// were compiled before), checks it against the world and its manifest's
    /// pin, and runs its `validate-settings` once.
    pub async fn load(
        &self,
        name: &str,
        wasm: Vec<u8>,
        manifest: Manifest,
    ) -> Result<Plugin, LoadError> {
        let digest = compile::digest(&wasm);
        if let Some(expected) = &manifest.sha256
            && *expected != digest
        {
            return Err(LoadError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let (component, origin) = self.compiler.component(wasm, &digest).await?;
        tracing::info!(plugin = %name, %digest, origin = origin.as_str(), "component ready");
        let linker = match manifest.outbound {
            Some(_) => &self.outbound_linker,
            None => &self.linker,
        };
        let pre = linker.instantiate_pre(&component).map_err(|err| {
            if manifest.outbound.is_none()
                && self.outbound_linker.instantiate_pre(&component).is_ok()
            {
                LoadError::OutboundNotGranted
            } else {
                LoadError::Link(WasmError(err))
            }
        })?;
        let pre =
            AdmissionPluginPre::new(pre).map_err(|err| LoadError::WrongWorld(WasmError(err)))?;
        let plugin = Plugin {
            name: name.into(),
            digest,
            manifest,
            pre,
            slots: self.slots.clone(),
        };
        match plugin.validate_settings().await {
            Ok(Ok(())) => Ok(plugin),
            Ok(Err(message)) => Err(LoadError::Settings(message)),
            Err(failure) => Err(LoadError::ValidateFailed(failure)),
        }
    }
}

impl Runtime {
    /// Drops compilations of components no plugin uses any more.
    pub fn forget_unused(&self, in_use: &[&str]) {
        self.compiler.retain(in_use);
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is
/// dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wicket-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

/// A loaded plugin: its manifest and its pre-instantiated template.
pub struct Plugin {
    name: Arc<str>,
    digest: String,
    manifest: Manifest,
    pre: AdmissionPluginPre<InstanceState>,
    slots: Arc<Semaphore>,
}

impl Plugin {
    /// The plugin's name (its file name without `.wasm`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest it was loaded with.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The SHA-256 of its component, lower-case hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Runs `review` in a fresh instance.
    pub async fn review(
        &self,
        request: &AdmissionRequest<'_>,
    ) -> Result<types::Response, PluginFailure> {
        let settings = &self.manifest.settings_json;
        let request = to_wit(request);
        self.call(&request.uid, async |plugin, store| {
            plugin
                .wicket_admission_plugin()
                .call_review(store, &request, settings)
                .await
        })
        .await
    }

    /// Runs `validate-settings` in a fresh instance.
    async fn validate_settings(&self) -> Result<Result<(), String>, PluginFailure> {
        let settings = &self.manifest.settings_json;
        self.call("validate-settings", async |plugin, store| {
            plugin
                .wicket_admission_plugin()
                .call_validate_settings(store, settings)
                .await
        })
        .await
    }

    /// Instantiates the plugin in a new store with its limits and runs `body`,
    /// turning every way the call can go wrong into a [`PluginFailure`].
    async fn call<R>(
        &self,
        uid: &str,
        body: impl AsyncFnOnce(&AdmissionPlugin, &mut Store<InstanceState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFailure> {
        let limits = &self.manifest.limits;
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| PluginFailure::Instantiate("the runtime is shutting down".into()))?;
        let output = CapturedOutput::default();
        let tag = LogTag {
            plugin: self.name.clone(),
            uid: uid.into(),
        };
        let mut store = Store::new(
            self.pre.engine(),
            InstanceState::new(
                tag,
                limits.memory_bytes(),
                self.manifest.outbound.clone(),
                &output,
            ),
        );
        store.limiter(|state| state.limiter());
        let deadline = Instant::now() + limits.timeout();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineReached))
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });

        let run = async {
            let plugin = self
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|err| (Stage::Instantiate, err))?;
            body(&plugin, &mut store)
                .await
                .map_err(|err| (Stage::Call, err))
        };
        let outcome = tokio::time::timeout(limits.timeout() + ABANDON_GRACE, run).await;
        let result = match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err((stage, error))) => Err(self.classify(stage, error, &store, &output)),
            Err(_elapsed) => Err(PluginFailure::Deadline(limits.timeout())),
        };
        self.log_output(uid, &output);
        result
    }

    /// Names the cause of a failed call. The deadline and the memory cap
    /// can be hit while instantiating as well as while running.
    fn classify(
        &self,
        stage: Stage,
        error: wasmtime::Error,
        store: &Store<InstanceState>,
        output: &CapturedOutput,
    ) -> PluginFailure {
        let limits = &self.manifest.limits;
        if error.is::<DeadlineReached>() {
            return PluginFailure::Deadline(limits.timeout());
        }
        if store.data().limiter_hit() {
            return PluginFailure::Memory(limits.memory_bytes());
        }
        if let Stage::Instantiate = stage {
            return PluginFailure::Instantiate(format!("{error:#}"));
        }
        tracing::debug!(plugin = %self.name, error = ?error, "plugin trapped");
        let detail = match output.panic_message() {
            Some(panic) => format!("panicked: {panic}"),
            None => match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{error:#}"),
            },
        };
        PluginFailure::Trap(truncate(&detail, 512).to_owned())
    }

    /// Sends what the plugin wrote to stdout/stderr to the log.
    fn log_output(&self, uid: &str, output: &CapturedOutput) {
        let (text, dropped) = output.take();
        if text.is_empty() {
            return;
        }
        tracing::info!(
            target: "wicket::plugin",
            plugin = %self.name,
            uid = %uid,
            output = ?text.trim_end(),
            dropped_bytes = dropped,
            "plugin output"
        );
    }
}
