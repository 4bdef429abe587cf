//! The wasmtime side of Wicket: one engine for the process, and plugins
//! compiled once into pre-instantiated templates, linked and checked at
//! load. Calling them, a fresh limited instance each time, is [`super::call`]'s.
//!
//! # Guarantees
//! - No state survives between calls: each call instantiates the plugin anew
//!   from its template (pooling allocator, copy-on-write memory images).
//! - A call is charged its own time only (see [`meter`](super::meter)): the
//!   engine's epoch ticks every millisecond while calls run, and a plugin
//!   past `timeout-ms` of its own time traps. Around that, a wall-clock bound ([`WALL_HEADROOM`](super::deadline::WALL_HEADROOM)
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
use std::time::Instant;

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{AdmissionPlugin, AdmissionPluginPre, v0_1};
use super::call::{Contract, Plugin, Shared};
use super::cluster_access::ClusterAccess;
use super::compile::{self, Compiler};
use super::epoch::Ticker;
use super::host::InstanceState;
use super::manifest::{Limits, Manifest};
use super::memory::MemoryBudget;
use super::meter::LongCalls;
use super::outbound::Access;
use super::outcome::{CallError, LoadError, WasmError};
use super::teardown::Teardown;
use crate::cluster::Cluster;
use crate::cluster::allow::AllowList;
use crate::document::Document;

/// One plugin's instances may hold at most this fraction of the memory
/// budget, so a memory-hungry plugin leaves room for the others.
const PLUGIN_MEMORY_SHARE_DIVISOR: usize = 2;
/// Bytes of each instance slot's memory reset in place rather than returned
/// to the kernel; a typical plugin's whole heap fits.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;
/// Slot decommits batched into one round of system calls: none. A batch is
/// flushed by whichever instance fills it, so a good plugin's review would
/// return the memory of a plugin that grew to hundreds of MiB (measured with
/// scripts/fairness: a memory hog's neighbours' p99 at 2.2x the benign-load
/// case with batches of 16, 1.0x without). With Linux's PAGEMAP_SCAN a small
/// instance has little to decommit, and reviews/s did not move.
const DECOMMIT_BATCH: usize = 1;

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
    /// Components compiled at once; each holds its compiler's working
    /// memory until it ends.
    pub max_compiles: u16,
    /// The kinds plugins may read from the cluster.
    pub cluster_allow: AllowList,
    /// Whether every outbound call is refused, whatever the manifests
    /// grant: `wicket audit` without `--allow-outbound` (a CI job must not
    /// reach production etcd).
    pub outbound_denied: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 256,
            cache_dir: None,
            memory_budget_mib: 1024,
            max_compiles: 2,
            cluster_allow: AllowList::default(),
            outbound_denied: false,
        }
    }
}

/// What the running instances use of the limits all plugins share.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Instances running now.
    pub instances: usize,
    /// `--max-instances`.
    pub max_instances: usize,
    /// Linear memory they hold.
    pub memory_bytes: usize,
    /// `--plugin-memory-mib`, in bytes.
    pub memory_limit_bytes: usize,
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
    /// The objects plugins read, and which kinds they may.
    cluster: Arc<Cluster>,
    cluster_allow: AllowList,
    outbound_denied: bool,
}

impl Runtime {
    /// Builds the engine (pooling allocator, epoch interruption, async
    /// support), links WASI and the host imports, and starts the epoch ticker.
    pub fn new(config: &RuntimeConfig) -> Result<Runtime, WasmError> {
        let instances = config.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        // A Rust plugin is one component with a few core instances (the main
        // module plus shims), one memory and a couple of tables; a
        // componentize-py one links 14 core instances (CPython as shared
        // libraries). A component the pool cannot hold at the moment is the
        // host's overload, never the plugin's failure.
        pool.total_component_instances(instances)
            .total_core_instances(instances * 16)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .total_stacks(instances)
            .max_memory_size((Limits::MAX_MEMORY_MIB as usize) << 20)
            // Reset the first pages of a used slot with memset instead of
            // madvise: each madvise costs a TLB shootdown on every core,
            // which dominated kernel time per review. The rest is returned
            // by the instance's own teardown (see DECOMMIT_BATCH).
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
            compiler: Compiler::new(engine, config.cache_dir.clone(), config.max_compiles.into()),
            linker,
            outbound_linker,
            shared: Arc::new(Shared {
                slots: Semaphore::new(instances as usize),
                max_instances: instances,
                turns: Arc::new(Semaphore::new(long_call_turns())),
                memory: Arc::new(MemoryBudget::new(memory_budget)),
                memory_share: memory_budget / PLUGIN_MEMORY_SHARE_DIVISOR,
                ticker,
                teardown: Teardown::start().map_err(|error| WasmError(error.into()))?,
            }),
            cluster: Arc::new(Cluster::default()),
            cluster_allow: config.cluster_allow.clone(),
            outbound_denied: config.outbound_denied,
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
        let asked = Instant::now();
        let (component, origin) = self.compiler.component(wasm, &digest).await?;
        let component_ready_in = asked.elapsed();
        tracing::info!(plugin = %name, %digest, origin = origin.as_str(), ready_ms = component_ready_in.as_millis(), "component ready");
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
        // Reading the grant's PEM files: off the async workers.
        // Denied outbound keeps the grant's linking (the plugin loads as
        // it would serve) but no access: every call is refused.
        let outbound = match manifest.outbound.clone().filter(|_| !self.outbound_denied) {
            Some(grant) => Some(Arc::new(
                tokio::task::spawn_blocking(move || Access::load(grant)).await??,
            )),
            None => None,
        };
        let cluster = ClusterAccess::new(
            name,
            manifest.cluster.clone(),
            self.cluster.clone(),
            &self.cluster_allow,
        )?;
        // Its indexes built before it serves, off the async workers.
        if manifest.cluster.iter().any(|read| !read.indexes.is_empty()) {
            let (reads, objects) = (manifest.cluster.clone(), self.cluster.clone());
            tokio::task::spawn_blocking(move || {
                for read in &reads {
                    for path in read.indexes.values() {
                        objects.want_index(&read.kind, path);
                    }
                }
            })
            .await?;
        }
        // Served once the kinds it reads are synced (the version it
        // replaces serves meanwhile), or late, said so.
        let late = cluster.synced().await;
        if !late.is_empty() {
            let late: Vec<String> = late.iter().map(ToString::to_string).collect();
            tracing::warn!(plugin = %name, late = ?late, "serving before the first list of the kinds it reads completed: its reads answer not-synced until then");
        }
        let plugin = Plugin {
            name: name.into(),
            digest,
            component: (origin, component_ready_in),
            settings: Arc::new(Document::new(manifest.settings_json.as_str())),
            own_slots: Semaphore::new(manifest.limits.max_concurrency as usize),
            own_memory: Arc::new(MemoryBudget::new(self.shared.memory_share)),
            long_calls: LongCalls::default(),
            outbound,
            cluster: Arc::new(cluster),
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
    /// How much of the shared limits the running instances use now.
    pub fn usage(&self) -> Usage {
        let running = self.shared.max_instances as usize - self.shared.slots.available_permits();
        Usage {
            instances: running,
            max_instances: self.shared.max_instances as usize,
            memory_bytes: self.shared.memory.used(),
            memory_limit_bytes: self.shared.memory.limit(),
        }
    }

    /// The objects plugins read through `cluster`: empty (every read
    /// `unavailable`) until a source is set.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Drops compilations of components no plugin uses any more.
    pub fn forget_unused(&self, in_use: &[&str]) {
        self.compiler.retain(in_use);
    }

    /// For `/plugins`: the bound on compilations, what runs and what waits.
    pub fn describe_compiles(&self) -> serde_json::Value {
        self.compiler.describe_turns()
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
