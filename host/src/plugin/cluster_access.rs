//! What one plugin may read of the cluster: the kinds its manifest
//! declares, checked against what the operator allows when it loads (and
//! followed while it is loaded, when Wicket follows the API server), and
//! its reads answered from the host's objects, or why not, and counted. Its own file so
//! that the instance state holding it and the `cluster` import lending what
//! it found (`cluster`) both depend on it and not on each other.

use std::sync::Arc;
use std::time::Instant;

use super::bindings::cluster::ClusterError;
use super::manifest::cluster::Read;
use crate::cluster::allow::AllowList;
use crate::cluster::cache::{Cache, CacheKey, SyncState};
use crate::cluster::kind::KindKey;
use crate::cluster::reads::ReadTally;
use crate::cluster::selector::Selector;
use crate::cluster::{Cluster, ReadError};
use crate::document::Document;

/// What one plugin may read, and where from.
pub struct ClusterAccess {
    /// What its manifest declares (all allowed: checked at load).
    reads: Vec<Read>,
    /// What the operator allows, to tell a read of an undeclared kind
    /// that could never be declared.
    allow: AllowList,
    /// The objects.
    cluster: Arc<Cluster>,
    /// The live caches it holds a share of (released when dropped).
    followed: Vec<Arc<Cache>>,
    /// Its reads, counted.
    tally: Arc<ReadTally>,
}

/// A declared kind a plugin may not read: refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the manifest declares reads of {kind}, which the operator does not allow (--cluster-allow: {allowed})"
)]
pub struct NotAllowed {
    kind: KindKey,
    allowed: String,
}

impl ClusterAccess {
    /// The plugin `name`'s access to what `reads` declares, if `allow`
    /// allows all of it. When Wicket follows the API server, each declared
    /// kind is followed from now on (see [`ClusterAccess::synced`]).
    pub fn new(
        name: &str,
        reads: Vec<Read>,
        cluster: Arc<Cluster>,
        allow: &AllowList,
    ) -> Result<ClusterAccess, NotAllowed> {
        if let Some(read) = reads.iter().find(|read| !allow.allows(&read.kind)) {
            return Err(NotAllowed {
                kind: read.kind.clone(),
                allowed: allow.to_string(),
            });
        }
        let followed = match cluster.live() {
            Some(live) => reads.iter().map(|read| live.want(&key(read))).collect(),
            None => Vec::new(),
        };
        Ok(ClusterAccess {
            tally: cluster.reads_of(name),
            reads,
            allow: allow.clone(),
            cluster,
            followed,
        })
    }

    /// Waits until each followed kind's first list completed, or failed,
    /// or the live source's sync timeout passed: a plugin then serves
    /// anyway (its reads answer `not-synced`) and the late kinds are
    /// returned, to be told.
    pub async fn synced(&self) -> Vec<KindKey> {
        let Some(live) = self.cluster.live() else {
            return Vec::new();
        };
        let all = futures_util::future::join_all(self.followed.iter().map(|cache| cache.settled()));
        if tokio::time::timeout(live.sync_timeout, all).await.is_ok() {
            return Vec::new();
        }
        self.followed
            .iter()
            .filter(|cache| cache.state() == SyncState::Syncing)
            .map(|cache| cache.kind.clone())
            .collect()
    }

    /// `read`, counted with how it ended and how long it took.
    fn counted<T>(
        &self,
        read: impl FnOnce() -> Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        let started = Instant::now();
        let answer = read();
        let result = match &answer {
            Ok(_) => "ok",
            Err(ClusterError::NotDeclared(_)) => "not-declared",
            Err(ClusterError::NotAllowed(_)) => "not-allowed",
            Err(ClusterError::NotSynced(_)) => "not-synced",
            Err(ClusterError::Forbidden(_)) => "forbidden",
            Err(ClusterError::Unavailable(_)) => "unavailable",
            Err(ClusterError::Invalid(_)) => "invalid",
        };
        self.tally.record(result, started.elapsed());
        answer
    }

    /// The object `name` of the kind in `namespace`, if it exists.
    pub(super) fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Document>>, ClusterError> {
        self.counted(|| {
            let read = self.declared(api_version, kind)?;
            Ok(self
                .cluster
                .get(&read.kind, namespace, name, read.metadata_only)?)
        })
    }

    /// The objects of the kind in `namespace` (all, if `None`) that
    /// `label_selector` selects (all, if `None`).
    pub(super) fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Arc<Document>>, ClusterError> {
        self.counted(|| {
            let read = self.declared(api_version, kind)?;
            let selector = label_selector
                .map(Selector::parse)
                .transpose()
                .map_err(|error| ClusterError::Invalid(error.to_string()))?
                .unwrap_or_default();
            Ok(self
                .cluster
                .list(&read.kind, namespace, &selector, read.metadata_only)?)
        })
    }

    /// The objects of the kind whose declared index `index` holds `value`.
    pub(super) fn find(
        &self,
        api_version: &str,
        kind: &str,
        index: &str,
        value: &str,
    ) -> Result<Vec<Arc<Document>>, ClusterError> {
        self.counted(|| {
            let read = self.declared(api_version, kind)?;
            let path = read.indexes.get(index).ok_or_else(|| {
                ClusterError::NotDeclared(format!(
                    "{} declares no index {index:?} in the plugin's manifest",
                    read.kind
                ))
            })?;
            Ok(self
                .cluster
                .find(&read.kind, path, value, read.metadata_only)?)
        })
    }

    /// The declaration of the kind named `api_version` and `kind`; a kind
    /// it does not declare is `not-allowed` when the operator would refuse
    /// the declaration too, `not-declared` otherwise.
    fn declared(&self, api_version: &str, kind: &str) -> Result<&Read, ClusterError> {
        let key = KindKey::new(api_version, kind)
            .map_err(|error| ClusterError::Invalid(error.to_string()))?;
        if let Some(read) = self.reads.iter().find(|read| read.kind == key) {
            return Ok(read);
        }
        Err(match self.allow.allows(&key) {
            true => ClusterError::NotDeclared(format!(
                "{key} is not declared in the plugin's manifest ([cluster] read)"
            )),
            false => ClusterError::NotAllowed(format!(
                "the operator does not let plugins read {key} (--cluster-allow: {})",
                self.allow
            )),
        })
    }
}

/// The live cache a declaration reads.
fn key(read: &Read) -> CacheKey {
    (read.kind.clone(), read.metadata_only)
}

/// The plugin version is gone: the kinds only it read are no longer
/// followed.
impl Drop for ClusterAccess {
    fn drop(&mut self) {
        if let Some(live) = self.cluster.live() {
            for read in &self.reads {
                live.release(&key(read));
            }
        }
    }
}

impl From<ReadError> for ClusterError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::NoSource | ReadError::Unavailable(..) => {
                ClusterError::Unavailable(error.to_string())
            }
            ReadError::NotSynced(_) => ClusterError::NotSynced(error.to_string()),
            ReadError::Forbidden(..) => ClusterError::Forbidden(error.to_string()),
        }
    }
}
