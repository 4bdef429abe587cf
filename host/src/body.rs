//! Reading request bodies within a shared byte budget, so that clients that
//! stall mid-body cannot make Wicket hold more memory than the budget.
//!
//! A body reserves its declared `Content-Length` (the largest accepted when
//! it declares none) before a byte is read, and keeps the reservation until
//! its answer is sent. A quarter of the budget is kept for small bodies (at
//! most [`SMALL_BODY_BYTES`], as nearly every review is): large stalled
//! bodies cannot crowd out ordinary reviews.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::text::with_causes;

/// How long a client may take to send a request body, unless told.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The API server's own limit on a request body; a larger review cannot
/// come from it.
pub const DEFAULT_MAX_BYTES: usize = 3 * 1024 * 1024;
/// Request bodies being read and reviewed at once, in bytes: about twenty
/// of the largest the API server sends, thousands of usual ones.
pub const DEFAULT_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// The largest body that may use the part of the budget kept for small ones.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;
/// How far past the body limit Wicket keeps reading (and discarding) before
/// it answers 413 and closes the connection.
const OVERSIZE_DRAIN_FACTOR: usize = 4;

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The bodies being read and reviewed hold the whole budget.
    #[error("the request bodies being reviewed use its whole memory budget")]
    OverBudget,
    /// The body is over the limit.
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// `--max-body-bytes`.
        limit: usize,
    },
    /// The body did not arrive in time.
    #[error("the body did not arrive within {}s", .0.as_secs())]
    Slow(Duration),
    /// The connection failed while the body was read.
    #[error("cannot read the body: {0}")]
    Read(String),
}

/// How large request bodies may be, how many bytes of them are held at
/// once, and how long one may take to arrive.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// The largest body accepted (`--max-body-bytes`).
    pub max_bytes: usize,
    /// Bytes of bodies held at once; past it reviews get 503
    /// (`--body-budget-mib`).
    pub budget_bytes: usize,
    /// How long a body may take to arrive (`--body-timeout`).
    pub read_timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            budget_bytes: DEFAULT_BUDGET_BYTES,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// The byte budget of the bodies held at once: one permit per byte.
pub struct BodyBudget {
    max_body_bytes: usize,
    read_timeout: Duration,
    /// For any body.
    shared: Semaphore,
    /// Only for small bodies.
    kept_for_small: Semaphore,
}

/// Room held for one body until it is dropped.
pub type Reservation<'a> = SemaphorePermit<'a>;

impl BodyBudget {
    /// The budget `limits` set (raised to fit one largest body and the
    /// small bodies' share).
    pub fn new(limits: &BodyLimits) -> BodyBudget {
        let BodyLimits {
            max_bytes: max_body_bytes,
            budget_bytes: total_bytes,
            read_timeout,
        } = *limits;
        let kept_for_small = (total_bytes / 4).max(SMALL_BODY_BYTES);
        let shared = total_bytes
            .saturating_sub(kept_for_small)
            .max(max_body_bytes);
        BodyBudget {
            max_body_bytes,
            read_timeout,
            shared: Semaphore::new(shared.min(Semaphore::MAX_PERMITS)),
            kept_for_small: Semaphore::new(kept_for_small.min(Semaphore::MAX_PERMITS)),
        }
    }

    /// Reserves room for a body with these `headers`, or refuses it while
    /// the bodies already held use the budget.
    pub fn reserve(&self, headers: &HeaderMap) -> Result<Reservation<'_>, BodyError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<usize>().ok());
        let bytes = declared
            .unwrap_or(self.max_body_bytes)
            .min(self.max_body_bytes);
        let permits = u32::try_from(bytes).unwrap_or(u32::MAX);
        let small = match bytes <= SMALL_BODY_BYTES {
            true => self.kept_for_small.try_acquire_many(permits).ok(),
            false => None,
        };
        small
            .map_or_else(|| self.shared.try_acquire_many(permits), Ok)
            .map_err(|_| BodyError::OverBudget)
    }

    /// Reads the whole body, refusing one over the largest accepted or one
    /// that is too slow to arrive.
    pub async fn read(&self, body: Body) -> Result<Bytes, BodyError> {
        tokio::time::timeout(
            self.read_timeout,
            collect_bounded(body, self.max_body_bytes),
        )
        .await
        .unwrap_or(Err(BodyError::Slow(self.read_timeout)))
    }

    /// Reads and drops a body Wicket will not review (up to
    /// [`OVERSIZE_DRAIN_FACTOR`] times the largest accepted, within the read
    /// timeout), so that the client gets the answer rather than a reset
    /// connection.
    pub async fn discard(&self, body: Body) {
        let _ = tokio::time::timeout(
            self.read_timeout,
            drain(
                body,
                self.max_body_bytes.saturating_mul(OVERSIZE_DRAIN_FACTOR),
            ),
        )
        .await;
    }
}

/// Collects at most `limit` bytes. Past the limit it keeps reading and
/// discarding, up to [`OVERSIZE_DRAIN_FACTOR`] times the limit, so that the
/// client has finished sending and actually receives the 413 instead of a
/// connection reset.
async fn collect_bounded(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut collected = BytesMut::new();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| BodyError::Read(with_causes(&err)))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing Wicket reads
        };
        received = received.saturating_add(data.len());
        if received > limit {
            drain(
                body,
                limit.saturating_mul(OVERSIZE_DRAIN_FACTOR) - received.min(limit),
            )
            .await;
            return Err(BodyError::TooLarge { limit });
        }
        collected.extend_from_slice(&data);
    }
    Ok(collected.freeze())
}

/// Reads and drops up to `bytes` of `body`.
async fn drain(mut body: Body, bytes: usize) {
    let mut left = bytes;
    while let Some(Ok(frame)) = body.frame().await {
        let read = frame.data_ref().map_or(0, Bytes::len);
        match left.checked_sub(read) {
            Some(rest) => left = rest,
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declaring(length: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, length.into());
        headers
    }

    #[test]
    fn large_bodies_cannot_take_the_small_bodies_share() {
        let budget = BodyBudget::new(&BodyLimits {
            max_bytes: 1 << 20,
            budget_bytes: 4 << 20,
            ..BodyLimits::default()
        });
        let large: Vec<_> = (0..3)
            .map(|_| budget.reserve(&declaring(1 << 20)).unwrap())
            .collect();
        assert!(matches!(
            budget.reserve(&declaring(1 << 20)),
            Err(BodyError::OverBudget)
        ));
        // Undeclared lengths reserve the largest body.
        assert!(budget.reserve(&HeaderMap::new()).is_err());
        let small: Vec<_> = (0..16)
            .map(|_| budget.reserve(&declaring(SMALL_BODY_BYTES)).unwrap())
            .collect();
        assert!(budget.reserve(&declaring(1)).is_err());
        drop(large);
        assert!(
            budget.reserve(&declaring(1)).is_ok(),
            "small bodies may use the shared part"
        );
        drop(small);
    }
}
