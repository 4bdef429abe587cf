//! Whether a plugin's `[[webhook]]` entries would send an object's CREATE
//! to it, as the API server decides: the rules' operations, groups,
//! versions, resources and scope, then the namespace and object selectors.
//! Match conditions (CEL) are not evaluated: an entry that has them is
//! taken as matching, and the result says so.

use std::collections::BTreeMap;

use crate::cluster::kind::KindKey;
use crate::plugin::manifest::webhook::{Rule, Selector, WebhookSpec};

use super::resources::Resource;

/// What the API server knows of an object when it picks webhooks.
pub struct Candidate<'a> {
    /// Its kind.
    pub kind: &'a KindKey,
    /// Its resource.
    pub resource: &'a Resource,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its namespace's labels: `None` for a cluster-scoped object, or a
    /// namespace the audit was not told about (selectors then match no
    /// label).
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
}

/// Whether entries select an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// No entry selects it.
    No,
    /// An entry selects it.
    Yes,
    /// An entry selects it, unless its match conditions (not evaluated)
    /// say otherwise.
    UnlessConditions,
}

/// Whether any of `entries` sends `candidate`'s CREATE to the plugin.
pub fn matches(entries: &[WebhookSpec], candidate: &Candidate<'_>) -> Matched {
    let mut matched = Matched::No;
    for entry in entries {
        if !entry.rules.iter().any(|rule| rule_matches(rule, candidate)) {
            continue;
        }
        if !namespace_selected(entry.namespace_selector.as_ref(), candidate) {
            continue;
        }
        if let Some(selector) = &entry.object_selector
            && !selects(selector, candidate.labels)
        {
            continue;
        }
        if entry.match_conditions.is_empty() {
            return Matched::Yes;
        }
        matched = Matched::UnlessConditions;
    }
    matched
}

/// Whether `rule` covers a CREATE of `candidate`'s resource.
fn rule_matches(rule: &Rule, candidate: &Candidate<'_>) -> bool {
    covers_create(rule, candidate.kind, candidate.resource)
}

/// Whether `rule` covers a CREATE of `kind` through `resource`
/// (sub-resources never: an object is created through its main resource).
pub fn covers_create(rule: &Rule, kind: &KindKey, resource: &Resource) -> bool {
    let any_or =
        |list: &[String], wanted: &str| list.iter().any(|item| item == "*" || item == wanted);
    let resource_listed = rule
        .resources
        .iter()
        .any(|listed| listed == "*" || listed == "*/*" || *listed == resource.plural);
    let scoped = match rule.scope.as_deref() {
        None | Some("*") => true,
        Some("Namespaced") => resource.namespaced,
        Some("Cluster") => !resource.namespaced,
        Some(_) => false,
    };
    any_or(&rule.operations, "CREATE")
        && any_or(&rule.api_groups, &kind.group)
        && any_or(&rule.api_versions, &kind.version)
        && resource_listed
        && scoped
}

/// The API server's namespace selector: on a Namespace, its own labels; on
/// another cluster-scoped object, always selected; otherwise its
/// namespace's labels.
fn namespace_selected(selector: Option<&Selector>, candidate: &Candidate<'_>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    if candidate.kind.group.is_empty() && candidate.kind.kind == "Namespace" {
        return selects(selector, candidate.labels);
    }
    if !candidate.resource.namespaced {
        return true;
    }
    let none = BTreeMap::new();
    selects(selector, candidate.namespace_labels.unwrap_or(&none))
}

/// Whether a label selector selects `labels`.
pub fn selects(selector: &Selector, labels: &BTreeMap<String, String>) -> bool {
    let labelled = selector
        .match_labels
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value));
    labelled
        && selector.match_expressions.iter().all(|requirement| {
            let value = labels.get(&requirement.key);
            match requirement.operator.as_str() {
                "In" => value.is_some_and(|value| requirement.values.contains(value)),
                "NotIn" => value.is_none_or(|value| !requirement.values.contains(value)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> WebhookSpec {
        toml::from_str(toml_text).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    const PODS: &str = r#"rules = [{ operations = ["CREATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]"#;

    #[test]
    fn rules_select_by_operation_group_version_resource_and_scope() {
        let pod = KindKey::new("v1", "Pod").unwrap();
        let pods = Resource {
            plural: "pods".into(),
            namespaced: true,
        };
        let none = BTreeMap::new();
        let candidate = Candidate {
            kind: &pod,
            resource: &pods,
            labels: &none,
            namespace_labels: Some(&none),
        };
        assert_eq!(matches(&[entry(PODS)], &candidate), Matched::Yes);
        for other in [
            r#"rules = [{ operations = ["UPDATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]"#,
            r#"rules = [{ operations = ["*"], api-groups = ["apps"], api-versions = ["*"], resources = ["*"] }]"#,
            r#"rules = [{ operations = ["*"], api-groups = ["*"], api-versions = ["*"], resources = ["pods/eviction"] }]"#,
            r#"rules = [{ operations = ["*"], api-groups = ["*"], api-versions = ["*"], resources = ["*"], scope = "Cluster" }]"#,
        ] {
            assert_eq!(matches(&[entry(other)], &candidate), Matched::No, "{other}");
        }
        let everything = r#"rules = [{ operations = ["*"], api-groups = ["*"], api-versions = ["*"], resources = ["*/*"], scope = "Namespaced" }]"#;
        assert_eq!(matches(&[entry(everything)], &candidate), Matched::Yes);
        let conditioned =
            format!("{PODS}\nmatch-conditions = [{{ name = \"x\", expression = \"true\" }}]");
        assert_eq!(
            matches(&[entry(&conditioned)], &candidate),
            Matched::UnlessConditions
        );
    }

    #[test]
    fn selectors_read_the_object_and_its_namespace_as_the_api_server_does() {
        let selector = |text: &str| entry(&format!("{PODS}\n{text}"));
        let team = selector(r#"namespace-selector = { match-labels = { team = "a" } }"#);
        let not_legacy = selector(
            r#"object-selector = { match-expressions = [{ key = "legacy", operator = "DoesNotExist" }] }"#,
        );
        let pod = KindKey::new("v1", "Pod").unwrap();
        let pods = Resource {
            plural: "pods".into(),
            namespaced: true,
        };
        let (a, b, legacy, none) = (
            labels(&[("team", "a")]),
            labels(&[("team", "b")]),
            labels(&[("legacy", "")]),
            BTreeMap::new(),
        );
        let in_namespace = |namespace_labels, labels| Candidate {
            kind: &pod,
            resource: &pods,
            labels,
            namespace_labels,
        };
        assert_eq!(
            matches(std::slice::from_ref(&team), &in_namespace(Some(&a), &none)),
            Matched::Yes
        );
        assert_eq!(
            matches(std::slice::from_ref(&team), &in_namespace(Some(&b), &none)),
            Matched::No
        );
        assert_eq!(
            matches(std::slice::from_ref(&team), &in_namespace(None, &none)),
            Matched::No
        );
        assert_eq!(
            matches(
                std::slice::from_ref(&not_legacy),
                &in_namespace(Some(&a), &legacy)
            ),
            Matched::No
        );
        assert_eq!(
            matches(
                std::slice::from_ref(&not_legacy),
                &in_namespace(Some(&a), &none)
            ),
            Matched::Yes
        );

        // A Namespace is selected by its own labels.
        let everything = selector(r#"namespace-selector = { match-labels = { team = "a" } }"#)
            .rules
            .into_iter()
            .map(|mut rule| {
                rule.resources = vec!["*".into()];
                rule.api_groups = vec!["*".into()];
                rule
            })
            .collect();
        let mut all = team.clone();
        all.rules = everything;
        let namespace = KindKey::new("v1", "Namespace").unwrap();
        let namespaces = Resource {
            plural: "namespaces".into(),
            namespaced: false,
        };
        let own = Candidate {
            kind: &namespace,
            resource: &namespaces,
            labels: &a,
            namespace_labels: None,
        };
        assert_eq!(matches(std::slice::from_ref(&all), &own), Matched::Yes);
        let other = Candidate { labels: &b, ..own };
        assert_eq!(matches(std::slice::from_ref(&all), &other), Matched::No);
    }
}
