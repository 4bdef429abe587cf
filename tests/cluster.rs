//! Cluster-aware plugins through the real binary: the `cluster` interface
//! served from a folder of objects (`--cluster-objects`), read by the
//! cluster-probe test plugin, which refuses with what each read answered.
//! Every answer of the interface is seen here: objects by name, by
//! namespace and selector, by a declared index; each error value
//! (undeclared, not allowed, invalid selector, no source); a change in the
//! folder seen by the next review; a manifest declaring a kind the operator
//! does not allow refused at load.

use std::path::Path;

use serde_json::{Value, json};
use wicket_tests::raw::PATIENCE;
use wicket_tests::{
    PROBE_MANIFEST, PROBE_PATH, PluginDir, Wicket, edited_fixture, eventually, probe, probe_dir,
    test_plugin,
};

/// An Ingress in `namespace` routing `host`.
fn ingress(namespace: &str, name: &str, host: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{team: {namespace}}}\nspec:\n  rules:\n  - host: {host}\n"
    )
}

/// A folder of objects: two labelled namespaces and an Ingress in each.
fn objects() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "namespaces.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {team: a}}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: team-b, labels: {team: b}}\n",
    );
    write(
        "ingresses.yaml",
        &format!(
            "{}---\n{}",
            ingress("team-a", "shop", "shop.example.com"),
            ingress("team-b", "blog", "blog.example.com")
        ),
    );
    dir
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_answer_from_the_folder_and_say_why_when_they_cannot() {
    let folder = objects();
    let wicket = Wicket::start_with(
        probe_dir(PROBE_MANIFEST),
        &["--cluster-objects", arg(folder.path())],
    )
    .unwrap();
    let get = |kind, namespace, name| {
        vec![
            ("call", "get"),
            ("kind", kind),
            ("namespace", namespace),
            ("name", name),
        ]
    };
    assert_eq!(
        probe(&wicket, &get("Namespace", "", "team-a")).await,
        "found: /team-a"
    );
    assert_eq!(
        probe(&wicket, &get("Namespace", "", "team-z")).await,
        "found: none"
    );
    assert_eq!(
        probe(&wicket, &get("Ingress", "team-b", "blog")).await,
        "found: team-b/blog"
    );

    let list = |namespace: &'static str, selector: &'static str| {
        let mut asks = vec![
            ("call", "list"),
            ("kind", "Ingress"),
            ("selector", selector),
        ];
        if !namespace.is_empty() {
            asks.push(("namespace", namespace));
        }
        asks
    };
    assert_eq!(
        probe(&wicket, &list("", "")).await,
        "found: team-a/shop, team-b/blog"
    );
    assert_eq!(
        probe(&wicket, &list("", "team in (team-b, team-c)")).await,
        "found: team-b/blog"
    );
    assert_eq!(
        probe(&wicket, &list("team-a", "team=team-b")).await,
        "found: none"
    );
    let bad = probe(&wicket, &list("", "team in team-b")).await;
    assert!(
        bad.starts_with("cluster read invalid: label selector"),
        "{bad}"
    );

    let find = |index, value| {
        vec![
            ("call", "find"),
            ("kind", "Ingress"),
            ("index", index),
            ("value", value),
        ]
    };
    assert_eq!(
        probe(&wicket, &find("host", "shop.example.com")).await,
        "found: team-a/shop"
    );
    assert_eq!(
        probe(&wicket, &find("host", "nobody.example.com")).await,
        "found: none"
    );
    let undeclared_index = probe(&wicket, &find("class", "nginx")).await;
    assert!(
        undeclared_index.starts_with("cluster read not declared: "),
        "{undeclared_index}"
    );
    assert!(
        undeclared_index.contains("no index \"class\""),
        "{undeclared_index}"
    );

    let undeclared = probe(&wicket, &get("ConfigMap", "team-a", "x")).await;
    assert!(
        undeclared.starts_with("cluster read not declared: v1 ConfigMap"),
        "{undeclared}"
    );
    let secret = probe(&wicket, &get("Secret", "team-a", "x")).await;
    assert!(secret.starts_with("cluster read not allowed: "), "{secret}");
    assert!(secret.contains("every kind but Secret"), "{secret}");

    // A new Ingress in the folder is seen by a later review, found by its
    // host; a broken file leaves what was read last serving.
    std::fs::write(
        folder.path().join("new.yaml"),
        ingress("team-c", "docs", "docs.example.com"),
    )
    .unwrap();
    eventually("the new Ingress is found", PATIENCE, async || {
        (probe(&wicket, &find("host", "docs.example.com")).await == "found: team-c/docs")
            .then_some(())
    })
    .await;
    std::fs::write(folder.path().join("broken.yaml"), "kind: [unclosed\n").unwrap();
    eventually("the broken file is reported", PATIENCE, async || {
        wicket
            .log()
            .contains("cluster objects folder does not read")
            .then_some(())
    })
    .await;
    assert_eq!(
        probe(&wicket, &find("host", "docs.example.com")).await,
        "found: team-c/docs"
    );
    let described = wicket.plugins().await;
    assert_eq!(
        described["cluster"]["source"],
        format!("folder {}", folder.path().display()),
        "{described}"
    );
    let metrics = wicket.metrics().await;
    let ingresses = [("kind", "networking.k8s.io/v1 Ingress")];
    assert_eq!(metrics.value("wicket_cluster_objects", &ingresses), 3.0);
    assert!(metrics.value("wicket_cluster_held_bytes", &ingresses) > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_source_reads_are_unavailable() {
    let wicket = Wicket::start(probe_dir(PROBE_MANIFEST)).unwrap();
    let answer = probe(
        &wicket,
        &[("call", "get"), ("kind", "Namespace"), ("name", "team-a")],
    )
    .await;
    assert!(answer.starts_with("cluster read unavailable: "), "{answer}");
    assert!(answer.contains("--cluster-objects"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_kind_the_operator_does_not_allow_keeps_the_plugin_out() {
    let secrets = "[cluster]\nread = [{ api-version = \"v1\", kind = \"Secret\" }]\n";
    let plugins = probe_dir(secrets).plugin(
        "namespaces-only",
        &test_plugin("test-plugin-cluster-probe"),
        Some("[cluster]\nread = [{ api-version = \"v1\", kind = \"Namespace\" }]\n"),
    );
    let wicket = Wicket::start_with(
        plugins,
        &["--cluster-allow", "Namespace,Ingress.networking.k8s.io"],
    )
    .unwrap();
    let refused = wicket.plugin("probe").await.expect("listed with its error");
    let error = refused["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("v1 Secret, which the operator does not allow"),
        "{refused}"
    );
    assert!(
        error.contains("Namespace, Ingress.networking.k8s.io"),
        "{refused}"
    );
    let allowed = wicket.plugin("namespaces-only").await.expect("served");
    assert!(allowed["lastError"].is_null(), "{allowed}");
    let status = wicket
        .client()
        .post(
            PROBE_PATH,
            edited_fixture("v1-configmap-create.json", |_| {}),
        )
        .await
        .unwrap()
        .status;
    assert_eq!(status, 404, "a plugin refused at load is not served");
}

/// The bundled cluster-aware plugins, served as `scripts/serve` serves
/// them, answer README's try-it reviews from `deploy/try/cluster/`.
#[tokio::test(flavor = "multi_thread")]
async fn the_bundled_plugins_answer_the_try_it_reviews_from_the_try_it_cluster() {
    let root = wicket_tests::workspace_root();
    let plugins = PluginDir::new()
        .bundled("unique-ingress-host", "wicket-unique-ingress-host")
        .bundled("namespace-labels", "wicket-namespace-labels");
    let cluster = root.join("deploy/try/cluster");
    let wicket = Wicket::start_with(plugins, &["--cluster-objects", arg(&cluster)]).unwrap();
    let client = wicket.client();
    let try_it =
        |plugin: &str| std::fs::read(root.join(format!("deploy/try/{plugin}.json"))).unwrap();

    let ingress = client
        .review(
            "/validate/unique-ingress-host",
            &try_it("unique-ingress-host"),
        )
        .await
        .unwrap();
    let message = ingress.response["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("shop.example.com is already routed by Ingress team-a/shop"),
        "{}",
        ingress.response
    );

    let pod = client
        .review("/mutate/namespace-labels", &try_it("namespace-labels"))
        .await
        .unwrap();
    let labelled = wicket_tests::apply(&try_it("namespace-labels"), &pod.patch.expect("a patch"));
    assert_eq!(
        labelled["metadata"]["labels"]["team"], "payments",
        "{labelled}"
    );
    assert_eq!(
        labelled["metadata"]["labels"]["cost-center"], "cc-42",
        "{labelled}"
    );
    assert_eq!(labelled["metadata"]["labels"]["app"], "web", "{labelled}");
}

/// Every handle a plugin holds costs host memory its own cap does not
/// count: a read that would hold more than a review may is refused with a
/// value saying how to narrow it.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_past_the_documents_a_review_may_hold_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let items: Vec<Value> = (0..50_001)
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}))
        .collect();
    std::fs::write(
        folder.path().join("namespaces.json"),
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    )
    .unwrap();
    let wicket = Wicket::start_with(
        probe_dir(PROBE_MANIFEST),
        &["--cluster-objects", arg(folder.path())],
    )
    .unwrap();
    let all = probe(&wicket, &[("call", "list"), ("kind", "Namespace")]).await;
    assert!(
        all.starts_with("cluster read invalid: the read would hold 50001 objects"),
        "{all}"
    );
    let one = probe(
        &wicket,
        &[("call", "list"), ("kind", "Namespace"), ("selector", "")],
    )
    .await;
    assert!(
        one.contains("narrow it with a namespace, a selector or an index"),
        "{one}"
    );
    let named = probe(
        &wicket,
        &[("call", "get"), ("kind", "Namespace"), ("name", "ns-50000")],
    )
    .await;
    assert_eq!(named, "found: /ns-50000");
}
