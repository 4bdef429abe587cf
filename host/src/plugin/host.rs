//! What one plugin instance can reach: the state behind its store.
//!
//! Each request gets a fresh [`InstanceState`]: a WASI context with no
//! files, no environment, no arguments, no sockets and no stdin; stdout and
//! stderr captured into one bounded buffer that ends up in the log; a memory
//! limiter; the `log` import, tagged with the plugin name and request uid;
//! and, for plugins granted it, outbound HTTP through [`OutboundHooks`].

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::log::{self, Level};
use super::bindings::v0_1;
use super::outbound::{Access, OutboundHooks};
use super::tag::LogTag;
use crate::text::truncate;

/// How much of a plugin's stdout/stderr is kept per request; the rest is
/// counted and dropped, so a chatty plugin cannot grow the host's memory.
pub const OUTPUT_CAPTURE_BYTES: usize = 16 * 1024;
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
    /// Who is running, for the log.
    pub tag: LogTag,
    log_lines: u32,
}

impl InstanceState {
    /// A sandbox with no capabilities but `outbound` access, capped at
    /// `memory_bytes` of linear memory, whose output goes into `output`.
    pub fn new(
        tag: LogTag,
        memory_bytes: usize,
        memory_budgets: MemoryBudgets,
        outbound: Option<Arc<Access>>,
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
            tag,
            log_lines: 0,
        }
    }

    /// The limiter, for [`wasmtime::Store::limiter`].
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// Which memory cap, if any, refused the plugin memory.
    pub fn memory_cap_hit(&self) -> Option<MemoryCap> {
        self.limiter.hit
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

/// The linear memory all live instances may hold together: the per-instance
/// cap times the number of instances would be far more than a pod has.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` from the budget, if that many are left.
    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Caps linear memory growth: per instance, against its plugin's share and
/// against the shared budget; remembers which cap was hit, so that a trap
/// that follows is reported as the plugin's "out of memory" or as the host's
/// overload, not as a crash.
struct MemoryLimiter {
    max_bytes: usize,
    budgets: MemoryBudgets,
    reserved: usize,
    hit: Option<MemoryCap>,
}

/// The budgets an instance's memory counts against.
#[derive(Clone)]
pub struct MemoryBudgets {
    /// All the instances of its plugin together: a share of `shared`, so
    /// that one plugin cannot take the memory the others need.
    pub plugin: Arc<MemoryBudget>,
    /// All instances of all plugins.
    pub shared: Arc<MemoryBudget>,
}

/// Which memory cap stopped an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryCap {
    /// Its own `memory-mib`.
    Plugin,
    /// Its plugin's share of the budget.
    PluginShare,
    /// The host's budget for all instances together.
    Host,
}

impl MemoryLimiter {
    fn new(max_bytes: usize, budgets: MemoryBudgets) -> MemoryLimiter {
        MemoryLimiter {
            max_bytes,
            budgets,
            reserved: 0,
            hit: None,
        }
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.budgets.plugin.release(self.reserved);
        self.budgets.shared.release(self.reserved);
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = Some(MemoryCap::Plugin);
            return Ok(false);
        }
        let growth = desired.saturating_sub(current);
        if !self.budgets.plugin.reserve(growth) {
            self.hit = Some(MemoryCap::PluginShare);
            return Ok(false);
        }
        if !self.budgets.shared.reserve(growth) {
            self.budgets.plugin.release(growth);
            self.hit = Some(MemoryCap::Host);
            return Ok(false);
        }
        self.reserved += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any
        // plugin's needs and keeps a runaway plugin from growing them.
        Ok(desired <= 100_000)
    }
}

/// A plugin's stdout and stderr: the first [`OUTPUT_CAPTURE_BYTES`] are kept,
/// the rest counted and dropped. Writes never fail, so a plugin's own
/// `eprintln!` cannot turn a full buffer into a panic.
#[derive(Clone, Default)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: usize,
}

impl CapturedOutput {
    fn append(&self, bytes: &[u8]) {
        let mut captured = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let room = OUTPUT_CAPTURE_BYTES.saturating_sub(captured.kept.len());
        let keep = room.min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..keep]);
        captured.dropped += bytes.len() - keep;
    }

    /// The message of a Rust panic in the output, if the plugin panicked:
    /// the line after `panicked at FILE:LINE:COL:`.
    pub fn panic_message(&self) -> Option<String> {
        let captured = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let text = String::from_utf8_lossy(&captured.kept);
        let (_, after) = text.split_once("panicked at ")?;
        after.lines().nth(1).map(str::to_owned)
    }

    /// What was kept, as text, and how many bytes were dropped.
    pub fn take(&self) -> (String, usize) {
        let mut captured = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let text = String::from_utf8_lossy(&captured.kept).into_owned();
        let dropped = captured.dropped;
        *captured = Captured::default();
        (text, dropped)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_output_keeps_a_bounded_prefix() {
        let output = CapturedOutput::default();
        output.append(b"hello ");
        output.append(&vec![b'x'; OUTPUT_CAPTURE_BYTES]);
        let (text, dropped) = output.take();
        assert_eq!(text.len(), OUTPUT_CAPTURE_BYTES);
        assert!(text.starts_with("hello xx"));
        assert_eq!(dropped, 6);
    }
}
