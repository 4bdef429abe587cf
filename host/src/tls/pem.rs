//! A certificate chain and its private key, from PEM text to what rustls
//! serves, refusing a key that does not belong to the certificate; and CA
//! certificates to verify clients against.

use rustls::RootCertStore;
use rustls::pki_types::pem::{self as pki_pem, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// Not PEM, or no item of the expected kind.
    #[error("not PEM")]
    Pem(#[source] pki_pem::Error),
    /// The certificate text holds no certificate.
    #[error("no certificate in the certificate file")]
    NoCertificate,
    /// A PEM block that is not an X.509 certificate.
    #[error("not an X.509 certificate")]
    NotACertificate,
    /// rustls refused the key, or the key is not the certificate's.
    #[error("the key cannot be used with the certificate")]
    Key(#[source] rustls::Error),
}

/// The CA certificates in `pem`, as roots to verify clients against.
pub fn roots(pem: &[u8]) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(PemError::Pem)?;
        roots.add(cert).map_err(|_| PemError::NotACertificate)?;
    }
    match roots.is_empty() {
        true => Err(PemError::NoCertificate),
        false => Ok(roots),
    }
}

/// The chain in `chain_pem` (leaf first) with the key in `key_pem`, checked
/// to belong together.
pub fn certified_key(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, PemError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::Pem)?;
    if chain.is_empty() {
        return Err(PemError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(PemError::Pem)?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(PemError::Key)?;
    // `from_der` lets a key whose public half is unknown pass; refuse it too,
    // so a half-written pair never replaces a good one.
    certified.keys_match().map_err(PemError::Key)?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn client_cas_need_a_certificate() {
        let (cert, _) = pair("ca");
        assert_eq!(roots(cert.as_bytes()).unwrap().len(), 1);
        assert!(matches!(roots(b""), Err(PemError::NoCertificate)));
        assert!(
            roots(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n").is_err()
        );
    }

    #[test]
    fn a_matching_pair_is_accepted() {
        let (cert, key) = pair("a");
        assert!(certified_key(cert.as_bytes(), key.as_bytes()).is_ok());
    }

    #[test]
    fn a_mismatched_half_written_or_empty_pair_is_refused() {
        let (cert, _) = pair("a");
        let (_, other_key) = pair("b");
        assert!(matches!(
            certified_key(cert.as_bytes(), other_key.as_bytes()),
            Err(PemError::Key(_))
        ));
        let (_, key) = pair("c");
        let half = &cert.as_bytes()[..cert.len() / 2];
        assert!(certified_key(half, key.as_bytes()).is_err());
        assert!(matches!(
            certified_key(b"", key.as_bytes()),
            Err(PemError::NoCertificate)
        ));
        assert!(matches!(
            certified_key(cert.as_bytes(), b""),
            Err(PemError::Pem(_))
        ));
    }
}
