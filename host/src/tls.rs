//! The serving certificate: from PEM files, or self-signed for development.
//!
//! `--self-signed` makes a throw-away CA and a serving certificate signed by
//! it, valid for `localhost`, `127.0.0.1`, `::1` and any extra names given,
//! and writes the CA to `ca.pem` so clients (curl, a webhook configuration's
//! `caBundle`) can trust it. A new CA is made at every start.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files: a certificate chain and its private key.
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A fresh CA and serving certificate, the CA written to `dir/ca.pem`.
    SelfSigned {
        /// Where to write `ca.pem`.
        dir: PathBuf,
        /// Names and addresses to add to `localhost`, `127.0.0.1` and `::1`.
        extra_names: Vec<String>,
    },
}

/// A ready TLS configuration.
pub struct Tls {
    /// The rustls configuration (ALPN: h2, http/1.1).
    pub config: Arc<ServerConfig>,
    /// The CA file clients should trust, when self-signed.
    pub ca_file: Option<PathBuf>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read PEM from {}", .0.display())]
    Pem(PathBuf, #[source] rustls::pki_types::pem::Error),
    /// The certificate file holds no certificate.
    #[error("{} contains no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// rustls refused the certificate or key.
    #[error("the certificate and key are not usable")]
    Rustls(#[from] rustls::Error),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate")]
    Generate(#[from] rcgen::Error),
    /// Writing the CA file failed.
    #[error("cannot write {}", .0.display())]
    Write(PathBuf, #[source] io::Error),
}

/// Builds the TLS configuration from `source`.
pub fn load(source: &TlsSource) -> Result<Tls, TlsError> {
    let (chain, key, ca_file) = match source {
        TlsSource::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| TlsError::Pem(cert.clone(), err))?;
            if chain.is_empty() {
                return Err(TlsError::NoCertificate(cert.clone()));
            }
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|err| TlsError::Pem(key.clone(), err))?;
            (chain, key, None)
        }
        TlsSource::SelfSigned { dir, extra_names } => {
            let (chain, key, ca_file) = self_signed(dir, extra_names)?;
            (chain, key, Some(ca_file))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        ca_file,
    })
}

type Credentials = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    PathBuf,
);

/// Makes a CA and a serving certificate, writes the CA to `dir/ca.pem`.
fn self_signed(dir: &Path, extra_names: &[String]) -> Result<Credentials, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "Wicket self-signed CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(extra_names.iter().cloned());
    let mut leaf = CertificateParams::new(names)?;
    leaf.distinguished_name.push(DnType::CommonName, "wicket");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    fs::create_dir_all(dir).map_err(|err| TlsError::Write(dir.to_owned(), err))?;
    let ca_file = dir.join("ca.pem");
    fs::write(&ca_file, ca_cert.pem()).map_err(|err| TlsError::Write(ca_file.clone(), err))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    Ok((vec![leaf_cert.der().clone()], key, ca_file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    #[test]
    fn self_signed_ca_verifies_the_serving_certificate_for_every_name() {
        let dir = std::env::temp_dir().join(format!("wicket-tls-test-{}", std::process::id()));
        let (chain, _key, ca_file) =
            self_signed(&dir, &["wicket.wicket-system.svc".to_owned()]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&ca_file).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let verify = |name: &str| {
            let name = ServerName::try_from(name.to_owned()).unwrap();
            verifier.verify_server_cert(&chain[0], &[], &name, &[], UnixTime::now())
        };
        for name in ["localhost", "127.0.0.1", "::1", "wicket.wicket-system.svc"] {
            assert!(verify(name).is_ok(), "{name}");
        }
        assert!(verify("example.com").is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
