//! Certificate authorities made by tests, for serving Wicket from files.

use std::path::Path;

/// A CA that issues serving certificates.
pub struct TestCa {
    /// The CA certificate (PEM), what clients trust.
    pub cert_pem: String,
    /// The CA's private key (PEM), for tests that hand a CA to Wicket.
    pub key_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A serving certificate and its key, as PEM.
pub struct Pair {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

impl TestCa {
    /// A new CA.
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert_pem = params.self_signed(&key).expect("CA certificate").pem();
        TestCa {
            cert_pem,
            key_pem: key.serialize_pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate for `127.0.0.1` signed by this CA.
    pub fn issue(&self) -> Pair {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &self.issuer)
            .expect("certificate");
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.cert_pem).expect("write CA file");
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}
