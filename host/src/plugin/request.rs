//! Building the WIT `request` a plugin receives from a decoded review.
//!
//! The objects are not in it: contract 0.2 passes them as documents.

use super::bindings::types;
use crate::review::{self, AdmissionRequest};

/// The WIT request for `request`.
pub fn to_wit(request: &AdmissionRequest<'_>) -> types::Request {
    types::Request {
        uid: request.uid.clone(),
        kind: gvk(&request.kind),
        resource: gvr(&request.resource),
        sub_resource: request.sub_resource.clone(),
        request_kind: request.request_kind.as_ref().map(gvk),
        request_resource: request.request_resource.as_ref().map(gvr),
        request_sub_resource: request.request_sub_resource.clone(),
        name: request.name.clone(),
        namespace: request.namespace.clone(),
        operation: match request.operation {
            review::Operation::Create => types::Operation::Create,
            review::Operation::Update => types::Operation::Update,
            review::Operation::Delete => types::Operation::Delete,
            review::Operation::Connect => types::Operation::Connect,
        },
        user_info: types::UserInfo {
            username: request.user_info.username.clone(),
            uid: request.user_info.uid.clone(),
            groups: request.user_info.groups.clone(),
            extra: request
                .user_info
                .extra
                .iter()
                .map(|(key, values)| (key.clone(), values.clone()))
                .collect(),
        },
        dry_run: request.dry_run,
    }
}

fn gvk(kind: &review::GroupVersionKind) -> types::GroupVersionKind {
    types::GroupVersionKind {
        group: kind.group.clone(),
        version: kind.version.clone(),
        kind: kind.kind.clone(),
    }
}

fn gvr(resource: &review::GroupVersionResource) -> types::GroupVersionResource {
    types::GroupVersionResource {
        group: resource.group.clone(),
        version: resource.version.clone(),
        resource: resource.resource.clone(),
    }
}
