//! Test harness: the real `wicket` binary, real plugins built from this repo,
//! real HTTPS.
//!
//! - [`wicket_binary`] and [`test_plugin`] build (once per test process) the
//!   release binary and the `wasm32-wasip2` test plugins with cargo.
//! - [`PluginDir`] assembles a plugin folder: components and manifests.
//! - [`Wicket::start`] runs `wicket serve` on `127.0.0.1:0` with a self-signed
//!   certificate and waits for its `listening on` line (no sleeps).
//! - [`Client`] speaks HTTPS to it, trusting the CA Wicket wrote;
//!   [`Client::review`] also checks every answer against what the API server
//!   itself checks.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

pub mod apiserver;
pub mod etcd;
pub mod pki;
pub mod raw;
pub mod scrape;

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// Cargo, without the variables cargo sets for the test process itself: they
/// would change build fingerprints and make every test run rebuild wicket.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    let per_unit = |key: &str| {
        key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
            )
    };
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(per_unit) {
            command.env_remove(key);
        }
    }
    command
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn run_cargo(args: &[&str]) {
    let status = cargo().args(args).status().expect("running cargo");
    assert!(status.success(), "cargo {args:?} failed");
}

/// The release `wicket` binary, built if needed.
pub fn wicket_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // No `-p`: the default members are selected, so features unify exactly
        // as in `cargo test` and the two never invalidate each other's builds.
        run_cargo(&["build", "--release", "--quiet", "--bin", "wicket"]);
        target_dir().join("release/wicket")
    })
}

/// Runs the `wicket` binary with `args` to its end: exit code, stdout, stderr.
pub fn run_wicket(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(wicket_binary())
        .args(args)
        .output()
        .expect("running wicket");
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    )
}

/// Plugin crates the tests load: test plugins under `tests/plugins/` and the
/// plugins under `plugins/`.
const TEST_PLUGINS: &[&str] = &[
    "test-plugin-misbehave",
    "test-plugin-wrong-world",
    "wicket-plugin-template",
    "wicket-sidecar-injector",
    "wicket-configmap-mutator",
    "wicket-etcd-leader-guard",
];

/// The `.wasm` component of the plugin crate `crate_name`, built with the
/// other plugins if needed.
pub fn test_plugin(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    assert!(
        TEST_PLUGINS.contains(&crate_name),
        "unknown test plugin {crate_name}"
    );
    BUILT.get_or_init(|| {
        let mut args = vec!["build", "--release", "--quiet", "--target", "wasm32-wasip2"];
        for name in TEST_PLUGINS {
            args.extend(["-p", name]);
        }
        run_cargo(&args);
    });
    target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// The `misbehave` test plugin: it does what its `behave` setting says.
pub fn misbehave() -> PathBuf {
    test_plugin("test-plugin-misbehave")
}

/// A captured AdmissionReview from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = workspace_root().join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every fixture's file name.
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("tests/fixtures"))
        .expect("tests/fixtures")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// A fixture with its uid replaced, for telling concurrent answers apart.
pub fn fixture_with_uid(name: &str, uid: &str) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture(name)).unwrap();
    review["request"]["uid"] = uid.into();
    serde_json::to_vec(&review).unwrap()
}

/// A plugin folder in a temporary directory.
pub struct PluginDir {
    dir: tempfile::TempDir,
}

impl PluginDir {
    /// An empty folder.
    pub fn new() -> PluginDir {
        PluginDir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Adds plugin `name`: a copy of `wasm` and, if given, its manifest.
    pub fn plugin(self, name: &str, wasm: &Path, manifest: Option<&str>) -> PluginDir {
        std::fs::copy(wasm, self.path().join(format!("{name}.wasm"))).expect("copy wasm");
        if let Some(manifest) = manifest {
            self.write(&format!("{name}.toml"), manifest.as_bytes())
        } else {
            self
        }
    }

    /// Adds plugin `name` as Wicket bundles it: the component built from
    /// `crate_name` with the worked example manifest `deploy/plugins/NAME.toml`.
    pub fn bundled(self, name: &str, crate_name: &str) -> PluginDir {
        let manifest = workspace_root().join(format!("deploy/plugins/{name}.toml"));
        let manifest = std::fs::read_to_string(&manifest).expect("bundled manifest");
        self.plugin(name, &test_plugin(crate_name), Some(&manifest))
    }

    /// Adds the misbehave plugin as `name`, with `mode`, `policy` and extra
    /// `settings` lines (TOML) besides `behave`.
    pub fn misbehave(
        self,
        name: &str,
        mode: &str,
        policy: &str,
        behave: &str,
        extra: &str,
    ) -> PluginDir {
        let manifest = format!(
            "mode = \"{mode}\"\nfailure-policy = \"{policy}\"\n{extra}\n[settings]\nbehave = \"{behave}\"\n"
        );
        self.plugin(name, &misbehave(), Some(&manifest))
    }

    /// Writes an arbitrary file into the folder.
    pub fn write(self, file: &str, contents: &[u8]) -> PluginDir {
        std::fs::write(self.path().join(file), contents).expect("write file");
        self
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for PluginDir {
    fn default() -> Self {
        PluginDir::new()
    }
}

/// A running `wicket serve`, killed when dropped.
pub struct Wicket {
    child: Child,
    /// `https://127.0.0.1:PORT`
    pub base_url: String,
    /// The ops listener, `http://127.0.0.1:PORT`.
    pub ops_url: String,
    /// What it printed on stdout before it was ready.
    pub banner: Vec<String>,
    /// The CA it wrote.
    pub ca_file: PathBuf,
    stderr_file: PathBuf,
    _plugins: PluginDir,
    _state: tempfile::TempDir,
}

impl Wicket {
    /// Starts Wicket serving `plugins` with a self-signed certificate and
    /// waits until it is listening.
    pub fn start(plugins: PluginDir) -> anyhow::Result<Wicket> {
        Wicket::start_with(plugins, &[])
    }

    /// Like [`Wicket::start`], with extra `wicket serve` arguments.
    pub fn start_with(plugins: PluginDir, extra_args: &[&str]) -> anyhow::Result<Wicket> {
        Wicket::start_with_env(plugins, extra_args, &[])
    }

    /// Like [`Wicket::start_with`], with extra environment variables.
    pub fn start_with_env(
        plugins: PluginDir,
        extra_args: &[&str],
        env: &[(&str, &OsStr)],
    ) -> anyhow::Result<Wicket> {
        let state = tempfile::tempdir()?;
        let tls_dir = state.path().join("tls");
        let mut args: Vec<&OsStr> = vec![
            "--self-signed".as_ref(),
            "--tls-dir".as_ref(),
            tls_dir.as_os_str(),
        ];
        args.extend(extra_args.iter().map(OsStr::new));
        Wicket::spawn(plugins, &args, env, tls_dir.join("ca.pem"), state)
    }

    /// Starts Wicket with `--self-signed --tls-dir tls_dir` and extra
    /// `wicket serve` arguments: the folder outlives this Wicket, for restarts.
    pub fn start_with_tls_dir(
        plugins: PluginDir,
        tls_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &OsStr)],
    ) -> anyhow::Result<Wicket> {
        let mut args: Vec<&OsStr> = vec![
            "--self-signed".as_ref(),
            "--tls-dir".as_ref(),
            tls_dir.as_os_str(),
        ];
        args.extend(extra_args.iter().map(OsStr::new));
        Wicket::spawn(
            plugins,
            &args,
            env,
            tls_dir.join("ca.pem"),
            tempfile::tempdir()?,
        )
    }

    /// Starts Wicket serving `plugins` with the given certificate and key
    /// files; clients trust `ca_file`.
    pub fn start_with_tls_files(
        plugins: PluginDir,
        cert: &Path,
        key: &Path,
        ca_file: &Path,
    ) -> anyhow::Result<Wicket> {
        let args = [
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ];
        Wicket::spawn(
            plugins,
            &args,
            &[],
            ca_file.to_owned(),
            tempfile::tempdir()?,
        )
    }

    /// Starts `wicket serve --plugins ... --listen 127.0.0.1:0 ARGS` with
    /// `env`, the TLS arguments among `args`; clients trust `ca_file`, which
    /// may be written once Wicket is up.
    pub fn spawn(
        plugins: PluginDir,
        args: &[&OsStr],
        env: &[(&str, &OsStr)],
        ca_file: PathBuf,
        state: tempfile::TempDir,
    ) -> anyhow::Result<Wicket> {
        let stderr_file = state.path().join("stderr.log");
        let mut child = Command::new(wicket_binary())
            .arg("serve")
            .arg("--plugins")
            .arg(plugins.path())
            .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file)?)
            .spawn()
            .context("starting wicket")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let mut base_url = None;
        let mut ops_url = None;
        for line in lines.by_ref() {
            let line = line?;
            if let Some(rest) = line.strip_prefix("ops on ") {
                ops_url = rest.split_whitespace().next().map(str::to_owned);
            }
            base_url = line.strip_prefix("listening on ").map(str::to_owned);
            banner.push(line);
            if base_url.is_some() {
                break;
            }
        }
        // Keep reading so a later write to stdout never meets a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let (Some(base_url), Some(ops_url)) = (base_url, ops_url) else {
            let _ = child.kill();
            let log = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            bail!("wicket exited before listening; stdout: {banner:?}; stderr:\n{log}");
        };
        Ok(Wicket {
            child,
            base_url,
            ops_url,
            banner,
            ca_file,
            stderr_file,
            _plugins: plugins,
            _state: state,
        })
    }

    /// An HTTPS client that trusts this Wicket's CA.
    pub fn client(&self) -> Client {
        Client::new(&self.ca_file, &self.base_url)
    }

    /// Everything Wicket logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// A plain-HTTP client for the ops listener.
    pub fn ops_client(&self) -> Client {
        Client::plain(&self.ops_url)
    }

    /// `GET /plugins` on the ops listener: every plugin and pipeline with
    /// its state.
    pub async fn plugins(&self) -> Value {
        self.ops_get("/plugins").await.json()
    }

    /// `GET /metrics` on the ops listener.
    pub async fn metrics(&self) -> scrape::Scrape {
        let answer = self.ops_get("/metrics").await;
        scrape::Scrape::parse(String::from_utf8(answer.body.to_vec()).expect("UTF-8 metrics"))
    }

    /// `GET path` on the ops listener, which must answer 200.
    async fn ops_get(&self, path: &str) -> Answer {
        let answer = self
            .ops_client()
            .get(path)
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        assert_eq!(answer.status, 200, "GET {path}");
        answer
    }

    /// The `/plugins` entry for plugin `name`, if listed.
    pub async fn plugin(&self, name: &str) -> Option<Value> {
        let view = self.plugins().await;
        view["plugins"]
            .as_array()?
            .iter()
            .find(|plugin| plugin["name"] == name)
            .cloned()
    }

    /// Sends the signal `name` (e.g. `HUP`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Wicket {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// Body bytes.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// An HTTPS/1.1 keep-alive client for one Wicket.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base_url: Arc<str>,
}

impl Client {
    /// An HTTP/1.1 client for `base_url` trusting the CA in `ca_file`.
    pub fn new(ca_file: &Path, base_url: &str) -> Client {
        Client::build(client_tls(ca_file), base_url, false, true)
    }

    /// An HTTP/1.1 client that presents the certificate `cert_pem` (with
    /// its key `key_pem`) to the server.
    pub fn with_identity(ca_file: &Path, base_url: &str, cert_pem: &str, key_pem: &str) -> Client {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let tls = client_tls_builder(ca_file)
            .with_client_auth_cert(chain, key)
            .expect("a client certificate");
        Client::build(tls, base_url, false, true)
    }

    /// An HTTP/2-only client (ALPN `h2`) for `base_url` trusting `ca_file`.
    pub fn http2(ca_file: &Path, base_url: &str) -> Client {
        Client::build(client_tls(ca_file), base_url, true, true)
    }

    /// An HTTP/1.1 client that opens a new connection (a new TLS handshake)
    /// for every request.
    pub fn handshake_each_time(ca_file: &Path, base_url: &str) -> Client {
        Client::build(client_tls(ca_file), base_url, false, false)
    }

    /// A plain-HTTP client for `base_url` (the ops listener).
    pub fn plain(base_url: &str) -> Client {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(trusting(rustls::RootCertStore::empty()).with_no_client_auth())
            .https_or_http()
            .enable_http1()
            .build();
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build(connector),
            base_url: base_url.into(),
        }
    }

    fn build(tls: rustls::ClientConfig, base_url: &str, http2: bool, reuse: bool) -> Client {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only();
        let connector = if http2 {
            connector.enable_http2().build()
        } else {
            connector.enable_http1().build()
        };
        Client {
            inner: HyperClient::builder(TokioExecutor::new())
                .http2_only(http2)
                .pool_max_idle_per_host(if reuse { usize::MAX } else { 0 })
                .build(connector),
            base_url: base_url.into(),
        }
    }

    /// POSTs `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> anyhow::Result<Answer> {
        let request = http::Request::post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(Full::new(body.into()))?;
        self.send(request).await
    }

    /// POSTs `fixture` to `path` once per uid in `uids`, all at once.
    pub fn post_each(
        &self,
        path: &str,
        fixture: &str,
        uids: impl IntoIterator<Item = String>,
    ) -> tokio::task::JoinSet<anyhow::Result<Answer>> {
        let mut posts = tokio::task::JoinSet::new();
        for uid in uids {
            let (client, path) = (self.clone(), path.to_owned());
            let request = fixture_with_uid(fixture, &uid);
            posts.spawn(async move { client.post(&path, request).await });
        }
        posts
    }

    /// POSTs the review `request` to `path` and checks the answer against
    /// every rule the API server enforces (the webhook kind comes from the
    /// path), returning its `response` and patch.
    pub async fn review(&self, path: &str, request: &[u8]) -> anyhow::Result<Reviewed> {
        let webhook = if path.starts_with("/mutate/") {
            Webhook::Mutating
        } else {
            Webhook::Validating
        };
        let answer = self.post(path, request.to_vec()).await?;
        let patch = check_apiserver_rules(request, &answer, webhook)
            .with_context(|| format!("POST {path}"))?;
        Ok(Reviewed {
            response: answer.json()["response"].clone(),
            patch,
        })
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let request =
            http::Request::get(format!("{}{path}", self.base_url)).body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    async fn send(&self, request: http::Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        let response = self.inner.request(request).await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

/// An answer that passed every API-server check.
#[derive(Debug)]
pub struct Reviewed {
    /// The answer's `response` object.
    pub response: Value,
    /// Its patch, decoded and known to apply to the request's object.
    pub patch: Option<json_patch::Patch>,
}

/// Which kind of webhook path an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Webhook {
    /// `/mutate/...`
    Mutating,
    /// `/validate/...`
    Validating,
}

/// Asserts every check the API server makes on a webhook's answer (see
/// `shared/reference/apiserver-rules.md`) and returns the decoded patch, if
/// any, after checking that it applies to the request's object.
fn check_apiserver_rules(
    request: &[u8],
    answer: &Answer,
    webhook: Webhook,
) -> anyhow::Result<Option<json_patch::Patch>> {
    let request: Value = serde_json::from_slice(request)?;
    ensure!(
        answer.status == 200,
        "HTTP {} {:?}",
        answer.status,
        answer.body
    );
    let review = answer.json();
    ensure!(
        review["apiVersion"] == request["apiVersion"],
        "apiVersion not echoed: {review}"
    );
    ensure!(review["kind"] == "AdmissionReview", "kind: {review}");
    let response = review
        .get("response")
        .context("webhook response was absent")?;
    ensure!(
        response["uid"] == request["request"]["uid"],
        "expected response.uid={}, got {}",
        request["request"]["uid"],
        response["uid"]
    );
    ensure!(response["allowed"].is_boolean(), "allowed: {response}");
    if response["allowed"] == false {
        let status = &response["status"];
        let code = status["code"]
            .as_u64()
            .context("a denial has status.code")?;
        ensure!((400..600).contains(&code), "status.code {code}");
        ensure!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a denial has a message: {status}"
        );
    }
    for warning in response["warnings"].as_array().into_iter().flatten() {
        ensure!(
            warning.as_str().is_some_and(|w| w.len() <= 120),
            "warning {warning}"
        );
    }
    for key in response["auditAnnotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        ensure!(
            !key.contains('/'),
            "audit annotation key {key} would not be a qualified name"
        );
    }
    let patch = response.get("patch");
    let patch_type = response.get("patchType");
    match (patch, patch_type) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("a patch without patchType"),
        (None, Some(_)) => bail!("a patchType without a patch"),
        (Some(patch), Some(patch_type)) => {
            ensure!(
                webhook == Webhook::Mutating,
                "a validating webhook returned a patch"
            );
            ensure!(patch_type == "JSONPatch", "patchType {patch_type}");
            ensure!(response["allowed"] == true, "a patch on a denial");
            let object = &request["request"]["object"];
            ensure!(!object.is_null(), "a patch for a request without an object");
            let text = patch.as_str().context("patch is a string")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .context("patch is standard base64")?;
            let patch: json_patch::Patch =
                serde_json::from_slice(&bytes).context("patch is an RFC 6902 JSON Patch")?;
            let mut patched = object.clone();
            json_patch::patch(&mut patched, &patch).context("patch applies to the object")?;
            Ok(Some(patch))
        }
    }
}

/// A TLS client configuration trusting the CAs in `ca_file`.
pub fn client_tls(ca_file: &Path) -> rustls::ClientConfig {
    client_tls_builder(ca_file).with_no_client_auth()
}

/// A TLS client configuration trusting the CAs in `ca_file`, to be given
/// its client authentication.
fn client_tls_builder(
    ca_file: &Path,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    trusting(roots)
}

fn trusting(
    roots: rustls::RootCertStore,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
}

/// Polls `probe` every 20 ms until it returns `Some`, and panics naming
/// `what` after `limit`. For state that changes on its own time (a reload
/// after a file changed): the test watches for it instead of sleeping.
pub async fn eventually<T>(
    what: &str,
    limit: std::time::Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// SHA-256 as lower-case hex, as `/plugins` shows digests.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `wasm` with a custom section appended: the same component, behaving the
/// same, under another digest (a "new version" for reload tests).
pub fn with_custom_section(wasm: &[u8], tag: &str) -> Vec<u8> {
    fn leb128(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"wicket-test";
    let mut section = Vec::new();
    leb128(name.len(), &mut section);
    section.extend_from_slice(name);
    section.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    leb128(section.len(), &mut out);
    out.extend_from_slice(&section);
    out
}

/// The fixture `name` with `edit` applied to its `request`.
pub fn edited_fixture(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&fixture(name)).unwrap();
    edit(&mut review["request"]);
    serde_json::to_vec(&review).unwrap()
}

/// `request` with its object replaced, as the API server sends it when it
/// reinvokes a mutating webhook after a change.
pub fn with_object(request: &[u8], object: &Value) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(request).unwrap();
    review["request"]["object"] = object.clone();
    serde_json::to_vec(&review).unwrap()
}

/// Applies a patch to a request's object.
pub fn apply(request: &[u8], patch: &json_patch::Patch) -> Value {
    let request: Value = serde_json::from_slice(request).unwrap();
    let mut object = request["request"]["object"].clone();
    json_patch::patch(&mut object, patch).unwrap();
    object
}
