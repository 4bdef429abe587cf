//! The operator's listener (`--ops-listen`, plain HTTP, loopback unless
//! told otherwise): `/healthz`, `/readyz` with what is served and what is
//! not, `/metrics` for Prometheus ([`crate::metrics`]), and `/plugins` with
//! digests, limits, grants and counters. None of it
//! is on the webhook port, which any client that reaches it can call.
//!
//! `/readyz` tells the truth: 503 while starting (until every plugin in the
//! folder at start-up has been tried: reviews are served only then), once a
//! drain has started (SIGTERM), and while the plugin folder is missing or
//! unreadable, so that the Service sends reviews elsewhere; 200 otherwise.
//! Plugins that read the cluster load once their kinds' caches synced (or
//! `--cluster-sync-timeout` passed), so start-up waits for them; the kinds
//! not synced are listed (`clusterNotSynced`) but never make a ready
//! replica unready: with `failurePolicy: Fail`, that would block every
//! write in the cluster.
//! This listener is bound first, so probes are answered during a long cold
//! start; the webhook port only once the plugins are loaded.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::watch;

use crate::metrics::{self, Metrics};
use crate::registry::Registry;

/// What the ops routes look at.
#[derive(Clone)]
struct Ops {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// `true` once a drain has started.
    draining: watch::Receiver<bool>,
}

/// The ops routes over `registry` and `metrics`; `draining` turns `true`
/// when the drain starts.
pub fn router(
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    draining: watch::Receiver<bool>,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/plugins", get(plugins))
        .with_state(Ops {
            registry,
            metrics,
            draining,
        })
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let snapshot = ops.registry.snapshot();
    let folder_error = ops.registry.folder_error();
    let not_ready = match (*ops.draining.borrow(), &folder_error) {
        (true, _) => Some("draining: shutting down"),
        (false, Some(_)) => Some("the plugin folder cannot be read"),
        (false, None) if !ops.registry.started() => {
            Some("starting: loading the plugins in the folder")
        }
        (false, None) => None,
    };
    let status = match not_ready {
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
        None => StatusCode::OK,
    };
    let body = json!({
        "ready": not_ready.is_none(),
        "reason": not_ready,
        "plugins": snapshot.served_paths(),
        "notLoaded": snapshot.refused(),
        "loading": snapshot.loading(),
        "folderError": folder_error.as_deref(),
        "clusterNotSynced": ops.registry.cluster().not_synced(),
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    match ops.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn plugins(State(Ops { registry, .. }): State<Ops>) -> Response {
    let mut view = registry.snapshot().describe();
    view["folderError"] = json!(registry.folder_error().as_deref());
    view["reloads"] = registry.reloads().describe();
    view["cluster"] = registry.cluster().describe();
    view["compiles"] = registry.compiles();
    axum::Json(view).into_response()
}
