//! Enforcement modes through the real binary: `warn` lets a denial through
//! as a warning, `monitor` lets everything through unchanged, both say what
//! would have happened in an audit annotation, and a change of mode is a
//! hot reload like any other.

use std::time::Duration;

use wicket_tests::{PluginDir, Wicket, eventually, fixture};

const POD: &str = "v1-pod-create-plain.json";

#[tokio::test(flavor = "multi_thread")]
async fn warn_and_monitor_let_requests_through_and_say_what_would_have_happened() {
    let plugins = PluginDir::new()
        .misbehave("enforced", "validating", "fail", "deny", "")
        .misbehave(
            "warned",
            "validating",
            "fail",
            "deny",
            "enforcement = \"warn\"",
        )
        .misbehave(
            "monitored",
            "validating",
            "fail",
            "deny",
            "enforcement = \"monitor\"",
        )
        .misbehave(
            "labelled",
            "mutating",
            "fail",
            "add-label",
            "enforcement = \"monitor\"",
        )
        .misbehave(
            "touched",
            "mutating",
            "fail",
            "add-label",
            "enforcement = \"warn\"",
        )
        .write(
            "pipelines.toml",
            b"[pipelines.checks]\nmode = \"validating\"\nplugins = [\"enforced\"]\nenforcement = \"warn\"\n\
              [pipelines.watched]\nmode = \"mutating\"\nplugins = [\"touched\"]\nenforcement = \"monitor\"\n",
        );
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    let review = |path: &'static str| {
        let client = client.clone();
        async move { client.review(path, &fixture(POD)).await.unwrap() }
    };

    let enforced = review("/validate/enforced").await;
    assert_eq!(enforced.response["allowed"], false, "{}", enforced.response);

    let warned = review("/validate/warned").await;
    assert_eq!(warned.response["allowed"], true, "{}", warned.response);
    assert_eq!(
        warned.response["warnings"][0],
        "warned: denied by test (warn mode: not enforced)"
    );
    assert_eq!(
        warned.response["auditAnnotations"]["would-deny"],
        "warned: denied by test"
    );

    let monitored = review("/validate/monitored").await;
    assert_eq!(
        monitored.response["allowed"], true,
        "{}",
        monitored.response
    );
    assert!(
        monitored.response.get("warnings").is_none(),
        "{}",
        monitored.response
    );
    assert_eq!(
        monitored.response["auditAnnotations"]["would-deny"],
        "monitored: denied by test"
    );

    let labelled = review("/mutate/labelled").await;
    assert_eq!(labelled.response["allowed"], true, "{}", labelled.response);
    assert!(labelled.patch.is_none(), "monitor mode applies no patch");
    let would_patch = labelled.response["auditAnnotations"]["would-patch"]
        .as_str()
        .unwrap();
    assert!(would_patch.contains("/metadata/labels"), "{would_patch}");

    // A pipeline's own enforcement applies to its merged answer.
    let pipeline = review("/validate/checks").await;
    assert_eq!(pipeline.response["allowed"], true, "{}", pipeline.response);
    assert_eq!(
        pipeline.response["auditAnnotations"]["would-deny"],
        "enforced: denied by test"
    );

    // Warn mode still applies a patch.
    let touched = review("/mutate/touched").await;
    assert_eq!(touched.response["allowed"], true, "{}", touched.response);
    assert!(touched.patch.is_some(), "{}", touched.response);

    // A monitoring pipeline applies none, and says what it would have done.
    let watched = review("/mutate/watched").await;
    assert_eq!(watched.response["allowed"], true, "{}", watched.response);
    assert!(watched.patch.is_none(), "{}", watched.response);
    let would_patch = watched.response["auditAnnotations"]["would-patch"]
        .as_str()
        .unwrap_or_default();
    assert!(
        would_patch.contains("/metadata/labels"),
        "{}",
        watched.response
    );

    let log = wicket.log();
    let watched_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("plugin=watched") && line.contains("uid="))
        .collect();
    assert_eq!(
        watched_lines.len(),
        1,
        "one line per review: {watched_lines:?}"
    );
    assert!(
        watched_lines[0].contains(" review ") && watched_lines[0].contains("would=\"patch: "),
        "the review's line says what monitor mode let through: {}",
        watched_lines[0]
    );
    let counters = wicket.plugin("warned").await.unwrap()["counters"].clone();
    assert_eq!(counters["notEnforced"], 1, "{counters}");
    assert_eq!(counters["denials"], 0, "{counters}");
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_enforcement_is_a_hot_reload() {
    let plugins = PluginDir::new().misbehave("guard", "validating", "fail", "deny", "");
    let manifest = plugins.path().join("guard.toml");
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    let allowed = async || {
        let reviewed = client
            .review("/validate/guard", &fixture(POD))
            .await
            .unwrap();
        reviewed.response["allowed"].as_bool().unwrap()
    };
    assert!(!allowed().await);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let warn = text.replace("failure-policy", "enforcement = \"warn\"\nfailure-policy");
    let temporary = manifest.with_file_name(".guard.toml.tmp");
    std::fs::write(&temporary, warn).unwrap();
    std::fs::rename(&temporary, &manifest).unwrap();
    eventually(
        "the guard in warn mode",
        Duration::from_secs(30),
        async || allowed().await.then_some(()),
    )
    .await;
}
