//! Isolation and concurrency through the real binary: many requests at once,
//! no state carried between requests, a stuck plugin does not stall others.

use std::pin::pin;

use wicket_tests::raw::PATIENCE;
use wicket_tests::{PluginDir, Wicket, eventually, fixture_with_uid};

const POD: &str = "v1-pod-create-plain.json";

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_requests_each_get_their_own_answer() {
    let plugins = PluginDir::new().misbehave("add-label", "mutating", "fail", "add-label", "");
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..200 {
        let client = client.clone();
        requests.spawn(async move {
            let uid = format!("concurrent-{i}");
            let request = fixture_with_uid(POD, &uid);
            let reviewed = client.review("/mutate/add-label", &request).await.unwrap();
            (uid, reviewed)
        });
    }
    let mut answered = 0;
    while let Some(joined) = requests.join_next().await {
        let (uid, reviewed) = joined.unwrap();
        assert!(reviewed.patch.is_some());
        assert_eq!(reviewed.response["uid"], uid.as_str());
        answered += 1;
    }
    assert_eq!(answered, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_state_is_carried_from_one_request_to_the_next() {
    let plugins = PluginDir::new().misbehave("counter", "validating", "fail", "counter", "");
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    for i in 0..20 {
        let answer = client
            .post(
                "/validate/counter",
                fixture_with_uid(POD, &format!("seq-{i}")),
            )
            .await
            .unwrap();
        assert_eq!(
            answer.json()["response"]["warnings"][0],
            "seen=1",
            "request {i}"
        );
    }
    let mut requests = client.post_each(
        "/validate/counter",
        POD,
        (0..20).map(|i| format!("par-{i}")),
    );
    while let Some(answer) = requests.join_next().await {
        let answer = answer.unwrap().unwrap();
        assert_eq!(answer.json()["response"]["warnings"][0], "seen=1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn looping_plugins_do_not_stall_other_plugins() {
    // The loops get a long deadline so that they are certainly still running
    // when the other request is answered; the assertion is on order, not time.
    let plugins = PluginDir::new()
        .misbehave(
            "loop",
            "validating",
            "fail",
            "loop",
            "[limits]\ntimeout-ms = 5000",
        )
        .misbehave("allow", "validating", "fail", "allow", "");
    let wicket = Wicket::start(plugins).unwrap();
    let client = wicket.client();
    let mut first_loop = pin!(client.post("/validate/loop", fixture_with_uid(POD, "loop-1")));
    let mut second_loop = pin!(client.post("/validate/loop", fixture_with_uid(POD, "loop-2")));
    // Drive both loops until the plugin reports both are spinning.
    let log_has = |uid: &str| wicket.log().contains(&format!("looping on {uid}"));
    let both_spinning = eventually("both loops to spin", PATIENCE, async || {
        (log_has("loop-1") && log_has("loop-2")).then_some(())
    });
    tokio::select! {
        _ = both_spinning => {}
        _ = &mut first_loop => panic!("a looping plugin finished before it was seen spinning"),
        _ = &mut second_loop => panic!("a looping plugin finished before it was seen spinning"),
    }
    let allow = client.post("/validate/allow", fixture_with_uid(POD, "allow"));
    // Keep driving both loops until the allow request finishes; neither may finish first.
    let answer = tokio::select! {
        biased;
        answer = allow => answer.unwrap(),
        _ = &mut first_loop => panic!("a looping plugin finished before the other plugin answered"),
        _ = &mut second_loop => panic!("a looping plugin finished before the other plugin answered"),
    };
    assert_eq!(answer.json()["response"]["allowed"], true);
    for looping in [first_loop, second_loop] {
        let answer = looping.await.unwrap();
        let message = answer.json()["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        // Its deadline, or (taking turns with the other loop on a machine
        // with few cores) its wall-clock bound: either way the plugin's own
        // failure.
        assert!(
            message.contains("ran past its 5000ms deadline")
                || message.contains("ran past its 5500ms wall-clock bound"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugins_own_cap_leaves_slots_for_the_others() {
    // Two slots in all; the looping plugin may hold one. Three of its
    // reviews at once: one runs, two wait for its own slot (and fail as its
    // own load), and the other plugin still gets the second slot at once.
    let plugins = PluginDir::new()
        .misbehave(
            "loop",
            "validating",
            "fail",
            "loop",
            "[limits]\ntimeout-ms = 3000\nmax-concurrency = 1",
        )
        .misbehave("allow", "validating", "fail", "allow", "");
    let wicket = Wicket::start_with(plugins, &["--max-instances", "2"]).unwrap();
    let client = wicket.client();
    let mut loops = client.post_each("/validate/loop", POD, (0..3).map(|i| format!("loop-{i}")));
    eventually("a looping plugin to spin", PATIENCE, async || {
        wicket.log().contains("looping on loop-").then_some(())
    })
    .await;
    let answer = client
        .review("/validate/allow", &fixture_with_uid(POD, "allow"))
        .await
        .unwrap();
    assert_eq!(answer.response["allowed"], true, "{}", answer.response);
    assert!(
        loops.len() == 3 && loops.try_join_next().is_none(),
        "the other plugin was answered while every loop still ran"
    );
    let mut messages = Vec::new();
    while let Some(answer) = loops.join_next().await {
        let answer = answer.unwrap().unwrap().json();
        let message = answer["response"]["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("plugin loop failed: "), "{message}");
        messages.push(message.to_owned());
    }
    assert!(
        messages
            .iter()
            .any(|message| message.contains("stayed busy (its max-concurrency)")),
        "a review waiting for the plugin's own slot: {messages:#?}"
    );
    let failure_lines = wicket
        .log()
        .lines()
        .filter(|line| line.contains("WARN") && line.contains(" review "))
        .filter(|line| line.contains("plugin=loop") && line.contains("uid=loop-"))
        .filter(|line| line.contains("cause=\"loop: "))
        .count();
    assert_eq!(
        failure_lines, 3,
        "each failed review logged once, at warn, with its cause"
    );
    let host_lines = wicket
        .log()
        .lines()
        .filter(|line| line.contains("uid=loop-") && !line.contains("wicket::plugin:"))
        .count();
    assert_eq!(
        host_lines, 3,
        "one host line per review (the plugin's own log lines aside)"
    );
}
