//! The real `wicket` binary as a process: a plugin folder to give it,
//! `wicket serve` started and stopped, one-shot commands run to their end.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::builds::{misbehave, test_plugin, wicket_binary, workspace_root};
use crate::client::{Answer, Client};
use crate::scrape;

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

/// A generous bound for something the server does on its own time.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A plugin folder in a temporary directory.
pub struct PluginDir {
    dir: tempfile::TempDir,
    /// Whether `wicket serve` is given the folder relative to its working
    /// directory (its parent), as `scripts/serve` gives it.
    relative: bool,
}

impl PluginDir {
    /// An empty folder.
    pub fn new() -> PluginDir {
        PluginDir {
            dir: tempfile::tempdir().expect("temp dir"),
            relative: false,
        }
    }

    /// Given to `wicket serve` by a relative path: Wicket runs in the
    /// folder's parent and is told only the folder's name.
    pub fn given_relative(mut self) -> PluginDir {
        self.relative = true;
        self
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
            .arg(match plugins.relative {
                true => plugins.path().file_name().expect("a named folder"),
                false => plugins.path().as_os_str(),
            })
            .current_dir(match plugins.relative {
                true => plugins.path().parent().expect("a folder with a parent"),
                false => Path::new("."),
            })
            .args(["--listen", "127.0.0.1:0"])
            // A test that polls the ops listener before Wicket listens
            // picks its port.
            .args(match args.contains(&OsStr::new("--ops-listen")) {
                true => &[][..],
                false => &["--ops-listen", "127.0.0.1:0"][..],
            })
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file)?)
            .spawn()
            .context("starting wicket")?;
        let stdout = child.stdout.take().expect("piped stdout");
        // Read on a thread for as long as Wicket writes, so that a later
        // write never meets a closed pipe; lines come here until it listens.
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let mut banner = Vec::new();
        let mut base_url = None;
        let mut ops_url = None;
        let mut silent = false;
        while base_url.is_none() {
            let line = match lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => line?,
                Err(RecvTimeoutError::Timeout) => {
                    silent = true;
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(rest) = line.strip_prefix("ops on ") {
                ops_url = rest.split_whitespace().next().map(str::to_owned);
            }
            base_url = line.strip_prefix("listening on ").map(str::to_owned);
            banner.push(line);
        }
        let (Some(base_url), Some(ops_url)) = (base_url, ops_url) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&stderr_file).unwrap_or_default();
            let why = match silent {
                true => format!("wicket did not listen within {PATIENCE:?}"),
                false => "wicket exited before listening".to_owned(),
            };
            bail!("{why}; stdout: {banner:?}; stderr:\n{log}");
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
