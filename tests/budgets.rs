//! Budgets against hostile clients and plugins, through the real binary:
//! silent connections are closed, and at the cap the oldest silent one
//! makes room for a new client; idle HTTP/2 connections end; stalled bodies
//! cannot hold more than the byte budget (503), while small reviews are
//! still answered; a plugin's instances cannot take more than their share
//! of the memory budget.

use bytes::Bytes;
use http_body_util::{Channel, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use wicket_tests::raw::{PATIENCE, closed_by_server};
use wicket_tests::{PluginDir, Wicket, edited_fixture, eventually, fixture};

const POD: &str = "v1-pod-create-plain.json";

/// Checks that a good review is answered, allowed.
async fn a_good_review_is_answered(wicket: &Wicket) {
    let answer = wicket
        .client()
        .review("/validate/allow", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(answer.response["allowed"], true, "{}", answer.response);
}

fn allow_plugin() -> PluginDir {
    PluginDir::new().misbehave("allow", "validating", "fail", "allow", "")
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_are_closed_at_the_first_request_deadline() {
    let wicket = Wicket::start_with(allow_plugin(), &["--first-request-timeout", "1"]).unwrap();
    let mut silent_tls = Vec::new();
    for alpn in [&b"http/1.1"[..], b"h2"] {
        for _ in 0..25 {
            silent_tls.push(wicket.tls(alpn).await.unwrap());
        }
    }
    let mut silent_tcp = Vec::new();
    for _ in 0..25 {
        silent_tcp.push(wicket.tcp().await.unwrap());
    }
    a_good_review_is_answered(&wicket).await;
    for stream in &mut silent_tls {
        closed_by_server(stream, "a TLS connection that sent nothing").await;
    }
    for stream in &mut silent_tcp {
        closed_by_server(stream, "a TCP connection that never shook hands").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_cap_the_oldest_silent_connection_makes_room() {
    let wicket = Wicket::start_with(
        allow_plugin(),
        &["--max-connections", "4", "--first-request-timeout", "600"],
    )
    .unwrap();
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(wicket.tls(b"http/1.1").await.unwrap());
    }
    // A good client still gets in: the oldest silent connection goes.
    a_good_review_is_answered(&wicket).await;
    closed_by_server(&mut silent[0], "the oldest silent connection").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_cap_with_every_connection_serving_a_new_one_is_closed_at_once() {
    let wicket = Wicket::start_with(allow_plugin(), &["--max-connections", "2"]).unwrap();
    // Two keep-alive connections that have each been served a request.
    let mut serving = Vec::new();
    for _ in 0..2 {
        let mut stream = wicket.tls(b"http/1.1").await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"ok") {
            let mut buffer = [0u8; 512];
            let read = stream.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the connection was served");
            answer.extend_from_slice(&buffer[..read]);
        }
        serving.push(stream);
    }
    let attempt = tokio::time::timeout(PATIENCE, wicket.tls(b"http/1.1"))
        .await
        .expect("a connection past the cap is answered, not queued");
    assert!(attempt.is_err(), "a third connection is closed at once");
    assert!(wicket.log().contains("too many open connections"));
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_http2_connections_are_closed() {
    let wicket = Wicket::start_with(allow_plugin(), &["--idle-timeout", "1"]).unwrap();
    let stream = wicket.tls(b"h2").await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::post("/validate/allow")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(fixture(POD))))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let ended = tokio::time::timeout(PATIENCE, connection).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection is closed");
}

/// Starts a review whose body declares `length` bytes over HTTP/1.1 and
/// sends only the first few: the connection it returns holds the request
/// open mid-body.
async fn stalled_http1_body(wicket: &Wicket, length: usize) -> TlsStream<TcpStream> {
    let mut stream = wicket.tls(b"http/1.1").await.unwrap();
    let head = format!(
        "POST /validate/allow HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{{\"apiVersion\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// A review of about 512 KiB: a large body, not one of the small ones a
/// quarter of the byte budget is kept for.
fn large_review() -> Vec<u8> {
    edited_fixture(POD, |review| {
        review["request"]["object"]["metadata"]["annotations"]["padding"] =
            "x".repeat(512 * 1024).into();
    })
}

/// Waits until a large review is shed with 503 and `Retry-After`, the sign
/// that the stalled bodies hold the budget large bodies may use; then checks
/// that a small review is still answered.
async fn until_large_bodies_are_shed(wicket: &Wicket) {
    let client = wicket.client();
    let large = large_review();
    let (error, retry_after) = eventually("large reviews shed", PATIENCE, async || {
        let answer = client.post("/validate/allow", large.clone()).await.unwrap();
        (answer.status == 503).then(|| (answer.json()["error"].clone(), answer.retry_after))
    })
    .await;
    assert!(error.as_str().unwrap().contains("memory budget"), "{error}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    let small = client
        .review("/validate/allow", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(
        small.response["allowed"], true,
        "a small review is answered"
    );
}

/// Waits until a large review is answered again.
async fn until_large_bodies_are_answered(wicket: &Wicket) {
    let client = wicket.client();
    let large = large_review();
    eventually(
        "large reviews answered once the budget is free",
        PATIENCE,
        async || {
            let answer = client.post("/validate/allow", large.clone()).await.unwrap();
            (answer.status == 200).then_some(())
        },
    )
    .await;
}

/// A small budget, and stalled bodies held until the test lets them go
/// rather than for the default 10 s a loaded machine could outlast.
const SMALL_BODY_BUDGET: &[&str] = &[
    "--body-budget-mib",
    "4",
    "--max-body-bytes",
    "1048576",
    "--body-timeout",
    "600",
];

#[tokio::test(flavor = "multi_thread")]
async fn stalled_http1_bodies_cannot_hold_more_than_the_byte_budget() {
    let wicket = Wicket::start_with(allow_plugin(), SMALL_BODY_BUDGET).unwrap();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(stalled_http1_body(&wicket, 1 << 20).await);
    }
    until_large_bodies_are_shed(&wicket).await;
    drop(stalled);
    until_large_bodies_are_answered(&wicket).await;
    assert!(
        wicket.log().contains("status=503"),
        "the refusals were logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_http2_streams_cannot_hold_more_than_the_byte_budget() {
    let wicket = Wicket::start_with(allow_plugin(), SMALL_BODY_BUDGET).unwrap();
    let stream = wicket.tls(b"h2").await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let mut body_senders = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..4 {
        let (mut body_sender, body) = Channel::<Bytes, std::convert::Infallible>::new(1);
        body_sender
            .send_data(Bytes::from_static(b"{\"apiVersion\":"))
            .await
            .unwrap();
        body_senders.push(body_sender);
        let request = http::Request::post("/validate/allow")
            .header("content-type", "application/json")
            .header("content-length", 1 << 20)
            .body(body)
            .unwrap();
        let mut sender = sender.clone();
        requests.push(tokio::spawn(
            async move { sender.send_request(request).await },
        ));
    }
    until_large_bodies_are_shed(&wicket).await;
    drop(body_senders);
    for request in requests {
        // Each stalled stream ends, whatever the server answers.
        let _ = tokio::time::timeout(PATIENCE, request).await.unwrap();
    }
    until_large_bodies_are_answered(&wicket).await;
    connection.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_hungry_plugin_is_held_to_its_share_and_the_others_are_served() {
    let plugins = allow_plugin().misbehave(
        "oom",
        "validating",
        "fail",
        "oom",
        "[limits]\nmemory-mib = 256",
    );
    let wicket = Wicket::start_with(plugins, &["--plugin-memory-mib", "64"]).unwrap();
    let client = wicket.client();
    let answer = client.review("/validate/oom", &fixture(POD)).await.unwrap();
    let message = answer.response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("reached 32 MiB, its share of the plugins' memory budget"),
        "{message}"
    );
    // The memory is given back when the instance ends, and the other
    // plugins had their half anyway.
    let answer = client
        .review("/validate/allow", &fixture(POD))
        .await
        .unwrap();
    assert_eq!(answer.response["allowed"], true, "{}", answer.response);
}
