//! An object as the API server would send it for review: a dry-run CREATE
//! `AdmissionReview` (v1), shaped like those captured from a real
//! kube-apiserver (`tests/fixtures/v1-ingress-create.json`), by an audit
//! identity the operator can change (`--user`, `--group`).

use serde_json::{Value, json};

use super::resources::Resource;
use crate::cluster::kind::KindKey;

/// Who the audit's reviews say made the request.
#[derive(Debug, Clone)]
pub struct Requester {
    /// `userInfo.username`.
    pub user: String,
    /// `userInfo.groups`.
    pub groups: Vec<String>,
}

impl Default for Requester {
    /// `wicket:audit`, authenticated: a name no real user has, so a
    /// plugin's exemptions for people and controllers do not apply.
    fn default() -> Self {
        Requester {
            user: "wicket:audit".to_owned(),
            groups: vec!["system:authenticated".to_owned()],
        }
    }
}

/// The review of `object` (of `kind`, served as `resource`) being created
/// by `requester`, numbered `serial` for a stable uid. `namespace` is the
/// object's, or the default namespace it would be created in.
pub fn create_review(
    object: &Value,
    kind: &KindKey,
    resource: &Resource,
    namespace: &str,
    requester: &Requester,
    serial: u64,
) -> Value {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group_version_kind =
        json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
    let group_version_resource =
        json!({"group": kind.group, "version": kind.version, "resource": resource.plural});
    let namespace = match resource.namespaced {
        true => namespace,
        false => "",
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("00000000-0000-4000-a000-{serial:012x}"),
            "kind": group_version_kind,
            "resource": group_version_resource,
            "requestKind": group_version_kind,
            "requestResource": group_version_resource,
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": requester.user, "groups": requester.groups},
            "object": object,
            "oldObject": null,
            "dryRun": true,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "wicket-audit"},
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_decodes_as_the_server_decodes_one() {
        let object = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": "team-a"}, "spec": {"rules": [{"host": "shop.example.com"}]}});
        let kind = KindKey::new("networking.k8s.io/v1", "Ingress").unwrap();
        let resource = Resource {
            plural: "ingresses".into(),
            namespaced: true,
        };
        let review = create_review(
            &object,
            &kind,
            &resource,
            "team-a",
            &Requester::default(),
            7,
        );
        let bytes = serde_json::to_vec(&review).unwrap();
        let decoded = crate::review::decode(&bytes).unwrap();
        assert_eq!(decoded.request.operation.as_str(), "CREATE");
        assert_eq!(decoded.request.namespace, "team-a");
        assert!(decoded.request.dry_run);
        assert_eq!(
            review["request"]["uid"],
            "00000000-0000-4000-a000-000000000007"
        );
        assert_eq!(review["request"]["resource"]["resource"], "ingresses");
    }
}
