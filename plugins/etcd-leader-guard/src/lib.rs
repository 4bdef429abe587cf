//! Wicket's etcd-leader guard: refuses deleting (or evicting) the pod of the
//! etcd member that is the raft leader, or of a member whose loss would leave
//! fewer healthy members than quorum, with a message saying what to do.
//!
//! It asks etcd itself, through the JSON gateway on the client port, so the
//! manifest must grant the members' client addresses (`[outbound]`).
//!
//! - `DELETE` of a pod: the pod is in `oldObject`; pods without the selector
//!   labels are allowed at once; the member is reached at the pod's IP.
//! - `CREATE` of `pods/eviction`: the review carries only the pod's name, so
//!   the guard asks the configured `endpoints` for the member list and finds
//!   the member whose `--name` is the pod's name (the StatefulSet convention).
//!   Labels cannot be checked there; a pod that is no member is allowed.
//! - An unreachable member is allowed (it cannot be serving a healthy
//!   cluster, and deleting a dead member's pod is how one recovers), with a
//!   warning, unless `fail-closed` is set.
//! - Dry runs are judged the same way; the guard only reads.

mod decide;
mod etcd;
mod settings;

use serde::Deserialize;
use wicket_sdk::view::{ObjectMeta, Text};
use wicket_sdk::{Error, Operation, Plugin, Review, Verdict, log};

use crate::decide::Decision;
use crate::settings::Settings;

/// The plugin.
pub struct EtcdLeaderGuard;

/// The parts of a pod the guard reads.
#[derive(Deserialize)]
struct PodView<'a> {
    #[serde(borrow, default)]
    metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    status: Option<PodStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus<'a> {
    #[serde(borrow, default, rename = "podIP")]
    pod_ip: Option<Text<'a>>,
}

/// The pod a request would remove.
struct DoomedPod {
    name: String,
    /// From the pod's status; absent for evictions and unscheduled pods.
    ip: Option<String>,
}

impl Plugin for EtcdLeaderGuard {
    type Settings = Settings;

    fn review(&self, review: &Review, settings: &Settings) -> Result<Verdict, Error> {
        Ok(match doomed_pod(review, settings)? {
            Some(pod) => guard(&pod, settings),
            None => Verdict::allow(),
        })
    }
}

/// The etcd pod this request would remove, if it is one.
fn doomed_pod(review: &Review, settings: &Settings) -> Result<Option<DoomedPod>, Error> {
    if review.resource().resource != "pods" {
        return Ok(None);
    }
    let name = review.name().to_owned();
    match (review.operation(), review.sub_resource()) {
        (Operation::Delete, None) => {
            let pod: PodView = review.old_object()?;
            if !settings.selects(&pod.metadata) {
                return Ok(None);
            }
            let ip = pod
                .status
                .and_then(|status| status.pod_ip)
                .map(|ip| ip.to_string());
            Ok(Some(DoomedPod { name, ip }))
        }
        (Operation::Create, Some("eviction")) => Ok(Some(DoomedPod { name, ip: None })),
        _ => Ok(None),
    }
}

/// Asks etcd and judges.
fn guard(pod: &DoomedPod, settings: &Settings) -> Verdict {
    let url = match &pod.ip {
        Some(ip) => settings.client_url(ip),
        None => match member_url_by_name(&pod.name, settings) {
            Ok(Some(url)) => url,
            Ok(None) => return Verdict::allow(),
            Err(verdict) => return verdict,
        },
    };
    let target = match etcd::status(&url) {
        Ok(target) => target,
        Err(error) => return unreachable(&pod.name, &url, &error.to_string(), settings),
    };
    let members = match etcd::members(&url) {
        Ok(members) => members,
        Err(error) => return unreachable(&pod.name, &url, &error.to_string(), settings),
    };
    let others: Vec<&etcd::Member> = members
        .iter()
        .filter(|member| member.id != target.header.member_id && !member.learner)
        .collect();
    let answers = etcd::statuses(&others);
    let peers: Vec<decide::Peer> = others.into_iter().zip(answers).collect();
    match decide::judge(&pod.name, &target, &members, &peers) {
        Decision::Allow => Verdict::allow(),
        Decision::Deny(message) => Verdict::deny_with_code(403, message),
    }
}

/// The client URL of the member named like the pod, from the first
/// configured endpoint that answers; `Ok(None)` when no member has that name.
fn member_url_by_name(pod: &str, settings: &Settings) -> Result<Option<String>, Verdict> {
    if settings.endpoints.is_empty() {
        // Short: the API server cuts warnings at 120 characters.
        return Err(Verdict::allow().warn(format!(
            "pod {pod} not checked for etcd leadership: no IP in the request, no endpoints set"
        )));
    }
    let mut failures = Vec::new();
    for endpoint in &settings.endpoints {
        match etcd::members(endpoint) {
            Ok(members) => {
                let member = members.into_iter().find(|member| member.name == pod);
                return Ok(member.and_then(|member| member.client_urls.into_iter().next()));
            }
            Err(error) => failures.push(format!("{endpoint}: {error}")),
        }
    }
    Err(unreachable(
        pod,
        "the configured endpoints",
        &failures.join("; "),
        settings,
    ))
}

/// The answer when etcd cannot be asked. The warning is kept short (the API
/// server cuts warnings at 120 characters); the log has the details.
fn unreachable(pod: &str, url: &str, why: &str, settings: &Settings) -> Verdict {
    let what = format!("cannot reach the etcd member of pod {pod} at {url} ({why})");
    log::warn(&what);
    if settings.fail_closed {
        Verdict::deny_with_code(503, format!("{what}; refusing because fail-closed is set"))
    } else {
        Verdict::allow().warn(format!(
            "etcd member of pod {pod} unreachable; allowed without a leader/quorum check"
        ))
    }
}

wicket_sdk::export_plugin!(EtcdLeaderGuard);

#[cfg(test)]
mod tests {
    use wicket_sdk::testing::review_from_file;

    use super::*;

    fn fixture(name: &str) -> String {
        format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn doomed(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Option<DoomedPod> {
        let settings: Settings = serde_json::from_str("{}").unwrap();
        doomed_pod(&review_from_file(fixture(name), edit), &settings).unwrap()
    }

    #[test]
    fn deletes_of_etcd_pods_are_checked_at_the_pod_ip() {
        let pod = doomed("v1-pod-delete-etcd-1.json", |_| {}).unwrap();
        assert_eq!(
            (pod.name.as_str(), pod.ip.as_deref()),
            ("etcd-1", Some("127.0.0.3"))
        );
        let terminating = doomed("v1-pod-delete-etcd-1-terminating.json", |_| {}).unwrap();
        assert_eq!(terminating.ip.as_deref(), Some("127.0.0.3"));
    }

    #[test]
    fn evictions_name_the_pod_without_an_address() {
        let pod = doomed("v1-pod-eviction-etcd-0.json", |_| {}).unwrap();
        assert_eq!((pod.name.as_str(), pod.ip), ("etcd-0", None));
    }

    #[test]
    fn other_pods_and_other_requests_are_not_checked() {
        let unlabelled = doomed("v1-pod-delete-etcd-1.json", |request| {
            request["oldObject"]["metadata"]["labels"] = serde_json::json!({"app": "web"});
        });
        assert!(unlabelled.is_none());
        for other in [
            "v1beta1-pod-delete.json",
            "v1-pod-create-etcd-0.json",
            "v1-configmap-delete.json",
            "v1-pod-update-label.json",
        ] {
            assert!(doomed(other, |_| {}).is_none(), "{other}");
        }
    }
}
