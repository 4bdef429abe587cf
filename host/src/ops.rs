//! The operator's listener (`--ops-listen`, plain HTTP, loopback unless
//! told otherwise): `/healthz`, `/readyz` with what is served and what is
//! not, and `/plugins` with digests, limits, grants and counters. None of it
//! is on the webhook port, which any client that reaches it can call.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::registry::Registry;

/// The ops routes over `registry`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/plugins", get(plugins))
        .with_state(registry)
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(registry): State<Arc<Registry>>) -> Response {
    let snapshot = registry.snapshot();
    axum::Json(json!({
        "ready": true,
        "plugins": snapshot.served_paths(),
        "notLoaded": snapshot.refused(),
        "folderError": registry.folder_error().as_deref(),
    }))
    .into_response()
}

async fn plugins(State(registry): State<Arc<Registry>>) -> Response {
    let mut view = registry.snapshot().describe();
    view["folderError"] = json!(registry.folder_error().as_deref());
    axum::Json(view).into_response()
}
