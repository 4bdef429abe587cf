//! Plugins that fail — trap, loop, exhaust memory, return bad output — under
//! both failure policies, through the real binary. After all of them the
//! server still answers a good request.

use serde_json::Value;
use wicket_tests::{Client, PluginDir, Wicket, fixture, misbehave};

/// A way to fail: the `behave` setting, the path kind, the fixture that
/// triggers it, and what the failure message must say.
struct Misbehaviour {
    behave: &'static str,
    mode: &'static str,
    fixture: &'static str,
    cause: &'static str,
}

const POD: &str = "v1-pod-create-plain.json";
const DELETE: &str = "v1-pod-delete-etcd-1.json";

const MISBEHAVIOURS: &[Misbehaviour] = &[
    Misbehaviour {
        behave: "trap",
        mode: "validating",
        fixture: POD,
        cause: "it crashed: panicked: misbehave: trapping as told",
    },
    Misbehaviour {
        behave: "loop",
        mode: "validating",
        fixture: POD,
        cause: "it ran past its 50ms deadline",
    },
    Misbehaviour {
        behave: "oom",
        mode: "validating",
        fixture: POD,
        cause: "it exceeded its memory limit of 16 MiB",
    },
    Misbehaviour {
        behave: "bad-patch",
        mode: "mutating",
        fixture: POD,
        cause: "its patch does not apply to the object",
    },
    Misbehaviour {
        behave: "garbage-patch",
        mode: "mutating",
        fixture: POD,
        cause: "its answer is malformed: the patch is not valid JSON",
    },
    Misbehaviour {
        behave: "huge-output",
        mode: "validating",
        fixture: POD,
        cause: "over its limit of 1048576",
    },
    Misbehaviour {
        behave: "add-label",
        mode: "validating",
        fixture: POD,
        cause: "it is a validating plugin but returned a mutation",
    },
    Misbehaviour {
        behave: "always-mutate",
        mode: "mutating",
        fixture: DELETE,
        cause: "it returned a mutation for a request without an object",
    },
];

const LIMITS: &str = "[limits]\ntimeout-ms = 50\nmemory-mib = 16";

fn plugin_name(behave: &str, policy: &str) -> String {
    format!("{behave}-{policy}")
}

fn path(case: &Misbehaviour, policy: &str) -> String {
    let prefix = if case.mode == "mutating" {
        "mutate"
    } else {
        "validate"
    };
    format!("/{prefix}/{}", plugin_name(case.behave, policy))
}

fn all_misbehaving_plugins() -> PluginDir {
    let mut plugins = PluginDir::new().misbehave("allow", "validating", "fail", "allow", "");
    for case in MISBEHAVIOURS {
        for policy in ["fail", "ignore"] {
            plugins = plugins.misbehave(
                &plugin_name(case.behave, policy),
                case.mode,
                policy,
                case.behave,
                LIMITS,
            );
        }
    }
    plugins
}

/// Sends `request` to the `case` plugin with `policy`, checks the answer
/// against the API server's rules and that it carries no patch, and returns
/// its `response`.
async fn review_without_patch(
    client: &Client,
    case: &Misbehaviour,
    policy: &str,
    request: &[u8],
) -> Value {
    let reviewed = client.review(&path(case, policy), request).await.unwrap();
    assert!(
        reviewed.patch.is_none(),
        "{}: a failed plugin's answer has no patch",
        case.behave
    );
    reviewed.response
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failure_follows_its_plugins_failure_policy() {
    let wicket = Wicket::start(all_misbehaving_plugins()).unwrap();
    let client = wicket.client();
    for case in MISBEHAVIOURS {
        let request = fixture(case.fixture);

        // failure-policy = "fail": denied with 500, naming plugin and cause.
        let response = review_without_patch(&client, case, "fail", &request).await;
        assert_eq!(response["allowed"], false, "{}: {response}", case.behave);
        assert_eq!(response["status"]["code"], 500);
        let message = response["status"]["message"].as_str().unwrap();
        let name = plugin_name(case.behave, "fail");
        assert!(
            message.starts_with(&format!("plugin {name} failed: ")),
            "{message}"
        );
        assert!(message.contains(case.cause), "{}: {message}", case.behave);

        // failure-policy = "ignore": allowed, no patch, a warning and an
        // audit annotation naming the plugin.
        let response = review_without_patch(&client, case, "ignore", &request).await;
        assert_eq!(response["allowed"], true, "{}: {response}", case.behave);
        let name = plugin_name(case.behave, "ignore");
        let warning = response["warnings"][0].as_str().unwrap();
        assert!(
            warning.starts_with(&format!("plugin {name} failed")),
            "{warning}"
        );
        let audit = response["auditAnnotations"]["plugin-failure"]
            .as_str()
            .unwrap();
        assert!(audit.contains(case.cause), "{audit}");

        // The failure is logged with its cause.
        let log = wicket.log();
        assert!(
            log.lines()
                .any(|line| line.contains(&format!("plugin={name} "))
                    && line.contains("verdict=failed-open")
                    && line.contains(case.cause)),
            "{}: no failure line in log",
            case.behave
        );
    }

    // After all of that, a good request is still answered.
    let request = fixture(POD);
    let reviewed = client.review("/validate/allow", &request).await.unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_floods_stderr_is_bounded_and_still_answers() {
    // A generous deadline: what is tested is the bound on output, not time.
    let plugins = PluginDir::new().misbehave(
        "noisy",
        "validating",
        "fail",
        "noisy-stderr",
        "[limits]\ntimeout-ms = 5000",
    );
    let wicket = Wicket::start(plugins).unwrap();
    let request = fixture(POD);
    let reviewed = wicket
        .client()
        .review("/validate/noisy", &request)
        .await
        .unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    let log = wicket.log();
    let output_line = log
        .lines()
        .find(|line| line.contains("plugin output") && line.contains("noise line 0"))
        .expect("the plugin's output is logged");
    assert!(output_line.len() < 64 * 1024, "output is bounded");
    assert!(
        !output_line.contains("dropped_bytes=0"),
        "the excess is counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denial_carries_the_plugins_code_and_message() {
    let manifest = "[settings]\nbehave = \"deny\"\ncode = 422\nmessage = \"replicas must be odd; use 3 or 5\"\n";
    let plugins = PluginDir::new().plugin("deny", &misbehave(), Some(manifest));
    let wicket = Wicket::start(plugins).unwrap();
    let request = fixture(POD);
    let reviewed = wicket
        .client()
        .review("/validate/deny", &request)
        .await
        .unwrap();
    let response = &reviewed.response;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 422);
    assert_eq!(response["status"]["reason"], "Invalid");
    assert_eq!(
        response["status"]["message"],
        "deny: replicas must be odd; use 3 or 5"
    );
}
