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
//!   itself checks (`oracle`).
//!
//! One module a job: `builds`, `fixtures`, `components`, `process`,
//! `client`, `oracle`, `churn` (a folder never quiet), `probe` (what the
//! cluster-probe plugin read); the fakes of other systems (`apiserver`,
//! `etcd`, `pki`, raw sockets) and the `/metrics` parser (`scrape`).

pub mod apiserver;
mod builds;
mod churn;
mod client;
mod components;
pub mod etcd;
mod fixtures;
pub mod kustomize;
mod oracle;
pub mod pki;
mod probe;
mod process;
pub mod raw;
pub mod scrape;

pub use builds::{js_plugin, misbehave, python_plugin, test_plugin, wicket_binary, workspace_root};
pub use churn::Churn;
pub use client::{Answer, Client, client_tls};
pub use components::{sha256_hex, slow_to_compile, with_custom_section};
pub use fixtures::{
    apply, compact, edited_fixture, fixture, fixture_names, fixture_with_uid, with_object,
};
pub use oracle::Reviewed;
pub use probe::{PROBE_MANIFEST, PROBE_PATH, probe, probe_dir};
pub use process::{PluginDir, Wicket, run_wicket};

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
