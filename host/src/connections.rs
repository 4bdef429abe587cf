//! Accepting and keeping connections within a budget: a cap on open
//! connections, a deadline for the TLS handshake, a deadline for the first
//! request, an idle timeout, and a graceful drain on shutdown.
//!
//! At the cap, a new connection ends the oldest connection that has not
//! sent a request yet (clients that connect and say nothing cannot lock the
//! others out until their deadline); when every connection has sent one,
//! the new connection is closed at once rather than queued.
//!
//! # Why a byte-level idle timer
//! The timers live in the connection's I/O ([`Watched`]), not in the
//! protocol: hyper waits for the HTTP version preface and for HTTP/2 frames
//! without a deadline, so a client that completes the handshake and then
//! sends nothing would otherwise hold its connection (and a descriptor)
//! forever. No HTTP/2 keep-alive pings are sent: they would keep idle
//! connections open, and the idle timer also closes dead ones.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

/// How long a new connection waits for the slot of a connection it evicted.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// How long to wait before accepting again after `accept` itself failed
/// (out of descriptors, usually).
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// How long a client may take to send request headers (HTTP/1.1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What one listener allows its connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Time for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time from the handshake to the first request's headers.
    pub first_request_timeout: Duration,
    /// Time without a byte in either direction after which a connection is
    /// closed; longer than the API server's own 90 s, so that it is the one
    /// to close idle connections and never sends on one being closed.
    pub idle_timeout: Duration,
    /// HTTP/2 streams one connection may have open; the API server opens
    /// few, so a small number bounds what one connection can hold.
    pub max_concurrent_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1000,
            handshake_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_concurrent_streams: 64,
        }
    }
}

/// What a listener reports of its connections (see [`crate::metrics`]).
#[derive(Debug, Clone, Default)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: Gauge,
    /// Connections closed at once because the listener was at its cap.
    pub refused: Counter,
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until
/// `shutdown` resolves, then stops accepting and lets open requests finish
/// for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    metrics: ConnectionMetrics,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let silent = Silent::default();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) if silent.evict_oldest() => {
                tokio::time::timeout(EVICTION_WAIT, slots.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        let Some(slot) = slot else {
            metrics.refused.inc();
            tracing::warn!(
                %peer,
                max_connections = limits.max_connections,
                "connection refused: too many open connections, all of them serving"
            );
            continue;
        };
        let standing = Arc::new(Standing::default());
        silent.push(standing.clone(), limits.max_connections);
        let connection = Connection {
            stream,
            peer,
            standing,
            tls: tls.clone(),
            router: router.clone(),
            limits: limits.clone(),
            builder: builder.clone(),
        };
        let watcher = graceful.watcher();
        let open = metrics.open.clone();
        open.inc();
        tokio::spawn(async move {
            connection.run(watcher).await;
            open.dec();
            drop(slot);
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "requests still open after the grace period"
        );
    }
}

/// A connection's standing: whether it has sent a request, and how to end
/// it while it has not.
#[derive(Default)]
struct Standing {
    served: AtomicBool,
    evict: Notify,
}

/// The connections that have sent no request yet, oldest first.
#[derive(Default)]
struct Silent {
    queue: Mutex<VecDeque<Arc<Standing>>>,
}

impl Silent {
    /// Adds a new connection; forgets, now and then, the ones that have
    /// since been served or ended.
    fn push(&self, standing: Arc<Standing>, max_connections: usize) {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if queue.len() >= max_connections {
            queue.retain(|queued| {
                !queued.served.load(Ordering::Relaxed) && Arc::strong_count(queued) > 1
            });
        }
        queue.push_back(standing);
    }

    /// Ends the oldest connection still silent, if there is one.
    fn evict_oldest(&self) -> bool {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        while let Some(oldest) = queue.pop_front() {
            if !oldest.served.load(Ordering::Relaxed) && Arc::strong_count(&oldest) > 1 {
                oldest.evict.notify_one();
                return true;
            }
        }
        false
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    standing: Arc<Standing>,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

impl Connection {
    async fn run(self, watcher: Watcher) {
        let standing = self.standing.clone();
        let peer = self.peer;
        tokio::select! {
            () = self.serve(watcher) => {}
            () = standing.evict.notified() => {
                tracing::debug!(%peer, "closed a connection that sent no request, to make room");
            }
        }
    }

    async fn serve(self, watcher: Watcher) {
        let Connection {
            stream,
            peer,
            standing,
            tls,
            router,
            limits,
            builder,
        } = self;
        // Answers are small: send them without waiting for more.
        let _ = stream.set_nodelay(true);
        let result = match tls {
            None => serve_io(stream, peer, standing, router, &limits, &builder, watcher).await,
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await;
                match handshake {
                    Ok(Ok(stream)) => {
                        serve_io(stream, peer, standing, router, &limits, &builder, watcher).await
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended");
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on `stream` with the connection's deadlines.
async fn serve_io<S>(
    stream: S,
    peer: SocketAddr,
    standing: Arc<Standing>,
    router: Router,
    limits: &ConnectionLimits,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Watched::new(stream, standing.clone(), limits));
    let app = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |request| {
        standing.served.store(true, Ordering::Relaxed);
        // Every log line of the request names the client and the size it
        // declared.
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        app.call(request)
            .instrument(tracing::info_span!("request", %peer, bytes = %declared))
    });
    watcher
        .watch(builder.serve_connection(io, service).into_owned())
        .await
}

/// A connection's stream with its deadlines: the first request's, then the
/// idle one, restarted by every byte read or written.
struct Watched<S> {
    inner: S,
    /// Whether the first request reached the router.
    standing: Arc<Standing>,
    first_request_by: Instant,
    idle_timeout: Duration,
    last_active: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> Watched<S> {
    fn new(inner: S, standing: Arc<Standing>, limits: &ConnectionLimits) -> Watched<S> {
        let now = Instant::now();
        let first_request_by = now + limits.first_request_timeout;
        Watched {
            inner,
            standing,
            first_request_by,
            idle_timeout: limits.idle_timeout,
            last_active: now,
            timer: Box::pin(tokio::time::sleep_until(first_request_by)),
        }
    }

    /// Checks the deadline that applies now; an error once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let (deadline, what) = match self.standing.served.load(Ordering::Relaxed) {
            true => (self.last_active + self.idle_timeout, "idle timeout"),
            false => (self.first_request_by, "no request in time"),
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.last_active = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.last_active = Instant::now();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
