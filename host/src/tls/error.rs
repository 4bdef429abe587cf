//! Why TLS could not be set up or renewed, whichever source failed.

use std::io;
use std::path::PathBuf;

use super::authority;
use super::pem::PemError;
use super::secret::SecretError;

/// Why TLS could not be set up or renewed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] io::Error),
    /// A file that should hold PEM text is not UTF-8.
    #[error("{} is not PEM text", .0.display())]
    NotText(PathBuf),
    /// A certificate and key that cannot be served together.
    #[error("cannot serve {} with {}", .cert.display(), .key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        error: PemError,
    },
    /// Issuing a certificate failed.
    #[error("cannot issue Wicket's certificates")]
    Issue(#[from] authority::IssueError),
    /// Material Wicket issued itself does not serve.
    #[error("the issued certificate cannot be served")]
    Issued(#[source] PemError),
    /// Writing a file failed.
    #[error("cannot write {}", .0.display())]
    Write(PathBuf, #[source] io::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration refused")]
    Rustls(#[from] rustls::Error),
    /// The `--client-ca` file holds no usable CA certificate.
    #[error("--client-ca {} holds no usable CA certificate", .0.display())]
    ClientCa(PathBuf, #[source] PemError),
    /// rustls refused the client CAs.
    #[error("cannot verify clients against --client-ca")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    /// The folders holding the files cannot be watched.
    #[error("cannot watch the certificate files' folders")]
    Watch(#[from] notify::Error),
    /// The Secret could not be read or written.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The task loading the certificate ended without an answer.
    #[error("the certificate could not be loaded")]
    Stopped(#[source] tokio::task::JoinError),
    /// A Secret source without a client for the API server.
    #[error("--cert-secret needs credentials for the API server")]
    NoClient,
}
