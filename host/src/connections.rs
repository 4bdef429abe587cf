//! Accepting and keeping connections within a budget: a cap on open
//! connections (past it, new ones are closed at once rather than queued), a
//! deadline for the TLS handshake, a deadline for the first request, an idle
//! timeout, and a graceful drain on shutdown.
//!
//! # Why a byte-level idle timer
//! The timers live in the connection's I/O ([`Watched`]), not in the
//! protocol: hyper waits for the HTTP version preface and for HTTP/2 frames
//! without a deadline, so a client that completes the handshake and then
//! sends nothing would otherwise hold its connection (and a descriptor)
//! forever. No HTTP/2 keep-alive pings are sent: they would keep idle
//! connections open, and the idle timer also closes dead ones.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

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

/// Serves `router` on `listener` (over TLS when `tls` is given) until
/// `shutdown` resolves, then stops accepting and lets open requests finish
/// for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                max_connections = limits.max_connections,
                "connection refused: too many open connections"
            );
            continue;
        };
        let connection = Connection {
            stream,
            peer,
            tls: tls.clone(),
            router: router.clone(),
            limits: limits.clone(),
            builder: builder.clone(),
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            connection.run(watcher).await;
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

/// One accepted connection and what it needs to be served.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

impl Connection {
    async fn run(self, watcher: Watcher) {
        let Connection {
            stream,
            peer,
            tls,
            router,
            limits,
            builder,
        } = self;
        // Answers are small: send them without waiting for more.
        let _ = stream.set_nodelay(true);
        let result = match tls {
            None => serve_io(stream, peer, router, &limits, &builder, watcher).await,
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await;
                match handshake {
                    Ok(Ok(stream)) => {
                        serve_io(stream, peer, router, &limits, &builder, watcher).await
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
    router: Router,
    limits: &ConnectionLimits,
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Watched::new(stream, served.clone(), limits));
    let app = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |request| {
        served.store(true, Ordering::Relaxed);
        // Every log line of the request names the client.
        app.call(request)
            .instrument(tracing::info_span!("request", %peer))
    });
    watcher
        .watch(builder.serve_connection(io, service).into_owned())
        .await
}

/// A connection's stream with its deadlines: the first request's, then the
/// idle one, restarted by every byte read or written.
struct Watched<S> {
    inner: S,
    /// Set once the first request reached the router.
    served: Arc<AtomicBool>,
    first_request_by: Instant,
    idle_timeout: Duration,
    last_active: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> Watched<S> {
    fn new(inner: S, served: Arc<AtomicBool>, limits: &ConnectionLimits) -> Watched<S> {
        let now = Instant::now();
        let first_request_by = now + limits.first_request_timeout;
        Watched {
            inner,
            served,
            first_request_by,
            idle_timeout: limits.idle_timeout,
            last_active: now,
            timer: Box::pin(tokio::time::sleep_until(first_request_by)),
        }
    }

    /// Checks the deadline that applies now; an error once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let (deadline, what) = match self.served.load(Ordering::Relaxed) {
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
