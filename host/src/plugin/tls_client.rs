//! `https` for plugins whose manifest names its own trust and identity
//! (`[outbound.tls]`): a private CA instead of the public web PKI, and
//! optionally a client certificate, as etcd with `--client-cert-auth` (and
//! most in-cluster services) require.
//!
//! The files are read when the manifest is loaded: a rotated certificate is
//! picked up when the plugin is next reloaded.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use tokio_util::task::AbortOnDropHandle;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// The I/O that goes on after a response's head has arrived.
pub(super) type Io = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// Where a request goes: the host without IPv6 brackets, and the port, the
/// scheme's default when the URL names none.
pub(super) fn host_and_port<'a>(scheme: &Scheme, authority: &'a Authority) -> (&'a str, u16) {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    (host, authority.port_u16().unwrap_or(default_port))
}

/// Why an `[outbound.tls]` table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsFilesError {
    /// A path is relative: the files must not depend on the working folder.
    #[error("{} must be an absolute path", .0.display())]
    Relative(PathBuf),
    /// A file cannot be read as PEM.
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] rustls::pki_types::pem::Error),
    /// The CA file holds no certificate.
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// rustls refuses a certificate or key in a file.
    #[error("{} is refused", .0.display())]
    Refused(PathBuf, #[source] rustls::Error),
    /// Only one of `cert-file` and `key-file` is given.
    #[error("cert-file and key-file go together")]
    HalfIdentity,
    /// rustls refuses the configuration.
    #[error("the TLS configuration is refused")]
    Config(#[source] rustls::Error),
}

/// The `[outbound.tls]` table: absolute paths to PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsFiles {
    /// The CA certificates that server certificates must chain to.
    pub ca_file: PathBuf,
    /// A client certificate chain to present, with `key-file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// A client configuration built from [`TlsFiles`].
#[derive(Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl ClientTls {
    /// Reads the files and builds the configuration, or says what is wrong.
    pub fn load(files: TlsFiles) -> Result<ClientTls, TlsFilesError> {
        let paths = [
            Some(&files.ca_file),
            files.cert_file.as_ref(),
            files.key_file.as_ref(),
        ];
        if let Some(relative) = paths.into_iter().flatten().find(|path| !path.is_absolute()) {
            return Err(TlsFilesError::Relative(relative.clone()));
        }
        let ca_file = &files.ca_file;
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca_file)
            .map_err(|error| TlsFilesError::Read(ca_file.clone(), error))?
        {
            let certificate =
                certificate.map_err(|error| TlsFilesError::Read(ca_file.clone(), error))?;
            roots
                .add(certificate)
                .map_err(|error| TlsFilesError::Refused(ca_file.clone(), error))?;
        }
        if roots.is_empty() {
            return Err(TlsFilesError::NoCertificate(ca_file.clone()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsFilesError::Config)?
            .with_root_certificates(roots);
        let config = match (&files.cert_file, &files.key_file) {
            (Some(cert_file), Some(key_file)) => {
                let chain = CertificateDer::pem_file_iter(cert_file)
                    .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                    .map_err(|error| TlsFilesError::Read(cert_file.clone(), error))?;
                let key = PrivateKeyDer::from_pem_file(key_file)
                    .map_err(|error| TlsFilesError::Read(key_file.clone(), error))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| TlsFilesError::Refused(cert_file.clone(), error))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsFilesError::HalfIdentity),
        };
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// Sends one `https` request on a new connection trusting this
    /// configuration's CA. Connecting and the TLS handshake get
    /// `connect_timeout`; the response's head `first_byte_timeout`.
    pub async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: &RequestOptions,
    ) -> Result<(http::Response<WasiBody>, Io), HttpError> {
        let never = Duration::from_secs(600);
        let connect_timeout = options.connect_timeout.unwrap_or(never);
        let first_byte_timeout = options.first_byte_timeout.unwrap_or(never);
        let authority = request
            .uri()
            .authority()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .clone();
        let (host, port) = host_and_port(&Scheme::HTTPS, &authority);
        let server_name =
            ServerName::try_from(host.to_owned()).map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(HttpError::Connect)?;
            connector
                .connect(server_name, tcp)
                .await
                .map_err(HttpError::Tls)
        };
        let stream = tokio::time::timeout(connect_timeout, connect)
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
        // The request line carries the path only; the host goes in `Host`.
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str());
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // Aborted when dropped: a request given up on (timed out, failed, or
        // its plugin's call ended) must not leave its connection running.
        let mut driver = AbortOnDropHandle::new(tokio::spawn(connection));
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)??;
        let io: Io = Box::new(async move {
            match (&mut driver).await {
                Ok(result) => result.map_err(HttpError::from),
                Err(_cancelled) => Ok(()),
            }
        });
        Ok((
            response.map(|body| body.map_err(HttpError::from).boxed_unsync()),
            io,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ca: &str, cert: Option<&str>, key: Option<&str>) -> TlsFiles {
        TlsFiles {
            ca_file: ca.into(),
            cert_file: cert.map(Into::into),
            key_file: key.map(Into::into),
        }
    }

    #[test]
    fn bad_tls_files_are_refused_with_a_reason() {
        let dir = tempfile_dir();
        let ca_file = dir.join("ca.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&ca_file, params.self_signed(&key).unwrap().pem()).unwrap();
        let ca = ca_file.to_str().unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();

        assert!(ClientTls::load(files(ca, None, None)).is_ok());
        for (bad, why) in [
            (files("ca.pem", None, None), "must be an absolute path"),
            (
                files("/nonexistent/ca.pem", None, None),
                "cannot read /nonexistent/ca.pem",
            ),
            (
                files(empty.to_str().unwrap(), None, None),
                "holds no certificate",
            ),
            (
                files(ca, Some(ca), None),
                "cert-file and key-file go together",
            ),
        ] {
            let error = ClientTls::load(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wicket-tls-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
