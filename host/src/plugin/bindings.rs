//! The only `bindgen!`s in Wicket: host-side types for each version of the
//! `admission-plugin` world in `wit/`. Everything else uses the items
//! re-exported here. The host speaks the newest contract; older ones are
//! adapted to it in `legacy`.

#[allow(
    missing_docs,
    reason = "generated code; the WIT files document every type"
)]
mod generated {
    /// Contract 0.2: documents read through the host.
    pub mod v0_2 {
        wasmtime::component::bindgen!({
            path: "../wit/0.2",
            world: "admission-plugin",
            exports: { default: async },
            // A stale document handle traps the plugin; it never panics the host.
            imports: { default: trappable },
            with: { "wicket:admission/types.document": crate::plugin::document_ref::DocumentRef },
        });
    }

    /// Contract 0.1: objects and settings copied in as text.
    pub mod v0_1 {
        wasmtime::component::bindgen!({
            path: "../wit/0.1",
            world: "admission-plugin",
            exports: { default: async },
        });
    }
}

/// Contract 0.1, served beside 0.2.
pub mod v0_1 {
    pub use super::generated::v0_1::wicket::admission::{log, types};
    pub use super::generated::v0_1::{AdmissionPlugin, AdmissionPluginPre};
}

/// The `cluster` import that plugins read other objects through.
pub use generated::v0_2::wicket::admission::cluster;
/// The `log` import that plugins call.
pub use generated::v0_2::wicket::admission::log;
/// The request and answer types exchanged with a plugin.
pub use generated::v0_2::wicket::admission::types;
/// The instantiated plugin world, and its pre-instantiated template.
pub use generated::v0_2::{AdmissionPlugin, AdmissionPluginPre};
