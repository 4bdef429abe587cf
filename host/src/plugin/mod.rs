//! Plugins: their manifest, the WIT bindings, the sandbox each instance runs
//! in, and the runtime that loads and calls them.

mod bindings;
mod call;
mod cluster;
mod cluster_access;
mod compile;
mod compile_turns;
mod deadline;
mod document_ref;
mod documents;
mod epoch;
mod grant;
mod host;
mod legacy;
pub mod manifest;
mod memory;
mod meter;
mod outbound;
mod outcome;
mod output;
mod request;
mod runtime;
mod tag;
mod teardown;
mod tls_client;

pub use bindings::types;
pub use call::Plugin;
pub use compile::{Origin, digest};
pub use deadline::wall_bound;
pub use grant::{GrantError, HostPattern, Outbound, PatternError};
pub use manifest::{Enforcement, FailurePolicy, Limits, Manifest, ManifestError, Mode};
pub use outcome::{
    CallError, FailureCause, LoadError, Overload, PluginFailure, Reviewed, WasmError,
};
pub use request::to_wit;
pub use runtime::{Runtime, RuntimeConfig, Usage};
pub use tls_client::TlsFilesError;
