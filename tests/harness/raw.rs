//! Raw connections to a running Wicket, for tests that behave as a hostile
//! or broken client would: silent after the handshake, stalled mid-body,
//! over the connection cap.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use crate::process::PATIENCE;
use crate::{Wicket, client_tls};

impl Wicket {
    /// The `host:port` it listens on.
    pub fn address(&self) -> &str {
        self.base_url.trim_start_matches("https://")
    }

    /// A TCP connection to it, before any TLS.
    pub async fn tcp(&self) -> std::io::Result<TcpStream> {
        TcpStream::connect(self.address()).await
    }

    /// A TLS connection to it offering `alpn` (e.g. `b"h2"`), handshake done.
    pub async fn tls(&self, alpn: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
        let mut config = client_tls(&self.ca_file);
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = ServerName::try_from("localhost").expect("a server name");
        TlsConnector::from(Arc::new(config))
            .connect(name, self.tcp().await?)
            .await
    }
}

/// Reads and discards until the server closes the connection (end of
/// stream or an error), within [`PATIENCE`]; panics naming `what` if it
/// stays open.
pub async fn closed_by_server(stream: &mut (impl AsyncRead + Unpin), what: &str) {
    let drain = async {
        let mut buffer = [0u8; 4096];
        while let Ok(read @ 1..) = stream.read(&mut buffer).await {
            let _ = read;
        }
    };
    tokio::time::timeout(PATIENCE, drain)
        .await
        .unwrap_or_else(|_| panic!("{what}: still open after {PATIENCE:?}"));
}
