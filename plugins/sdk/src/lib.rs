//! Write a Wicket admission plugin in ordinary Rust: implement [`Plugin`],
//! then call [`export_plugin!`] once.
//!
//! ```
//! use serde::Deserialize;
//! use wicket_sdk::view::Metadata;
//! use wicket_sdk::{Error, Plugin, Review, Verdict};
//!
//! /// Refuses objects without an owner label.
//! struct RequireOwner;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     label: String,
//! }
//!
//! impl Plugin for RequireOwner {
//!     type Settings = Settings;
//!
//!     fn review(&self, review: &Review, settings: &Settings) -> Result<Verdict, Error> {
//!         let object: Metadata = review.object()?;
//!         Ok(match object.metadata.label(&settings.label) {
//!             Some(_) => Verdict::allow(),
//!             None => Verdict::deny(format!("add the label {}", settings.label)),
//!         })
//!     }
//! }
//!
//! wicket_sdk::export_plugin!(RequireOwner);
//! ```
//!
//! # What the SDK does for you
//!
//! - **Settings** (the manifest's `[settings]` table) are deserialized into
//!   your [`Plugin::Settings`]; the same parse, plus [`Plugin::check_settings`],
//!   is what Wicket runs when it loads the plugin, so a bad manifest is refused
//!   at load time rather than on the first request.
//! - **Objects** are parsed only when you ask ([`Review::object`]) and only
//!   into the type you name: a `k8s-openapi` type, a `serde_json::Value`, or a
//!   light view from [`view`] that skips what you do not read.
//! - **Mutations**: build a [`Patch`] when you know what you changed (paths
//!   are escaped, missing maps and lists are created), or return the whole
//!   changed object with [`Verdict::with_object`] and let Wicket diff it.
//! - **Failures**: a review that returns `Err` is a plugin failure (not a
//!   denial); Wicket applies the plugin's `failure-policy` and logs why.
//!
//! # Speed
//!
//! Wicket runs every request in a fresh instance, so nothing is cached across
//! requests and every parse is paid for each time. Inside the sandbox, JSON
//! parsing costs about three times its native cost: read the fields you need
//! through a view rather than parsing whole objects, and prefer a [`Patch`]
//! to returning the whole object.
//!
//! # Who computes the patch for a whole-object mutation
//!
//! The host does. The guest would have to parse the original object in full,
//! keep both copies and diff them at sandbox speed; the host diffs natively,
//! with one implementation checked against the API server's rules, and
//! plugins stay smaller without a JSON Patch library inside them.
//!
//! # Testing
//!
//! A plugin's logic is ordinary Rust and runs natively in `cargo test`: the
//! export is compiled for `wasm32` only, and the `testing` feature builds a
//! [`Review`] from a captured AdmissionReview and applies a [`Verdict`].

#![deny(missing_docs)]

#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings;
mod error;
#[cfg(feature = "http")]
pub mod http;
pub mod log;
mod patch;
mod review;
#[cfg(feature = "testing")]
pub mod testing;
mod verdict;
pub mod view;

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use error::Error;
pub use patch::{Patch, pointer};
pub use review::{GroupVersionKind, GroupVersionResource, Operation, Request, Review, UserInfo};
pub use verdict::Verdict;

/// An admission plugin. Implement it on a unit struct and export a value of
/// it with [`export_plugin!`]. Wicket makes a fresh instance for every call,
/// so the struct holds no state between requests.
pub trait Plugin {
    /// The manifest's `[settings]` table (JSON, keys as written in TOML).
    /// Use [`NoSettings`] for a plugin that takes none.
    type Settings: DeserializeOwned;

    /// Checks the settings beyond their shape (values that depend on each
    /// other, names that must exist). Runs once, when Wicket loads the
    /// plugin; an error keeps it from being served.
    fn check_settings(&self, _settings: &Self::Settings) -> Result<(), String> {
        Ok(())
    }

    /// Judges one request.
    fn review(&self, review: &Review, settings: &Self::Settings) -> Result<Verdict, Error>;
}

/// Settings of a plugin that takes none: an empty `[settings]` table (or
/// none); anything in it is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// Exports a [`Plugin`] value as the component's `wicket:admission/plugin`:
/// `wicket_sdk::export_plugin!(MyPlugin);`
///
/// In a native build (unit tests) the export is left out, so plugin crates
/// test like any other crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:expr) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct WicketExport;

            impl $crate::bindings::exports::wicket::admission::plugin::Guest for WicketExport {
                fn validate_settings(
                    settings: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::validate_settings(&$plugin, &settings)
                }

                fn review(
                    request: $crate::Request,
                    settings: ::std::string::String,
                ) -> $crate::bindings::wicket::admission::types::Response {
                    $crate::__private::review(&$plugin, request, &settings)
                }
            }

            $crate::bindings::__export_admission_plugin!(WicketExport with_types_in $crate::bindings);
        };
        // Natively, still check the type and count the plugin as used.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = || $crate::__private::exported(&$plugin);
        };
    };
}

/// What [`export_plugin!`] expands to call; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::wicket::admission::types::Response;
    use crate::{Plugin, Request, Review};

    /// `validate-settings`: the settings parse into `P::Settings` and pass
    /// `P::check_settings`.
    pub fn validate_settings<P: Plugin>(plugin: &P, settings: &str) -> Result<(), String> {
        let settings = crate::parse_settings::<P>(settings)?;
        plugin.check_settings(&settings)
    }

    /// `review`: a failed review becomes a trap carrying its message, which
    /// Wicket reports as a plugin failure under the plugin's failure policy.
    pub fn review<P: Plugin>(plugin: &P, request: Request, settings: &str) -> Response {
        let settings = crate::parse_settings::<P>(settings)
            .unwrap_or_else(|error| panic!("{error} (they were valid at load time)"));
        let review = Review::from(request);
        match plugin.review(&review, &settings) {
            Ok(verdict) => verdict.into_response(),
            Err(error) => panic!("review failed: {error}"),
        }
    }

    /// Natively, the export only checks that its argument is a plugin.
    pub fn exported<P: Plugin>(_plugin: &P) {}
}

fn parse_settings<P: Plugin>(settings: &str) -> Result<P::Settings, String> {
    serde_json::from_str(settings).map_err(|error| format!("invalid settings: {error}"))
}
