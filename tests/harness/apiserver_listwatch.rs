//! The list, watch and discovery side of the stand-in API server: the kinds
//! it serves (discovery), lists in pages (`limit` and `continue`, at one
//! `resourceVersion`), watches from a `resourceVersion` as chunked JSON
//! events, `410 Expired` for a watch from before the last compaction, and
//! `403` for a resource Wicket is not granted. Metadata-only requests
//! (`as=PartialObjectMetadataList`) get metadata.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::channel::Channel;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::{ApiServer, Body, answer};

/// A kind the stand-in serves.
#[derive(Debug, Clone)]
pub struct ServedKind {
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The version.
    pub version: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// The resource, as paths and RBAC name it.
    pub plural: &'static str,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
}

/// The kinds served from the start.
pub const KINDS: [ServedKind; 7] = [
    ServedKind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    ServedKind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
    },
    ServedKind {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    ServedKind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
    },
    ServedKind {
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        namespaced: true,
    },
    ServedKind {
        group: "openreports.io",
        version: "v1alpha1",
        kind: "Report",
        plural: "reports",
        namespaced: true,
    },
    ServedKind {
        group: "openreports.io",
        version: "v1alpha1",
        kind: "ClusterReport",
        plural: "clusterreports",
        namespaced: false,
    },
];

impl ServedKind {
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    fn prefix(&self) -> String {
        match self.group {
            "" => format!("/api/{}", self.version),
            group => format!("/apis/{group}/{}", self.version),
        }
    }

    fn api_version(&self) -> String {
        match self.group {
            "" => self.version.to_owned(),
            group => format!("{group}/{}", self.version),
        }
    }

    /// Where an object of this kind is stored.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        match self.namespaced {
            true => format!(
                "{}/namespaces/{namespace}/{}/{name}",
                self.prefix(),
                self.plural
            ),
            false => format!("{}/{}/{name}", self.prefix(), self.plural),
        }
    }

    /// Whether the object stored at `path` is of this kind.
    pub(super) fn owns(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(&self.prefix()) else {
            return false;
        };
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        match (self.namespaced, parts.as_slice()) {
            (true, ["namespaces", _, plural, _]) | (false, [plural, _]) => *plural == self.plural,
            _ => false,
        }
    }

    /// The kind's collection of all namespaces, as watches ask for it.
    pub(super) fn collection(&self) -> String {
        format!("{}/{}", self.prefix(), self.plural)
    }

    /// The 403 the API server answers a list or watch Wicket may not make.
    fn forbidden(&self, verb: &str) -> Response<Body> {
        let resource = match self.group {
            "" => self.plural.to_owned(),
            group => format!("{}.{group}", self.plural),
        };
        let message = format!(
            "{resource} is forbidden: User \"system:serviceaccount:wicket-system:wicket\" cannot {verb} resource \"{}\" in API group \"{}\" at the cluster scope",
            self.plural, self.group
        );
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Forbidden", "code": 403,
            "details": {"group": self.group, "kind": self.plural},
        });
        answer(StatusCode::FORBIDDEN, &body)
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub(super) struct Change {
    pub version: u64,
    pub path: String,
    pub kind: &'static str,
    pub object: Value,
}

/// What a GET asks of the kinds' side, if it is a discovery, list or watch.
pub(super) fn get(
    server: &ApiServer,
    path: &str,
    query: &str,
    accept: &str,
) -> Option<Response<Body>> {
    let state = server.state();
    let kinds = state.kinds.clone();
    drop(state);
    if let Some(resources) = discovery(&kinds, path) {
        return Some(answer(StatusCode::OK, &resources));
    }
    let served = kinds.into_iter().find(|kind| kind.collection() == path)?;
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let metadata = accept.contains("as=PartialObjectMetadata");
    if param("watch").is_some_and(|watch| watch == "true" || watch == "1") {
        let since = param("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        return Some(watch(server, served, since, metadata));
    }
    let limit = param("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    Some(list(server, &served, limit, param("continue"), metadata))
}

/// The core versions (`/api`), the groups (`/apis`), or the
/// APIResourceList of the group version at `path`.
fn discovery(kinds: &[ServedKind], path: &str) -> Option<Value> {
    match path {
        "/api" => {
            return Some(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": []}));
        }
        "/apis" => {
            let mut groups: Vec<&ServedKind> =
                kinds.iter().filter(|kind| !kind.group.is_empty()).collect();
            groups.dedup_by_key(|kind| kind.api_version());
            let groups: Vec<Value> = groups
                .iter()
                .map(|kind| {
                    let version =
                        json!({"groupVersion": kind.api_version(), "version": kind.version});
                    json!({"name": kind.group, "versions": [version], "preferredVersion": version})
                })
                .collect();
            return Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
        }
        _ => {}
    }
    let served: Vec<&ServedKind> = kinds.iter().filter(|kind| kind.prefix() == path).collect();
    let first = served.first()?;
    let resources: Vec<Value> = served
        .iter()
        .map(|kind| {
            json!({
                "name": kind.plural, "singularName": kind.kind.to_lowercase(),
                "namespaced": kind.namespaced, "kind": kind.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })
        })
        .collect();
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": first.api_version(), "resources": resources,
    }))
}

/// `object` as a metadata-only request gets it.
fn metadata_of(object: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": object["metadata"],
    })
}

/// One page of `served`'s objects, from the continue token's offset.
fn list(
    server: &ApiServer,
    served: &ServedKind,
    limit: usize,
    token: Option<String>,
    metadata: bool,
) -> Response<Body> {
    let state = server.state();
    if state.forbidden.contains(served.plural) {
        return served.forbidden("list");
    }
    let (version, offset) = match token.as_deref().and_then(|token| token.split_once('-')) {
        Some((version, offset)) => (version.parse().unwrap_or(0), offset.parse().unwrap_or(0)),
        None => (state.next_version, 0),
    };
    let mut paths: Vec<&String> = state
        .objects
        .keys()
        .filter(|path| served.owns(path))
        .collect();
    paths.sort();
    let page: Vec<Value> = paths
        .iter()
        .skip(offset)
        .take(limit)
        .map(|path| {
            let object = &state.objects[*path];
            match metadata {
                true => metadata_of(object),
                false => object.clone(),
            }
        })
        .collect();
    let next = offset + page.len();
    let mut meta = json!({ "resourceVersion": version.to_string() });
    if next < paths.len() {
        meta["continue"] = json!(format!("{version}-{next}"));
    }
    let (api_version, kind) = match metadata {
        true => (
            "meta.k8s.io/v1".to_owned(),
            "PartialObjectMetadataList".to_owned(),
        ),
        false => (served.api_version(), format!("{}List", served.kind)),
    };
    let body = json!({ "apiVersion": api_version, "kind": kind, "metadata": meta, "items": page });
    answer(StatusCode::OK, &body)
}

/// The changes to `served` after `since`, one JSON event per line, then
/// every later one as it happens, until the client leaves or the watches
/// are expired; `410 Expired` if `since` is older than the last compaction.
fn watch(server: &ApiServer, served: ServedKind, since: u64, metadata: bool) -> Response<Body> {
    let state = server.state();
    if state.forbidden.contains(served.plural) {
        return served.forbidden("watch");
    }
    let (compacted, epoch) = (state.compacted, state.watch_epoch);
    drop(state);
    let (mut sender, body) = Channel::<Bytes, Infallible>::new(64);
    let server = server.clone();
    let mut changed = server.changed.subscribe();
    tokio::spawn(async move {
        if since < compacted {
            let expired = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {since} ({compacted})"),
                "reason": "Expired", "code": 410}});
            let _ = sender.send_data(Bytes::from(format!("{expired}\n"))).await;
            return;
        }
        let mut last = since;
        loop {
            changed.borrow_and_update();
            let changes: Vec<Change> = {
                let state = server.state();
                if state.watch_epoch != epoch {
                    return;
                }
                state
                    .changes
                    .iter()
                    .filter(|change| change.version > last && served.owns(&change.path))
                    .cloned()
                    .collect()
            };
            for change in changes {
                last = change.version;
                let object = match metadata {
                    true => metadata_of(&change.object),
                    false => change.object,
                };
                let event = json!({ "type": change.kind, "object": object });
                if sender
                    .send_data(Bytes::from(format!("{event}\n")))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(body.boxed());
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}
