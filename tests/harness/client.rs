//! HTTPS (and plain HTTP) clients for a running Wicket.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::fixtures::fixture_with_uid;
use crate::oracle::{Reviewed, Webhook, check_apiserver_rules};

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// Body bytes.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// An HTTPS/1.1 keep-alive client for one Wicket.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base_url: Arc<str>,
}

impl Client {
    /// An HTTP/1.1 client for `base_url` trusting the CA in `ca_file`.
    pub fn new(ca_file: &Path, base_url: &str) -> Client {
        Client::build(client_tls(ca_file), base_url, false, true)
    }

    /// An HTTP/1.1 client that presents the certificate `cert_pem` (with
    /// its key `key_pem`) to the server.
    pub fn with_identity(ca_file: &Path, base_url: &str, cert_pem: &str, key_pem: &str) -> Client {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let tls = client_tls_builder(ca_file)
            .with_client_auth_cert(chain, key)
            .expect("a client certificate");
        Client::build(tls, base_url, false, true)
    }

    /// An HTTP/2-only client (ALPN `h2`) for `base_url` trusting `ca_file`.
    pub fn http2(ca_file: &Path, base_url: &str) -> Client {
        Client::build(client_tls(ca_file), base_url, true, true)
    }

    /// An HTTP/1.1 client that opens a new connection (a new TLS handshake)
    /// for every request.
    pub fn handshake_each_time(ca_file: &Path, base_url: &str) -> Client {
        Client::build(client_tls(ca_file), base_url, false, false)
    }

    /// A plain-HTTP client for `base_url` (the ops listener).
    pub fn plain(base_url: &str) -> Client {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(trusting(rustls::RootCertStore::empty()).with_no_client_auth())
            .https_or_http()
            .enable_http1()
            .build();
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build(connector),
            base_url: base_url.into(),
        }
    }

    fn build(tls: rustls::ClientConfig, base_url: &str, http2: bool, reuse: bool) -> Client {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only();
        let connector = if http2 {
            connector.enable_http2().build()
        } else {
            connector.enable_http1().build()
        };
        Client {
            inner: HyperClient::builder(TokioExecutor::new())
                .http2_only(http2)
                .pool_max_idle_per_host(if reuse { usize::MAX } else { 0 })
                .build(connector),
            base_url: base_url.into(),
        }
    }

    /// POSTs `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> anyhow::Result<Answer> {
        let request = http::Request::post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(Full::new(body.into()))?;
        self.send(request).await
    }

    /// POSTs `fixture` to `path` once per uid in `uids`, all at once.
    pub fn post_each(
        &self,
        path: &str,
        fixture: &str,
        uids: impl IntoIterator<Item = String>,
    ) -> tokio::task::JoinSet<anyhow::Result<Answer>> {
        let mut posts = tokio::task::JoinSet::new();
        for uid in uids {
            let (client, path) = (self.clone(), path.to_owned());
            let request = fixture_with_uid(fixture, &uid);
            posts.spawn(async move { client.post(&path, request).await });
        }
        posts
    }

    /// POSTs the review `request` to `path` and checks the answer against
    /// every rule the API server enforces (the webhook kind comes from the
    /// path), returning its `response` and patch.
    pub async fn review(&self, path: &str, request: &[u8]) -> anyhow::Result<Reviewed> {
        let webhook = if path.starts_with("/mutate/") {
            Webhook::Mutating
        } else {
            Webhook::Validating
        };
        let answer = self.post(path, request.to_vec()).await?;
        let patch = check_apiserver_rules(request, answer.status, &answer.body, webhook)
            .with_context(|| format!("POST {path}"))?;
        Ok(Reviewed {
            response: answer.json()["response"].clone(),
            patch,
        })
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        let request =
            http::Request::get(format!("{}{path}", self.base_url)).body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    async fn send(&self, request: http::Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        let response = self.inner.request(request).await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

/// A TLS client configuration trusting the CAs in `ca_file`.
pub fn client_tls(ca_file: &Path) -> rustls::ClientConfig {
    client_tls_builder(ca_file).with_no_client_auth()
}

/// A TLS client configuration trusting the CAs in `ca_file`, to be given
/// its client authentication.
fn client_tls_builder(
    ca_file: &Path,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    trusting(roots)
}

fn trusting(
    roots: rustls::RootCertStore,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
}
