//! Wicket's own certificate authority: decides when the CA or the serving
//! certificate must be (re)issued, and issues them. Pure: the time is an
//! argument, storage is the caller's.
//!
//! # Lifetimes
//! ECDSA P-256 keys; the CA lives 10 years, the serving certificate 1 year
//! and is renewed 60 days before it expires (Kubewarden's and Gatekeeper's
//! controllers do the same). The CA is replaced once it has less than a
//! serving certificate's life (plus the renewal margin) left; the old CA stays
//! in the trust bundle until it expires, so clients holding the old bundle and
//! replicas still serving a certificate from the old CA keep working.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::pem::{self, PemError};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a CA is valid.
pub const CA_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 60 * 60);
/// How long a serving certificate is valid.
pub const SERVING_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A serving certificate is renewed when it expires within this margin.
pub const RENEW_BEFORE: Duration = Duration::from_secs(60 * 24 * 60 * 60);
/// Certificates are valid from this long before they are made, for clocks
/// slightly behind ours.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// The names of a [`Material`]'s parts, as files in `--tls-dir` and keys in
/// the `--cert-secret` Secret (the `tls.*` pair as `kubernetes.io/tls` names
/// them).
pub mod part {
    /// The current CA certificate.
    pub const CA_CERT: &str = "ca.crt";
    /// The current CA's key.
    pub const CA_KEY: &str = "ca.key";
    /// The CA being replaced, during a rollover.
    pub const PREVIOUS_CA: &str = "ca-previous.crt";
    /// The serving certificate.
    pub const CERT: &str = "tls.crt";
    /// The serving certificate's key.
    pub const KEY: &str = "tls.key";
}

/// Everything Wicket's CA needs to serve and to be trusted, as PEM text.
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    /// The current CA certificate.
    pub ca_cert: String,
    /// The current CA's private key (PKCS#8).
    pub ca_key: String,
    /// The CA being replaced, still trusted until it expires.
    pub previous_ca: Option<String>,
    /// The serving certificate, signed by the current CA.
    pub cert: String,
    /// The serving certificate's private key (PKCS#8).
    pub key: String,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material").finish_non_exhaustive()
    }
}

impl Material {
    /// The CAs clients should trust at `now`: the current one, and the
    /// previous one while it has not expired. This is the `caBundle`.
    pub fn trust_bundle(&self, now: SystemTime) -> String {
        let mut bundle = self.ca_cert.clone();
        if let Some(previous) = &self.previous_ca
            && expiry(previous).is_ok_and(|expires| expires > now)
        {
            bundle.push_str(previous);
        }
        bundle
    }
}

/// Why the material was (re)issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reissue {
    /// There was none.
    #[error("no CA yet")]
    Missing,
    /// The CA could not be read or expires too soon; a new CA was made.
    #[error("the CA is unreadable or expires within {} days", (SERVING_LIFETIME + RENEW_BEFORE).as_secs() / DAY.as_secs())]
    Authority,
    /// The serving certificate is not valid for every name from the CA for
    /// the next 60 days (expiring, other names, another CA, unreadable).
    #[error("the serving certificate is not valid for every name for 60 more days: {0}")]
    Serving(String),
}

/// Why issuing failed.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// rcgen refused the parameters or key.
    #[error("cannot issue a certificate")]
    Rcgen(#[from] rcgen::Error),
    /// The material just made does not parse back.
    #[error("the issued certificate does not parse")]
    Pem(#[from] PemError),
}

/// The material to serve at `now` for `names`: `current` unchanged when it is
/// still good, else renewed, with the reason.
pub fn refresh(
    current: Option<&Material>,
    names: &[String],
    now: SystemTime,
) -> Result<(Material, Option<Reissue>), IssueError> {
    let Some(current) = current else {
        return Ok((new_authority(None, names, now)?, Some(Reissue::Missing)));
    };
    let ca_good = expiry(&current.ca_cert)
        .is_ok_and(|expires| expires > now + SERVING_LIFETIME + RENEW_BEFORE)
        && KeyPair::from_pem(&current.ca_key).is_ok();
    if !ca_good {
        let renewed = new_authority(Some(&current.ca_cert), names, now)?;
        return Ok((renewed, Some(Reissue::Authority)));
    }
    match serving_problem(current, names, now + RENEW_BEFORE) {
        None => Ok((current.clone(), None)),
        Some(problem) => {
            let (cert, key) = issue_serving(&current.ca_cert, &current.ca_key, names, now)?;
            let renewed = Material {
                cert,
                key,
                ..current.clone()
            };
            Ok((renewed, Some(Reissue::Serving(problem))))
        }
    }
}

/// A new CA (the old one, if any, kept as previous) and a serving certificate.
fn new_authority(
    previous_ca: Option<&str>,
    names: &[String],
    now: SystemTime,
) -> Result<Material, IssueError> {
    let ca_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "Wicket CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, now, CA_LIFETIME);
    let ca_cert = params.self_signed(&ca_key)?.pem();
    let ca_key = ca_key.serialize_pem();
    let (cert, key) = issue_serving(&ca_cert, &ca_key, names, now)?;
    Ok(Material {
        ca_cert,
        ca_key,
        previous_ca: previous_ca.map(str::to_owned),
        cert,
        key,
    })
}

/// A serving certificate for `names`, signed by the CA.
fn issue_serving(
    ca_cert: &str,
    ca_key: &str,
    names: &[String],
    now: SystemTime,
) -> Result<(String, String), IssueError> {
    let issuer = Issuer::from_ca_cert_pem(ca_cert, KeyPair::from_pem(ca_key)?)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, "wicket");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, SERVING_LIFETIME);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn set_validity(params: &mut CertificateParams, now: SystemTime, lifetime: Duration) {
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + lifetime).into();
}

/// Why the serving certificate would not be accepted at `at` for one of
/// `names` by a client trusting the current CA, or `None` when it would be.
fn serving_problem(material: &Material, names: &[String], at: SystemTime) -> Option<String> {
    let checked = || -> Result<(), String> {
        pem::certified_key(material.cert.as_bytes(), material.key.as_bytes())
            .map_err(|error| error.to_string())?;
        let ca = CertificateDer::from_pem_slice(material.ca_cert.as_bytes())
            .map_err(|error| error.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).map_err(|error| error.to_string())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::ring::default_provider().into(),
        )
        .build()
        .map_err(|error| error.to_string())?;
        let leaf = CertificateDer::from_pem_slice(material.cert.as_bytes())
            .map_err(|error| error.to_string())?;
        let at = UnixTime::since_unix_epoch(
            at.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        for name in names {
            let server_name =
                ServerName::try_from(name.as_str()).map_err(|error| format!("{name}: {error}"))?;
            verifier
                .verify_server_cert(&leaf, &[], &server_name, &[], at)
                .map_err(|error| format!("{name}: {error}"))?;
        }
        Ok(())
    };
    checked().err()
}

/// When the first certificate in `pem_text` expires.
pub fn expiry(pem_text: &str) -> Result<SystemTime, PemError> {
    let der = CertificateDer::from_pem_slice(pem_text.as_bytes()).map_err(PemError::Pem)?;
    der_expiry(&der)
}

/// When the DER certificate `der` expires.
pub fn der_expiry(der: &[u8]) -> Result<SystemTime, PemError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|_| PemError::NotACertificate)?;
    let seconds = parsed.validity().not_after.timestamp();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["localhost", "127.0.0.1", "wicket.wicket-system.svc"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn first_refresh_makes_a_ca_and_a_certificate_for_every_name() {
        let now = SystemTime::now();
        let (material, why) = refresh(None, &names(), now).unwrap();
        assert_eq!(why, Some(Reissue::Missing));
        assert_eq!(serving_problem(&material, &names(), now), None);
        let other = ["example.com".to_owned()];
        assert!(serving_problem(&material, &other, now).is_some());
        assert!(expiry(&material.ca_cert).unwrap() > now + CA_LIFETIME - DAY);
        assert_eq!(material.trust_bundle(now), material.ca_cert);
    }

    #[test]
    fn good_material_is_kept_as_it_is() {
        let now = SystemTime::now();
        let (material, _) = refresh(None, &names(), now).unwrap();
        let later = now + 200 * DAY;
        let (again, why) = refresh(Some(&material), &names(), later).unwrap();
        assert_eq!(why, None);
        assert!(again == material);
    }

    #[test]
    fn the_serving_certificate_is_renewed_60_days_before_expiry_with_the_same_ca() {
        let now = SystemTime::now();
        let (material, _) = refresh(None, &names(), now).unwrap();
        let late = now + SERVING_LIFETIME - RENEW_BEFORE + DAY;
        let (renewed, why) = refresh(Some(&material), &names(), late).unwrap();
        assert!(matches!(why, Some(Reissue::Serving(_))), "{why:?}");
        assert_eq!(renewed.ca_cert, material.ca_cert);
        assert_ne!(renewed.cert, material.cert);
        assert_eq!(
            serving_problem(&renewed, &names(), late + RENEW_BEFORE),
            None
        );
    }

    #[test]
    fn a_new_name_reissues_the_serving_certificate() {
        let now = SystemTime::now();
        let (material, _) = refresh(None, &names(), now).unwrap();
        let mut more = names();
        more.push("wicket.wicket-system.svc.cluster.local".into());
        let (renewed, why) = refresh(Some(&material), &more, now).unwrap();
        assert!(matches!(why, Some(Reissue::Serving(_))), "{why:?}");
        assert_eq!(renewed.ca_cert, material.ca_cert);
        assert_eq!(serving_problem(&renewed, &more, now), None);
    }

    #[test]
    fn an_ageing_ca_is_rolled_over_and_both_are_trusted_until_the_old_expires() {
        let now = SystemTime::now();
        let (material, _) = refresh(None, &names(), now).unwrap();
        let late = now + CA_LIFETIME - SERVING_LIFETIME;
        let (rolled, why) = refresh(Some(&material), &names(), late).unwrap();
        assert_eq!(why, Some(Reissue::Authority));
        assert_ne!(rolled.ca_cert, material.ca_cert);
        assert_eq!(
            rolled.previous_ca.as_deref(),
            Some(material.ca_cert.as_str())
        );
        let bundle = rolled.trust_bundle(late);
        assert!(bundle.contains(&material.ca_cert) && bundle.contains(&rolled.ca_cert));
        assert_eq!(rolled.trust_bundle(now + CA_LIFETIME + DAY), rolled.ca_cert);
    }

    #[test]
    fn an_unreadable_ca_key_makes_a_new_authority() {
        let now = SystemTime::now();
        let (mut material, _) = refresh(None, &names(), now).unwrap();
        material.ca_key = "garbage".into();
        let (_, why) = refresh(Some(&material), &names(), now).unwrap();
        assert_eq!(why, Some(Reissue::Authority));
    }
}
