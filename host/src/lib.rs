//! Wicket: a WebAssembly-plugin admission host for Kubernetes.
//!
//! The API server POSTs an `AdmissionReview` to `/mutate/NAME` or
//! `/validate/NAME`; Wicket decodes it ([`review`]), runs the plugin `NAME`
//! in a fresh sandboxed wasmtime instance ([`plugin`]), checks its answer
//! against the API server's rules ([`admit`], [`patch`]) and answers in the
//! request's `apiVersion`. The set of plugins is one snapshot
//! ([`registry`]), loaded from a folder of `.wasm` components and `.toml`
//! manifests.
#![deny(missing_docs)]

pub mod admit;
pub mod audit;
pub mod body;
pub mod check;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod counters;
pub mod document;
pub mod fault;
pub mod freed;
pub mod judge;
pub mod manifests;
pub mod metrics;
pub mod objects;
pub mod ops;
pub mod patch;
pub mod pipeline;
pub mod plugin;
pub mod precompile;
pub mod registry;
pub mod review;
pub mod reviewer;
pub mod routes;
pub mod served;
pub mod server;
pub mod suite;
pub mod text;
pub mod tls;
pub mod watch;
pub mod webhook;

pub use config::ServeConfig;
pub use server::serve;
