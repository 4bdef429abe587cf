//! Start-up and the HTTPS server: load the plugins, bind, announce, serve,
//! re-read files on SIGHUP, and drain in-flight requests on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::AbortOnDropHandle;

use crate::config::ServeConfig;
use crate::connections::ConnectionLimits;
use crate::metrics::Metrics;
use crate::plugin::Runtime;
use crate::registry::{self, PluginSet, Registry, Trigger};
use crate::routes::{self, AppState};
use crate::webhook::register;
use crate::{cluster, connections, ops, tls};

/// Loads the plugins and serves them until SIGTERM or SIGINT.
///
/// Prints `listening on https://ADDR` on stdout once the socket is bound and
/// the plugins are loaded: scripts and tests use it as the readiness signal.
///
/// # Shutdown
/// Every background task (the folder and certificate watches, registration,
/// SIGHUP) is owned here and stops at the signal, cancelled where it waits:
/// a reload compiling a plugin is abandoned, not awaited. In-flight reviews
/// then drain for up to the grace, and the tasks are joined within
/// [`TASKS_STOP`]. The ops listener keeps answering probes (`/readyz` 503)
/// until then.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let (rereads, hangups) = reread_on_sighup()?;
    let stopping = stop_on_signal(config.shutdown_grace);
    let runtime =
        Arc::new(Runtime::new(&config.runtime).context("starting the WebAssembly runtime")?);
    // The objects folder is read before any plugin loads, so that the first
    // review reads it; a folder that does not read is a start-up error.
    if let Some(dir) = &config.cluster_objects {
        cluster::folder::serve(dir, runtime.cluster()).context("--cluster-objects")?;
    }
    let cluster = runtime.cluster().clone();
    let registry = Arc::new(Registry::new(runtime, config.plugins_dir.clone()));
    let metrics = Arc::new(Metrics::new(registry.clone()));
    // Probes are answered from the start (`/readyz` 503 until the plugins
    // are loaded: a cold start of hundreds of plugins takes a while), and
    // until `serve` returns (whichever way: the handle aborts it when
    // dropped), so that they see the drain while in-flight reviews finish.
    let ops_listener = tokio::net::TcpListener::bind(config.ops_listen)
        .await
        .with_context(|| format!("binding --ops-listen {}", config.ops_listen))?;
    let ops_address = ops_listener.local_addr()?;
    println!("ops on http://{ops_address} (/metrics /plugins /readyz /healthz)");
    let ops = AbortOnDropHandle::new(tokio::spawn(connections::serve(
        ops_listener,
        None,
        ops::router(registry.clone(), metrics.clone(), stopping.clone()),
        ConnectionLimits {
            max_connections: OPS_MAX_CONNECTIONS,
            ..config.connections.clone()
        },
        metrics.host().connections("ops"),
        std::future::pending(),
        config.shutdown_grace,
    )));
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
    // Plugins read the API server's objects when no folder is served and
    // a client can be built (in a pod, or with KUBECONFIG): each kind a
    // loaded plugin declares is followed from its load on.
    if config.cluster_objects.is_none() {
        let client = match kube_client.clone() {
            Some(client) => Ok(client),
            None => register::client().await,
        };
        match client {
            Ok(client) => cluster.go_live(client, config.cluster_live),
            Err(error) => tracing::info!(
                reason = %error,
                "no cluster source: plugins that read the cluster get unavailable"
            ),
        }
    }
    let tls = tls::start(
        &config.tls,
        config.client_ca.as_deref(),
        kube_client.clone(),
    )
    .await
    .context("setting up TLS")?;
    metrics.serving(tls.certificate.clone());
    // Every plugin in the folder is tried before reviews are served; a
    // signal meanwhile abandons the loads.
    tokio::select! {
        loaded = registry.load_all(Trigger::Start) => {
            loaded.with_context(|| format!("reading the plugin folder {}", config.plugins_dir.display()))?;
        }
        () = stopped(stopping.clone()) => {
            tracing::info!("stopped while loading the plugins");
            return Ok(());
        }
    }
    let follower =
        registry::follow::start(registry.clone(), rereads.plugins).with_context(|| {
            format!(
                "watching the plugin folder {}",
                config.plugins_dir.display()
            )
        })?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    announce(address, &registry.snapshot(), tls.trust_file.as_deref());
    let mut background = JoinSet::new();
    let mut own = |task: Task| background.spawn(until_stopped(stopping.clone(), task));
    own(Box::pin(hangups));
    own(Box::pin(follower));
    own(Box::pin(tls.keeper.run(rereads.certificates)));
    if let Some(dir) = config.cluster_objects.clone() {
        own(Box::pin(cluster::folder::follow(dir, cluster)));
    }
    if let (Some(client), Some(registration)) = (kube_client, config.register.clone()) {
        own(Box::pin(register::run(
            client,
            registry.clone(),
            tls.trust.clone(),
            registration,
        )));
    }

    let state = AppState::new(registry, metrics.host().clone(), &config.bodies);
    connections::serve(
        listener,
        Some(TlsAcceptor::from(tls.config)),
        routes::router(Arc::new(state)),
        config.connections.clone(),
        metrics.host().connections("webhook"),
        stopped(stopping),
        config.shutdown_grace,
    )
    .await;
    if tokio::time::timeout(TASKS_STOP, background.join_all())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop in time; leaving them");
    }
    drop(ops);
    tracing::info!("stopped");
    Ok(())
}

/// How long the background tasks may take to stop once the reviews drained:
/// each is cancelled at its next wait, so this is only a bound.
pub const TASKS_STOP: Duration = Duration::from_secs(2);

/// A background task of `serve`, boxed so that they share one `JoinSet`.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `task` until it ends or `stopping` turns `true`, whichever is first.
async fn until_stopped(stopping: watch::Receiver<bool>, task: Task) {
    tokio::select! {
        () = task => {}
        () = stopped(stopping) => {}
    }
}

/// Connections the ops listener keeps open at once: probes and scrapers.
const OPS_MAX_CONNECTIONS: usize = 64;

/// Who SIGHUP wakes: each re-reads its files.
struct Rereads {
    plugins: Arc<Notify>,
    certificates: Arc<Notify>,
}

/// Installs the SIGHUP handler (replacing the default, which ends the
/// process) before anything is loaded; the returned future passes each
/// SIGHUP on.
fn reread_on_sighup() -> anyhow::Result<(Rereads, impl Future<Output = ()> + Send + 'static)> {
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let rereads = Rereads {
        plugins: Arc::new(Notify::new()),
        certificates: Arc::new(Notify::new()),
    };
    let (plugins, certificates) = (rereads.plugins.clone(), rereads.certificates.clone());
    let hangups = async move {
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: re-reading the certificate files and the plugin folder");
            plugins.notify_one();
            certificates.notify_one();
        }
    };
    Ok((rereads, hangups))
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

/// Flips to `true` on SIGTERM or SIGINT: the listeners then stop accepting
/// and let in-flight requests finish for up to `grace`.
fn stop_on_signal(grace: Duration) -> watch::Receiver<bool> {
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal(grace).await;
        let _ = stop.send(true);
    });
    stopping
}

/// Resolves once `stopping` turns `true` (or its sender is gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Waits for SIGTERM or SIGINT.
async fn wait_for_signal(grace: Duration) {
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
}
