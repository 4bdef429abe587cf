//! From an object's kind to the resource webhook rules name: a table of the
//! built-in kinds, the CustomResourceDefinitions found among the audited
//! objects, and the operator's `--resource KIND=RESOURCE` for the rest.

use std::collections::HashMap;

use serde_json::Value;

use crate::cluster::kind::KindKey;

/// A kind's resource and whether its objects live in namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The plural rules name, e.g. `ingresses`.
    pub plural: String,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
}

/// The built-in kinds: group, kind, plural, namespaced.
const BUILT_IN: &[(&str, &str, &str, bool)] = &[
    ("", "ConfigMap", "configmaps", true),
    ("", "Endpoints", "endpoints", true),
    ("", "Event", "events", true),
    ("", "LimitRange", "limitranges", true),
    ("", "Namespace", "namespaces", false),
    ("", "Node", "nodes", false),
    ("", "PersistentVolume", "persistentvolumes", false),
    ("", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    ("", "Pod", "pods", true),
    ("", "PodTemplate", "podtemplates", true),
    ("", "ReplicationController", "replicationcontrollers", true),
    ("", "ResourceQuota", "resourcequotas", true),
    ("", "Secret", "secrets", true),
    ("", "Service", "services", true),
    ("", "ServiceAccount", "serviceaccounts", true),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    ("apps", "ControllerRevision", "controllerrevisions", true),
    ("apps", "DaemonSet", "daemonsets", true),
    ("apps", "Deployment", "deployments", true),
    ("apps", "ReplicaSet", "replicasets", true),
    ("apps", "StatefulSet", "statefulsets", true),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    ("batch", "CronJob", "cronjobs", true),
    ("batch", "Job", "jobs", true),
    ("coordination.k8s.io", "Lease", "leases", true),
    ("discovery.k8s.io", "EndpointSlice", "endpointslices", true),
    ("networking.k8s.io", "Ingress", "ingresses", true),
    ("networking.k8s.io", "IngressClass", "ingressclasses", false),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    ("node.k8s.io", "RuntimeClass", "runtimeclasses", false),
    (
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
    ("storage.k8s.io", "CSIDriver", "csidrivers", false),
    ("storage.k8s.io", "StorageClass", "storageclasses", false),
    (
        "storage.k8s.io",
        "VolumeAttachment",
        "volumeattachments",
        false,
    ),
];

/// What the audit knows of kinds, by group and kind (any version).
#[derive(Debug, Clone)]
pub struct Resources {
    known: HashMap<(String, String), Resource>,
}

/// A `--resource` that is not `Kind[.group]=plural[:cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--resource {0:?} is not KIND[.GROUP]=PLURAL or KIND[.GROUP]=PLURAL:cluster")]
pub struct BadResource(String);

impl Resources {
    /// The built-in kinds and the operator's `extra` (`Kind[.group]=plural`,
    /// `:cluster` after the plural for a cluster-scoped kind).
    pub fn new(extra: &[String]) -> Result<Resources, BadResource> {
        let mut known: HashMap<(String, String), Resource> = BUILT_IN
            .iter()
            .map(|(group, kind, plural, namespaced)| {
                let resource = Resource {
                    plural: (*plural).to_owned(),
                    namespaced: *namespaced,
                };
                (((*group).to_owned(), (*kind).to_owned()), resource)
            })
            .collect();
        for given in extra {
            let bad = || BadResource(given.clone());
            let (kind_group, resource) = given.split_once('=').ok_or_else(bad)?;
            let (kind, group) = kind_group.split_once('.').unwrap_or((kind_group, ""));
            let (plural, namespaced) = match resource.strip_suffix(":cluster") {
                Some(plural) => (plural, false),
                None => (resource, true),
            };
            if kind.is_empty() || plural.is_empty() || plural.contains(['/', ':']) {
                return Err(bad());
            }
            let resource = Resource {
                plural: plural.to_owned(),
                namespaced,
            };
            known.insert((group.to_owned(), kind.to_owned()), resource);
        }
        Ok(Resources { known })
    }

    /// Learns the kind a CustomResourceDefinition among the audited objects
    /// defines (an operator's `--resource` wins).
    pub fn learn(&mut self, definition: &Value) {
        let text = |pointer: &str| definition.pointer(pointer).and_then(Value::as_str);
        let (Some(group), Some(kind), Some(plural)) = (
            text("/spec/group"),
            text("/spec/names/kind"),
            text("/spec/names/plural"),
        ) else {
            return;
        };
        let resource = Resource {
            plural: plural.to_owned(),
            namespaced: text("/spec/scope") != Some("Cluster"),
        };
        self.known
            .entry((group.to_owned(), kind.to_owned()))
            .or_insert(resource);
    }

    /// Takes `resource` as `kind`'s, as the API server's discovery says
    /// (over the table and the operator).
    pub fn discovered(&mut self, kind: &KindKey, resource: Resource) {
        self.known
            .insert((kind.group.clone(), kind.kind.clone()), resource);
    }

    /// The resource of `kind`, if known.
    pub fn of(&self, kind: &KindKey) -> Option<&Resource> {
        self.known.get(&(kind.group.clone(), kind.kind.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_given_and_defined_kinds_resolve() {
        let mut resources = Resources::new(&[
            "Widget.example.com=widgets".into(),
            "Gadget.example.com=gadgets:cluster".into(),
        ])
        .unwrap();
        let ingress = KindKey::new("networking.k8s.io/v1", "Ingress").unwrap();
        assert_eq!(
            resources.of(&ingress),
            Some(&Resource {
                plural: "ingresses".into(),
                namespaced: true
            })
        );
        let namespace = KindKey::new("v1", "Namespace").unwrap();
        assert!(!resources.of(&namespace).unwrap().namespaced);
        let gadget = KindKey::new("example.com/v1", "Gadget").unwrap();
        assert_eq!(resources.of(&gadget).unwrap().plural, "gadgets");
        assert!(!resources.of(&gadget).unwrap().namespaced);
        let crontab = KindKey::new("stable.example.com/v1", "CronTab").unwrap();
        assert!(resources.of(&crontab).is_none());
        resources.learn(
            &json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "stable.example.com", "scope": "Namespaced",
                "names": {"kind": "CronTab", "plural": "crontabs"}}}),
        );
        assert_eq!(resources.of(&crontab).unwrap().plural, "crontabs");
        for bad in ["Widget", "=widgets", "Widget=", "Widget=a/b"] {
            assert!(Resources::new(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
