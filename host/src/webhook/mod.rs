//! Registering Wicket with the API server: each served plugin's and
//! pipeline's `[[webhook]]` entries (the manifest's schema,
//! [`crate::plugin::manifest::webhook`]) become one mutating and one
//! validating webhook configuration ([`render`]), printed by `wicket
//! manifests` or applied by `wicket serve --register` ([`register`]). It sits
//! above the registry: it reads what is served, and nothing below reads it.

pub mod register;
pub mod render;

pub use render::{Configurations, Endpoint, Registration};
