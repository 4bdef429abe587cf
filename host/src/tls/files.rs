//! Given certificate files (`--tls-cert`, `--tls-key`, e.g. from
//! cert-manager through a Secret volume): read them, and read them again
//! when they change, keeping the served pair whenever the new one is bad.

use std::path::{Path, PathBuf};

use rustls::sign::CertifiedKey;

use super::error::TlsError;
use super::live::Loaded;
use super::pem;
use crate::watch::parent_of;

/// The certificate, key and optional CA files, and what was last served.
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
    /// The files' bytes and the pair they made, to skip reloads that change
    /// nothing.
    served: Option<Served>,
}

struct Served {
    cert: Vec<u8>,
    key: Vec<u8>,
    certified: CertifiedKey,
    ca: Option<String>,
}

impl CertFiles {
    /// The files to serve; nothing is read yet.
    pub fn new(cert: PathBuf, key: PathBuf, ca: Option<PathBuf>) -> CertFiles {
        CertFiles {
            cert,
            key,
            ca,
            served: None,
        }
    }

    /// The folders holding the files: a change in them may be a new pair
    /// (a Secret volume swaps its `..data` link, not the files).
    pub fn folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = [Some(&self.cert), Some(&self.key), self.ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|file| parent_of(file).to_owned())
            .collect();
        folders.sort();
        folders.dedup();
        folders
    }

    /// The pair on disk, `changed` when it differs from the one served. A
    /// bad pair is an error and leaves what is served as it was.
    pub fn read(&mut self) -> Result<Loaded, TlsError> {
        let cert = read(&self.cert)?;
        let key = read(&self.key)?;
        let ca = match &self.ca {
            Some(path) => {
                Some(String::from_utf8(read(path)?).map_err(|_| TlsError::NotText(path.clone()))?)
            }
            None => None,
        };
        if let Some(served) = &self.served
            && served.cert == cert
            && served.key == key
            && served.ca == ca
        {
            return Ok(Loaded {
                key: served.certified.clone(),
                trust: ca,
                changed: false,
            });
        }
        let certified = pem::certified_key(&cert, &key).map_err(|error| TlsError::Pair {
            cert: self.cert.clone(),
            key: self.key.clone(),
            error,
        })?;
        self.served = Some(Served {
            cert,
            key,
            certified: certified.clone(),
            ca: ca.clone(),
        });
        Ok(Loaded {
            key: certified,
            trust: ca,
            changed: true,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read(path.to_owned(), error))
}
