//! What one plugin instance can reach: the state behind its store.
//!
//! Each request gets a fresh [`InstanceState`]: a WASI context with no
//! files, no environment, no arguments, no sockets and no stdin; stdout and
//! stderr captured into one bounded buffer that ends up in the log
//! ([`CapturedOutput`]); a memory limiter ([`MemoryLimiter`]); the `log` import, tagged with the plugin name and request uid;
//! and, for plugins granted it, outbound HTTP through [`OutboundHooks`].

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::log::{self, Level};
use super::bindings::v0_1;
use super::cluster_access::ClusterAccess;
use super::memory::{MemoryBudgets, MemoryCap, MemoryLimiter};
use super::outbound::{Access, OutboundHooks};
use super::output::CapturedOutput;
use super::tag::LogTag;
use crate::text::truncate;

/// How many `log` calls are kept per request.
const MAX_LOG_LINES: u32 = 100;
/// How long one `log` message may be.
const MAX_LOG_MESSAGE: usize = 4096;

/// Everything one plugin instance's store holds.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    http: WasiHttpCtx,
    outbound: OutboundHooks,
    /// What it may read of the cluster.
    pub(super) cluster_access: Arc<ClusterAccess>,
    /// Document handles it holds: each costs host memory the plugin's
    /// memory cap does not count, so cluster reads are bounded by it.
    pub(super) documents_held: usize,
    /// Who is running, for the log.
    pub tag: LogTag,
    log_lines: u32,
}

impl InstanceState {
    /// A sandbox with no capabilities but `outbound` access and reads of
    /// what `cluster_access` allows, capped at
    /// `memory_bytes` of linear memory, whose output goes into `output`.
    pub fn new(
        tag: LogTag,
        memory_bytes: usize,
        memory_budgets: MemoryBudgets,
        outbound: Option<Arc<Access>>,
        cluster_access: Arc<ClusterAccess>,
        output: &CapturedOutput,
    ) -> InstanceState {
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        InstanceState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes, memory_budgets),
            http: WasiHttpCtx::new(),
            outbound: OutboundHooks::new(outbound, tag.clone()),
            cluster_access,
            documents_held: 0,
            tag,
            log_lines: 0,
        }
    }

    /// The limiter, for [`wasmtime::Store::limiter`].
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// The linear memory the instance added to its initial memory while it
    /// ran, in bytes.
    pub fn memory_grown(&self) -> usize {
        self.limiter.grown()
    }

    /// Which memory cap, if any, refused the plugin memory.
    pub fn memory_cap_hit(&self) -> Option<MemoryCap> {
        self.limiter.hit()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Linked only for plugins whose manifest has an `[outbound]` grant.
impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Contract 0.1's `types` interface has no functions; plugins import it
/// only for its types.
impl v0_1::types::Host for InstanceState {}

/// Contract 0.1's `log`, the same as 0.2's.
impl v0_1::log::Host for InstanceState {
    fn log(&mut self, level: v0_1::log::Level, message: String) {
        let level = match level {
            v0_1::log::Level::Trace => Level::Trace,
            v0_1::log::Level::Debug => Level::Debug,
            v0_1::log::Level::Info => Level::Info,
            v0_1::log::Level::Warn => Level::Warn,
            v0_1::log::Level::Error => Level::Error,
        };
        self.write_log(level, &message);
    }
}

impl log::Host for InstanceState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.write_log(level, &message);
        Ok(())
    }
}

impl InstanceState {
    /// The instance's resource table (document handles, WASI streams).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The same, to read.
    pub fn table_ref(&self) -> &ResourceTable {
        &self.table
    }

    /// One `log` line into Wicket's log, within the per-request limits.
    fn write_log(&mut self, level: Level, message: &str) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(plugin = %self.tag.plugin, uid = %self.tag.uid, "plugin log limit reached; dropping further lines");
            }
            return;
        }
        let message = truncate(message, MAX_LOG_MESSAGE);
        let (plugin, uid) = (&*self.tag.plugin, &*self.tag.uid);
        // Every level gets the same fields; tracing needs the level statically.
        match level {
            Level::Trace => {
                tracing::trace!(target: "wicket::plugin", plugin = %plugin, uid = %uid, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "wicket::plugin", plugin = %plugin, uid = %uid, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "wicket::plugin", plugin = %plugin, uid = %uid, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "wicket::plugin", plugin = %plugin, uid = %uid, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "wicket::plugin", plugin = %plugin, uid = %uid, "{message}")
            }
        }
    }
}
