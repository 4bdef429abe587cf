//! Reading other objects of the cluster: the objects the plugin's manifest
//! declares under `[cluster]`, from a cache Wicket keeps, read through
//! views like the object under review.
//!
//! ```no_run
//! use serde::Deserialize;
//! use wicket_sdk::cluster::kinds::Ingress;
//! use wicket_sdk::view::Metadata;
//! use wicket_sdk::{Error, Review};
//!
//! fn claimed_elsewhere(review: &Review, host: &str) -> Result<Vec<String>, Error> {
//!     let mut owners = Vec::new();
//!     // `host` is an index the manifest declares:
//!     // { api-version = "networking.k8s.io/v1", kind = "Ingress", index = { host = "/spec/rules/*/host" } }
//!     for ingress in review.cluster().find::<Ingress>("host", host)? {
//!         let other: Metadata = ingress.read()?;
//!         if other.metadata.namespace.as_deref() != Some(review.namespace()) {
//!             owners.push(format!("{:?}/{:?}", other.metadata.namespace, other.metadata.name));
//!         }
//!     }
//!     Ok(owners)
//! }
//! ```
//!
//! A read that cannot be answered is a [`ClusterError`]; `?` turns it into
//! the plugin's failure (its `failure-policy` decides), or match on it to
//! decide otherwise (allow with a warning while the cache fills, say).
//!
//! Natively (a plugin's unit tests) there is no cluster: reads are
//! `unavailable`. Test cluster-aware logic with `wicket test` cases that
//! carry `cluster:` objects.

use serde::Deserialize;
use typed_arena::Arena;

use crate::Error;
pub use crate::bindings::wicket::admission::cluster::ClusterError;
use crate::bindings::wicket::admission::types::Document;
use crate::read::At;
use crate::source::Source;

/// A kind of object, as objects name theirs. Implement it for a kind the
/// SDK does not list in [`kinds`]:
///
/// ```
/// struct Widget;
/// impl wicket_sdk::cluster::Kind for Widget {
///     const API_VERSION: &'static str = "example.com/v1";
///     const KIND: &'static str = "Widget";
/// }
/// ```
pub trait Kind {
    /// `apiVersion`, e.g. `networking.k8s.io/v1`.
    const API_VERSION: &'static str;
    /// `kind`, e.g. `Ingress`.
    const KIND: &'static str;
}

/// Markers for the kinds plugins read most.
pub mod kinds {
    macro_rules! kinds {
        ($($(#[$doc:meta])* $name:ident = $api_version:literal;)*) => {$(
            $(#[$doc])*
            pub struct $name;
            impl super::Kind for $name {
                const API_VERSION: &'static str = $api_version;
                const KIND: &'static str = stringify!($name);
            }
        )*};
    }
    kinds! {
        /// `v1 Namespace`.
        Namespace = "v1";
        /// `v1 Pod`.
        Pod = "v1";
        /// `v1 Service`.
        Service = "v1";
        /// `v1 ConfigMap`.
        ConfigMap = "v1";
        /// `v1 ServiceAccount`.
        ServiceAccount = "v1";
        /// `v1 Node`.
        Node = "v1";
        /// `apps/v1 Deployment`.
        Deployment = "apps/v1";
        /// `networking.k8s.io/v1 Ingress`.
        Ingress = "networking.k8s.io/v1";
        /// `networking.k8s.io/v1 IngressClass`.
        IngressClass = "networking.k8s.io/v1";
        /// `policy/v1 PodDisruptionBudget`.
        PodDisruptionBudget = "policy/v1";
    }
}

/// Reads of the cluster, from [`crate::Review::cluster`].
#[derive(Debug, Clone, Copy)]
pub struct Cluster(());

impl Cluster {
    pub(crate) fn new() -> Cluster {
        Cluster(())
    }

    /// The object `name` of `K` in `namespace` (`""` for a cluster-scoped
    /// kind), if it exists.
    pub fn get<K: Kind>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Object>, ClusterError> {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::wicket::admission::cluster::get(
            K::API_VERSION,
            K::KIND,
            namespace,
            name,
        )
        .map(|document| document.map(Object::new));
        #[cfg(not(target_arch = "wasm32"))]
        return native::<K, _>(&[namespace, name]);
    }

    /// The objects of `K`, in `namespace` if given, that `selector` (the
    /// API server's syntax, `app=web,tier in (a,b)`) selects, if given.
    pub fn list<K: Kind>(
        &self,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Object>, ClusterError> {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::wicket::admission::cluster::list(
            K::API_VERSION,
            K::KIND,
            namespace,
            selector,
        )
        .map(|documents| documents.into_iter().map(Object::new).collect());
        #[cfg(not(target_arch = "wasm32"))]
        return native::<K, _>(&[namespace.unwrap_or_default(), selector.unwrap_or_default()]);
    }

    /// The objects of `K` whose index `index` (declared in the manifest)
    /// holds `value`.
    pub fn find<K: Kind>(&self, index: &str, value: &str) -> Result<Vec<Object>, ClusterError> {
        #[cfg(target_arch = "wasm32")]
        return crate::bindings::wicket::admission::cluster::find(
            K::API_VERSION,
            K::KIND,
            index,
            value,
        )
        .map(|documents| documents.into_iter().map(Object::new).collect());
        #[cfg(not(target_arch = "wasm32"))]
        return native::<K, _>(&[index, value]);
    }
}

/// Natively there is no host: every read is `unavailable`.
#[cfg(not(target_arch = "wasm32"))]
fn native<K: Kind, T>(_arguments: &[&str]) -> Result<T, ClusterError> {
    Err(ClusterError::Unavailable(format!(
        "no cluster in a native build: test reads of {} {} with wicket test cases that carry cluster: objects",
        K::API_VERSION,
        K::KIND
    )))
}

/// An object read from the cluster. It stays in Wicket; [`Object::read`]
/// brings in the fields its type names.
pub struct Object {
    source: Source<'static>,
    texts: Arena<String>,
}

impl Object {
    #[cfg_attr(
        not(target_arch = "wasm32"),
        allow(dead_code, reason = "made by host reads only")
    )]
    fn new(document: Document) -> Object {
        Object {
            source: Source::Owned(std::rc::Rc::new(document)),
            texts: Arena::new(),
        }
    }

    /// The object as `T`: a view ([`crate::view::Metadata`]) or a struct of
    /// your own naming the fields you read.
    pub fn read<'r, T: Deserialize<'r>>(&'r self) -> Result<T, Error> {
        self.read_at("")
    }

    /// The part of the object at `pointer` as `T`.
    pub fn read_at<'r, T: Deserialize<'r>>(&'r self, pointer: &str) -> Result<T, Error> {
        T::deserialize(At::new(&self.source, &self.texts, pointer))
            .map_err(|error| Error::new(format!("cluster object{pointer}: {error}")))
    }
}

/// `error` for the operator: what kind of failure, and the host's message.
pub fn describe(error: &ClusterError) -> String {
    let (what, message) = match error {
        ClusterError::NotDeclared(message) => ("not declared", message),
        ClusterError::NotAllowed(message) => ("not allowed", message),
        ClusterError::NotSynced(message) => ("not yet synced", message),
        ClusterError::Forbidden(message) => ("forbidden", message),
        ClusterError::Unavailable(message) => ("unavailable", message),
        ClusterError::Invalid(message) => ("invalid", message),
    };
    format!("cluster read {what}: {message}")
}

impl From<ClusterError> for Error {
    fn from(error: ClusterError) -> Self {
        Error::new(describe(&error))
    }
}
