//! Start-up and the HTTPS server: load the plugins, bind, announce, serve,
//! re-read files on SIGHUP, and drain in-flight requests on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use crate::config::ServeConfig;
use crate::plugin::Runtime;
use crate::registry::{PluginSet, Registry};
use crate::routes::{self, AppState};
use crate::webhook::register;
use crate::{tls, watch};

/// How long a client may take to send request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads the plugins and serves them until SIGTERM or SIGINT.
///
/// Prints `listening on https://ADDR` on stdout once the socket is bound and
/// the plugins are loaded: scripts and tests use it as the readiness signal.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let rereads = reread_on_sighup()?;
    // Registration or a certificate Secret asked for but impossible is a
    // start-up error.
    let kube_client = match config.register.is_some() || config.tls.needs_cluster() {
        true => Some(
            register::client()
                .await
                .context("--register or --cert-secret")?,
        ),
        false => None,
    };
    let tls = tls::start(&config.tls, kube_client.clone())
        .await
        .context("setting up TLS")?;
    let runtime =
        Arc::new(Runtime::new(&config.runtime).context("starting the WebAssembly runtime")?);
    let registry = Arc::new(Registry::new(runtime, config.plugins_dir.clone()));
    registry
        .reload()
        .await
        .with_context(|| format!("reading the plugin folder {}", config.plugins_dir.display()))?;
    let _follower = watch::follow(registry.clone(), rereads.plugins).with_context(|| {
        format!(
            "watching the plugin folder {}",
            config.plugins_dir.display()
        )
    })?;
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    announce(address, &registry.snapshot(), tls.trust_file.as_deref());
    if let (Some(client), Some(registration)) = (kube_client, config.register.clone()) {
        tokio::spawn(register::run(
            client,
            registry.clone(),
            tls.trust.clone(),
            registration,
        ));
    }
    tokio::spawn(tls.keeper.run(rereads.certificates));

    let state = AppState {
        registry,
        max_body_bytes: config.max_body_bytes,
    };
    let handle = Handle::new();
    tokio::spawn(drain_on_signal(handle.clone(), config.shutdown_grace));
    let mut server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls.config))?
        .handle(handle);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    server
        .serve(routes::router(Arc::new(state)).into_make_service())
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

/// Who SIGHUP wakes: each re-reads its files.
struct Rereads {
    plugins: Arc<Notify>,
    certificates: Arc<Notify>,
}

/// Installs the SIGHUP handler (replacing the default, which ends the
/// process) before anything is loaded.
fn reread_on_sighup() -> anyhow::Result<Rereads> {
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let rereads = Rereads {
        plugins: Arc::new(Notify::new()),
        certificates: Arc::new(Notify::new()),
    };
    let (plugins, certificates) = (rereads.plugins.clone(), rereads.certificates.clone());
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: re-reading the certificate files and the plugin folder");
            plugins.notify_one();
            certificates.notify_one();
        }
    });
    Ok(rereads)
}

/// Tells the operator (stdout) what Wicket serves and where. The
/// `listening on` line comes last: scripts and tests wait for it.
fn announce(address: SocketAddr, plugins: &PluginSet, trust_file: Option<&Path>) {
    for (name, reason) in plugins.refused() {
        println!("not loaded: {name}: {reason}");
    }
    if let Some(trust_file) = trust_file {
        println!(
            "self-signed CA: {} (curl --cacert it; caBundle: base64 -w0 it)",
            trust_file.display()
        );
    }
    let paths = plugins.served_paths();
    println!("serving {} path(s): {}", paths.len(), paths.join(" "));
    println!("listening on https://{address}");
    if plugins.is_empty() {
        tracing::warn!("no plugin loaded; every review path answers 404");
    }
}

/// Waits for SIGTERM or SIGINT, then stops accepting and lets in-flight
/// requests finish for up to `grace`.
async fn drain_on_signal(handle: Handle<SocketAddr>, grace: Duration) {
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!(
        grace_s = grace.as_secs(),
        "shutting down: draining in-flight requests"
    );
    handle.graceful_shutdown(Some(grace));
}
