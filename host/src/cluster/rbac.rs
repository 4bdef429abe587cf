//! The RBAC the watch caches need: a ClusterRole granting `get`, `list`
//! and `watch` on exactly the kinds the served plugins declare (and the
//! operator allows: others never load), bound to Wicket's service account.
//! Printed by `wicket manifests`, so the grant follows the plugins.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::GroupVersionKind;
use kube::core::ApiResource;

use super::kind::KindKey;

/// The verbs a watch cache uses: `list` and `watch`; `get` for the odd
/// client that reads one object back.
const VERBS: [&str; 3] = ["get", "list", "watch"];

/// The ClusterRole named `name` granting reads of `kinds`, and its binding
/// to the service account `service_account` in `namespace`.
pub fn grant(
    kinds: &BTreeSet<KindKey>,
    name: &str,
    namespace: &str,
    service_account: &str,
) -> (ClusterRole, ClusterRoleBinding) {
    // One rule per API group, its resources sorted: the plural is the one
    // the API server serves for the common kinds, guessed as kubectl does
    // for the rest (check a CRD's `spec.names.plural`).
    let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for kind in kinds {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let plural = ApiResource::from_gvk(&gvk).plural;
        by_group
            .entry(kind.group.clone())
            .or_default()
            .insert(plural);
    }
    let rules = by_group
        .into_iter()
        .map(|(group, resources)| PolicyRule {
            api_groups: Some(vec![group]),
            resources: Some(resources.into_iter().collect()),
            verbs: VERBS.map(str::to_owned).to_vec(),
            ..PolicyRule::default()
        })
        .collect();
    let metadata = ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_owned(),
            "wicket".to_owned(),
        )])),
        ..ObjectMeta::default()
    };
    let role = ClusterRole {
        metadata: metadata.clone(),
        rules: Some(rules),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "ClusterRole".to_owned(),
            name: name.to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: service_account.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..Subject::default()
        }]),
    };
    (role, binding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_per_group_with_the_served_plurals() {
        let kinds = BTreeSet::from([
            KindKey::new("networking.k8s.io/v1", "Ingress").unwrap(),
            KindKey::new("v1", "Namespace").unwrap(),
            KindKey::new("policy/v1", "PodDisruptionBudget").unwrap(),
            KindKey::new("networking.k8s.io/v1", "IngressClass").unwrap(),
        ]);
        let (role, binding) = grant(&kinds, "wicket-cluster-reads", "wicket-system", "wicket");
        let rules: Vec<(String, Vec<String>)> = role
            .rules
            .unwrap()
            .into_iter()
            .map(|rule| (rule.api_groups.unwrap().join(","), rule.resources.unwrap()))
            .collect();
        assert_eq!(
            rules,
            [
                ("".to_owned(), vec!["namespaces".to_owned()]),
                (
                    "networking.k8s.io".to_owned(),
                    vec!["ingressclasses".to_owned(), "ingresses".to_owned()]
                ),
                ("policy".to_owned(), vec!["poddisruptionbudgets".to_owned()]),
            ]
        );
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(
            (subject.name.as_str(), subject.namespace.as_deref()),
            ("wicket", Some("wicket-system"))
        );
    }
}
