//! Write a Wicket admission plugin in ordinary Rust: implement [`Plugin`],
//! then call [`export_plugin!`] once.
//!
//! ```
//! use serde::Deserialize;
//! use wicket_sdk::view::Metadata;
//! use wicket_sdk::{Error, Plugin, Review, Validate, Verdict};
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
//! impl Validate for Settings {
//!     fn validate(&self) -> Result<(), Error> {
//!         match self.label.is_empty() {
//!             true => Err(Error::new("label must not be empty")),
//!             false => Ok(()),
//!         }
//!     }
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
//!   your [`Plugin::Settings`] and checked by its [`Validate`] when Wicket
//!   loads the plugin, so a bad manifest is refused at load time rather than
//!   on the first request. On each review they are read again, through the
//!   host and only the fields the type names.
//! - **Objects** stay in Wicket (contract 0.2's `document`) and are read only
//!   when you ask ([`Review::object`]) and only into the type you name: a
//!   light view from [`view`] or your own struct fetches just its fields, a
//!   `k8s-openapi` type or a `serde_json::Value` what it needs to be whole.
//! - **Mutations**: build a [`Patch`] when you know what you changed (paths
//!   are escaped, missing maps and lists are created), or return the whole
//!   changed object with [`Verdict::with_object`] and let Wicket diff it.
//! - **Failures**: a review that returns `Err` is a plugin failure (not a
//!   denial), returned to Wicket as a value (`plugin-error`); Wicket applies
//!   the plugin's `failure-policy` and logs why.
//!
//! # Speed
//!
//! Wicket runs every request in a fresh instance, so nothing is cached across
//! requests and every read is paid for each time. Inside the sandbox, JSON
//! parsing costs about four times its native cost, and a host call about a
//! microsecond: name the fields you read in a view (the host indexes the
//! object natively and sends only those), and prefer a [`Patch`] to
//! returning the whole object.
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

pub mod arena;
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod bindings;
pub mod cluster;
mod error;
#[cfg(feature = "http")]
pub mod http;
pub mod log;
#[cfg(feature = "native")]
pub mod native;
mod patch;
mod read;
mod review;
mod source;
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
    type Settings: DeserializeOwned + Validate;

    /// Judges one request.
    fn review(&self, review: &Review<'_>, settings: &Self::Settings) -> Result<Verdict, Error>;
}

/// Checks settings beyond their shape (values that depend on each other,
/// names that must exist). Runs once, when Wicket loads the plugin; an error
/// keeps it from being served, with its message shown to the operator.
pub trait Validate {
    /// Whether the settings can be used.
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// Settings of a plugin that takes none: an empty `[settings]` table (or
/// none); anything in it is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Validate for NoSettings {}

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
            use $crate::bindings::wicket::admission::types as wit;

            struct WicketExport;

            impl $crate::bindings::exports::wicket::admission::plugin::Guest for WicketExport {
                fn validate_settings(
                    settings: &wit::Document,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::validate_settings(&$plugin, settings)
                }

                fn review(
                    request: wit::Request,
                    documents: wit::Documents<'_>,
                ) -> ::std::result::Result<wit::Response, wit::PluginError> {
                    $crate::__private::review(&$plugin, request, documents)
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
    use serde::Deserialize;
    use typed_arena::Arena;

    use crate::bindings::wicket::admission::types::{Document, Documents, PluginError, Response};
    use crate::read::At;
    use crate::source::Source;
    use crate::{Plugin, Request, Review, Validate};

    /// `validate-settings`: the whole settings text parses into
    /// `P::Settings` (unknown keys refused, if the type says so) and passes
    /// its [`Validate`].
    pub fn validate_settings<P: Plugin>(_plugin: &P, settings: &Document) -> Result<(), String> {
        let text = settings.get("").unwrap_or_default();
        crate::parse_settings::<P>(&text)?
            .validate()
            .map_err(|error| error.to_string())
    }

    /// `review`: the settings read through the host (they passed
    /// `validate-settings` when the plugin was loaded), then the plugin's
    /// verdict, or its error as a value.
    pub fn review<P: Plugin>(
        plugin: &P,
        request: Request,
        documents: Documents<'_>,
    ) -> Result<Response, PluginError> {
        let documents = Sources::of(
            [documents.object, documents.old_object, documents.options],
            documents.settings,
            Source::Host,
        );
        judge(plugin, request, documents)
    }

    /// A review's documents, wherever they are read from.
    pub(crate) struct Sources<'a> {
        pub(crate) object: Option<Source<'a>>,
        pub(crate) old_object: Option<Source<'a>>,
        pub(crate) options: Option<Source<'a>>,
        pub(crate) settings: Source<'a>,
    }

    impl<'a> Sources<'a> {
        /// The object, the stored object, the options and the settings,
        /// each read as `source` makes it.
        pub(crate) fn of<T: ?Sized>(
            [object, old_object, options]: [Option<&'a T>; 3],
            settings: &'a T,
            source: fn(&'a T) -> Source<'a>,
        ) -> Self {
            Sources {
                object: object.map(source),
                old_object: old_object.map(source),
                options: options.map(source),
                settings: source(settings),
            }
        }
    }

    /// The plugin's answer to `request` and its documents.
    pub(crate) fn judge<P: Plugin>(
        plugin: &P,
        request: Request,
        documents: Sources<'_>,
    ) -> Result<Response, PluginError> {
        let failed = |message: String| PluginError { message };
        let texts = Arena::new();
        let settings = P::Settings::deserialize(At::new(&documents.settings, &texts, ""))
            .map_err(|error| failed(format!("settings: {error}")))?;
        let review = Review::new(
            request,
            documents.object,
            documents.old_object,
            documents.options,
        );
        plugin
            .review(&review, &settings)
            .map(crate::Verdict::into_response)
            .map_err(|error| failed(error.to_string()))
    }

    /// Natively, the export only checks that its argument is a plugin.
    pub fn exported<P: Plugin>(_plugin: &P) {}
}

/// The settings in `text`, as `validate-settings` parses them.
fn parse_settings<P: Plugin>(text: &str) -> Result<P::Settings, String> {
    serde_json::from_str(text).map_err(|error| format!("invalid settings: {error}"))
}
