//! The etcd-leader guard against a real three-member etcd cluster (Debian's
//! `etcd`, members on 127.0.0.2-4), loaded with its bundled manifest from
//! `deploy/plugins/`, through the real binary over HTTPS.
//!
//! The test finds the leader itself through etcd's API and checks, as the
//! cluster changes under it: the leader's pod is refused and the followers'
//! are allowed; with one follower stopped the other is refused for quorum
//! and the stopped one's pod is allowed; once the leader is stopped and a new
//! one elected, the new leader is protected. A member that serves clients
//! only over TLS with client certificates is reached through the manifest's
//! `[outbound.tls]`.

use serde_json::{Value, json};
use wicket_tests::etcd::{EtcdCluster, TlsEtcd};
use wicket_tests::{Client, PluginDir, Wicket, edited_fixture, test_plugin, workspace_root};

const PATH: &str = "/validate/etcd-leader-guard";

/// `kubectl delete pod` of member `index`'s pod (the captured delete of
/// etcd-1, renamed and readdressed), optionally as a dry run.
fn delete(cluster: &EtcdCluster, index: usize, dry_run: bool) -> Vec<u8> {
    let (name, ip) = (cluster.name(index).to_owned(), cluster.ip(index).to_owned());
    edited_fixture("v1-pod-delete-etcd-1.json", |request| {
        request["name"] = json!(name);
        request["dryRun"] = json!(dry_run);
        let pod = &mut request["oldObject"];
        pod["metadata"]["name"] = json!(name);
        pod["status"]["podIP"] = json!(ip);
        pod["status"]["podIPs"] = json!([{ "ip": ip }]);
    })
}

/// The captured eviction of etcd-0, for member `index`'s pod.
fn eviction(cluster: &EtcdCluster, index: usize) -> Vec<u8> {
    let name = cluster.name(index).to_owned();
    edited_fixture("v1-pod-eviction-etcd-0.json", |request| {
        request["name"] = json!(name);
        request["object"]["metadata"]["name"] = json!(name);
    })
}

/// The guard's answer: allowed, and the denial message or the warnings.
async fn judge(client: &Client, request: &[u8]) -> (bool, String) {
    let reviewed = client.review(PATH, request).await.unwrap();
    let response = reviewed.response;
    let allowed = response["allowed"] == true;
    if allowed {
        let warnings = response.get("warnings").cloned().unwrap_or(Value::Null);
        (true, warnings.to_string())
    } else {
        assert_eq!(response["status"]["code"], 403, "{response}");
        (
            false,
            response["status"]["message"].as_str().unwrap().to_owned(),
        )
    }
}

fn others(cluster: &EtcdCluster, but: usize) -> Vec<usize> {
    (0..cluster.size()).filter(|index| *index != but).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guard_protects_the_leader_and_quorum_of_a_real_cluster() {
    let mut cluster = EtcdCluster::start(3).await.unwrap();
    let wicket =
        Wicket::start(PluginDir::new().bundled("etcd-leader-guard", "wicket-etcd-leader-guard"))
            .unwrap();
    let client = wicket.client();

    // A healthy cluster: only the leader's pod is refused, by delete, dry-run
    // delete or eviction, with the command that makes deleting it safe.
    let leader = cluster.wait_for_leader(None).await;
    let leader_id = cluster.member_id_hex(leader).await.unwrap();
    let (allowed, message) = judge(&client, &delete(&cluster, leader, false)).await;
    assert!(!allowed, "the leader's pod was allowed");
    let expected = format!(
        "pod {} is the etcd raft leader (member {leader_id}); move leadership first: etcdctl move-leader ",
        cluster.name(leader)
    );
    assert!(message.contains(&expected), "{message}");
    let successor = message.rsplit(' ').next().unwrap();
    let mut follower_ids = Vec::new();
    for index in others(&cluster, leader) {
        follower_ids.push(cluster.member_id_hex(index).await.unwrap());
    }
    assert!(follower_ids.iter().any(|id| id == successor), "{message}");
    assert!(
        !judge(&client, &delete(&cluster, leader, true)).await.0,
        "dry run allowed"
    );
    assert!(
        !judge(&client, &eviction(&cluster, leader)).await.0,
        "eviction allowed"
    );
    for follower in others(&cluster, leader) {
        let (allowed, warnings) = judge(&client, &delete(&cluster, follower, false)).await;
        assert!(allowed, "follower {follower} refused: {warnings}");
        assert!(judge(&client, &eviction(&cluster, follower)).await.0);
    }

    // One follower down: the other follower now holds quorum with the leader.
    let [down, up] = others(&cluster, leader)[..] else {
        unreachable!()
    };
    cluster.stop(down);
    let (allowed, message) = judge(&client, &delete(&cluster, up, false)).await;
    assert!(!allowed, "deleting {up} with {down} down was allowed");
    assert!(
        message.contains(&format!(
            "deleting pod {} would leave 1 of 3 etcd members healthy, below quorum (2)",
            cluster.name(up)
        )),
        "{message}"
    );
    assert!(message.contains(cluster.name(down)), "{message}");
    let (allowed, warnings) = judge(&client, &delete(&cluster, down, false)).await;
    assert!(allowed, "the stopped member's pod was refused: {warnings}");
    assert!(
        warnings.contains(&format!(
            "etcd member of pod {} unreachable",
            cluster.name(down)
        )),
        "{warnings}"
    );

    // Bring it back, stop the leader: a new leader is elected and protected.
    cluster.run(down).unwrap();
    cluster.wait_for_leader(None).await;
    cluster.stop(leader);
    let new_leader = cluster.wait_for_leader(Some(leader)).await;
    let new_leader_id = cluster.member_id_hex(new_leader).await.unwrap();
    let (allowed, message) = judge(&client, &delete(&cluster, new_leader, false)).await;
    assert!(!allowed, "the new leader's pod was allowed");
    assert!(
        message.contains(&format!("is the etcd raft leader (member {new_leader_id})")),
        "{message}"
    );
    // An eviction finds it through the configured endpoints, passing over a
    // dead one: the bundled manifest with the stopped leader listed first.
    let manifest =
        std::fs::read_to_string(workspace_root().join("deploy/plugins/etcd-leader-guard.toml"))
            .unwrap();
    let endpoints = (0..cluster.size())
        .map(|index| {
            format!(
                "{:?}",
                cluster.client_url((leader + index) % cluster.size())
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let manifest: String = manifest
        .lines()
        .map(|line| match line.starts_with("endpoints = ") {
            true => format!("endpoints = [{endpoints}]\n"),
            false => format!("{line}\n"),
        })
        .collect();
    assert!(manifest.contains(&format!("endpoints = [{endpoints}]")));
    let reordered = Wicket::start(PluginDir::new().plugin(
        "etcd-leader-guard",
        &test_plugin("wicket-etcd-leader-guard"),
        Some(&manifest),
    ))
    .unwrap();
    let (allowed, message) = judge(&reordered.client(), &eviction(&cluster, new_leader)).await;
    assert!(!allowed, "the new leader's eviction was allowed");
    assert!(message.contains(&new_leader_id), "{message}");
    let survivor = others(&cluster, leader)
        .into_iter()
        .find(|index| *index != new_leader)
        .unwrap();
    assert!(
        !judge(&client, &delete(&cluster, survivor, false)).await.0,
        "quorum"
    );
    assert!(
        judge(&client, &delete(&cluster, leader, false)).await.0,
        "old leader"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_that_are_not_etcd_members_are_allowed_without_asking() {
    let wicket =
        Wicket::start(PluginDir::new().bundled("etcd-leader-guard", "wicket-etcd-leader-guard"))
            .unwrap();
    let client = wicket.client();
    let unlabelled = edited_fixture("v1-pod-delete-etcd-1.json", |request| {
        request["oldObject"]["metadata"]["labels"] = json!({ "app": "web" });
    });
    let reviewed = client.review(PATH, &unlabelled).await.unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    assert!(
        reviewed.response.get("warnings").is_none(),
        "{}",
        reviewed.response
    );
    // An eviction names no pod IP: without endpoints the guard says it could
    // not check, in a warning short enough to reach kubectl whole.
    let no_endpoints = Wicket::start(PluginDir::new().plugin(
        "etcd-leader-guard",
        &test_plugin("wicket-etcd-leader-guard"),
        Some("[outbound]\nallowed-hosts = [\"127.0.0.2:2379\"]\n"),
    ))
    .unwrap();
    let reviewed = no_endpoints
        .client()
        .review(PATH, &wicket_tests::fixture("v1-pod-eviction-etcd-0.json"))
        .await
        .unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    assert_eq!(
        reviewed.response["warnings"],
        json!([
            "pod etcd-0 not checked for etcd leadership: no IP in the request, no endpoints set"
        ])
    );
    for other in [
        "v1-pod-create-etcd-0.json",
        "v1-configmap-delete.json",
        "v1beta1-pod-delete.json",
    ] {
        let reviewed = client
            .review(PATH, &wicket_tests::fixture(other))
            .await
            .unwrap();
        assert_eq!(reviewed.response["allowed"], true, "{other}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guard_reaches_etcd_over_tls_with_a_client_certificate() {
    let etcd = TlsEtcd::start().await.unwrap();
    let path = |name: &str| format!("{:?}", etcd.file(name).display().to_string());
    let guard = |identity: &str| {
        let manifest = format!(
            "[outbound]\nallowed-hosts = [\"{ip}:2379\"]\n\
             [outbound.tls]\nca-file = {ca}\n{identity}\n\
             [settings]\nscheme = \"https\"\n",
            ip = TlsEtcd::IP,
            ca = path("ca.pem"),
        );
        let wasm = test_plugin("wicket-etcd-leader-guard");
        Wicket::start(PluginDir::new().plugin("etcd-leader-guard", &wasm, Some(&manifest))).unwrap()
    };
    let delete = edited_fixture("v1-pod-delete-etcd-1.json", |request| {
        request["oldObject"]["status"]["podIP"] = json!(TlsEtcd::IP);
    });

    // With the client certificate: the single member leads, so it is refused.
    let identity = format!(
        "cert-file = {}\nkey-file = {}",
        path("client.pem"),
        path("client-key.pem")
    );
    let wicket = guard(&identity);
    let (allowed, message) = judge(&wicket.client(), &delete).await;
    assert!(!allowed, "the TLS leader's pod was allowed: {message}");
    let id = etcd.member_id_hex().await.unwrap();
    assert!(
        message.contains(&format!("is the etcd raft leader (member {id})")),
        "{message}"
    );

    // Without it etcd refuses the handshake: the member cannot be asked.
    let wicket = guard("");
    let (allowed, warnings) = judge(&wicket.client(), &delete).await;
    assert!(allowed, "{warnings}");
    assert!(
        warnings.contains("etcd member of pod etcd-1 unreachable"),
        "{warnings}"
    );
}
