//! One admission request, with typed access to its objects.

use serde::Deserialize;
use serde::de::IgnoredAny;
use typed_arena::Arena;

pub use crate::bindings::wicket::admission::types::{
    GroupVersionKind, GroupVersionResource, Operation, Request, UserInfo,
};
use crate::read::{self, At};
use crate::source::Source;
use crate::view::Text;
use crate::{Error, pointer};

/// The request a plugin judges.
///
/// The objects stay in Wicket until the plugin reads them, and then only the
/// parts its type names come into the sandbox: a light view from
/// [`crate::view`] (or a struct of your own) fetches just its fields; a
/// `k8s_openapi` type or a `serde_json::Value` fetches what it needs to be
/// whole.
pub struct Review<'a> {
    request: Request,
    object: Option<Source<'a>>,
    old_object: Option<Source<'a>>,
    options: Option<Source<'a>>,
    /// The texts fetched so far, which views borrow strings from.
    texts: Arena<String>,
}

impl<'a> Review<'a> {
    pub(crate) fn new(
        request: Request,
        object: Option<Source<'a>>,
        old_object: Option<Source<'a>>,
        options: Option<Source<'a>>,
    ) -> Self {
        Self {
            request,
            object,
            old_object,
            options,
            texts: Arena::new(),
        }
    }

    /// The review's uid (Wicket echoes it; useful in log lines).
    pub fn uid(&self) -> &str {
        &self.request.uid
    }

    /// Create, update, delete or connect.
    pub fn operation(&self) -> Operation {
        self.request.operation
    }

    /// The object's kind, as the webhook was registered for it.
    pub fn kind(&self) -> &GroupVersionKind {
        &self.request.kind
    }

    /// The resource acted on (`pods`, `configmaps`, ...).
    pub fn resource(&self) -> &GroupVersionResource {
        &self.request.resource
    }

    /// The sub-resource (`eviction`, `status`, ...), if any.
    pub fn sub_resource(&self) -> Option<&str> {
        self.request.sub_resource.as_deref()
    }

    /// The object's name; empty on a create whose name the server generates.
    pub fn name(&self) -> &str {
        &self.request.name
    }

    /// The namespace of the request (a create's object often lacks it).
    pub fn namespace(&self) -> &str {
        &self.request.namespace
    }

    /// Who made the request.
    pub fn user(&self) -> &UserInfo {
        &self.request.user_info
    }

    /// True for `--dry-run=server` requests. A plugin has no side effects
    /// either way, so most plugins ignore it.
    pub fn dry_run(&self) -> bool {
        self.request.dry_run
    }

    /// Whether the request has a new object (a delete has none).
    pub fn has_object(&self) -> bool {
        self.object.is_some()
    }

    /// The new object's whole JSON text; absent on delete. Prefer
    /// [`Review::object`] with a view: this brings all of it into the
    /// sandbox.
    pub fn object_json(&self) -> Option<&str> {
        self.whole(self.object.as_ref()?)
    }

    /// The stored object's whole JSON text; present on update and delete.
    pub fn old_object_json(&self) -> Option<&str> {
        self.whole(self.old_object.as_ref()?)
    }

    /// The new object as `T`: a view or a struct of your own that names the
    /// fields it reads, or a full type (`k8s_openapi::api::core::v1::Pod`,
    /// `serde_json::Value`). A struct's `deny_unknown_fields` holds only for
    /// objects of up to 2 KiB, which are read whole; larger ones are read by
    /// the names the struct lists.
    pub fn object<'r, T: Deserialize<'r>>(&'r self) -> Result<T, Error> {
        self.read(self.object.as_ref(), "object", "")
    }

    /// The part of the new object at `pointer` (RFC 6901, e.g.
    /// `/metadata/labels`) as `T`.
    pub fn object_at<'r, T: Deserialize<'r>>(&'r self, pointer: &str) -> Result<T, Error> {
        self.read(self.object.as_ref(), "object", pointer)
    }

    /// The new object's label `key`, read alone.
    pub fn label(&self, key: &str) -> Result<Option<Text<'_>>, Error> {
        self.object_at(&pointer(&["metadata", "labels", key]))
    }

    /// The new object's annotation `key`, read alone: the other annotations
    /// never enter the sandbox. On objects applied with `kubectl apply`,
    /// `kubectl.kubernetes.io/last-applied-configuration` holds the whole
    /// object again as escaped JSON, and decoding it was a sixteenth of the
    /// sidecar injector's time; with [`crate::view::Names`] instead of
    /// [`crate::view::ObjectMeta`], a plugin reads only the keys it asks for.
    pub fn annotation(&self, key: &str) -> Result<Option<Text<'_>>, Error> {
        self.object_at(&pointer(&["metadata", "annotations", key]))
    }

    /// The new object's labels `keys` (`None` for each one not set), in one
    /// read through the host instead of one per key.
    pub fn labels(&self, keys: &[&str]) -> Result<Vec<Option<Text<'_>>>, Error> {
        self.object_members("/metadata/labels", keys)
    }

    /// The new object's annotations `keys`, as [`Review::labels`].
    pub fn annotations(&self, keys: &[&str]) -> Result<Vec<Option<Text<'_>>>, Error> {
        self.object_members("/metadata/annotations", keys)
    }

    fn object_members<'r, T: Deserialize<'r>>(
        &'r self,
        pointer: &str,
        names: &[&str],
    ) -> Result<Vec<Option<T>>, Error> {
        self.read_with(self.object.as_ref(), "object", pointer, |source| {
            read::members(source, &self.texts, pointer, names)
        })
    }

    /// Whether the new object has a value at `pointer` (an empty map
    /// counts; `null` does not), without reading it.
    pub fn object_has(&self, pointer: &str) -> Result<bool, Error> {
        self.object_at::<Option<IgnoredAny>>(pointer)
            .map(|value| value.is_some())
    }

    /// The stored object as `T` (update and delete).
    pub fn old_object<'r, T: Deserialize<'r>>(&'r self) -> Result<T, Error> {
        self.read(self.old_object.as_ref(), "oldObject", "")
    }

    /// The operation's options (`CreateOptions`, `DeleteOptions`, ...) as `T`.
    pub fn options<'r, T: Deserialize<'r>>(&'r self) -> Result<T, Error> {
        self.read(self.options.as_ref(), "options", "")
    }

    /// Reads of other objects of the cluster: the kinds the manifest
    /// declares under `[cluster]`.
    pub fn cluster(&self) -> crate::cluster::Cluster {
        crate::cluster::Cluster::new()
    }

    /// The request as Wicket passed it, without its objects.
    pub fn request(&self) -> &Request {
        &self.request
    }

    fn whole(&self, source: &Source<'a>) -> Option<&str> {
        Some(self.texts.alloc(source.get("")?))
    }

    fn read<'r, T: Deserialize<'r>>(
        &'r self,
        source: Option<&'r Source<'a>>,
        field: &str,
        pointer: &str,
    ) -> Result<T, Error> {
        self.read_with(source, field, pointer, |source| {
            T::deserialize(At::new(source, &self.texts, pointer))
        })
    }

    /// `read` run on the document `field` (absent: an error saying so),
    /// its error naming `field` and `pointer`.
    fn read_with<'r, R>(
        &'r self,
        source: Option<&'r Source<'a>>,
        field: &str,
        pointer: &str,
        read: impl FnOnce(&'r Source<'a>) -> Result<R, serde_json::Error>,
    ) -> Result<R, Error> {
        let source = source.ok_or_else(|| Error::new(format!("the request has no {field}")))?;
        read(source).map_err(|error| Error::new(format!("{field}{pointer}: {error}")))
    }

    /// Its request and documents, for a copy with another object.
    #[cfg(feature = "testing")]
    pub(crate) fn parts(&self) -> (&Request, Option<&Source<'a>>, Option<&Source<'a>>) {
        (
            &self.request,
            self.old_object.as_ref(),
            self.options.as_ref(),
        )
    }
}
