//! A plugin's or pipeline's `[[webhook]]` entries: how the API server should
//! call it (rules, selectors, timeouts, the API server's own failure policy),
//! as written in its manifest. Keys are kebab-case like the rest of the
//! manifest; values are spelled as the API server spells them (`CREATE`,
//! `Fail`, `NoneOnDryRun`).
//!
//! ```toml
//! [[webhook]]
//! rules = [{ operations = ["CREATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]
//! namespace-selector = { match-labels = { "sidecar.wicket.dev/inject" = "enabled" } }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::plugin::deadline::WALL_HEADROOM;
use crate::text::is_dns_label;

/// The API server's ceiling on a webhook's `timeoutSeconds`.
pub const MAX_TIMEOUT_SECONDS: u32 = 30;

/// One webhook entry of a plugin or pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookSpec {
    /// Tells several entries of one plugin apart (a DNS label); the entry is
    /// registered as `NAME.PLUGIN.wicket.dev`, or `PLUGIN.wicket.dev` without.
    #[serde(default)]
    pub name: Option<String>,
    /// What requests the API server sends.
    pub rules: Vec<Rule>,
    /// Which namespaces' objects are sent; Wicket's own and `kube-system`
    /// are always left out.
    #[serde(default)]
    pub namespace_selector: Option<Selector>,
    /// Which objects are sent, by their labels.
    #[serde(default)]
    pub object_selector: Option<Selector>,
    /// CEL conditions, passed to the API server unchanged.
    #[serde(default)]
    pub match_conditions: Vec<MatchCondition>,
    /// `Exact` or `Equivalent` (the API server's default).
    #[serde(default)]
    pub match_policy: Option<MatchPolicy>,
    /// How long the API server waits; by default a little above the
    /// plugin's own deadline.
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    /// Whether calling the webhook has side effects.
    #[serde(default)]
    pub side_effects: SideEffects,
    /// Whether the API server calls a mutating webhook again after later
    /// webhooks changed the object.
    #[serde(default)]
    pub reinvocation_policy: Option<ReinvocationPolicy>,
    /// What the API server does when it cannot reach Wicket (not what
    /// Wicket does when the plugin fails: that is the plugin's own
    /// `failure-policy`).
    #[serde(default)]
    pub failure_policy: ApiServerFailurePolicy,
}

/// One rule: operations on resources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rule {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `*`.
    pub operations: Vec<String>,
    /// API groups (`""` is the core group, `*` all).
    pub api_groups: Vec<String>,
    /// API versions (`*` all).
    pub api_versions: Vec<String>,
    /// Resources, with sub-resources as `pods/eviction`.
    pub resources: Vec<String>,
    /// `Namespaced`, `Cluster` or `*` (the default).
    #[serde(default)]
    pub scope: Option<String>,
}

/// A label selector.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Selector {
    /// Labels that must have these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Further requirements, all of which must hold.
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

/// One selector requirement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The label.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values for `In` and `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// A CEL match condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchCondition {
    /// Its name, unique within the entry.
    pub name: String,
    /// The CEL expression.
    pub expression: String,
}

/// How rules match requests in other API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MatchPolicy {
    /// Only the versions listed.
    Exact,
    /// Equivalent versions too.
    Equivalent,
}

impl MatchPolicy {
    /// As the API server spells it: what is applied, whatever the variant is named.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchPolicy::Exact => "Exact",
            MatchPolicy::Equivalent => "Equivalent",
        }
    }
}

/// Side effects, as the API server's v1 API accepts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SideEffects {
    /// No side effects.
    #[default]
    None,
    /// Side effects only outside dry runs.
    NoneOnDryRun,
}

impl SideEffects {
    /// As the API server spells it: what is applied, whatever the variant is named.
    pub fn as_str(self) -> &'static str {
        match self {
            SideEffects::None => "None",
            SideEffects::NoneOnDryRun => "NoneOnDryRun",
        }
    }
}

/// Reinvocation of a mutating webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ReinvocationPolicy {
    /// Called once.
    Never,
    /// Called again when a later webhook changed the object.
    IfNeeded,
}

impl ReinvocationPolicy {
    /// As the API server spells it: what is applied, whatever the variant is named.
    pub fn as_str(self) -> &'static str {
        match self {
            ReinvocationPolicy::Never => "Never",
            ReinvocationPolicy::IfNeeded => "IfNeeded",
        }
    }
}

/// What the API server does when the webhook cannot be reached or answers
/// with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ApiServerFailurePolicy {
    /// Refuse the request.
    #[default]
    Fail,
    /// Let the request through.
    Ignore,
}

impl ApiServerFailurePolicy {
    /// As the API server spells it: what is applied, whatever the variant is named.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiServerFailurePolicy::Fail => "Fail",
            ApiServerFailurePolicy::Ignore => "Ignore",
        }
    }
}

const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"];
const SCOPES: [&str; 3] = ["Namespaced", "Cluster", "*"];

/// Why `[[webhook]]` entries were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// An entry with no rule would never be called.
    #[error("webhook entry {0} has no rules")]
    NoRules(usize),
    /// A rule with an empty list or an unknown operation or scope.
    #[error("webhook entry {entry}, rule {rule}: {problem}")]
    BadRule {
        /// The entry's index.
        entry: usize,
        /// The rule's index.
        rule: usize,
        /// What is wrong.
        problem: String,
    },
    /// A selector requirement with an unknown operator or wrong values.
    #[error("webhook entry {0}: selector requirement on {1:?}: {2}")]
    BadRequirement(usize, String, &'static str),
    /// Two entries share a name, or several have none.
    #[error("webhook entries need distinct names (a DNS label each) when there are several")]
    Names,
    /// A name that is not a DNS label.
    #[error("webhook entry name {0:?} is not a DNS label")]
    BadName(String),
    /// A timeout the API server would not accept, or one that would give up
    /// before the plugin's own deadline.
    #[error(
        "webhook entry {entry}: timeout-seconds must be between {min} and {MAX_TIMEOUT_SECONDS} (above the {timeout_ms} ms deadline plus {headroom_ms} ms for queueing)", headroom_ms = WALL_HEADROOM.as_millis()
    )]
    Timeout {
        /// The entry's index.
        entry: usize,
        /// The smallest accepted value.
        min: u32,
        /// The plugin's (or pipeline's) own deadline.
        timeout_ms: u64,
    },
    /// Reinvocation is for mutating webhooks only.
    #[error("webhook entry {0}: reinvocation-policy is for mutating plugins only")]
    Reinvocation(usize),
}

/// The `timeoutSeconds` an entry gets when it sets none: above the plugin's
/// deadline, with room for queueing and the network, at least 5 s.
pub fn default_timeout_seconds(timeout_ms: u64) -> u32 {
    (min_timeout_seconds(timeout_ms) + 1).clamp(5, MAX_TIMEOUT_SECONDS)
}

/// The smallest `timeoutSeconds` above `timeout_ms` plus [`WALL_HEADROOM`]:
/// Wicket answers (503 at worst) before the API server gives up.
fn min_timeout_seconds(timeout_ms: u64) -> u32 {
    let wall_ms = timeout_ms.saturating_add(WALL_HEADROOM.as_millis() as u64);
    u32::try_from(wall_ms / 1000 + 1).unwrap_or(u32::MAX)
}

/// Checks the entries of something served with the deadline `timeout_ms`.
pub fn check(
    webhooks: &[WebhookSpec],
    mutating: bool,
    timeout_ms: u64,
) -> Result<(), WebhookError> {
    let named = webhooks.iter().filter(|w| w.name.is_some()).count();
    let mut names: Vec<&str> = webhooks.iter().filter_map(|w| w.name.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != named || webhooks.len() - named > 1 {
        return Err(WebhookError::Names);
    }
    if let Some(bad) = names.iter().find(|name| !is_dns_label(name)) {
        return Err(WebhookError::BadName((*bad).to_owned()));
    }
    for (entry, webhook) in webhooks.iter().enumerate() {
        if webhook.rules.is_empty() {
            return Err(WebhookError::NoRules(entry));
        }
        for (index, rule) in webhook.rules.iter().enumerate() {
            check_rule(rule).map_err(|problem| WebhookError::BadRule {
                entry,
                rule: index,
                problem,
            })?;
        }
        for selector in [&webhook.namespace_selector, &webhook.object_selector]
            .into_iter()
            .flatten()
        {
            for requirement in &selector.match_expressions {
                check_requirement(requirement).map_err(|problem| {
                    WebhookError::BadRequirement(entry, requirement.key.clone(), problem)
                })?;
            }
        }
        let min = min_timeout_seconds(timeout_ms);
        if let Some(seconds) = webhook.timeout_seconds
            && !(min..=MAX_TIMEOUT_SECONDS).contains(&seconds)
        {
            return Err(WebhookError::Timeout {
                entry,
                min,
                timeout_ms,
            });
        }
        if !mutating && webhook.reinvocation_policy.is_some() {
            return Err(WebhookError::Reinvocation(entry));
        }
    }
    Ok(())
}

fn check_rule(rule: &Rule) -> Result<(), String> {
    for (field, values) in [
        ("operations", &rule.operations),
        ("api-versions", &rule.api_versions),
        ("api-groups", &rule.api_groups),
        ("resources", &rule.resources),
    ] {
        if values.is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    if let Some(operation) = rule
        .operations
        .iter()
        .find(|operation| !OPERATIONS.contains(&operation.as_str()))
    {
        return Err(format!(
            "unknown operation {operation:?} (one of {OPERATIONS:?})"
        ));
    }
    if let Some(scope) = rule
        .scope
        .as_ref()
        .filter(|scope| !SCOPES.contains(&scope.as_str()))
    {
        return Err(format!("unknown scope {scope:?} (one of {SCOPES:?})"));
    }
    Ok(())
}

fn check_requirement(requirement: &Requirement) -> Result<(), &'static str> {
    let takes_values = match requirement.operator.as_str() {
        "In" | "NotIn" => true,
        "Exists" | "DoesNotExist" => false,
        _ => return Err("operator must be In, NotIn, Exists or DoesNotExist"),
    };
    match (takes_values, requirement.values.is_empty()) {
        (true, true) => Err("In and NotIn need values"),
        (false, false) => Err("Exists and DoesNotExist take no values"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_what_the_manifest_reads() {
        fn reads_back<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
            value: T,
            spelled: &str,
        ) {
            let read: T = serde_json::from_value(serde_json::json!(spelled)).unwrap();
            assert_eq!(read, value, "{spelled}");
        }
        for policy in [MatchPolicy::Exact, MatchPolicy::Equivalent] {
            reads_back(policy, policy.as_str());
        }
        for effects in [SideEffects::None, SideEffects::NoneOnDryRun] {
            reads_back(effects, effects.as_str());
        }
        for policy in [ReinvocationPolicy::Never, ReinvocationPolicy::IfNeeded] {
            reads_back(policy, policy.as_str());
        }
        for policy in [ApiServerFailurePolicy::Fail, ApiServerFailurePolicy::Ignore] {
            reads_back(policy, policy.as_str());
        }
    }

    fn parse(toml_text: &str) -> Vec<WebhookSpec> {
        #[derive(Deserialize)]
        struct File {
            webhook: Vec<WebhookSpec>,
        }
        toml::from_str::<File>(toml_text).unwrap().webhook
    }

    const PODS: &str = r#"rules = [{ operations = ["CREATE"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]"#;

    #[test]
    fn a_full_entry_parses() {
        let webhooks = parse(&format!(
            r#"
            [[webhook]]
            {PODS}
            namespace-selector = {{ match-labels = {{ team = "a" }}, match-expressions = [{{ key = "env", operator = "In", values = ["prod"] }}] }}
            object-selector = {{ match-labels = {{ app = "etcd" }} }}
            match-conditions = [{{ name = "no-dry-run", expression = "!request.dryRun" }}]
            timeout-seconds = 7
            side-effects = "NoneOnDryRun"
            reinvocation-policy = "IfNeeded"
            failure-policy = "Ignore"
            match-policy = "Exact"
            "#
        ));
        assert_eq!(webhooks.len(), 1);
        let webhook = &webhooks[0];
        assert_eq!(webhook.side_effects, SideEffects::NoneOnDryRun);
        assert_eq!(webhook.failure_policy, ApiServerFailurePolicy::Ignore);
        assert_eq!(webhook.timeout_seconds, Some(7));
        assert_eq!(
            webhook.object_selector.as_ref().unwrap().match_labels["app"],
            "etcd"
        );
        assert_eq!(check(&webhooks, true, 200), Ok(()));
        assert_eq!(
            check(&webhooks, false, 200),
            Err(WebhookError::Reinvocation(0))
        );
    }

    #[test]
    fn the_default_timeout_is_above_the_plugins_deadline() {
        assert_eq!(default_timeout_seconds(200), 5);
        assert_eq!(default_timeout_seconds(9_000), 11);
        assert!(u64::from(default_timeout_seconds(9_000)) * 1000 > 9_000);
    }

    #[test]
    fn a_timeout_without_room_past_the_deadline_is_refused() {
        let webhooks = parse(&format!("[[webhook]]\n{PODS}\ntimeout-seconds = 2"));
        assert_eq!(check(&webhooks, false, 1_400), Ok(()));
        // 1.5 s plus the 0.5 s headroom reaches the API server's 2 s.
        assert!(matches!(
            check(&webhooks, false, 1_500),
            Err(WebhookError::Timeout { min: 3, .. })
        ));
        let webhooks = parse(&format!("[[webhook]]\n{PODS}\ntimeout-seconds = 31"));
        assert!(matches!(
            check(&webhooks, false, 200),
            Err(WebhookError::Timeout { .. })
        ));
    }

    #[test]
    fn several_entries_need_distinct_names() {
        let two =
            |a: &str, b: &str| parse(&format!("[[webhook]]\n{a}{PODS}\n[[webhook]]\n{b}{PODS}\n"));
        assert_eq!(check(&two("", ""), false, 200), Err(WebhookError::Names));
        let same = two("name = \"x\"\n", "name = \"x\"\n");
        assert_eq!(check(&same, false, 200), Err(WebhookError::Names));
        assert_eq!(check(&two("name = \"x\"\n", ""), false, 200), Ok(()));
        let bad = two("name = \"X_1\"\n", "");
        assert!(matches!(
            check(&bad, false, 200),
            Err(WebhookError::BadName(_))
        ));
    }

    #[test]
    fn bad_rules_and_requirements_are_refused_with_where() {
        let bad_operation = parse(
            r#"[[webhook]]
            rules = [{ operations = ["create"], api-groups = [""], api-versions = ["v1"], resources = ["pods"] }]"#,
        );
        let error = check(&bad_operation, false, 200).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("rule 0: unknown operation \"create\""),
            "{error}"
        );
        let no_rules = parse("[[webhook]]\nrules = []");
        assert_eq!(check(&no_rules, false, 200), Err(WebhookError::NoRules(0)));
        let bad_requirement = parse(&format!(
            "[[webhook]]\n{PODS}\nobject-selector = {{ match-expressions = [{{ key = \"app\", operator = \"In\" }}] }}"
        ));
        assert!(matches!(
            check(&bad_requirement, false, 200),
            Err(WebhookError::BadRequirement(0, _, _))
        ));
    }
}
