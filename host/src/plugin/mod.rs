//! Plugins: their manifest, the WIT bindings, the sandbox each instance runs
//! in, and the runtime that loads and calls them.

mod bindings;
mod compile;
mod epoch;
mod host;
pub mod manifest;
mod meter;
mod outbound;
mod request;
mod runtime;
mod tls_client;

pub use bindings::types;
pub use compile::{Origin, digest};
pub use manifest::{Enforcement, FailurePolicy, Limits, Manifest, ManifestError, Mode};
pub use outbound::{HostPattern, Outbound};
pub use runtime::{
    CallError, FailureCause, LoadError, Overload, Plugin, PluginFailure, Reviewed, Runtime,
    RuntimeConfig, WasmError, wall_bound,
};
