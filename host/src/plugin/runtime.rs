//! The wasmtime side of Wicket: one engine for the process, plugins compiled
//! once into pre-instantiated templates, and a fresh, limited instance for
//! every call.
//!
//! # Guarantees
//! - No state survives between calls: each call instantiates the plugin anew
//!   from its template (pooling allocator, copy-on-write memory images).
//! - A call is charged its own time only (see [`meter`](super::meter)): the
//!   engine's epoch ticks every millisecond while calls run, and a plugin
//!   past `timeout-ms` of its own time traps. Around that, a wall-clock bound ([`WALL_HEADROOM`]
//!   past the deadline, inside the API server's timeout) ends a call the host
//!   was too busy to finish as an [`Overload`], never as the plugin's failure.
//! - Plugins share the host fairly: each has its own cap on concurrent
//!   instances (`max-concurrency`) inside the global pool, long-running calls
//!   take turns on at most all cores but one, and all instances together
//!   stay within one memory budget.
//! - A plugin reaches the network only if its manifest grants hosts, and
//!   only those: `wasi:http` is linked for granted plugins alone, and every
//!   request is checked against the grant (see `outbound`).
//! - A plugin's failure is reported as a [`PluginFailure`], the host's lack
//!   of capacity as an [`Overload`]; neither is a panic or a denial. A
//!   plugin's own error (contract 0.2's `plugin-error`) is a failure too.
//! - Plugins built against every contract version are served: a component
//!   is linked as 0.2 (objects read through the host's documents) or else as
//!   0.1 (objects copied in), adapted to 0.2 by `legacy`.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

use super::bindings::{AdmissionPlugin, AdmissionPluginPre, v0_1};
use super::compile::{self, Compiler};
use super::deadline::{WALL_HEADROOM, wall_bound};
use super::epoch::Ticker;
use super::host::{CapturedOutput, InstanceState, MemoryBudget, MemoryBudgets, MemoryCap};
use super::legacy;
use super::manifest::{Limits, Manifest};
use super::meter::{LONG_CALL, Meter, Metered};
use super::outbound::Access;
use super::outcome::{CallError, LoadError, Overload, PluginFailure, Reviewed, WasmError};
use super::request::to_wit;
use super::tag::LogTag;
use crate::document::{Document, Documents};
use crate::review::AdmissionRequest;
use crate::text::truncate;

/// One plugin's instances may hold at most this fraction of the memory
/// budget, so a memory-hungry plugin leaves room for the others.
const PLUGIN_MEMORY_SHARE_DIVISOR: usize = 2;
/// Bytes of each instance slot's memory reset in place rather than returned
/// to the kernel; a typical plugin's whole heap fits.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;
/// Slot decommits batched into one round of system calls.
const DECOMMIT_BATCH: usize = 16;

/// Sizing of the instance pool, and where compilations are cached.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many plugin instances may run at once; further calls wait for a
    /// free slot rather than fail.
    pub max_instances: u32,
    /// A folder for compiled components, reused across restarts.
    pub cache_dir: Option<PathBuf>,
    /// Linear memory all instances together may hold, in MiB.
    pub memory_budget_mib: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 256,
            cache_dir: None,
            memory_budget_mib: 1024,
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
    shared: Arc<Shared>,
}

/// What the calls of all plugins share.
struct Shared {
    /// Instance slots: one per running instance.
    slots: Semaphore,
    max_instances: u32,
    /// Turns for long-running calls: fewer than the cores.
    turns: Arc<Semaphore>,
    /// Linear memory of all live instances.
    memory: Arc<MemoryBudget>,
    /// The most one plugin's instances may hold together.
    memory_share: usize,
    /// Advances the epoch while calls run.
    ticker: Ticker,
}

/// A plugin's pre-instantiated template, by the contract it was built
/// against.
enum Contract {
    V0_2(AdmissionPluginPre<InstanceState>),
    V0_1(v0_1::AdmissionPluginPre<InstanceState>),
}

impl Contract {
    fn engine(&self) -> &Engine {
        match self {
            Contract::V0_2(pre) => pre.engine(),
            Contract::V0_1(pre) => pre.engine(),
        }
    }
}

/// One instance of a plugin, by its contract.
enum Instance {
    V0_2(AdmissionPlugin),
    V0_1(v0_1::AdmissionPlugin),
}

/// Where in a call an error arose.
enum Stage {
    Instantiate,
    Call,
}

/// Why the epoch callback stopped a call.
#[derive(Debug, thiserror::Error)]
enum Interrupt {
    /// The call used its deadline of its own time.
    #[error("deadline reached")]
    Deadline,
    /// The call passed its wall-clock bound.
    #[error("wall-clock bound reached")]
    WallBound,
}

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
        let memory_budget = usize::try_from(config.memory_budget_mib << 20).unwrap_or(usize::MAX);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(WasmError)?;
        AdmissionPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(WasmError)?;
        v0_1::AdmissionPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(WasmError)?;
        let mut outbound_linker = linker.clone();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut outbound_linker)
            .map_err(WasmError)?;
        let ticker = Ticker::start(&engine).map_err(|error| WasmError(error.into()))?;
        Ok(Runtime {
            compiler: Compiler::new(engine, config.cache_dir.clone()),
            linker,
            outbound_linker,
            shared: Arc::new(Shared {
                slots: Semaphore::new(instances as usize),
                max_instances: instances,
                turns: Arc::new(Semaphore::new(long_call_turns())),
                memory: Arc::new(MemoryBudget::new(memory_budget)),
                memory_share: memory_budget / PLUGIN_MEMORY_SHARE_DIVISOR,
                ticker,
            }),
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
        let pre = match AdmissionPluginPre::new(pre.clone()) {
            Ok(pre) => Contract::V0_2(pre),
            Err(err) => match v0_1::AdmissionPluginPre::new(pre) {
                Ok(pre) => Contract::V0_1(pre),
                Err(_) => return Err(LoadError::WrongWorld(WasmError(err))),
            },
        };
        let outbound = manifest
            .outbound
            .clone()
            .map(Access::load)
            .transpose()?
            .map(Arc::new);
        let plugin = Plugin {
            name: name.into(),
            digest,
            settings: Arc::new(Document::new(manifest.settings_json.as_str())),
            own_slots: Semaphore::new(manifest.limits.max_concurrency as usize),
            own_memory: Arc::new(MemoryBudget::new(self.shared.memory_share)),
            outbound,
            manifest,
            pre,
            shared: self.shared.clone(),
        };
        match plugin.validate_settings().await {
            Ok(Ok(())) => Ok(plugin),
            Ok(Err(message)) => Err(LoadError::Settings(message)),
            Err(CallError::Plugin(failure)) => Err(LoadError::ValidateFailed(failure)),
            Err(CallError::Overloaded(overload)) => Err(LoadError::Overloaded(overload)),
        }
    }
}

impl Runtime {
    /// Drops compilations of components no plugin uses any more.
    pub fn forget_unused(&self, in_use: &[&str]) {
        self.compiler.retain(in_use);
    }
}

/// How many long-running calls may run at once: all cores but one, so the
/// short calls always have a core.
fn long_call_turns() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .saturating_sub(1)
        .max(1)
}

/// A loaded plugin: its manifest and its pre-instantiated template.
pub struct Plugin {
    name: Arc<str>,
    digest: String,
    manifest: Manifest,
    /// Its settings, indexed across calls: read through the host by 0.2
    /// plugins, copied in whole for 0.1 ones.
    settings: Arc<Document>,
    pre: Contract,
    /// Its own instance slots (`max-concurrency`).
    own_slots: Semaphore,
    /// Its instances' memory together.
    own_memory: Arc<MemoryBudget>,
    /// Its outbound grant with the TLS files loaded, when it has one.
    outbound: Option<Arc<Access>>,
    shared: Arc<Shared>,
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

    /// The contract version it was built against.
    pub fn contract(&self) -> &'static str {
        match self.pre {
            Contract::V0_1(_) => "0.1",
            Contract::V0_2(_) => "0.2",
        }
    }

    /// Runs `review` in a fresh instance on `request`, whose objects are
    /// `documents` (read through the host by 0.2 plugins, copied in for 0.1
    /// ones), giving up on it as overloaded at `wall_bound` (see
    /// [`Plugin::wall_bound`]).
    pub async fn review(
        &self,
        request: &AdmissionRequest<'_>,
        documents: &Documents,
        wall_bound: Instant,
    ) -> Reviewed {
        let request = to_wit(request);
        let meter = Arc::new(Meter::default());
        let answer = self
            .call(
                &request.uid,
                wall_bound,
                &meter,
                async |instance, store| match instance {
                    Instance::V0_2(plugin) => {
                        let documents = store.data_mut().lend(documents, &self.settings)?;
                        plugin
                            .wicket_admission_plugin()
                            .call_review(store, &request, documents)
                            .await
                    }
                    Instance::V0_1(plugin) => plugin
                        .wicket_admission_plugin()
                        .call_review(
                            store,
                            &legacy::request(request.clone(), documents),
                            self.settings.text(),
                        )
                        .await
                        .map(|response| Ok(legacy::response(response))),
                },
            )
            .await
            .and_then(|answer| {
                answer.map_err(|error| {
                    PluginFailure::Reported(truncate(&error.message, 512).to_owned()).into()
                })
            });
        Reviewed {
            answer,
            own_time: meter.charged(),
        }
    }

    /// The wall-clock bound of a call starting now.
    pub fn wall_bound(&self) -> Instant {
        wall_bound(self.manifest.limits.timeout())
    }

    /// Runs `validate-settings` in a fresh instance.
    async fn validate_settings(&self) -> Result<Result<(), String>, CallError> {
        self.call(
            "validate-settings",
            self.wall_bound(),
            &Arc::new(Meter::default()),
            async |instance, store| match instance {
                Instance::V0_2(plugin) => {
                    let settings = store.data_mut().lend_one(&self.settings)?;
                    plugin
                        .wicket_admission_plugin()
                        .call_validate_settings(store, settings)
                        .await
                }
                Instance::V0_1(plugin) => {
                    plugin
                        .wicket_admission_plugin()
                        .call_validate_settings(store, self.settings.text())
                        .await
                }
            },
        )
        .await
    }

    /// Takes a slot, instantiates the plugin in a new store with its limits
    /// and runs `body` charging `meter`, turning every way the call can go
    /// wrong into a [`CallError`].
    async fn call<R>(
        &self,
        uid: &str,
        wall_bound: Instant,
        meter: &Arc<Meter>,
        body: impl AsyncFnOnce(&Instance, &mut Store<InstanceState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let limits = &self.manifest.limits;
        let wall_bound = tokio::time::Instant::from_std(wall_bound);
        // A closed semaphore and a timeout both mean no slot. A call that had
        // to wait for one of its plugin's own slots and then runs out of time
        // failed for its plugin's load, not the host's.
        let _own_slot = match self.own_slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                meter.waited_for_own_slot();
                tokio::time::timeout_at(wall_bound, self.own_slots.acquire())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or(PluginFailure::Saturated(limits.max_concurrency))?
            }
        };
        let _slot = tokio::time::timeout_at(wall_bound, self.shared.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Overload::Slots(self.shared.max_instances))?;
        let _running = self.shared.ticker.running();
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
                MemoryBudgets {
                    plugin: self.own_memory.clone(),
                    shared: self.shared.memory.clone(),
                },
                self.outbound.clone(),
                &output,
            ),
        );
        store.limiter(|state| state.limiter());
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback({
            let meter = meter.clone();
            let turns = self.shared.turns.clone();
            let deadline = limits.timeout();
            let wall_bound = wall_bound.into_std();
            move |_| {
                meter.end_turn();
                let used = meter.used();
                if used >= deadline {
                    return Err(wasmtime::Error::new(Interrupt::Deadline));
                }
                if Instant::now() >= wall_bound {
                    return Err(wasmtime::Error::new(Interrupt::WallBound));
                }
                meter.yielding();
                Ok(match used >= LONG_CALL {
                    true => wasmtime::UpdateDeadline::YieldCustom(
                        1,
                        Box::pin(meter.clone().take_turn(turns.clone())),
                    ),
                    false => wasmtime::UpdateDeadline::Yield(1),
                })
            }
        });

        let mut run = Metered::new(
            async {
                let plugin = match &self.pre {
                    Contract::V0_2(pre) => {
                        pre.instantiate_async(&mut store).await.map(Instance::V0_2)
                    }
                    Contract::V0_1(pre) => {
                        pre.instantiate_async(&mut store).await.map(Instance::V0_1)
                    }
                }
                .map_err(|err| (Stage::Instantiate, err))?;
                body(&plugin, &mut store)
                    .await
                    .map_err(|err| (Stage::Call, err))
            },
            meter.clone(),
        );
        // The epoch callback ends a running call at the bound; this timer
        // ends one blocked in a host call (an outbound request).
        let outcome = tokio::time::timeout_at(wall_bound, &mut run).await;
        let used = run.used();
        drop(run);
        let result = match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err((stage, error))) => Err(self.classify(stage, error, &store, meter, &output)),
            Err(_elapsed) => Err(self.past_bound(used, meter)),
        };
        drop(store);
        self.log_output(uid, &output);
        result
    }

    /// What passing the wall-clock bound means: the plugin's failure if it
    /// used its deadline, ran long or waited for its own busy instances; the
    /// host's overload otherwise.
    fn past_bound(&self, used: Duration, meter: &Meter) -> CallError {
        let limits = &self.manifest.limits;
        if used >= limits.timeout() {
            return PluginFailure::Deadline(limits.timeout()).into();
        }
        let bound = limits.timeout() + WALL_HEADROOM;
        if meter.was_long() {
            return PluginFailure::WallClock { bound, used }.into();
        }
        match meter.had_to_wait_for_own_slot() {
            true => PluginFailure::Saturated(limits.max_concurrency).into(),
            false => Overload::Busy(bound).into(),
        }
    }

    /// Names the cause of a failed call. The deadline and the memory caps
    /// can be hit while instantiating as well as while running.
    fn classify(
        &self,
        stage: Stage,
        error: wasmtime::Error,
        store: &Store<InstanceState>,
        meter: &Meter,
        output: &CapturedOutput,
    ) -> CallError {
        let limits = &self.manifest.limits;
        match error.downcast_ref::<Interrupt>() {
            Some(Interrupt::Deadline) => return PluginFailure::Deadline(limits.timeout()).into(),
            Some(Interrupt::WallBound) => return self.past_bound(meter.used(), meter),
            None => {}
        }
        match store.data().memory_cap_hit() {
            Some(MemoryCap::Plugin) => return PluginFailure::Memory(limits.memory_bytes()).into(),
            Some(MemoryCap::PluginShare) => {
                return PluginFailure::MemoryShare(self.shared.memory_share).into();
            }
            Some(MemoryCap::Host) => return Overload::Memory.into(),
            None => {}
        }
        if let Stage::Instantiate = stage {
            return PluginFailure::Instantiate(format!("{error:#}")).into();
        }
        tracing::debug!(plugin = %self.name, error = ?error, "plugin trapped");
        let detail = match output.panic_message() {
            Some(panic) => format!("panicked: {panic}"),
            None => match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{error:#}"),
            },
        };
        PluginFailure::Trap(truncate(&detail, 512).to_owned()).into()
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
