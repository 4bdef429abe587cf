//! `--self-signed`: Wicket's CA and serving certificate kept in a folder
//! (`--tls-dir`), so a restart serves the same CA and a registered
//! `caBundle` stays valid.
//!
//! The folder holds `ca.crt` and `ca.key` (the CA), `ca-previous.crt` during
//! a CA rollover, `tls.crt` and `tls.key` (the serving pair), and `ca.pem`:
//! the CAs clients should trust (the `caBundle`). Keys are written `0600`;
//! every file is written to a temporary name and renamed into place, so a
//! crash never leaves half a key.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::authority::Material;
use super::authority::part::{CA_CERT, CA_KEY, CERT, KEY, PREVIOUS_CA};
use super::error::TlsError;

/// The file clients trust: every valid CA, current first.
pub const TRUST_FILE: &str = "ca.pem";

/// Reads the material in `dir`; `None` when there is none yet (no `ca.crt`).
/// A folder that holds a CA whose files cannot be read is an error, never a
/// reason to make a new CA silently.
pub fn read(dir: &Path) -> Result<Option<Material>, TlsError> {
    let Some(ca_cert) = read_optional(dir, CA_CERT)? else {
        return Ok(None);
    };
    let required = |name: &str| {
        read_optional(dir, name)?
            .ok_or_else(|| TlsError::Read(dir.join(name), io::ErrorKind::NotFound.into()))
    };
    let ca_key = required(CA_KEY)?;
    // A missing serving pair is re-issued from the CA, like an expired one.
    let cert = read_optional(dir, CERT)?.unwrap_or_default();
    let key = read_optional(dir, KEY)?.unwrap_or_default();
    Ok(Some(Material {
        ca_cert,
        ca_key,
        previous_ca: read_optional(dir, PREVIOUS_CA)?,
        cert,
        key,
    }))
}

/// Writes `material` to `dir`, and the trust bundle `trust` to `ca.pem`.
pub fn write(dir: &Path, material: &Material, trust: &str) -> Result<(), TlsError> {
    fs::create_dir_all(dir).map_err(|error| TlsError::Write(dir.to_owned(), error))?;
    write_file(dir, CA_KEY, &material.ca_key, true)?;
    write_file(dir, CA_CERT, &material.ca_cert, false)?;
    match &material.previous_ca {
        Some(previous) => write_file(dir, PREVIOUS_CA, previous, false)?,
        None => match fs::remove_file(dir.join(PREVIOUS_CA)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(TlsError::Write(dir.join(PREVIOUS_CA), error));
            }
            _ => {}
        },
    }
    write_file(dir, KEY, &material.key, true)?;
    write_file(dir, CERT, &material.cert, false)?;
    write_file(dir, TRUST_FILE, trust, false)
}

fn read_optional(dir: &Path, name: &str) -> Result<Option<String>, TlsError> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| TlsError::NotText(path)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(TlsError::Read(path, error)),
    }
}

fn write_file(dir: &Path, name: &str, text: &str, secret: bool) -> Result<(), TlsError> {
    let path = dir.join(name);
    let temporary: PathBuf = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if secret { 0o600 } else { 0o644 })
            .open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, &path)
    })();
    written.map_err(|error| TlsError::Write(path, error))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::SystemTime;

    use super::super::authority;
    use super::*;

    #[test]
    fn material_survives_a_round_trip_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let now = SystemTime::now();
        let (material, _) = authority::refresh(None, &["localhost".into()], now).unwrap();
        write(dir.path(), &material, &material.trust_bundle(now)).unwrap();
        assert!(read(dir.path()).unwrap().unwrap() == material);
        for (name, mode) in [(CA_KEY, 0o600), (KEY, 0o600), (CERT, 0o644)] {
            let meta = fs::metadata(dir.path().join(name)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
        assert_eq!(
            fs::read_to_string(dir.path().join(TRUST_FILE)).unwrap(),
            material.ca_cert
        );
    }

    #[test]
    fn a_ca_without_its_key_is_an_error_not_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CA_CERT), "x").unwrap();
        assert!(matches!(read(dir.path()), Err(TlsError::Read(..))));
    }
}
