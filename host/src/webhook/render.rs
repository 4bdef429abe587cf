//! The webhook configurations for what is served: one
//! `MutatingWebhookConfiguration` and one `ValidatingWebhookConfiguration`,
//! an entry per `[[webhook]]` of each served plugin and pipeline. Both
//! `wicket manifests` and `wicket serve --register` use this, so what is
//! printed is what is applied.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations,
    ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

use crate::plugin::digest;
use crate::plugin::manifest::webhook::{self as spec, Selector, WebhookSpec};
use crate::registry::Target;

/// The label every namespace carries with its own name (Kubernetes ≥ 1.22).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Records what was rendered, so an unchanged configuration is not written.
pub const HASH_ANNOTATION: &str = "wicket.dev/configuration-hash";
/// The domain of every webhook entry's name.
const DOMAIN: &str = "wicket.dev";

/// How the API server reaches Wicket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Through a Service in the cluster.
    Service {
        /// The Service's name.
        name: String,
        /// Its namespace (Wicket's).
        namespace: String,
        /// Its port.
        port: u16,
    },
    /// At a URL (`https://HOST:PORT`): API servers outside the cluster.
    Url(String),
}

/// Where the configurations point and what they leave out.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The name of both configuration objects.
    pub configuration: String,
    /// How the API server reaches Wicket.
    pub endpoint: Endpoint,
    /// Namespaces never sent for review (Wicket's own and `kube-system`), so
    /// Wicket can never block its own restart or the control plane.
    pub excluded_namespaces: Vec<String>,
}

/// The two configurations.
#[derive(Debug, Clone, PartialEq)]
pub struct Configurations {
    /// Entries of mutating plugins and pipelines.
    pub mutating: MutatingWebhookConfiguration,
    /// Entries of validating plugins and pipelines.
    pub validating: ValidatingWebhookConfiguration,
}

/// Renders the configurations for `targets`; `ca_bundle` is the PEM the API
/// server should trust (none: left for another controller to inject).
pub fn render(
    targets: &[Target<'_>],
    registration: &Registration,
    ca_bundle: Option<&str>,
) -> Configurations {
    let mut mutating = Vec::new();
    let mut validating = Vec::new();
    for target in targets {
        for webhook in target.webhooks {
            let entry = entry(target, webhook, registration, ca_bundle);
            match target.mutating {
                true => mutating.push(entry),
                false => validating.push(into_validating(entry)),
            }
        }
    }
    Configurations {
        mutating: MutatingWebhookConfiguration {
            metadata: metadata(&registration.configuration, &mutating),
            webhooks: Some(mutating),
        },
        validating: ValidatingWebhookConfiguration {
            metadata: metadata(&registration.configuration, &validating),
            webhooks: Some(validating),
        },
    }
}

/// The configurations as multi-document YAML (k8s-openapi writes each
/// object's `apiVersion` and `kind`).
pub fn to_yaml(configurations: &Configurations) -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!(
        "---\n{}---\n{}",
        serde_saphyr::to_string(&configurations.mutating)?,
        serde_saphyr::to_string(&configurations.validating)?,
    ))
}

fn metadata<T: serde::Serialize>(name: &str, webhooks: &[T]) -> ObjectMeta {
    // Webhook entries have string keys only: serializing them cannot fail.
    let hash = digest(&serde_json::to_vec(webhooks).unwrap_or_default());
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_owned(),
            "wicket".to_owned(),
        )])),
        annotations: Some(BTreeMap::from([(HASH_ANNOTATION.to_owned(), hash)])),
        ..ObjectMeta::default()
    }
}

/// The entry's name: `PLUGIN.wicket.dev`, or `NAME.PLUGIN.wicket.dev`.
pub fn entry_name(target: &str, webhook: &WebhookSpec) -> String {
    match &webhook.name {
        Some(name) => format!("{name}.{target}.{DOMAIN}"),
        None => format!("{target}.{DOMAIN}"),
    }
}

fn entry(
    target: &Target<'_>,
    webhook: &WebhookSpec,
    registration: &Registration,
    ca_bundle: Option<&str>,
) -> MutatingWebhook {
    let client_config = match &registration.endpoint {
        Endpoint::Service {
            name,
            namespace,
            port,
        } => WebhookClientConfig {
            ca_bundle: ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec())),
            service: Some(ServiceReference {
                name: name.clone(),
                namespace: namespace.clone(),
                path: Some(target.path.clone()),
                port: Some(i32::from(*port)),
            }),
            url: None,
        },
        Endpoint::Url(base) => WebhookClientConfig {
            ca_bundle: ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec())),
            service: None,
            url: Some(format!("{}{}", base.trim_end_matches('/'), target.path)),
        },
    };
    let timeout = webhook
        .timeout_seconds
        .unwrap_or_else(|| spec::default_timeout_seconds(target.timeout_ms));
    MutatingWebhook {
        name: entry_name(target.name, webhook),
        admission_review_versions: vec!["v1".into(), "v1beta1".into()],
        client_config,
        rules: Some(webhook.rules.iter().map(rule).collect()),
        namespace_selector: Some(namespace_selector(
            webhook.namespace_selector.as_ref(),
            &registration.excluded_namespaces,
        )),
        object_selector: webhook.object_selector.as_ref().map(label_selector),
        match_conditions: (!webhook.match_conditions.is_empty()).then(|| {
            webhook
                .match_conditions
                .iter()
                .map(|condition| MatchCondition {
                    name: condition.name.clone(),
                    expression: condition.expression.clone(),
                })
                .collect()
        }),
        match_policy: webhook
            .match_policy
            .map(|policy| policy.as_str().to_owned()),
        timeout_seconds: Some(i32::try_from(timeout).unwrap_or(i32::MAX)),
        side_effects: webhook.side_effects.as_str().to_owned(),
        reinvocation_policy: webhook
            .reinvocation_policy
            .map(|policy| policy.as_str().to_owned()),
        failure_policy: Some(webhook.failure_policy.as_str().to_owned()),
    }
}

/// The same entry in a validating configuration (which has no reinvocation).
fn into_validating(entry: MutatingWebhook) -> ValidatingWebhook {
    ValidatingWebhook {
        name: entry.name,
        admission_review_versions: entry.admission_review_versions,
        client_config: entry.client_config,
        rules: entry.rules,
        namespace_selector: entry.namespace_selector,
        object_selector: entry.object_selector,
        match_conditions: entry.match_conditions,
        match_policy: entry.match_policy,
        timeout_seconds: entry.timeout_seconds,
        side_effects: entry.side_effects,
        failure_policy: entry.failure_policy,
    }
}

fn rule(rule: &spec::Rule) -> RuleWithOperations {
    RuleWithOperations {
        operations: Some(rule.operations.clone()),
        api_groups: Some(rule.api_groups.clone()),
        api_versions: Some(rule.api_versions.clone()),
        resources: Some(rule.resources.clone()),
        scope: rule.scope.clone(),
    }
}

/// The entry's own namespace selector, and never the excluded namespaces.
fn namespace_selector(own: Option<&Selector>, excluded: &[String]) -> LabelSelector {
    let mut selector = own.map(label_selector).unwrap_or_default();
    if !excluded.is_empty() {
        selector
            .match_expressions
            .get_or_insert_with(Vec::new)
            .push(LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(excluded.to_vec()),
            });
    }
    selector
}

fn label_selector(selector: &Selector) -> LabelSelector {
    LabelSelector {
        match_labels: (!selector.match_labels.is_empty()).then(|| selector.match_labels.clone()),
        match_expressions: (!selector.match_expressions.is_empty()).then(|| {
            selector
                .match_expressions
                .iter()
                .map(|requirement| LabelSelectorRequirement {
                    key: requirement.key.clone(),
                    operator: requirement.operator.clone(),
                    values: (!requirement.values.is_empty()).then(|| requirement.values.clone()),
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(toml_text: &str) -> Vec<WebhookSpec> {
        #[derive(serde::Deserialize)]
        struct File {
            webhook: Vec<WebhookSpec>,
        }
        toml::from_str::<File>(toml_text).unwrap().webhook
    }

    fn registration() -> Registration {
        Registration {
            configuration: "wicket".into(),
            endpoint: Endpoint::Service {
                name: "wicket".into(),
                namespace: "wicket-system".into(),
                port: 443,
            },
            excluded_namespaces: vec!["kube-system".into(), "wicket-system".into()],
        }
    }

    #[test]
    fn entries_go_to_their_configuration_with_path_ca_and_exclusions() {
        let injector = specs(
            r#"[[webhook]]
            rules = [{ operations = ["CREATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]
            namespace-selector = { match-labels = { inject = "enabled" } }
            reinvocation-policy = "IfNeeded""#,
        );
        let guard = specs(
            r#"[[webhook]]
            name = "deletes"
            rules = [{ operations = ["DELETE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]
            object-selector = { match-labels = { app = "etcd" } }
            [[webhook]]
            name = "evictions"
            rules = [{ operations = ["CREATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods/eviction"] }]
            failure-policy = "Ignore"
            timeout-seconds = 9"#,
        );
        let targets = [
            Target {
                name: "injector",
                mutating: true,
                path: "/mutate/injector".into(),
                timeout_ms: 200,
                webhooks: &injector,
            },
            Target {
                name: "guard",
                mutating: false,
                path: "/validate/guard".into(),
                timeout_ms: 2000,
                webhooks: &guard,
            },
        ];
        let rendered = render(&targets, &registration(), Some("PEM"));
        let mutating = rendered.mutating.webhooks.as_ref().unwrap();
        let validating = rendered.validating.webhooks.as_ref().unwrap();
        assert_eq!(mutating.len(), 1);
        assert_eq!(mutating[0].name, "injector.wicket.dev");
        assert_eq!(mutating[0].reinvocation_policy.as_deref(), Some("IfNeeded"));
        assert_eq!(mutating[0].timeout_seconds, Some(5));
        let service = mutating[0].client_config.service.as_ref().unwrap();
        assert_eq!(service.path.as_deref(), Some("/mutate/injector"));
        assert_eq!(service.namespace, "wicket-system");
        assert_eq!(
            mutating[0].client_config.ca_bundle,
            Some(ByteString(b"PEM".to_vec()))
        );
        let selector = mutating[0].namespace_selector.as_ref().unwrap();
        assert_eq!(selector.match_labels.as_ref().unwrap()["inject"], "enabled");
        let excluded = &selector.match_expressions.as_ref().unwrap()[0];
        assert_eq!(excluded.key, NAMESPACE_NAME_LABEL);
        assert_eq!(excluded.operator, "NotIn");
        assert_eq!(
            excluded.values.as_deref(),
            Some(&["kube-system".to_owned(), "wicket-system".to_owned()][..])
        );
        let names: Vec<&str> = validating.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            ["deletes.guard.wicket.dev", "evictions.guard.wicket.dev"]
        );
        assert_eq!(validating[0].failure_policy.as_deref(), Some("Fail"));
        assert_eq!(validating[0].side_effects, "None");
        assert_eq!(validating[1].failure_policy.as_deref(), Some("Ignore"));
        assert_eq!(validating[1].timeout_seconds, Some(9));
        assert_eq!(
            validating[0]
                .object_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["app"],
            "etcd"
        );
    }

    #[test]
    fn the_hash_is_stable_and_follows_the_ca_bundle_and_the_entries() {
        let webhooks = specs(
            r#"[[webhook]]
            rules = [{ operations = ["CREATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]"#,
        );
        let target = |mutating| Target {
            name: "p",
            mutating,
            path: "/validate/p".into(),
            timeout_ms: 200,
            webhooks: &webhooks,
        };
        let hash = |configurations: &Configurations| {
            configurations
                .validating
                .metadata
                .annotations
                .as_ref()
                .unwrap()[HASH_ANNOTATION]
                .clone()
        };
        let one = render(&[target(false)], &registration(), Some("A"));
        let again = render(&[target(false)], &registration(), Some("A"));
        let other_ca = render(&[target(false)], &registration(), Some("B"));
        let removed = render(&[], &registration(), Some("A"));
        assert_eq!(hash(&one), hash(&again));
        assert_ne!(hash(&one), hash(&other_ca));
        assert_ne!(hash(&one), hash(&removed));
        assert_eq!(removed.validating.webhooks, Some(Vec::new()));
    }

    #[test]
    fn a_url_endpoint_gets_the_path_appended() {
        let webhooks = specs(
            r#"[[webhook]]
            rules = [{ operations = ["*"], api-groups = ["*"], api-versions = ["*"], resources = ["*"] }]"#,
        );
        let registration = Registration {
            endpoint: Endpoint::Url("https://127.0.0.1:8443/".into()),
            ..registration()
        };
        let target = Target {
            name: "p",
            mutating: false,
            path: "/validate/p".into(),
            timeout_ms: 200,
            webhooks: &webhooks,
        };
        let rendered = render(&[target], &registration, None);
        let config = &rendered.validating.webhooks.unwrap()[0].client_config;
        assert_eq!(
            config.url.as_deref(),
            Some("https://127.0.0.1:8443/validate/p")
        );
        assert!(config.service.is_none() && config.ca_bundle.is_none());
    }
}
