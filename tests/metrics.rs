//! `/metrics` through the real binary: after a known set of reviews, each
//! count is what happened, and `/plugins` shows the same counters.

use wicket_tests::{PluginDir, Wicket, fixture, misbehave, sha256_hex};

const POD: &str = "v1-pod-create-plain.json";
const POD_DELETE: &str = "v1-pod-delete-etcd-1.json";

#[tokio::test(flavor = "multi_thread")]
async fn a_scrape_counts_what_happened() {
    let plugins = PluginDir::new()
        .misbehave("labeller", "mutating", "fail", "add-label", "")
        .misbehave("denier", "validating", "fail", "deny", "")
        .misbehave("crasher", "validating", "ignore", "trap", "")
        .write("broken.wasm", b"not a component")
        .write(
            "pipelines.toml",
            b"[pipelines.chain]\nmode = \"mutating\"\nplugins = [\"labeller\"]\n",
        );
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    for path in ["/mutate/labeller", "/mutate/labeller", "/mutate/chain"] {
        let reviewed = client.review(path, &fixture(POD)).await.unwrap();
        assert!(reviewed.patch.is_some(), "{}", reviewed.response);
    }
    for request in [POD, POD_DELETE] {
        let reviewed = client
            .review("/validate/denier", &fixture(request))
            .await
            .unwrap();
        assert_eq!(reviewed.response["allowed"], false, "{}", reviewed.response);
    }
    let crashed = client
        .review("/validate/crasher", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(crashed.response["allowed"], true, "{}", crashed.response);
    assert_eq!(
        client
            .post("/validate/nobody", fixture(POD))
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        client.post("/validate/denier", "{").await.unwrap().status,
        400
    );

    let scrape = wicket.metrics().await;
    let digest = format!(
        "sha256:{}",
        sha256_hex(&std::fs::read(misbehave()).unwrap())
    );
    let info = format!("name=labeller,digest={digest},mode=mutating");
    // Each series and the value expected; labels as `k=v,k=v`. The
    // labeller ran three times: twice directly, once as the pipeline's step.
    #[rustfmt::skip]
    let expected: &[(&str, &str, f64)] = &[
        ("wicket_reviews_total", "kind=plugin,name=labeller,operation=CREATE,result=mutated", 3.0),
        ("wicket_reviews_total", "kind=plugin,name=labeller,operation=CREATE,result=allowed", 0.0),
        ("wicket_reviews_total", "kind=pipeline,name=chain,operation=CREATE,result=mutated", 1.0),
        ("wicket_reviews_total", "kind=plugin,name=denier,operation=CREATE,result=denied", 1.0),
        ("wicket_reviews_total", "kind=plugin,name=denier,operation=DELETE,result=denied", 1.0),
        ("wicket_reviews_total", "kind=plugin,name=crasher,operation=CREATE,result=failed-open", 1.0),
        ("wicket_plugin_failures_total", "name=crasher,cause=trap", 1.0),
        ("wicket_plugin_failures_total", "name=crasher,cause=deadline", 0.0),
        ("wicket_plugin_failures_total", "name=denier,cause=trap", 0.0),
        ("wicket_review_duration_seconds_count", "kind=plugin,name=labeller,part=host", 3.0),
        ("wicket_review_duration_seconds_count", "kind=plugin,name=labeller,part=plugin", 3.0),
        ("wicket_review_duration_seconds_bucket", "le=+Inf,kind=plugin,name=labeller,part=host", 3.0),
        ("wicket_review_duration_seconds_bucket", "le=+Inf,kind=plugin,name=labeller,part=plugin", 3.0),
        ("wicket_review_total_duration_seconds_count", "kind=plugin,name=labeller", 3.0),
        ("wicket_review_total_duration_seconds_count", "kind=pipeline,name=chain", 1.0),
        ("wicket_plugin_folder_readable", "", 1.0),
        ("wicket_plugin_instances", "", 0.0),
        ("wicket_plugin_memory_bytes", "", 0.0),
        ("wicket_plugin_info", &info, 1.0),
        ("wicket_plugin_loads_total", "name=labeller", 1.0),
        ("wicket_plugin_load_errors_total", "name=broken", 1.0),
        ("wicket_plugin_load_failing", "name=broken", 1.0),
        ("wicket_plugin_load_failing", "name=denier", 0.0),
        ("wicket_requests_refused_total", "status=404", 1.0),
        ("wicket_requests_refused_total", "status=400", 1.0),
        // Exported from the start, so that a rate over it has a series.
        ("wicket_requests_refused_total", "status=503", 0.0),
        ("wicket_reviews_in_flight", "", 0.0),
        ("wicket_plugin_folder_reloads_total", "trigger=start", 1.0),
    ];
    for (series, labels, value) in expected {
        let labels: Vec<(&str, &str)> = labels
            .split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').expect("k=v"))
            .collect();
        assert_eq!(scrape.value(series, &labels), *value, "{series} {labels:?}");
    }
    let plugin_seconds = scrape.value(
        "wicket_review_duration_seconds_sum",
        &[("name", "labeller"), ("part", "plugin")],
    );
    assert!(plugin_seconds > 0.0, "a plugin that ran used some CPU time");
    assert!(!scrape.has("wicket_plugin_info", &[("name", "broken")]));
    // The whole time is at least the plugin's part of it.
    let total_seconds = scrape.value(
        "wicket_review_total_duration_seconds_sum",
        &[("name", "labeller")],
    );
    assert!(
        total_seconds >= plugin_seconds,
        "{total_seconds} < {plugin_seconds}"
    );
    assert!(scrape.value("wicket_plugin_instances_max", &[]) >= 1.0);
    assert!(scrape.value("wicket_plugin_memory_budget_bytes", &[]) >= f64::from(1 << 20));
    // The self-signed certificate served is good for months.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let expiry = scrape.value("wicket_certificate_expiry_timestamp_seconds", &[]);
    assert!(
        expiry > now + 30.0 * 86400.0,
        "expires at {expiry}, now {now}"
    );
    // The client keeps its connection open.
    let open = scrape.value("wicket_connections_open", &[("listener", "webhook")]);
    assert!(open >= 1.0, "{}", scrape.text());
    assert!(scrape.text().ends_with("# EOF\n"));

    // `/plugins` reads the same counters.
    let counters = wicket.plugin("denier").await.unwrap()["counters"].clone();
    assert_eq!(counters["requests"], 2, "{counters}");
    assert_eq!(counters["denials"], 2, "{counters}");
    let counters = wicket.plugin("crasher").await.unwrap()["counters"].clone();
    assert_eq!(counters["failures"], 1, "{counters}");
}
