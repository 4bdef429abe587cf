//! Wicket's unique-ingress-host: refuses an Ingress that would take traffic
//! another namespace's Ingress already routes — the hijack a shared ingress
//! controller otherwise allows any namespace to make.
//!
//! A rule of the new Ingress conflicts with a rule of an Ingress in another
//! namespace when:
//! - their hosts are the same (two wildcards included), or the new host is a
//!   name the other's wildcard covers (`api.example.com` under
//!   `*.example.com`: controllers prefer the exact host, so the new rule
//!   would take that name's traffic). A new wildcard over another
//!   namespace's exact host takes nothing from it, and is allowed;
//! - and, when both rules list paths, they share one (either rule without
//!   paths claims the whole host);
//! - and they can be served by the same controller: both name the same
//!   `ingressClassName`, or either names none (the default class).
//!
//! Ingresses of the same namespace are one team's to arrange; an update of
//! an Ingress never conflicts with itself, and an update is judged on the
//! rules it adds or widens only: an Ingress already in conflict when the
//! policy was installed can still have its labels or backends changed. The
//! other Ingresses are found through the host's index on
//! `/spec/rules/*/host`: one lookup per host.

use std::collections::BTreeSet;

use serde::Deserialize;
use wicket_sdk::cluster::kinds::Ingress;
use wicket_sdk::view::{Names, Text};
use wicket_sdk::{Error, NoSettings, Operation, Plugin, Review, Verdict};

/// The plugin.
pub struct UniqueIngressHost;

/// What this plugin reads of an Ingress: its names (not its labels and
/// annotations, which may hold the whole object again) and its rules.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IngressView<'a> {
    #[serde(borrow, default)]
    metadata: Names<'a>,
    #[serde(borrow, default)]
    spec: Spec<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    #[serde(borrow, default)]
    ingress_class_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    rules: Vec<Rule<'a>>,
}

#[derive(Deserialize)]
struct Rule<'a> {
    #[serde(borrow, default)]
    host: Option<Text<'a>>,
    #[serde(borrow, default)]
    http: Option<Http<'a>>,
}

#[derive(Deserialize)]
struct Http<'a> {
    #[serde(borrow, default)]
    paths: Vec<Path<'a>>,
}

#[derive(Deserialize)]
struct Path<'a> {
    #[serde(borrow, default)]
    path: Option<Text<'a>>,
}

impl Rule<'_> {
    /// The paths it routes; empty: the whole host.
    fn paths(&self) -> BTreeSet<&str> {
        let paths = self.http.iter().flat_map(|http| &http.paths);
        paths
            .map(|path| path.path.as_deref().unwrap_or("/"))
            .collect()
    }
}

impl Plugin for UniqueIngressHost {
    type Settings = NoSettings;

    fn review(&self, review: &Review, _settings: &NoSettings) -> Result<Verdict, Error> {
        let handled = matches!(review.operation(), Operation::Create | Operation::Update)
            && review.resource().resource == "ingresses"
            && review.sub_resource().is_none();
        if !handled {
            return Ok(Verdict::allow());
        }
        let ingress: IngressView = review.object()?;
        let old: Option<IngressView> = match review.operation() {
            Operation::Update => Some(review.old_object()?),
            _ => None,
        };
        let namespace = review.namespace();
        let class = ingress.spec.ingress_class_name.as_deref();
        let mut conflicts = BTreeSet::new();
        for rule in &ingress.spec.rules {
            let Some(host) = rule.host.as_deref() else {
                continue;
            };
            let paths = rule.paths();
            if old
                .as_ref()
                .is_some_and(|old| already_routed(old, host, &paths))
            {
                continue;
            }
            for claimed_as in claims(host) {
                for other in review.cluster().find::<Ingress>("host", &claimed_as)? {
                    let other: IngressView = other.read()?;
                    if other.metadata.namespace.as_deref() == Some(namespace) {
                        continue;
                    }
                    let other_class = other.spec.ingress_class_name.as_deref();
                    if class.is_some() && other_class.is_some() && class != other_class {
                        continue;
                    }
                    let overlapping = other.spec.rules.iter().any(|other_rule| {
                        other_rule.host.as_deref() == Some(claimed_as.as_str())
                            && shares_paths(&paths, &other_rule.paths())
                    });
                    if overlapping {
                        conflicts.insert(format!(
                            "{host} is already routed by Ingress {}/{} (host {claimed_as})",
                            other.metadata.namespace.as_deref().unwrap_or_default(),
                            other.metadata.name.as_deref().unwrap_or_default(),
                        ));
                    }
                }
            }
        }
        Ok(match conflicts.is_empty() {
            true => Verdict::allow(),
            false => Verdict::deny(format!(
                "{}; pick another host or path, or ask that namespace's owners",
                conflicts.into_iter().collect::<Vec<_>>().join("; ")
            )),
        })
    }
}

/// The hosts another Ingress may hold that `host` would conflict with: the
/// host itself and, for an exact host, the wildcard covering it
/// (`*.example.com` for `api.example.com`; a wildcard covers one label).
fn claims(host: &str) -> Vec<String> {
    let mut claims = vec![host.to_owned()];
    if !host.starts_with("*.")
        && let Some((_, parent)) = host.split_once('.')
        && parent.contains('.')
    {
        claims.push(format!("*.{parent}"));
    }
    claims
}

/// Whether `old` (the Ingress before an update) routed all of `paths` of
/// `host` already: a rule the update neither adds nor widens.
fn already_routed(old: &IngressView, host: &str, paths: &BTreeSet<&str>) -> bool {
    old.spec.rules.iter().any(|rule| {
        let old_paths = rule.paths();
        rule.host.as_deref() == Some(host)
            && (old_paths.is_empty() || (!paths.is_empty() && paths.is_subset(&old_paths)))
    })
}

/// Whether two rules of one host route a path in common; a rule without
/// paths routes them all.
fn shares_paths(ours: &BTreeSet<&str>, theirs: &BTreeSet<&str>) -> bool {
    ours.is_empty() || theirs.is_empty() || !ours.is_disjoint(theirs)
}

wicket_sdk::export_plugin!(UniqueIngressHost);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_covers_one_label() {
        assert_eq!(
            claims("api.example.com"),
            ["api.example.com", "*.example.com"]
        );
        assert_eq!(claims("*.example.com"), ["*.example.com"]);
        assert_eq!(claims("example.com"), ["example.com"]);
    }

    #[test]
    fn rules_without_paths_claim_the_whole_host() {
        let api: BTreeSet<&str> = ["/api"].into();
        let web: BTreeSet<&str> = ["/web"].into();
        assert!(!shares_paths(&api, &web));
        assert!(shares_paths(&api, &["/api", "/x"].into()));
        assert!(shares_paths(&BTreeSet::new(), &web));
    }
}
