//! What one plugin may read of the cluster: the kinds its manifest
//! declares, checked against what the operator allows when it loads, and
//! its reads answered from the host's objects, or why not. Its own file so
//! that the instance state holding it and the `cluster` import lending what
//! it found (`cluster`) both depend on it and not on each other.

use std::sync::Arc;

use super::bindings::cluster::ClusterError;
use super::manifest::cluster::Read;
use crate::cluster::allow::AllowList;
use crate::cluster::kind::KindKey;
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
    /// Access to what `reads` declares, if `allow` allows all of it.
    pub fn new(
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
        Ok(ClusterAccess {
            reads,
            allow: allow.clone(),
            cluster,
        })
    }

    /// The object `name` of the kind in `namespace`, if it exists.
    pub(super) fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Document>>, ClusterError> {
        let read = self.declared(api_version, kind)?;
        Ok(self
            .cluster
            .get(&read.kind, namespace, name, read.metadata_only)?)
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
        let read = self.declared(api_version, kind)?;
        let selector = label_selector
            .map(Selector::parse)
            .transpose()
            .map_err(|error| ClusterError::Invalid(error.to_string()))?
            .unwrap_or_default();
        Ok(self
            .cluster
            .list(&read.kind, namespace, &selector, read.metadata_only)?)
    }

    /// The objects of the kind whose declared index `index` holds `value`.
    pub(super) fn find(
        &self,
        api_version: &str,
        kind: &str,
        index: &str,
        value: &str,
    ) -> Result<Vec<Arc<Document>>, ClusterError> {
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

impl From<ReadError> for ClusterError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::NoSource => ClusterError::Unavailable(error.to_string()),
        }
    }
}
