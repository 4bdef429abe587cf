//! The serving certificate, kept valid while Wicket runs.
//!
//! Three sources:
//! - **given files** (`--tls-cert`, `--tls-key`, e.g. from cert-manager):
//!   read again whenever their folder changes (a file replaced, a Secret
//!   volume's `..data` swap), on SIGHUP and every minute;
//! - **Wicket's own CA in a folder** (`--self-signed`): a CA and serving
//!   certificate kept in `--tls-dir` and reused on the next start;
//! - **Wicket's own CA in a Secret** (`--cert-secret`): shared by every
//!   replica ([`secret`]).
//!
//! Wicket's own certificates are renewed as [`authority`] says, checked
//! every 12 hours and on SIGHUP.
//!
//! # Guarantees
//! Each handshake is served whichever certificate is current when it starts
//! ([`live::LiveCert`]), so a rotation fails no handshake. A new pair that
//! does not parse or whose key is not the certificate's is logged and never
//! served: the previous pair keeps serving.

pub mod authority;
mod dir;
mod error;
mod files;
mod live;
mod pem;
mod secret;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::sync::{Notify, watch};
use tokio::task::JoinError;

use crate::watch::DirWatch;
use authority::Material;
pub use dir::TRUST_FILE;
pub use error::TlsError;
use files::CertFiles;
pub use live::LiveCert;
use live::Loaded;
pub use pem::PemError;
use secret::CertSecret;
pub use secret::SecretError;

/// How often given files are re-read without a notification.
const FILES_RECHECK: Duration = Duration::from_secs(60);
/// How often Wicket's own certificates are checked for renewal.
const RENEWAL_CHECK: Duration = Duration::from_secs(12 * 60 * 60);

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, followed for changes.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
        /// The CA that signed them, when known: the `caBundle` to register.
        ca: Option<PathBuf>,
    },
    /// Wicket's own CA, kept in `dir`.
    SelfSigned {
        /// Where the CA, the serving pair and `ca.pem` are kept.
        dir: PathBuf,
        /// The names the serving certificate is valid for.
        names: Vec<String>,
    },
    /// Wicket's own CA, kept in a Secret shared by the replicas.
    Secret {
        /// The Secret's name.
        name: String,
        /// Its namespace (Wicket's).
        namespace: String,
        /// The names the serving certificate is valid for.
        names: Vec<String>,
    },
}

impl TlsSource {
    /// Whether loading it needs the Kubernetes API.
    pub fn needs_cluster(&self) -> bool {
        matches!(self, TlsSource::Secret { .. })
    }
}

/// The names every self-signed certificate is valid for: clients on the
/// same machine.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// TLS ready to serve, and the task that keeps it fresh.
pub struct Tls {
    /// The rustls configuration (ALPN: h2, http/1.1), its certificate live.
    pub config: Arc<ServerConfig>,
    /// The PEM bundle clients should trust (a webhook's `caBundle`), when
    /// known; it changes on a CA rollover or a new CA file.
    pub trust: watch::Receiver<Option<String>>,
    /// Where the trust bundle is written, when Wicket made it.
    pub trust_file: Option<PathBuf>,
    /// Keeps the certificate fresh; see [`Keeper::run`].
    pub keeper: Keeper,
    /// The certificate served now.
    pub certificate: Arc<LiveCert>,
}

/// Renews or reloads the certificate; the server runs [`Keeper::run`].
pub struct Keeper {
    source: Source,
    live: Arc<LiveCert>,
    trust: watch::Sender<Option<String>>,
    /// Armed before start-up ends, so a change right after it is seen.
    changes: DirWatch,
}

enum Source {
    /// On this machine: read (and written) with blocking file calls.
    Local(LocalSource),
    Secret {
        secret: Box<CertSecret>,
        served: Option<Material>,
    },
}

/// A certificate source on this machine's files.
enum LocalSource {
    Files(CertFiles),
    SelfSigned {
        dir: PathBuf,
        names: Vec<String>,
        served: Option<Material>,
    },
}

/// Loads the first certificate from `source` (a Secret through `client`);
/// an error here stops start-up.
pub async fn start(
    source: &TlsSource,
    client_ca: Option<&Path>,
    client: Option<kube::Client>,
) -> Result<Tls, TlsError> {
    let (source, trust_file) = match source {
        TlsSource::Files { cert, key, ca } => (
            Source::Local(LocalSource::Files(CertFiles::new(
                cert.clone(),
                key.clone(),
                ca.clone(),
            ))),
            None,
        ),
        TlsSource::SelfSigned { dir, names } => (
            Source::Local(LocalSource::SelfSigned {
                dir: dir.clone(),
                names: names.clone(),
                served: None,
            }),
            Some(dir.join(dir::TRUST_FILE)),
        ),
        TlsSource::Secret {
            name,
            namespace,
            names,
        } => {
            let client = client.ok_or(TlsError::NoClient)?;
            let secret = Box::new(CertSecret::new(client, namespace, name, names.clone()));
            (
                Source::Secret {
                    secret,
                    served: None,
                },
                None,
            )
        }
    };
    let (source, first) = source.load().await.map_err(TlsError::Stopped)?;
    let first = first?;
    let live = Arc::new(LiveCert::new(first.key));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|error| TlsError::Read(path.into(), error))?;
            let roots = pem::roots(&pem).map_err(|error| TlsError::ClientCa(path.into(), error))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(TlsError::ClientVerifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(live.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let (trust_sender, trust_receiver) = watch::channel(first.trust);
    let changes = match &source {
        Source::Local(LocalSource::Files(files)) => {
            DirWatch::new(&files.folders()).unwrap_or_else(|error| {
                tracing::error!(
                    error = %crate::text::with_causes(&TlsError::Watch(error)),
                    "certificate changes are picked up on SIGHUP and every minute only"
                );
                DirWatch::periodic()
            })
        }
        _ => DirWatch::periodic(),
    };
    Ok(Tls {
        config: Arc::new(config),
        trust: trust_receiver,
        trust_file,
        keeper: Keeper {
            source,
            live: live.clone(),
            trust: trust_sender,
            changes,
        },
        certificate: live,
    })
}

impl Source {
    /// The pair to serve now and the trust bundle. Reading files, `fsync`
    /// and key generation run on a blocking thread, never on an async
    /// worker that serves reviews: a local source goes there and comes back.
    async fn load(self) -> Result<(Source, Result<Loaded, TlsError>), JoinError> {
        match self {
            Source::Local(mut local) => {
                tokio::task::spawn_blocking(move || {
                    let loaded = local.load();
                    (Source::Local(local), loaded)
                })
                .await
            }
            Source::Secret { secret, mut served } => {
                let loaded = match secret.load().await {
                    Ok(material) => loaded(material, &mut served),
                    Err(error) => Err(error.into()),
                };
                Ok((Source::Secret { secret, served }, loaded))
            }
        }
    }
}

impl LocalSource {
    fn load(&mut self) -> Result<Loaded, TlsError> {
        match self {
            LocalSource::Files(files) => files.read(),
            LocalSource::SelfSigned { dir, names, served } => {
                let stored = dir::read(dir)?;
                let now = SystemTime::now();
                let (material, reissued) = authority::refresh(stored.as_ref(), names, now)?;
                if let Some(why) = &reissued {
                    dir::write(dir, &material, &material.trust_bundle(now))?;
                    tracing::info!(dir = %dir.display(), reason = %why, "issued Wicket's certificates");
                }
                loaded(material, served)
            }
        }
    }
}

/// Wicket's own `material` to serve, `changed` unless it was `served`.
fn loaded(material: Material, served: &mut Option<Material>) -> Result<Loaded, TlsError> {
    let key = pem::certified_key(material.cert.as_bytes(), material.key.as_bytes())
        .map_err(TlsError::Issued)?;
    let trust = material.trust_bundle(SystemTime::now());
    let changed = served.as_ref() != Some(&material);
    *served = Some(material);
    Ok(Loaded {
        key,
        trust: Some(trust),
        changed,
    })
}

impl Keeper {
    /// Reloads or renews the certificate when the files change, on `wake`
    /// (SIGHUP) and periodically, until the task running it is stopped. A failure is
    /// logged and the current certificate keeps serving.
    pub async fn run(self, wake: Arc<Notify>) {
        let period = match &self.source {
            Source::Local(LocalSource::Files(_)) => FILES_RECHECK,
            Source::Local(LocalSource::SelfSigned { .. }) | Source::Secret { .. } => RENEWAL_CHECK,
        };
        let mut source = self.source;
        loop {
            self.changes.settled(period, &wake).await;
            let loaded;
            (source, loaded) = match source.load().await {
                Ok(done) => done,
                Err(error) => {
                    // A panic, or the runtime shutting down: no source to go on with.
                    tracing::error!(%error, "the certificate keeper stopped");
                    return;
                }
            };
            match loaded {
                Ok(Loaded {
                    key,
                    trust,
                    changed: true,
                }) => {
                    self.live.replace(key);
                    self.trust.send_if_modified(|current| {
                        let modified = *current != trust;
                        *current = trust;
                        modified
                    });
                    tracing::info!("serving a new certificate");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(
                    error = %crate::text::with_causes(&error),
                    "certificate not reloaded; the current one keeps serving"
                ),
            }
        }
    }
}
