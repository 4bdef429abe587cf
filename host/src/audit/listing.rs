//! What `wicket audit --cluster` reads: the resources the validating
//! plugins' rules select for a CREATE, found through the API server's
//! discovery, and their objects, a page at a time under a client-side rate
//! limit, so that neither the API server nor Wicket feels the cluster's
//! size.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use serde_json::Value;

use super::matching::covers_create;
use super::resources::Resource;
use crate::cluster::kind::KindKey;
use crate::plugin::manifest::webhook::Rule;

/// A resource to list, with what the audit matches rules against.
#[derive(Debug, Clone)]
pub struct Target {
    /// How kube names it.
    pub api: ApiResource,
    /// Its kind, at the version listed.
    pub kind: KindKey,
    /// Its plural and scope.
    pub resource: Resource,
}

impl Target {
    /// `plural.group`, as RBAC messages name it.
    pub fn name(&self) -> String {
        match self.kind.group.as_str() {
            "" => self.resource.plural.clone(),
            group => format!("{}.{group}", self.resource.plural),
        }
    }
}

/// The resources the API server serves that one of `rules` covers for a
/// CREATE: each once, at its group's preferred version when a rule covers
/// it, and never a sub-resource.
pub async fn targets(client: &kube::Client, rules: &[&Rule]) -> Result<Vec<Target>, kube::Error> {
    let any_group = rules
        .iter()
        .any(|rule| rule.api_groups.iter().any(|group| group == "*"));
    let groups: BTreeSet<&str> = rules
        .iter()
        .flat_map(|rule| rule.api_groups.iter().map(String::as_str))
        .collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    let discovery = match any_group {
        true => Discovery::new(client.clone()),
        false => Discovery::new(client.clone()).filter(&groups),
    };
    let discovery = discovery.run().await?;
    let mut targets = Vec::new();
    let mut seen = BTreeSet::new();
    for group in discovery.groups() {
        let preferred = group.preferred_version_or_latest();
        let versions =
            std::iter::once(preferred).chain(group.versions().filter(|v| *v != preferred));
        for version in versions {
            for (api, capabilities) in group.versioned_resources(version) {
                if !capabilities.supports_operation(verbs::LIST) || api.plural.contains('/') {
                    continue;
                }
                let kind = KindKey {
                    group: api.group.clone(),
                    version: api.version.clone(),
                    kind: api.kind.clone(),
                };
                let resource = Resource {
                    plural: api.plural.clone(),
                    namespaced: capabilities.scope == Scope::Namespaced,
                };
                let covered = rules
                    .iter()
                    .any(|rule| covers_create(rule, &kind, &resource));
                if covered && seen.insert((kind.group.clone(), resource.plural.clone())) {
                    targets.push(Target {
                        api,
                        kind,
                        resource,
                    });
                }
            }
        }
    }
    Ok(targets)
}

/// Lists page by page, no faster than a rate.
pub struct Pager {
    client: kube::Client,
    page_size: u32,
    pace: tokio::time::Interval,
}

/// One page of a list.
struct Page {
    /// The objects, each with its `apiVersion` and `kind`, without
    /// `managedFields`.
    objects: Vec<Value>,
    /// Where the next page starts, if there is one.
    next: Option<String>,
}

impl Pager {
    /// Pages of `page_size` objects, at most `qps` requests a second.
    pub fn new(client: kube::Client, page_size: u32, qps: f64) -> Pager {
        let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / qps.max(0.001)));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Pager {
            client,
            page_size,
            pace,
        }
    }

    /// Every object of `target`, handed to `each` a page at a time: the
    /// next page is asked for once `each` has had the last one.
    pub async fn each_object(
        &mut self,
        target: &Target,
        mut each: impl AsyncFnMut(Value),
    ) -> Result<(), kube::Error> {
        let mut token: Option<String> = None;
        loop {
            let page = self.page(target, token.as_deref()).await?;
            for object in page.objects {
                each(object).await;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// The page of `target` that `token` starts (the first without one).
    async fn page(&mut self, target: &Target, token: Option<&str>) -> Result<Page, kube::Error> {
        self.pace.tick().await;
        let objects: Api<DynamicObject> = Api::all_with(self.client.clone(), &target.api);
        let mut params = ListParams::default().limit(self.page_size);
        if let Some(token) = token {
            params = params.continue_token(token);
        }
        let list = objects.list(&params).await?;
        let next = list.metadata.continue_.filter(|token| !token.is_empty());
        let objects = list
            .items
            .into_iter()
            .filter_map(|item| {
                let mut object = serde_json::to_value(item).ok()?;
                object["apiVersion"] = target.api.api_version.clone().into();
                object["kind"] = target.api.kind.clone().into();
                if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    metadata.remove("managedFields");
                }
                Some(object)
            })
            .collect();
        Ok(Page { objects, next })
    }
}
