//! Plugin memory: the budgets linear memory counts against (all instances,
//! each plugin's share) and the limiter that charges an instance's growth to
//! them, remembering which cap refused it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::ResourceLimiter;

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

    /// Bytes taken now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes it holds at most.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Caps linear memory growth: per instance, against its plugin's share and
/// against the shared budget; remembers which cap was hit, so that a trap
/// that follows is reported as the plugin's "out of memory" or as the host's
/// overload, not as a crash.
pub(super) struct MemoryLimiter {
    max_bytes: usize,
    budgets: MemoryBudgets,
    reserved: usize,
    /// What `memory.grow` added past the memories' initial sizes.
    grown: usize,
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
    /// A limiter for one instance of at most `max_bytes`.
    pub(super) fn new(max_bytes: usize, budgets: MemoryBudgets) -> MemoryLimiter {
        MemoryLimiter {
            max_bytes,
            budgets,
            reserved: 0,
            grown: 0,
            hit: None,
        }
    }

    /// Which cap, if any, refused the instance memory.
    pub(super) fn hit(&self) -> Option<MemoryCap> {
        self.hit
    }

    /// The linear memory the instance added to its memories' initial sizes
    /// while it ran, in bytes.
    pub(super) fn grown(&self) -> usize {
        self.grown
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
        if current > 0 {
            self.grown += growth;
        }
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
