//! The certificate being served, swappable while serving: each handshake
//! takes whichever certificate is current when it starts, so a rotation
//! never fails a handshake.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The serving certificate, shared by the TLS acceptor and whatever renews it.
#[derive(Debug)]
pub struct LiveCert(ArcSwap<CertifiedKey>);

impl LiveCert {
    /// Serves `first` until [`LiveCert::replace`].
    pub fn new(first: CertifiedKey) -> LiveCert {
        LiveCert(ArcSwap::from_pointee(first))
    }

    /// Serves `next` from the next handshake on.
    pub fn replace(&self, next: CertifiedKey) {
        self.0.store(Arc::new(next));
    }

    /// When the certificate served now expires (`/metrics`, for an alert
    /// before a renewal that did not happen shows as failed handshakes).
    pub fn expiry(&self) -> Option<SystemTime> {
        let key = self.0.load();
        let der = key.end_entity_cert().ok()?;
        super::authority::der_expiry(der).ok()
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// What a source serves now.
pub(super) struct Loaded {
    pub(super) key: rustls::sign::CertifiedKey,
    /// The trust bundle, when known.
    pub(super) trust: Option<String>,
    /// Whether it differs from what was served before.
    pub(super) changed: bool,
}
