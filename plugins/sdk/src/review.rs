//! One admission request, with typed access to its objects.

use serde::Deserialize;

use crate::Error;
pub use crate::bindings::wicket::admission::types::{
    GroupVersionKind, GroupVersionResource, Operation, Request, UserInfo,
};

/// The request a plugin judges.
///
/// The objects arrive as the JSON text the API server sent. Nothing is parsed
/// until the plugin asks, and then only into the type it names: a
/// `k8s_openapi` type, a `serde_json::Value`, or a light view from
/// [`crate::view`] that borrows from the text.
#[derive(Debug, Clone)]
pub struct Review {
    request: Request,
}

impl From<Request> for Review {
    fn from(request: Request) -> Self {
        Self { request }
    }
}

impl Review {
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

    /// The new object's JSON text; absent on delete.
    pub fn object_json(&self) -> Option<&str> {
        self.request.object.as_deref()
    }

    /// The stored object's JSON text; present on update and delete.
    pub fn old_object_json(&self) -> Option<&str> {
        self.request.old_object.as_deref()
    }

    /// The new object as `T`: a full type (`k8s_openapi::api::core::v1::Pod`,
    /// `serde_json::Value`) or a view that borrows from the request.
    pub fn object<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        parse(self.object_json(), "object")
    }

    /// The stored object as `T` (update and delete).
    pub fn old_object<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        parse(self.old_object_json(), "oldObject")
    }

    /// The operation's options (`CreateOptions`, `DeleteOptions`, ...) as `T`.
    pub fn options<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        parse(self.request.options.as_deref(), "options")
    }

    /// The request exactly as Wicket passed it.
    pub fn request(&self) -> &Request {
        &self.request
    }
}

fn parse<'a, T: Deserialize<'a>>(json: Option<&'a str>, field: &str) -> Result<T, Error> {
    let json = json.ok_or_else(|| Error::new(format!("the request has no {field}")))?;
    serde_json::from_str(json).map_err(|error| Error::new(format!("{field}: {error}")))
}
