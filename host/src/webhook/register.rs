//! `wicket serve --register`: keeps the API server's two webhook
//! configurations equal to what this Wicket serves, with server-side apply
//! (field manager `wicket`).
//!
//! # Guarantees
//! - Written at start and whenever the rendered configurations change (a
//!   plugin or pipeline added, changed or removed, a new trust bundle); an
//!   object whose `wicket.dev/configuration-hash` already matches is not
//!   written, so replicas serving the same folder write once and agree.
//! - A failed write is retried with backoff; serving never waits for it.
//!
//! # Caveats
//! The configuration follows the replica that last started or changed: in
//! a rollout that changes the folder, new replicas register the new set as
//! they start, and an old replica that restarts meanwhile writes the old set
//! back until a new one starts or changes.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ClusterResourceScope;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::render::{self, Configurations, HASH_ANNOTATION, Registration};
use crate::registry::Registry;

/// The field manager of Wicket's writes.
pub const FIELD_MANAGER: &str = "wicket";
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Why a configuration was not written.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// No client configuration (kubeconfig or in-cluster service account).
    #[error("cannot configure a Kubernetes client")]
    Client(#[source] kube::Error),
    /// The API server refused or could not be reached.
    #[error("cannot apply {kind} {name}")]
    Apply {
        /// The object's kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        error: kube::Error,
    },
}

/// A client for the API server, from the environment (`KUBECONFIG`, else
/// `~/.kube/config`, else the pod's service account).
pub async fn client() -> Result<kube::Client, RegisterError> {
    kube::Client::try_default()
        .await
        .map_err(RegisterError::Client)
}

/// Keeps the configurations registered while Wicket runs.
pub async fn run(
    client: kube::Client,
    registry: Arc<Registry>,
    mut trust: watch::Receiver<Option<String>>,
    registration: Registration,
) {
    let mut reloads = registry.subscribe();
    let mut written: Option<Configurations> = None;
    let mut retry = FIRST_RETRY;
    loop {
        let snapshot = registry.snapshot();
        let bundle = trust.borrow_and_update().clone();
        let wanted = render::render(
            &snapshot.webhook_targets(),
            &registration,
            bundle.as_deref(),
        );
        if written.as_ref() != Some(&wanted) {
            match apply(&client, &wanted).await {
                Ok(()) => {
                    written = Some(wanted);
                    retry = FIRST_RETRY;
                }
                Err(error) => {
                    tracing::error!(
                        error = %crate::text::with_causes(&error),
                        retry_s = retry.as_secs(),
                        "webhook configurations not registered"
                    );
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LAST_RETRY);
                    continue;
                }
            }
        }
        tokio::select! {
            changed = reloads.changed() => if changed.is_err() { return },
            changed = trust.changed() => if changed.is_err() { return },
        }
    }
}

/// Applies both configurations, skipping one the API server already holds.
pub async fn apply(
    client: &kube::Client,
    configurations: &Configurations,
) -> Result<(), RegisterError> {
    apply_one(client, &configurations.mutating).await?;
    apply_one(client, &configurations.validating).await
}

async fn apply_one<K>(client: &kube::Client, object: &K) -> Result<(), RegisterError>
where
    K: k8s_openapi::Resource
        + kube::Resource<DynamicType = (), Scope = ClusterResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    let name = object.meta().name.clone().unwrap_or_default();
    let failed = |error| RegisterError::Apply {
        kind: <K as k8s_openapi::Resource>::KIND,
        name: name.clone(),
        error,
    };
    let hash = |object: &K| {
        object
            .meta()
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(HASH_ANNOTATION).cloned())
    };
    let live = api.get_opt(&name).await.map_err(failed)?;
    if live.is_some_and(|live| hash(&live) == hash(object)) {
        tracing::info!(kind = <K as k8s_openapi::Resource>::KIND, %name, "webhook configuration already up to date");
        return Ok(());
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object))
        .await
        .map_err(failed)?;
    tracing::info!(kind = <K as k8s_openapi::Resource>::KIND, %name, "webhook configuration applied");
    Ok(())
}
