//! Writing an audit's reports to the cluster: each applied server-side with
//! the field manager `wicket-audit`, then the reports Wicket wrote before
//! for namespaces that have no results any more deleted.

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::Value;

use super::openreports::NAME;

/// The field manager of the reports' fields.
pub const FIELD_MANAGER: &str = "wicket-audit";

/// Reports listed a request, when looking for stale ones.
const PAGE: u32 = 500;

/// The label every report Wicket writes carries, to find them again.
const MANAGED: &str = "app.kubernetes.io/managed-by=wicket";

/// A report that could not be written, listed or removed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {} the {kind}{}{}", step.verb(), target(*step, namespace), crd_hint(source))]
pub struct PublishError {
    /// What was being done.
    pub step: Step,
    /// `Report` or `ClusterReport`.
    pub kind: String,
    /// The report's namespace (`""` for the ClusterReport and for lists).
    pub namespace: String,
    /// The API server's answer.
    #[source]
    pub source: kube::Error,
}

/// What publishing was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applying a report.
    Apply,
    /// Listing the reports written before.
    List,
    /// Deleting a stale report.
    Delete,
}

impl Step {
    fn verb(self) -> &'static str {
        match self {
            Step::Apply => "apply",
            Step::List => "list",
            Step::Delete => "delete the stale",
        }
    }
}

/// Which report: ` NAMESPACE/wicket`, ` wicket`, or `s written before`.
fn target(step: Step, namespace: &str) -> String {
    match (step, namespace) {
        (Step::List, _) => "s written before".to_owned(),
        (_, "") => format!(" {NAME}"),
        (_, namespace) => format!(" {namespace}/{NAME}"),
    }
}

/// A 404 on a report most likely means the CRDs are missing.
fn crd_hint(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) if status.code == 404 => {
            " (are the OpenReports CRDs installed? deploy/kustomize/components/audit/crds)"
        }
        _ => "",
    }
}

/// What was written and removed.
#[derive(Debug, Default)]
pub struct Published {
    /// Reports applied.
    pub applied: usize,
    /// Stale reports deleted.
    pub deleted: usize,
    /// What failed; the rest was still done.
    pub errors: Vec<PublishError>,
}

/// The Report and ClusterReport resources.
fn report_resource(namespaced: bool) -> ApiResource {
    let (kind, plural) = match namespaced {
        true => ("Report", "reports"),
        false => ("ClusterReport", "clusterreports"),
    };
    let gvk = GroupVersionKind::gvk("openreports.io", "v1alpha1", kind);
    ApiResource::from_gvk_with_plural(&gvk, plural)
}

/// The API of the report of `namespace` (`""`: the ClusterReport).
fn report_api(client: &kube::Client, namespace: &str) -> (Api<DynamicObject>, String) {
    let resource = report_resource(!namespace.is_empty());
    let api = match namespace {
        "" => Api::all_with(client.clone(), &resource),
        namespace => Api::namespaced_with(client.clone(), namespace, &resource),
    };
    (api, resource.kind)
}

/// Applies `reports` and, when `prune`, deletes the reports Wicket wrote
/// before that this run did not write.
pub async fn publish(
    client: &kube::Client,
    reports: impl IntoIterator<Item = Value>,
    prune: bool,
) -> Published {
    let mut published = Published::default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut written = BTreeSet::new();
    for report in reports {
        let namespace = report
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (api, kind) = report_api(client, &namespace);
        match api.patch(NAME, &params, &Patch::Apply(&report)).await {
            Ok(_) => published.applied += 1,
            Err(source) => published.errors.push(PublishError {
                step: Step::Apply,
                kind,
                namespace: namespace.clone(),
                source,
            }),
        }
        written.insert(namespace);
    }
    if !prune {
        return published;
    }
    for namespaced in [true, false] {
        let resource = report_resource(namespaced);
        let kind = resource.kind.clone();
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let mut stale = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // Names only: a report's results can be a megabyte each.
            let mut listing = ListParams::default().labels(MANAGED).limit(PAGE);
            if let Some(token) = &token {
                listing = listing.continue_token(token);
            }
            let page = match all.list_metadata(&listing).await {
                Ok(page) => page,
                Err(source) => {
                    published.errors.push(PublishError {
                        step: Step::List,
                        kind: kind.clone(),
                        namespace: String::new(),
                        source,
                    });
                    break;
                }
            };
            for report in page.items {
                let namespace = report.metadata.namespace.unwrap_or_default();
                let labels = report.metadata.labels.unwrap_or_default();
                let managed = labels.get("app.kubernetes.io/managed-by");
                let ours = report.metadata.name.as_deref() == Some(NAME)
                    && managed.map(String::as_str) == Some(NAME);
                if ours && !written.contains(&namespace) {
                    stale.push(namespace);
                }
            }
            token = page.metadata.continue_.filter(|token| !token.is_empty());
            if token.is_none() {
                break;
            }
        }
        for namespace in stale {
            let (api, kind) = report_api(client, &namespace);
            match api.delete(NAME, &DeleteParams::default()).await {
                Ok(_) => published.deleted += 1,
                Err(source) => published.errors.push(PublishError {
                    step: Step::Delete,
                    kind,
                    namespace,
                    source,
                }),
            }
        }
    }
    published
}
