//! How loading a plugin or calling it can end other than well: why a load
//! failed ([`LoadError`]), why a call has no usable answer — the plugin's
//! failure ([`PluginFailure`]) or the host's lack of capacity
//! ([`Overload`]) — and what a review call gave ([`Reviewed`]).

use std::fmt;
use std::time::Duration;

use super::bindings::types;
use super::tls_client::TlsFilesError;

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
    /// The manifest's `[outbound.tls]` files cannot be used.
    #[error("outbound.tls")]
    OutboundTls(#[from] TlsFilesError),
    /// The component imports `wasi:http` but its manifest grants no hosts.
    #[error(
        "the component imports wasi:http, but its manifest grants no outbound hosts \
         (add [outbound] allowed-hosts)"
    )]
    OutboundNotGranted,
    /// The component does not export Wicket's `admission-plugin` world.
    #[error("the component does not export the wicket:admission/plugin interface")]
    WrongWorld(#[source] WasmError),
    /// The manifest declares reads of a kind the operator does not allow.
    #[error(transparent)]
    ClusterNotAllowed(#[from] super::cluster_access::NotAllowed),
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
    /// The host was too busy to run `validate-settings`.
    #[error("validate-settings could not run")]
    Overloaded(#[source] Overload),
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
    /// The plugin returned its own error (contract 0.2's `plugin-error`).
    #[error("it could not judge the request: {0}")]
    Reported(String),
    /// The plugin used more than its deadline of its own time.
    #[error("it ran past its {}ms deadline", .0.as_millis())]
    Deadline(Duration),
    /// A long-running call did not end within its wall-clock bound while
    /// taking turns with the other long-running calls.
    #[error(
        "it ran past its {}ms wall-clock bound as a long-running call ({}ms of its own time)",
        .bound.as_millis(),
        .used.as_millis()
    )]
    WallClock {
        /// The bound.
        bound: Duration,
        /// Its own time when the bound passed.
        used: Duration,
    },
    /// All of the plugin's own instances stayed busy until the bound.
    #[error("all {0} of its instances stayed busy (its max-concurrency)")]
    Saturated(u32),
    /// The plugin tried to grow its memory past its cap.
    #[error("it exceeded its memory limit of {} MiB", .0 >> 20)]
    Memory(usize),
    /// The plugin's instances together reached its share of the memory
    /// budget.
    #[error(
        "its instances together reached {} MiB, its share of the plugins' memory budget",
        .0 >> 20
    )]
    MemoryShare(usize),
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

/// A [`PluginFailure`]'s kind, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// It trapped or panicked.
    Trap,
    /// It returned its own error.
    Error,
    /// It ran past its deadline or its wall-clock bound.
    Deadline,
    /// It reached its memory cap or its share of the budget.
    Memory,
    /// Its answer was too large or malformed.
    Output,
    /// Its patch was forbidden or did not apply.
    BadPatch,
    /// It could not be instantiated.
    Instantiate,
    /// All its instances stayed busy.
    SlotWait,
}

impl FailureCause {
    /// Every cause, in declaration order (`as usize` indexes by it).
    pub const ALL: [FailureCause; 8] = [
        FailureCause::Trap,
        FailureCause::Error,
        FailureCause::Deadline,
        FailureCause::Memory,
        FailureCause::Output,
        FailureCause::BadPatch,
        FailureCause::Instantiate,
        FailureCause::SlotWait,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Trap => "trap",
            FailureCause::Error => "error",
            FailureCause::Deadline => "deadline",
            FailureCause::Memory => "memory",
            FailureCause::Output => "output",
            FailureCause::BadPatch => "bad-patch",
            FailureCause::Instantiate => "instantiate",
            FailureCause::SlotWait => "slot-wait",
        }
    }
}

impl PluginFailure {
    /// Its kind.
    pub fn cause(&self) -> FailureCause {
        match self {
            PluginFailure::Trap(_) => FailureCause::Trap,
            PluginFailure::Reported(_) => FailureCause::Error,
            PluginFailure::Deadline(_) | PluginFailure::WallClock { .. } => FailureCause::Deadline,
            PluginFailure::Saturated(_) => FailureCause::SlotWait,
            PluginFailure::Memory(_) | PluginFailure::MemoryShare(_) => FailureCause::Memory,
            PluginFailure::Instantiate(_) => FailureCause::Instantiate,
            PluginFailure::OutputTooLarge { .. } | PluginFailure::Malformed(_) => {
                FailureCause::Output
            }
            PluginFailure::ForbiddenMutation(_) | PluginFailure::PatchDoesNotApply(_) => {
                FailureCause::BadPatch
            }
        }
    }
}

/// What one review call gave, and the plugin's own time it took (what its
/// deadline counts: its CPU time and its own I/O waits).
#[derive(Debug)]
pub struct Reviewed {
    /// The plugin's answer, or why there is none.
    pub answer: Result<types::Response, CallError>,
    /// The plugin's own time.
    pub own_time: Duration,
}

/// Why the host, not the plugin, could not run a call: answered as 503 so
/// the API server's failure policy and the client's retry decide, never as a
/// denial.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Overload {
    /// Every instance slot stayed taken.
    #[error("all {0} plugin instance slots stayed busy")]
    Slots(u32),
    /// The call did not end within its wall-clock bound though the plugin
    /// had not used its deadline: the host was too busy.
    #[error("the host was too busy to finish it within {}ms", .0.as_millis())]
    Busy(Duration),
    /// The instances together reached the host's memory budget.
    #[error("the plugins' shared memory budget is used up")]
    Memory,
    /// The instance pool had no slot of a kind the component needs (core
    /// instances, memories, tables), held by the instances running.
    #[error("the instance pool is full: {0}")]
    Pool(String),
}

/// How a call failed: the plugin's fault, or the host's lack of capacity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The plugin failed; its failure policy decides the answer.
    #[error(transparent)]
    Plugin(#[from] PluginFailure),
    /// The host could not run it.
    #[error(transparent)]
    Overloaded(#[from] Overload),
}
