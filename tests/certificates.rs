//! Certificates that survive restarts and rotate, through the real binary:
//! `--self-signed` keeps its CA across a restart; given files are followed
//! under load with no failed handshake; a bad new pair keeps the old one;
//! a Secret volume's `..data` swap and SIGHUP are followed too; replicas
//! share one CA through `--cert-secret`; `--client-ca` admits only clients
//! with a certificate from that CA.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use wicket_tests::apiserver::ApiServer;
use wicket_tests::pki::{Pair, TestCa};
use wicket_tests::{Churn, Client, PluginDir, Wicket, eventually};

const PATIENCE: Duration = Duration::from_secs(30);

/// Whether a client trusting only `ca` completes a request.
async fn trusted_by(wicket: &Wicket, ca: &TestCa) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write(&ca_file);
    Client::handshake_each_time(&ca_file, &wicket.base_url)
        .get("/healthz")
        .await
        .is_ok()
}

/// Writes `pair` as `dir/tls.crt` and `dir/tls.key`, each replaced by a
/// rename, the certificate first: for a moment the files do not match.
fn replace_pair(dir: &Path, pair: &Pair) {
    for (name, text) in [("tls.crt", &pair.cert), ("tls.key", &pair.key)] {
        let temporary = dir.join(format!(".{name}.new"));
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, dir.join(name)).unwrap();
    }
}

fn start_from_files(dir: &Path, ca_file: &Path) -> Wicket {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    Wicket::start_with_tls_files(PluginDir::new(), &cert, &key, ca_file).unwrap()
}

/// Wicket serving a pair `ca` issued, from files in a folder of their own
/// (which also holds `ca.pem`).
fn start_with_a_pair_from(ca: &TestCa) -> (tempfile::TempDir, Wicket) {
    let dir = tempfile::tempdir().unwrap();
    replace_pair(dir.path(), &ca.issue());
    let ca_file = dir.path().join("ca.pem");
    ca.write(&ca_file);
    let wicket = start_from_files(dir.path(), &ca_file);
    (dir, wicket)
}

#[tokio::test(flavor = "multi_thread")]
async fn self_signed_keeps_its_ca_across_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let tls_dir = state.path().join("tls");
    let first = Wicket::start_with_tls_dir(PluginDir::new(), &tls_dir, &[], &[]).unwrap();
    let ca_before = std::fs::read(&first.ca_file).unwrap();
    let key_before = std::fs::read(tls_dir.join("ca.key")).unwrap();
    assert!(first.client().get("/healthz").await.is_ok());
    drop(first);

    let second = Wicket::start_with_tls_dir(PluginDir::new(), &tls_dir, &[], &[]).unwrap();
    assert_eq!(
        std::fs::read(&second.ca_file).unwrap(),
        ca_before,
        "the caBundle changed"
    );
    assert_eq!(std::fs::read(tls_dir.join("ca.key")).unwrap(), key_before);
    // A client holding the first run's CA (a registered caBundle) still connects.
    let saved = state.path().join("first-ca.pem");
    std::fs::write(&saved, &ca_before).unwrap();
    let answer = Client::new(&saved, &second.base_url)
        .get("/healthz")
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn self_signed_reissues_the_serving_certificate_for_a_new_name_with_the_same_ca() {
    let state = tempfile::tempdir().unwrap();
    let tls_dir = state.path().join("tls");
    let first = Wicket::start_with_tls_dir(PluginDir::new(), &tls_dir, &[], &[]).unwrap();
    let ca_before = std::fs::read(&first.ca_file).unwrap();
    let cert_before = std::fs::read(tls_dir.join("tls.crt")).unwrap();
    drop(first);

    let second = Wicket::start_with_tls_dir(
        PluginDir::new(),
        &tls_dir,
        &["--san", "wicket.wicket-system.svc"],
        &[],
    )
    .unwrap();
    assert_eq!(std::fs::read(&second.ca_file).unwrap(), ca_before);
    assert_ne!(std::fs::read(tls_dir.join("tls.crt")).unwrap(), cert_before);
    assert!(
        second.log().contains("issued Wicket's certificates"),
        "{}",
        second.log()
    );
    assert_eq!(second.client().get("/healthz").await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn given_files_rotate_under_load_without_a_failed_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (TestCa::new(), TestCa::new());
    replace_pair(dir.path(), &old_ca.issue());
    // The clients trust both CAs, as a caBundle does during a rollover.
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, format!("{}{}", old_ca.cert_pem, new_ca.cert_pem)).unwrap();
    let wicket = start_from_files(dir.path(), &bundle);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let client = Client::handshake_each_time(&bundle, &wicket.base_url);
        let (stop, done) = (stop.clone(), done.clone());
        load.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get("/healthz").await {
                    Ok(answer) if answer.status == 200 => {}
                    Ok(answer) => failures.push(format!("HTTP {}", answer.status)),
                    Err(error) => failures.push(format!("{error:#}")),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    eventually("load to start", PATIENCE, async || {
        (done.load(Ordering::Relaxed) > 20).then_some(())
    })
    .await;

    replace_pair(dir.path(), &new_ca.issue());
    eventually("the new certificate to be served", PATIENCE, async || {
        trusted_by(&wicket, &new_ca).await.then_some(())
    })
    .await;
    let at_swap = done.load(Ordering::Relaxed);
    eventually("more load after the swap", PATIENCE, async || {
        (done.load(Ordering::Relaxed) > at_swap + 20).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for task in load {
        failures.extend(task.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "failed handshakes or requests: {failures:?}"
    );
    assert!(
        !trusted_by(&wicket, &old_ca).await,
        "the old certificate is still served"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_new_pair_keeps_the_old_one_serving() {
    let ca = TestCa::new();
    let (dir, mut wicket) = start_with_a_pair_from(&ca);

    // A certificate from another CA with a key that is not its own.
    let other = TestCa::new();
    let mismatched = Pair {
        cert: other.issue().cert,
        key: other.issue().key,
    };
    replace_pair(dir.path(), &mismatched);
    eventually("the refusal to be logged", PATIENCE, async || {
        wicket
            .log()
            .contains("certificate not reloaded; the current one keeps serving")
            .then_some(())
    })
    .await;
    assert!(wicket.log().contains("cannot serve"), "{}", wicket.log());
    assert!(trusted_by(&wicket, &ca).await);
    assert!(!trusted_by(&wicket, &other).await);

    // Garbage is refused the same way, and SIGHUP neither ends the process
    // nor loads it.
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    wicket.signal("HUP");
    eventually("SIGHUP to be handled", PATIENCE, async || {
        wicket.log().contains("SIGHUP").then_some(())
    })
    .await;
    assert!(wicket.is_running());
    assert!(trusted_by(&wicket, &ca).await);

    // A good pair again is picked up.
    let next = other.issue();
    replace_pair(dir.path(), &next);
    eventually("the good pair to be served", PATIENCE, async || {
        trusted_by(&wicket, &other).await.then_some(())
    })
    .await;
}

/// A folder laid out as the kubelet lays out a Secret volume: the files are
/// links through `..data`, which is swapped atomically to a new directory.
struct SecretVolume {
    root: PathBuf,
    version: usize,
}

impl SecretVolume {
    fn new(root: &Path, pair: &Pair) -> SecretVolume {
        let mut volume = SecretVolume {
            root: root.to_owned(),
            version: 0,
        };
        volume.project(pair);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), root.join(name)).unwrap();
        }
        volume
    }

    fn project(&mut self, pair: &Pair) {
        self.version += 1;
        let timestamped = format!("..2026_11_23_{}", self.version);
        let dir = self.root.join(&timestamped);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("tls.crt"), &pair.cert).unwrap();
        std::fs::write(dir.join("tls.key"), &pair.key).unwrap();
        let link = self.root.join("..data_tmp");
        std::os::unix::fs::symlink(&timestamped, &link).unwrap();
        std::fs::rename(&link, self.root.join("..data")).unwrap();
    }
}

/// A file in the certificates' folder written every 50 ms never lets it be
/// quiet: a rotation is still served through the watch, within `PATIENCE`
/// (half the 60 s periodic recheck).
#[tokio::test(flavor = "multi_thread")]
async fn a_churning_certificate_folder_still_rotates() {
    let (dir, wicket) = start_with_a_pair_from(&TestCa::new());
    let churn = Churn::start(dir.path());
    let next = TestCa::new();
    replace_pair(dir.path(), &next.issue());
    eventually(
        "the new pair served in a busy folder",
        PATIENCE,
        async || trusted_by(&wicket, &next).await.then_some(()),
    )
    .await;
    drop(churn);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_volume_data_swap_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let volume_root = dir.path().join("tls");
    std::fs::create_dir(&volume_root).unwrap();
    let (old_ca, new_ca) = (TestCa::new(), TestCa::new());
    let mut volume = SecretVolume::new(&volume_root, &old_ca.issue());
    let ca_file = dir.path().join("ca.pem");
    old_ca.write(&ca_file);
    let wicket = start_from_files(&volume_root, &ca_file);
    assert!(trusted_by(&wicket, &old_ca).await);

    volume.project(&new_ca.issue());
    eventually(
        "the swapped certificate to be served",
        PATIENCE,
        async || trusted_by(&wicket, &new_ca).await.then_some(()),
    )
    .await;
}

const SECRET: &str = "/api/v1/namespaces/wicket-system/secrets/wicket-tls";

/// Starts a replica serving from the Secret `wicket-tls` of the stand-in
/// API server.
fn spawn_from_secret(api: &ApiServer, state: &Path) -> anyhow::Result<Wicket> {
    let kubeconfig = api.kubeconfig(state);
    // The certificate's name comes from the URL the API server calls.
    let args = [
        "--cert-secret",
        "wicket-tls",
        "--namespace",
        "wicket-system",
        "--url",
        "https://127.0.0.1:9443",
    ]
    .map(OsStr::new);
    let env = [("KUBECONFIG", kubeconfig.as_os_str())];
    let ca_file = state.join("ca.pem");
    Wicket::spawn(PluginDir::new(), &args, &env, ca_file, tempfile::tempdir()?)
}

/// A replica serving from the Secret, started.
fn start_from_secret(api: &ApiServer, state: &Path) -> Wicket {
    spawn_from_secret(api, state).unwrap()
}

fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The Secret `wicket-tls` holding `data` (key, PEM text), as someone else
/// wrote it.
fn tls_secret(data: &[(&str, &str)]) -> serde_json::Value {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(key, text)| ((*key).to_owned(), encode(text).into()))
        .collect();
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "wicket-tls", "namespace": "wicket-system"},
        "data": data,
    })
}

/// The text of `key` in the stored Secret.
fn secret_text(api: &ApiServer, key: &str) -> String {
    let secret = api.object(SECRET).expect("the Secret");
    let encoded = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_one_ca_through_the_cert_secret_and_renew_it_in_place() {
    let api = ApiServer::start().await;
    let state = tempfile::tempdir().unwrap();
    let first = start_from_secret(&api, state.path());
    let writes = api.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert_eq!(writes[0].path, "/api/v1/namespaces/wicket-system/secrets");
    let secret = api.object(SECRET).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let ca = secret_text(&api, "ca.crt");
    std::fs::write(&first.ca_file, &ca).unwrap();
    assert_eq!(first.client().get("/healthz").await.unwrap().status, 200);

    // A second replica reads the Secret and serves from the same CA.
    let second_state = tempfile::tempdir().unwrap();
    let second = start_from_secret(&api, second_state.path());
    assert_eq!(api.writes().len(), 1, "{:?}", api.writes());
    std::fs::write(&second.ca_file, &ca).unwrap();
    assert_eq!(second.client().get("/healthz").await.unwrap().status, 200);

    // A serving certificate 10 days from expiry is renewed from the same CA,
    // written over the version read.
    let issuer = rcgen::Issuer::from_ca_cert_pem(
        &ca,
        rcgen::KeyPair::from_pem(&secret_text(&api, "ca.key")).unwrap(),
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2026, 1, 1);
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    let expiring = params.signed_by(&key, &issuer).unwrap();
    let mut stored = api.object(SECRET).unwrap();
    stored["data"]["tls.crt"] = encode(&expiring.pem()).into();
    stored["data"]["tls.key"] = encode(&key.serialize_pem()).into();
    api.put_object(SECRET, stored);
    let version = api.object(SECRET).unwrap()["metadata"]["resourceVersion"].clone();

    let third_state = tempfile::tempdir().unwrap();
    let third = start_from_secret(&api, third_state.path());
    let writes = api.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[1].method, "PUT");
    assert_eq!(writes[1].path, SECRET);
    assert_eq!(writes[1].json()["metadata"]["resourceVersion"], version);
    assert_eq!(secret_text(&api, "ca.crt"), ca, "the CA changed");
    assert_ne!(secret_text(&api, "tls.crt"), expiring.pem());
    std::fs::write(&third.ca_file, &ca).unwrap();
    assert_eq!(third.client().get("/healthz").await.unwrap().status, 200);
    assert!(
        third.log().contains("issued Wicket's certificates"),
        "{}",
        third.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_that_is_not_wickets_is_never_overwritten() {
    let api = ApiServer::start().await;
    let state = tempfile::tempdir().unwrap();
    let pair = TestCa::new().issue();
    api.put_object(
        SECRET,
        tls_secret(&[("tls.crt", &pair.cert), ("tls.key", &pair.key)]),
    );
    let error = spawn_from_secret(&api, state.path())
        .err()
        .expect("start-up fails");
    assert!(
        format!("{error:#}").contains("it is not Wicket's"),
        "{error:#}"
    );
    assert!(api.writes().is_empty(), "{:?}", api.writes());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_loses_the_race_to_create_the_secret_serves_the_winners_ca() {
    let api = ApiServer::start().await;
    let state = tempfile::tempdir().unwrap();
    // The winner's material, as another replica would have written it.
    let winner_ca = TestCa::new();
    let leaf = winner_ca.issue();
    let ca = winner_ca.cert_pem.clone();
    let winner = tls_secret(&[
        ("ca.crt", &ca),
        ("ca.key", &winner_ca.key_pem),
        ("tls.crt", &leaf.cert),
        ("tls.key", &leaf.key),
    ]);
    api.lose_next_write(SECRET, winner);

    let loser = start_from_secret(&api, state.path());
    let writes = api.writes();
    assert_eq!(writes.len(), 1, "only the losing create: {writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert!(
        loser
            .log()
            .contains("another replica wrote the certificates first"),
        "{}",
        loser.log()
    );
    assert_eq!(secret_text(&api, "ca.crt"), ca);
    std::fs::write(&loser.ca_file, &ca).unwrap();
    assert_eq!(loser.client().get("/healthz").await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_client_ca_only_clients_it_signed_complete_the_handshake() {
    let state = tempfile::tempdir().unwrap();
    let clients = TestCa::new();
    let client_ca = state.path().join("client-ca.pem");
    clients.write(&client_ca);
    let wicket = Wicket::start_with(
        PluginDir::new().misbehave("allow", "validating", "fail", "allow", ""),
        &["--client-ca", client_ca.to_str().unwrap()],
    )
    .unwrap();
    let review = wicket_tests::fixture("v1-pod-create-plain.json");
    let with = |ca: &TestCa| {
        let identity = ca.issue();
        Client::with_identity(
            &wicket.ca_file,
            &wicket.base_url,
            &identity.cert,
            &identity.key,
        )
    };
    let signed = with(&clients)
        .post("/validate/allow", review.clone())
        .await
        .unwrap();
    assert_eq!(signed.status, 200);
    assert_eq!(signed.json()["response"]["allowed"], true);
    let anonymous = wicket
        .client()
        .post("/validate/allow", review.clone())
        .await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate is refused"
    );
    let stranger = with(&TestCa::new()).post("/validate/allow", review).await;
    assert!(
        stranger.is_err(),
        "a certificate from another CA is refused"
    );
    // The ops listener is plain HTTP and needs no certificate.
    assert_eq!(
        wicket.ops_client().get("/healthz").await.unwrap().status,
        200
    );
}
