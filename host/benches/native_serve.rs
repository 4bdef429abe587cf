//! The sidecar injector's logic compiled natively (see `native`), served
//! over the same HTTPS stack as Wicket (rustls, the connection limits,
//! body reading, review decoding and encoding), so that `wicket-load`
//! against this and against Wicket's `/mutate/sidecar-injector` in one run
//! gives what the sandbox costs end to end. What it leaves out of Wicket's
//! path: the plugin registry, the instance slots and the review counters.
//!
//! ```sh
//! cargo bench -p wicket --bench native_serve -- MANIFEST TLS_DIR
//! ```
//!
//! Serves `POST /mutate/{any name}` on an ephemeral port with a self-signed
//! CA kept in TLS_DIR (`TLS_DIR/ca.pem` to trust), and prints `listening on
//! https://ADDR` when ready, as `wicket serve` does.

mod args;
mod native;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio_rustls::TlsAcceptor;
use wicket::body::{BodyBudget, BodyLimits};
use wicket::connections::{self, ConnectionLimits, ConnectionMetrics};
use wicket::document::Documents;
use wicket::review;
use wicket::tls::{self, LOCAL_NAMES, TlsSource};

use crate::native::NativeInjector;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args::args();
    let [manifest_path, tls_dir] = args.as_slice() else {
        anyhow::bail!("usage: native_serve MANIFEST TLS_DIR");
    };
    let injector = Arc::new(NativeInjector::load(manifest_path)?);
    let source = TlsSource::SelfSigned {
        dir: tls_dir.into(),
        names: LOCAL_NAMES.map(str::to_owned).to_vec(),
    };
    let tls = tls::start(&source, None, None).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on https://{}", listener.local_addr()?);
    let router = Router::new()
        .route("/mutate/{name}", post(mutate))
        .with_state(Arc::new(Served {
            injector,
            bodies: BodyBudget::new(&BodyLimits::default()),
        }));
    connections::serve(
        listener,
        Some(TlsAcceptor::from(tls.config)),
        router,
        ConnectionLimits::default(),
        ConnectionMetrics::default(),
        std::future::pending(),
        Duration::ZERO,
    )
    .await;
    Ok(())
}

/// The injector and the body reader Wicket's routes use.
struct Served {
    injector: Arc<NativeInjector>,
    bodies: BodyBudget,
}

/// One review, the way Wicket's route reads, judges and answers it.
async fn mutate(State(served): State<Arc<Served>>, request: Request) -> Response {
    let body = match served.bodies.read(request.into_body()).await {
        Ok(body) => body,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let review = match review::decode(&body) {
        Ok(review) => review,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let documents = Documents::of(&review.request);
    let decision = served.injector.judge(&review.request, &documents);
    let encoded = review::encode(review.api_version, &review.request.uid, &decision.response);
    ([(header::CONTENT_TYPE, "application/json")], encoded).into_response()
}
