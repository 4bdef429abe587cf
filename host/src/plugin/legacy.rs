//! Serving plugins built against contract 0.1 unchanged: its request is
//! 0.2's with the object texts copied in, and its answer becomes 0.2's
//! (a denial code of 0 meant 403; a failed review trapped).

use std::sync::Arc;

use super::bindings::{types, v0_1};
use crate::document::{Document, Documents};

/// The 0.1 request for `request` and its documents.
pub fn request(request: types::Request, documents: &Documents) -> v0_1::types::Request {
    let text = |document: &Option<Arc<Document>>| {
        document.as_ref().map(|document| document.text().to_owned())
    };
    let gvk = |kind: types::GroupVersionKind| v0_1::types::GroupVersionKind {
        group: kind.group,
        version: kind.version,
        kind: kind.kind,
    };
    let gvr = |resource: types::GroupVersionResource| v0_1::types::GroupVersionResource {
        group: resource.group,
        version: resource.version,
        resource: resource.resource,
    };
    v0_1::types::Request {
        uid: request.uid,
        kind: gvk(request.kind),
        resource: gvr(request.resource),
        sub_resource: request.sub_resource,
        request_kind: request.request_kind.map(gvk),
        request_resource: request.request_resource.map(gvr),
        request_sub_resource: request.request_sub_resource,
        name: request.name,
        namespace: request.namespace,
        operation: match request.operation {
            types::Operation::Create => v0_1::types::Operation::Create,
            types::Operation::Update => v0_1::types::Operation::Update,
            types::Operation::Delete => v0_1::types::Operation::Delete,
            types::Operation::Connect => v0_1::types::Operation::Connect,
        },
        user_info: v0_1::types::UserInfo {
            username: request.user_info.username,
            uid: request.user_info.uid,
            groups: request.user_info.groups,
            extra: request.user_info.extra,
        },
        dry_run: request.dry_run,
        object: text(&documents.object),
        old_object: text(&documents.old_object),
        options: text(&documents.options),
    }
}

/// A 0.1 answer as 0.2's.
pub fn response(response: v0_1::types::Response) -> types::Response {
    types::Response {
        denied: response.denied.map(|denial| types::Denial {
            code: (denial.code != 0).then_some(denial.code),
            message: denial.message,
        }),
        mutation: response.mutation.map(|mutation| match mutation {
            v0_1::types::Mutation::JsonPatch(patch) => types::Mutation::JsonPatch(patch),
            v0_1::types::Mutation::Object(object) => types::Mutation::Object(object),
        }),
        warnings: response.warnings,
        audit_annotations: response.audit_annotations,
    }
}
