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
    let reviews = |kind: &str, name: &str, operation: &str, result: &str| {
        scrape.value(
            "wicket_reviews_total",
            &[
                ("kind", kind),
                ("name", name),
                ("operation", operation),
                ("result", result),
            ],
        )
    };
    // Two direct reviews and one as the pipeline's step.
    assert_eq!(reviews("plugin", "labeller", "CREATE", "mutated"), 3.0);
    assert_eq!(reviews("plugin", "labeller", "CREATE", "allowed"), 0.0);
    assert_eq!(reviews("pipeline", "chain", "CREATE", "mutated"), 1.0);
    assert_eq!(reviews("plugin", "denier", "CREATE", "denied"), 1.0);
    assert_eq!(reviews("plugin", "denier", "DELETE", "denied"), 1.0);
    assert_eq!(reviews("plugin", "crasher", "CREATE", "failed-open"), 1.0);
    let failures = |name: &str, cause: &str| {
        scrape.value(
            "wicket_plugin_failures_total",
            &[("name", name), ("cause", cause)],
        )
    };
    assert_eq!(failures("crasher", "trap"), 1.0);
    assert_eq!(failures("crasher", "deadline"), 0.0);
    assert_eq!(failures("denier", "trap"), 0.0);

    for part in ["host", "plugin"] {
        let labels = [("kind", "plugin"), ("name", "labeller"), ("part", part)];
        assert_eq!(
            scrape.value("wicket_review_duration_seconds_count", &labels),
            3.0
        );
        let all = [("le", "+Inf"), labels[0], labels[1], labels[2]];
        assert_eq!(
            scrape.value("wicket_review_duration_seconds_bucket", &all),
            3.0
        );
    }
    let plugin_seconds = scrape.value(
        "wicket_review_duration_seconds_sum",
        &[("name", "labeller"), ("part", "plugin")],
    );
    assert!(plugin_seconds > 0.0, "a plugin that ran used some CPU time");

    let digest = format!(
        "sha256:{}",
        sha256_hex(&std::fs::read(misbehave()).unwrap())
    );
    let info = [
        ("name", "labeller"),
        ("digest", digest.as_str()),
        ("mode", "mutating"),
    ];
    assert_eq!(scrape.value("wicket_plugin_info", &info), 1.0);
    assert!(!scrape.has("wicket_plugin_info", &[("name", "broken")]));
    assert_eq!(
        scrape.value("wicket_plugin_loads_total", &[("name", "labeller")]),
        1.0
    );
    assert_eq!(
        scrape.value("wicket_plugin_load_errors_total", &[("name", "broken")]),
        1.0
    );
    assert_eq!(
        scrape.value("wicket_plugin_load_failing", &[("name", "broken")]),
        1.0
    );
    assert_eq!(
        scrape.value("wicket_plugin_load_failing", &[("name", "denier")]),
        0.0
    );

    assert_eq!(
        scrape.value("wicket_requests_refused_total", &[("status", "404")]),
        1.0
    );
    assert_eq!(
        scrape.value("wicket_requests_refused_total", &[("status", "400")]),
        1.0
    );
    assert_eq!(scrape.value("wicket_reviews_in_flight", &[]), 0.0);
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
