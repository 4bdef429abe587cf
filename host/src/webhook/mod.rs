//! Registering Wicket with the API server: each plugin's and pipeline's
//! `[[webhook]]` entries ([`spec`]) become one mutating and one validating
//! webhook configuration ([`render`]), printed by `wicket manifests` or
//! applied by `wicket serve --register` ([`register`]).

pub mod register;
pub mod render;
pub mod spec;

pub use render::{Configurations, Endpoint, Registration, Target};
pub use spec::WebhookSpec;
