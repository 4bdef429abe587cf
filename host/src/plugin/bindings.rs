//! The only `bindgen!` in Wicket: host-side types for the `admission-plugin`
//! world in `wit/`. Everything else uses the items re-exported here.

#[allow(
    missing_docs,
    reason = "generated code; the WIT file documents every type"
)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "admission-plugin",
        exports: { default: async },
    });
}

/// The `log` import that plugins call.
pub use generated::wicket::admission::log;
/// The request and answer types exchanged with a plugin.
pub use generated::wicket::admission::types;
/// The instantiated plugin world, and its pre-instantiated template.
pub use generated::{AdmissionPlugin, AdmissionPluginPre};
