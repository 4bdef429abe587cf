//! `--cert-secret NAME`: Wicket's CA and serving certificate kept in a
//! Secret in Wicket's namespace, so every replica serves from one CA and the
//! registered `caBundle` is the same for all.
//!
//! # Guarantees
//! - The first replica to find no Secret creates it; a replica whose create
//!   loses the race (409) reads the winner's.
//! - A renewal is written with the `resourceVersion` it read; a replica
//!   whose update loses (409) reads again and serves what won.
//! - The Secret is `kubernetes.io/tls` (`tls.crt`, `tls.key`) with `ca.crt`,
//!   `ca.key` and, during a CA rollover, `ca-previous.crt`. A Secret of that
//!   name without a CA and its key is someone else's and is never written.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use super::authority::part::{CA_CERT, CA_KEY, CERT, KEY, PREVIOUS_CA};
use super::authority::{self, Material};

/// Races lost in a row before giving up until the next check.
const ATTEMPTS: usize = 3;

/// The Secret and the names its serving certificate must be valid for.
pub struct CertSecret {
    api: Api<Secret>,
    name: String,
    names: Vec<String>,
}

/// Why the Secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The API server refused or could not be reached.
    #[error("cannot {0} Secret {1}")]
    Api(&'static str, String, #[source] kube::Error),
    /// Other replicas kept winning.
    #[error("Secret {0} kept changing while it was being renewed")]
    Contended(String),
    /// New certificates could not be issued.
    #[error("cannot issue Wicket's certificates")]
    Issue(#[from] authority::IssueError),
    /// A Secret of that name that is not Wicket's: it is never overwritten.
    #[error(
        "Secret {0} exists but holds no ca.crt and ca.key: it is not Wicket's; name another with --cert-secret"
    )]
    Foreign(String),
}

impl CertSecret {
    /// The Secret `name` in `namespace`, for a certificate valid for `names`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        names: Vec<String>,
    ) -> CertSecret {
        CertSecret {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            names,
        }
    }

    /// The material to serve: the Secret's, created or renewed if needed.
    pub async fn load(&self) -> Result<Material, SecretError> {
        for _ in 0..ATTEMPTS {
            let live = self
                .api
                .get_opt(&self.name)
                .await
                .map_err(|error| self.failed("read", error))?;
            let stored = match &live {
                Some(secret) => {
                    Some(material(secret).ok_or_else(|| SecretError::Foreign(self.name.clone()))?)
                }
                None => None,
            };
            let (wanted, reissued) =
                authority::refresh(stored.as_ref(), &self.names, SystemTime::now())?;
            let Some(why) = reissued else {
                return Ok(wanted);
            };
            let written = match live {
                None => {
                    let secret = secret(&self.name, &wanted, None);
                    self.api.create(&PostParams::default(), &secret).await
                }
                Some(live) => {
                    let secret = secret(&self.name, &wanted, live.metadata.resource_version);
                    self.api
                        .replace(&self.name, &PostParams::default(), &secret)
                        .await
                }
            };
            match written {
                Ok(_) => {
                    tracing::info!(secret = %self.name, reason = %why, "issued Wicket's certificates");
                    return Ok(wanted);
                }
                // Another replica wrote first: serve what it wrote.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    tracing::info!(secret = %self.name, "another replica wrote the certificates first; reading them");
                }
                Err(error) => return Err(self.failed("write", error)),
            }
        }
        Err(SecretError::Contended(self.name.clone()))
    }

    fn failed(&self, action: &'static str, error: kube::Error) -> SecretError {
        SecretError::Api(action, self.name.clone(), error)
    }
}

/// The material in a Secret, if it holds a CA and its key.
fn material(secret: &Secret) -> Option<Material> {
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
    };
    Some(Material {
        ca_cert: text(CA_CERT)?,
        ca_key: text(CA_KEY)?,
        previous_ca: text(PREVIOUS_CA),
        // A missing pair is re-issued from the CA, like an expired one.
        cert: text(CERT).unwrap_or_default(),
        key: text(KEY).unwrap_or_default(),
    })
}

fn secret(name: &str, material: &Material, resource_version: Option<String>) -> Secret {
    let mut data = BTreeMap::new();
    let mut put = |key: &str, text: &str| {
        data.insert(key.to_owned(), ByteString(text.as_bytes().to_vec()));
    };
    put(CA_CERT, &material.ca_cert);
    put(CA_KEY, &material.ca_key);
    put(CERT, &material.cert);
    put(KEY, &material.key);
    if let Some(previous) = &material.previous_ca {
        put(PREVIOUS_CA, previous);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            resource_version,
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "wicket".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}
