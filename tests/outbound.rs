//! Outbound HTTP for plugins, through the real binary, with the etcd-leader
//! guard as the plugin that calls out and plain TCP listeners as the far end:
//! no grant, no interface; a host off the list is refused before any packet
//! leaves; raw sockets are never granted; a host that never answers is cut off by the plugin's deadline or
//! the per-request timeout; a response over the cap is refused.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

use serde_json::{Value, json};
use wicket_tests::{PluginDir, Wicket, edited_fixture, fixture, misbehave, test_plugin};

const PATH: &str = "/validate/guard";

/// The guard with `manifest`, as plugin `guard`.
fn guard(manifest: &str) -> Wicket {
    let wasm = test_plugin("wicket-etcd-leader-guard");
    Wicket::start(PluginDir::new().plugin("guard", &wasm, Some(manifest))).unwrap()
}

/// A manifest granting `hosts`, whose settings point the guard at
/// `127.0.0.1:port` for every etcd pod.
fn manifest(policy: &str, timeout_ms: u64, hosts: &str, outbound: &str, port: u16) -> String {
    format!(
        "failure-policy = \"{policy}\"\n[limits]\ntimeout-ms = {timeout_ms}\n\
         [outbound]\nallowed-hosts = {hosts}\n{outbound}\n\
         [settings]\nclient-port = {port}\nfail-closed = true\n"
    )
}

/// A TCP listener on a free port of 127.0.0.1, and the port.
fn local_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// An `allowed-hosts` value granting 127.0.0.1:`port` alone.
fn only(port: u16) -> String {
    format!(r#"["127.0.0.1:{port}"]"#)
}

/// A DELETE of an etcd pod whose IP is 127.0.0.1.
fn delete_local_etcd_pod() -> Vec<u8> {
    edited_fixture("v1-pod-delete-etcd-1.json", |request| {
        request["oldObject"]["status"]["podIP"] = json!("127.0.0.1");
    })
}

async fn answer(wicket: &Wicket) -> Value {
    let client = wicket.client();
    client
        .review(PATH, &delete_local_etcd_pod())
        .await
        .unwrap()
        .response
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_importing_wasi_http_without_a_grant_is_not_served() {
    let wicket = guard("[settings]\n");
    let plugin = wicket.plugin("guard").await.unwrap();
    assert_eq!(plugin["served"], false);
    let error = plugin["lastError"].as_str().unwrap();
    assert!(
        error.contains("imports wasi:http, but its manifest grants no outbound hosts"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_off_the_list_is_refused_before_any_packet_leaves() {
    let (listener, port) = local_listener();
    let wicket = guard(&manifest("fail", 2000, r#"["127.0.0.9:2379"]"#, "", port));
    assert_eq!(
        wicket.plugin("guard").await.unwrap()["outbound"]["allowedHosts"],
        json!(["127.0.0.9:2379"])
    );

    let response = answer(&wicket).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 503, "fail-closed: {response}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("HttpRequestDenied"), "{message}");
    let log = wicket.log();
    let refusal = log
        .lines()
        .find(|line| line.contains("outbound request refused: not in the plugin's allowed-hosts"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        refusal.contains(&format!("target=http://127.0.0.1:{port}")),
        "{refusal}"
    );
    // The answer came after the refusal: a connection would be queued by now.
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "something connected: {accepted:?}"
    );
}

/// Asserts that nothing connected to `listener`. Called after the answer that
/// would have followed a connection: a connection would be queued by then.
fn assert_untouched(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "something connected: {accepted:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_sockets_are_never_granted() {
    let (listener, port) = local_listener();
    let manifest = format!("[settings]\nbehave = \"probe\"\nconnect = \"127.0.0.1:{port}\"\n");
    let wicket =
        Wicket::start(PluginDir::new().plugin("probe", &misbehave(), Some(&manifest))).unwrap();
    let answer = wicket
        .client()
        .post("/validate/probe", fixture("v1-pod-create-plain.json"))
        .await
        .unwrap();
    let outcome = answer.json()["response"]["auditAnnotations"]["tcp-connect"].clone();
    assert!(
        outcome
            .as_str()
            .is_some_and(|outcome| outcome.starts_with("failed")),
        "{outcome}"
    );
    assert_untouched(&listener);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_never_answers_is_cut_off_by_the_plugins_deadline() {
    // Bound and listening, never accepted: the kernel completes the handshake
    // and the request sits unanswered.
    let (_silent, port) = local_listener();
    let wicket = guard(&manifest(
        "fail",
        300,
        &only(port),
        "timeout-ms = 9000",
        port,
    ));

    let response = answer(&wicket).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 500, "{response}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("ran past its 300ms deadline"), "{message}");

    // Still serving: a pod the guard does not ask about is allowed at once.
    let unlabelled = edited_fixture("v1-pod-delete-etcd-1.json", |request| {
        request["oldObject"]["metadata"]["labels"] = json!({});
    });
    let reviewed = wicket.client().review(PATH, &unlabelled).await.unwrap();
    assert_eq!(reviewed.response["allowed"], true, "{}", reviewed.response);
    let counters = &wicket.plugin("guard").await.unwrap()["counters"];
    assert_eq!(counters["failures"], 1, "{counters}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_request_has_its_own_timeout_and_response_cap() {
    let (_silent, port) = local_listener();
    let wicket = guard(&manifest(
        "fail",
        5000,
        &only(port),
        "timeout-ms = 200",
        port,
    ));
    let response = answer(&wicket).await;
    assert_eq!(response["status"]["code"], 503, "{response}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("Timeout"), "{message}");
    drop(wicket);

    // A server that answers with 2 MB, declared or streamed until close.
    let (big, port) = local_listener();
    let server = std::thread::spawn(move || {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        ] {
            let (mut stream, _) = big.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&vec![b' '; 2_000_000]);
        }
    });
    let wicket = guard(&manifest(
        "fail",
        5000,
        &only(port),
        "max-response-kib = 64",
        port,
    ));
    // Declared too large: refused on the headers; streamed: cut at the cap.
    for expected in [
        "HttpResponseBodySize(Some(2000000))",
        "body size exceeds limit: 65536 bytes",
    ] {
        let response = answer(&wicket).await;
        assert_eq!(response["status"]["code"], 503, "{response}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    server.join().unwrap();
}
