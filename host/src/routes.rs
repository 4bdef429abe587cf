//! The webhook port's routes: `POST /mutate/{name}`, `POST /validate/{name}`
//! (a plugin or a pipeline), and `GET /healthz`, `GET /readyz` for probes.
//! What operators inspect is on the ops listener ([`crate::ops`]).
//!
//! This layer only reads the body, finds the plugin and encodes the answer;
//! what the answer says is decided in [`crate::admit`]. The query string (the
//! API server appends `?timeout=10s`) is ignored.
//!
//! # Errors
//! Every refusal is JSON `{"error": "..."}`: 404 for an unknown plugin (with
//! the served paths, never a file path or a load error) or a plugin served on
//! the other path, 400 for a body that is not a usable `AdmissionReview`, 413
//! for a body over the limit, 408 for a body that does not arrive in time,
//! 503 (with `Retry-After`) for a review the host was too busy to run.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use serde_json::json;

use crate::admit::Decision;
use crate::body::{BodyBudget, BodyError, BodyLimits};
use crate::document::Documents;
use crate::fault::HostError;
use crate::metrics::HostMetrics;
use crate::ops;
use crate::plugin::Mode;
use crate::registry::{Lookup, Registry, served_path};
use crate::review::{self, AdmissionRequest, DecodeError};
use crate::reviewer::Reviewer;
use crate::text::with_causes;

/// What the handlers share.
pub struct AppState {
    /// The live plugin set.
    registry: Arc<Registry>,
    /// Bytes of request bodies that may be held at once.
    bodies: BodyBudget,
    /// Reviews in flight and refused requests.
    metrics: Arc<HostMetrics>,
}

impl AppState {
    /// Serves `registry`, reading bodies within `bodies`, and reports into
    /// `metrics`.
    pub fn new(registry: Arc<Registry>, metrics: Arc<HostMetrics>, bodies: &BodyLimits) -> Self {
        AppState {
            registry,
            bodies: BodyBudget::new(bodies),
            metrics,
        }
    }
}

/// The router with every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate/{name}", post(mutate))
        .route("/validate/{name}", post(validate))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(readyz))
        .fallback(unknown_route)
        .layer(middleware::map_response_with_state(
            state.clone(),
            count_refusal,
        ))
        .with_state(state)
}

/// Counts every error answer, whichever route or layer gave it.
async fn count_refusal(State(state): State<Arc<AppState>>, response: Response) -> Response {
    if response.status().is_client_error() || response.status().is_server_error() {
        state.metrics.refused(response.status().as_u16());
    }
    response
}

async fn mutate(state: State<Arc<AppState>>, name: Path<String>, request: Request) -> Response {
    admission(&state, Mode::Mutating, &name, request).await
}

async fn validate(state: State<Arc<AppState>>, name: Path<String>, request: Request) -> Response {
    admission(&state, Mode::Validating, &name, request).await
}

/// Readiness for probes that can only reach this port; the details are on
/// the ops listener.
async fn readyz() -> Response {
    axum::Json(json!({ "ready": true })).into_response()
}

async fn unknown_route() -> Response {
    refuse(Refusal::NoRoute)
}

/// Serves one admission review with the plugin or pipeline `name`.
async fn admission(state: &AppState, mode: Mode, name: &str, request: Request) -> Response {
    let started = Instant::now();
    let _in_flight = state.metrics.review_started();
    let snapshot = state.registry.snapshot();
    let target = match snapshot.lookup(mode, name) {
        Lookup::Plugin(served) => Reviewer::Plugin(served.clone()),
        Lookup::Pipeline(pipeline) => Reviewer::Pipeline(pipeline.clone()),
        Lookup::OtherPath(served_mode) => {
            return refuse(Refusal::OtherPath {
                path: served_path(served_mode, name),
                mode: served_mode,
            });
        }
        Lookup::Unknown => {
            return refuse(Refusal::UnknownPlugin {
                name: name.to_owned(),
                served: snapshot.served_paths(),
                not_loaded: snapshot.refused().contains_key(name),
            });
        }
    };
    drop(snapshot);
    // Held until the answer is sent: the body and what is decoded from it
    // live that long.
    let _reserved = match state.bodies.reserve(request.headers()) {
        Ok(reserved) => reserved,
        Err(error) => {
            state.bodies.discard(request.into_body()).await;
            return refuse(Refusal::Body(error));
        }
    };
    let body = match state.bodies.read(request.into_body()).await {
        Ok(body) => body,
        Err(error) => return refuse(Refusal::Body(error)),
    };
    let review = match review::decode(&body) {
        Ok(review) => review,
        Err(err) => return refuse(Refusal::BadReview(err)),
    };
    let documents = Documents::of(&review.request);
    let judged = target.judge(&review.request, &documents).await;
    let decision = match judged {
        Ok(decision) => decision,
        Err(error) => {
            return refuse(Refusal::Host {
                name: name.to_owned(),
                uid: review.request.uid.to_string(),
                error,
            });
        }
    };
    log_review(name, &review.request, &decision, started);
    let encoded = review::encode(review.api_version, &review.request.uid, &decision.response);
    ([(header::CONTENT_TYPE, "application/json")], encoded).into_response()
}

/// The one log line per review: at warn when a plugin failed (naming each
/// with its cause), with what monitor mode let through.
fn log_review(name: &str, request: &AdmissionRequest<'_>, decision: &Decision, started: Instant) {
    macro_rules! review {
        ($level:expr) => {
            tracing::event!(
                $level,
                plugin = %name,
                uid = %request.uid,
                kind = %request.kind.kind,
                namespace = %request.namespace,
                name = %request.display_name(),
                operation = %request.operation.as_str(),
                dry_run = request.dry_run,
                verdict = %decision.verdict.as_str(),
                patch_bytes = decision.response.patch.as_ref().map_or(0, Vec::len),
                duration_us = started.elapsed().as_micros() as u64,
                cause = decision.causes(),
                would = decision.not_enforced.as_deref(),
                "review"
            )
        };
    }
    match decision.failures.is_empty() {
        true => review!(tracing::Level::INFO),
        false => review!(tracing::Level::WARN),
    }
}

/// A 503 that asks the client to retry in a second (the API server itself
/// applies the webhook's failure policy).
fn with_retry_after(response: impl IntoResponse) -> Response {
    ([(header::RETRY_AFTER, "1")], response).into_response()
}

/// Why a request was not reviewed at all.
enum Refusal {
    NoRoute,
    UnknownPlugin {
        name: String,
        served: Vec<String>,
        /// Whether a plugin of that name is in the folder but not loaded.
        not_loaded: bool,
    },
    OtherPath {
        path: String,
        mode: Mode,
    },
    BadReview(DecodeError),
    Body(BodyError),
    /// The host could not answer the review: 503 when it was too busy,
    /// 500 for its own fault, so that the API server applies the webhook's
    /// failure policy; never a denial, never a plugin's failure policy.
    Host {
        name: String,
        uid: String,
        error: HostError,
    },
}

impl Refusal {
    /// The status and the JSON body: pure, so that [`refuse`] logs a refusal
    /// once and tests can convert one without logging.
    fn parts(&self) -> (StatusCode, serde_json::Value) {
        match self {
            Refusal::NoRoute => (
                StatusCode::NOT_FOUND,
                json!({"error": "no such route: reviews are served at /mutate/{name} and /validate/{name}"}),
            ),
            Refusal::UnknownPlugin {
                name,
                served,
                not_loaded,
            } => {
                let error = match not_loaded {
                    true => format!(
                        "plugin {name:?} is not loaded (the reason is in the log and on the ops listener's /plugins)"
                    ),
                    false => format!("no plugin named {name:?}"),
                };
                (
                    StatusCode::NOT_FOUND,
                    json!({"error": error, "served": served}),
                )
            }
            Refusal::OtherPath { path, mode } => {
                let mode = match mode {
                    Mode::Mutating => "a mutating",
                    Mode::Validating => "a validating",
                };
                (
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("this is {mode} plugin, served at {path}"), "servedAt": path}),
                )
            }
            Refusal::BadReview(err) => {
                (StatusCode::BAD_REQUEST, json!({"error": with_causes(err)}))
            }
            Refusal::Body(error) => {
                let status = match error {
                    BodyError::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
                    BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    BodyError::Slow(_) => StatusCode::REQUEST_TIMEOUT,
                    BodyError::Read(_) => StatusCode::BAD_REQUEST,
                };
                let error = match error {
                    BodyError::OverBudget => format!("wicket is overloaded: {error}"),
                    error => error.to_string(),
                };
                (status, json!({ "error": error }))
            }
            Refusal::Host {
                name,
                error: HostError::Overloaded(overload),
                ..
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": format!("wicket is overloaded: {name}: {overload}") }),
            ),
            Refusal::Host {
                error: HostError::Pipeline(fault),
                ..
            } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": format!("wicket failed to answer: {}", with_causes(fault)) }),
            ),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        refusal_response(status, body)
    }
}

/// A refusal's answer from its parts: a 503 asks the client to retry.
fn refusal_response(status: StatusCode, body: serde_json::Value) -> Response {
    match status {
        StatusCode::SERVICE_UNAVAILABLE => with_retry_after((status, axum::Json(body))),
        _ => (status, axum::Json(body)).into_response(),
    }
}

/// Answers a request that was not reviewed, with its one log line: a 404 is
/// an ordinary miss, a bad body may be a misconfigured or hostile client, a
/// host failure names the review it failed.
fn refuse(refusal: Refusal) -> Response {
    let (status, body) = refusal.parts();
    let error = body["error"].as_str().unwrap_or_default();
    match &refusal {
        Refusal::Host {
            name,
            uid,
            error: HostError::Overloaded(overload),
        } => tracing::warn!(plugin = %name, %uid, cause = %overload, "review shed: overloaded"),
        Refusal::Host {
            name,
            uid,
            error: HostError::Pipeline(fault),
        } => {
            tracing::error!(pipeline = %name, %uid, cause = %with_causes(fault), "review failed: host fault")
        }
        _ if status == StatusCode::NOT_FOUND => {
            tracing::info!(status = status.as_u16(), %error, "request refused")
        }
        _ => tracing::warn!(status = status.as_u16(), %error, "request refused"),
    }
    refusal_response(status, body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fault::PipelineFault;
    use crate::plugin::Overload;

    fn refused(error: HostError) -> Response {
        Refusal::Host {
            name: "p".into(),
            uid: "u".into(),
            error,
        }
        .into_response()
    }

    #[test]
    fn host_errors_are_http_errors_never_answers() {
        let busy = refused(Overload::Busy(Duration::from_millis(10)).into());
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(busy.headers().contains_key(header::RETRY_AFTER));
        let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let fault = refused(
            PipelineFault::Serialise {
                pipeline: "p".into(),
                source,
            }
            .into(),
        );
        assert_eq!(fault.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!fault.headers().contains_key(header::RETRY_AFTER));
    }
}
