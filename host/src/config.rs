//! What `wicket serve` needs to run, with defaults usable in tests.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use crate::body::BodyLimits;
use crate::cluster::live::LiveConfig;
use crate::connections::ConnectionLimits;
use crate::plugin::RuntimeConfig;
use crate::tls::TlsSource;
use crate::webhook::Registration;

/// Every interface, on the port webhook servers conventionally use.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8443));

/// The ops listener: loopback, so only what runs beside Wicket (the
/// kubelet's probes reach a pod's address: the deploy manifests say 0.0.0.0).
pub const DEFAULT_OPS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9090));

/// Where `--self-signed` writes `ca.pem` unless told otherwise.
pub const DEFAULT_TLS_DIR: &str = "wicket-tls";

/// Configuration of a serving Wicket.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
    /// Address of the plain-HTTP ops listener (`/plugins`, probes).
    pub ops_listen: SocketAddr,
    /// The folder of `NAME.wasm` plugins and their `NAME.toml` manifests.
    pub plugins_dir: PathBuf,
    /// The serving certificate.
    pub tls: TlsSource,
    /// Only clients presenting a certificate signed by a CA in this file
    /// complete the handshake (`--client-ca`).
    pub client_ca: Option<PathBuf>,
    /// Request bodies: their largest size, their byte budget, their read
    /// timeout.
    pub bodies: BodyLimits,
    /// The webhook listener's connection budget.
    pub connections: ConnectionLimits,
    /// Instance pool sizing.
    pub runtime: RuntimeConfig,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Keep the webhook configurations registered (`--register`).
    pub register: Option<Registration>,
    /// A folder of objects served to plugins as the cluster
    /// (`--cluster-objects`).
    pub cluster_objects: Option<PathBuf>,
    /// The watch caches, when no folder is served and a client to the API
    /// server can be built.
    pub cluster_live: LiveConfig,
}

pub use crate::cluster::live::{
    DEFAULT_MEMORY_MIB as DEFAULT_CLUSTER_MEMORY_MIB,
    DEFAULT_SYNC_TIMEOUT as DEFAULT_CLUSTER_SYNC_TIMEOUT,
};

impl ServeConfig {
    /// Serves `plugins_dir` on `0.0.0.0:8443` with a self-signed certificate
    /// whose CA goes to `./wicket-tls/ca.pem`.
    pub fn new(plugins_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            listen: DEFAULT_LISTEN,
            ops_listen: DEFAULT_OPS_LISTEN,
            plugins_dir,
            tls: TlsSource::SelfSigned {
                dir: PathBuf::from(DEFAULT_TLS_DIR),
                names: crate::tls::LOCAL_NAMES.map(str::to_owned).to_vec(),
            },
            client_ca: None,
            bodies: BodyLimits::default(),
            connections: ConnectionLimits::default(),
            runtime: RuntimeConfig::default(),
            shutdown_grace: Duration::from_secs(20),
            register: None,
            cluster_objects: None,
            cluster_live: LiveConfig::default(),
        }
    }
}
