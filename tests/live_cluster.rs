//! Cluster-aware plugins served from live watch caches: the real binary
//! follows the stand-in API server (`harness::apiserver`: discovery, paged
//! lists, chunked watches, 410 and 403) through a kubeconfig, and the
//! cluster-probe test plugin says what each read answered. Start-up waits
//! for the first lists; creations, changes and deletions come through the
//! watch; an expired watch relists; a forbidden kind says so; hot reload
//! adds and drops caches without touching readiness; the memory budget
//! refuses the newest kind.

use std::path::Path;

use serde_json::{Value, json};
use wicket_tests::apiserver::ApiServer;
use wicket_tests::raw::PATIENCE;
use wicket_tests::{PROBE_MANIFEST, PluginDir, Wicket, eventually, probe, probe_dir};

const INGRESSES: &str = "/apis/networking.k8s.io/v1/ingresses";
const NAMESPACES: &str = "/api/v1/namespaces";

/// Declares Namespaces alone.
const NAMESPACES_ONLY: &str = r#"
[cluster]
read = [{ api-version = "v1", kind = "Namespace", metadata-only = true }]
"#;

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"team": name}}})
}

fn ingress(namespace: &str, name: &str, host: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": namespace, "name": name,
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
        "spec": {"rules": [{"host": host}]}})
}

async fn find_host(wicket: &Wicket, host: &str) -> String {
    probe(
        wicket,
        &[
            ("call", "find"),
            ("kind", "Ingress"),
            ("index", "host"),
            ("value", host),
        ],
    )
    .await
}

/// Starts Wicket on `plugins`, following `api`, with `args`.
fn start(plugins: PluginDir, api: &ApiServer, config: &Path, args: &[&str]) -> Wicket {
    let kubeconfig = api.kubeconfig(config);
    Wicket::start_with_env(plugins, args, &[("KUBECONFIG", kubeconfig.as_os_str())]).unwrap()
}

/// `/readyz` on `ops`: its status and body.
async fn readyz(ops: &str) -> Option<(u16, Value)> {
    let answer = wicket_tests::Client::plain(ops).get("/readyz").await.ok()?;
    Some((answer.status, serde_json::from_slice(&answer.body).ok()?))
}

/// The cache of `kind` in `/plugins`.
async fn cache(wicket: &Wicket, kind: &str) -> Option<Value> {
    let described = wicket.plugins().await;
    described["cluster"]["kinds"]
        .as_array()?
        .iter()
        .find(|cache| cache["kind"] == kind)
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn caches_gate_start_up_then_follow_creations_changes_deletions_and_relists() {
    let api = ApiServer::start().await;
    api.add([namespace("team-a"), namespace("team-b")]);
    // More than a page (kube lists 500 at a time): the list continues.
    api.add((0..1_200).map(|n| {
        ingress(
            "team-a",
            &format!("app-{n}"),
            &format!("app-{n}.example.com"),
        )
    }));
    api.add([ingress("team-b", "blog", "blog.example.com")]);
    api.hold_lists();

    // Until the first lists complete, Wicket is not ready and not listening.
    let ops_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ops = format!("http://127.0.0.1:{ops_port}");
    let config = tempfile::tempdir().unwrap();
    // Built first: the readiness wait below is not the build's.
    let plugins = probe_dir(PROBE_MANIFEST);
    wicket_tests::wicket_binary();
    let starting = {
        let (api, config) = (api.clone(), config.path().to_owned());
        let ops_listen = format!("127.0.0.1:{ops_port}");
        tokio::task::spawn_blocking(move || {
            start(plugins, &api, &config, &["--ops-listen", &ops_listen])
        })
    };
    let (status, body) = eventually(
        "readyz answers while the lists are held",
        PATIENCE,
        async || readyz(&ops).await,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    eventually("the held lists are asked for", PATIENCE, async || {
        (!api.lists_and_watches(INGRESSES).is_empty()).then_some(())
    })
    .await;
    let (status, body) = readyz(&ops).await.unwrap();
    assert_eq!(status, 503, "not ready while the caches fill: {body}");
    api.answer_lists();
    let wicket = starting.await.unwrap();
    let (status, body) = readyz(&ops).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["clusterNotSynced"], json!([]), "{body}");

    // The Ingresses were listed in pages, then watched; Namespaces through
    // the metadata API.
    let requests = api.lists_and_watches(INGRESSES);
    assert!(
        requests.iter().any(|r| r.query.contains("limit=500")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.query.contains("continue=")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.query.contains("watch=true")),
        "{requests:?}"
    );
    let namespaces = api.lists_and_watches(NAMESPACES);
    assert!(
        namespaces
            .iter()
            .all(|r| r.accept.contains("as=PartialObjectMetadata")),
        "{namespaces:?}"
    );

    assert_eq!(
        find_host(&wicket, "app-1199.example.com").await,
        "found: team-a/app-1199"
    );
    assert_eq!(
        probe(
            &wicket,
            &[("call", "get"), ("kind", "Namespace"), ("name", "team-b")]
        )
        .await,
        "found: /team-b"
    );
    let ingresses = cache(&wicket, "networking.k8s.io/v1 Ingress")
        .await
        .unwrap();
    assert_eq!(ingresses["state"], "synced", "{ingresses}");
    assert_eq!(ingresses["objects"], 1_201, "{ingresses}");

    // A creation, a change and a deletion come through the watch.
    api.add([ingress("team-b", "docs", "docs.example.com")]);
    eventually("the new Ingress is found", PATIENCE, async || {
        (find_host(&wicket, "docs.example.com").await == "found: team-b/docs").then_some(())
    })
    .await;
    api.add([ingress("team-b", "docs", "manuals.example.com")]);
    eventually(
        "the changed Ingress is found by its new host",
        PATIENCE,
        async || {
            (find_host(&wicket, "manuals.example.com").await == "found: team-b/docs").then_some(())
        },
    )
    .await;
    assert_eq!(find_host(&wicket, "docs.example.com").await, "found: none");
    api.delete(&ingress("team-b", "docs", ""));
    eventually("the deleted Ingress is gone", PATIENCE, async || {
        (find_host(&wicket, "manuals.example.com").await == "found: none").then_some(())
    })
    .await;

    // An expired watch (410) makes the cache list again, and it follows on.
    api.expire_watches();
    eventually("the Ingresses are listed again", PATIENCE, async || {
        let ingresses = cache(&wicket, "networking.k8s.io/v1 Ingress").await?;
        (ingresses["relists"].as_u64()? >= 1).then_some(())
    })
    .await;
    api.add([ingress("team-b", "wiki", "wiki.example.com")]);
    eventually(
        "an Ingress created after the relist is found",
        PATIENCE,
        async || {
            (find_host(&wicket, "wiki.example.com").await == "found: team-b/wiki").then_some(())
        },
    )
    .await;

    let metrics = wicket.metrics().await;
    let kind = [("kind", "networking.k8s.io/v1 Ingress")];
    assert_eq!(metrics.value("wicket_cluster_objects", &kind), 1_202.0);
    assert!(metrics.value("wicket_cluster_relists_total", &kind) >= 1.0);
    assert_eq!(
        metrics.value(
            "wicket_cluster_cache_state",
            &[("kind", kind[0].1), ("state", "synced")]
        ),
        1.0
    );
    assert!(
        metrics.value(
            "wicket_cluster_reads_total",
            &[("plugin", "probe"), ("result", "ok")]
        ) >= 5.0
    );
    // managedFields are not kept.
    let held = metrics.value("wicket_cluster_held_bytes", &kind);
    assert!(held > 0.0 && held < 1_202.0 * 400.0, "{held}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forbidden_kind_says_so_and_hot_reload_adds_and_drops_caches_staying_ready() {
    let api = ApiServer::start().await;
    api.add([
        namespace("team-a"),
        ingress("team-a", "shop", "shop.example.com"),
    ]);
    api.forbid("ingresses", true);
    let config = tempfile::tempdir().unwrap();
    let plugins = probe_dir(NAMESPACES_ONLY);
    let manifest = plugins.path().join("probe.toml");
    let wicket = start(plugins, &api, config.path(), &[]);
    let ready = async || readyz(&wicket.ops_url).await.map(|(status, _)| status);
    assert_eq!(ready().await, Some(200));
    assert!(
        api.lists_and_watches(INGRESSES).is_empty(),
        "not declared: not followed"
    );

    // A new version declaring Ingresses: the kind is followed from its
    // load; the API server refuses, and the read says so.
    std::fs::write(&manifest, PROBE_MANIFEST).unwrap();
    eventually("the Ingress cache is refused", PATIENCE, async || {
        let ingresses = cache(&wicket, "networking.k8s.io/v1 Ingress").await?;
        (ingresses["state"] == "forbidden").then_some(())
    })
    .await;
    let refused = eventually("the new version serves", PATIENCE, async || {
        let answer = find_host(&wicket, "shop.example.com").await;
        answer
            .starts_with("cluster read forbidden: ")
            .then_some(answer)
    })
    .await;
    assert!(
        refused.contains(r#"cannot list resource "ingresses" in API group "networking.k8s.io""#),
        "{refused}"
    );
    assert_eq!(
        ready().await,
        Some(200),
        "a forbidden kind never makes a ready replica unready"
    );
    let (_, body) = readyz(&wicket.ops_url).await.unwrap();
    assert_eq!(body["clusterNotSynced"][0]["state"], "forbidden", "{body}");
    assert!(wicket.log().contains("is forbidden"), "the 403 is logged");

    // Granted: the list is retried and the kind serves.
    api.forbid("ingresses", false);
    eventually("the Ingress is found once granted", PATIENCE, async || {
        (find_host(&wicket, "shop.example.com").await == "found: team-a/shop").then_some(())
    })
    .await;

    // A version that no longer declares Ingresses: the cache goes.
    std::fs::write(&manifest, NAMESPACES_ONLY).unwrap();
    eventually("the Ingress cache is dropped", PATIENCE, async || {
        cache(&wicket, "networking.k8s.io/v1 Ingress")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(cache(&wicket, "v1 Namespace").await.is_some(), "still read");
    let undeclared = find_host(&wicket, "shop.example.com").await;
    assert!(
        undeclared.starts_with("cluster read not declared: "),
        "{undeclared}"
    );
    assert_eq!(ready().await, Some(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_memory_budget_the_newest_kind_is_refused_not_the_process() {
    let api = ApiServer::start().await;
    api.add((0..50).map(|n| namespace(&format!("team-{n}"))));
    // About 1.5 MiB as the budget counts it: more than the budget of 1 MiB.
    api.add((0..2_000).map(|n| {
        ingress(
            "team-a",
            &format!("app-{n}"),
            &format!("app-{n}.example.com"),
        )
    }));
    let config = tempfile::tempdir().unwrap();
    let wicket = start(
        probe_dir(PROBE_MANIFEST),
        &api,
        config.path(),
        &["--cluster-memory-mib", "1"],
    );
    let refused = find_host(&wicket, "app-1.example.com").await;
    assert!(
        refused.starts_with("cluster read unavailable: "),
        "{refused}"
    );
    assert!(refused.contains("--cluster-memory-mib 1"), "{refused}");
    assert_eq!(
        probe(
            &wicket,
            &[("call", "get"), ("kind", "Namespace"), ("name", "team-7")]
        )
        .await,
        "found: /team-7",
        "the older kind keeps serving"
    );
    let ingresses = cache(&wicket, "networking.k8s.io/v1 Ingress")
        .await
        .unwrap();
    assert_eq!(ingresses["state"], "over-budget", "{ingresses}");
    assert_eq!(ingresses["objects"], 0, "{ingresses}");
    let metrics = wicket.metrics().await;
    assert_eq!(metrics.value("wicket_cluster_refused_total", &[]), 1.0);
}
