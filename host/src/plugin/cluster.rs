//! The host side of the `cluster` import: a plugin's reads of other
//! objects, checked against what its manifest declares and what the
//! operator allows (`cluster_access`), served from the host's objects as
//! documents.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::bindings::cluster::{self, ClusterError};
use super::document_ref::DocumentRef;
use super::host::InstanceState;
use crate::cluster::ReadError;
use crate::cluster::selector::Selector;
use crate::document::Document;

impl From<ReadError> for ClusterError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::NoSource => ClusterError::Unavailable(error.to_string()),
        }
    }
}

/// What a read answers: documents, or why not.
type Answer<T> = wasmtime::Result<Result<T, ClusterError>>;

impl InstanceState {
    fn lend_all(&mut self, documents: Vec<Arc<Document>>) -> Answer<Vec<Resource<DocumentRef>>> {
        let handles = documents
            .iter()
            .map(|document| self.lend_one(document))
            .collect::<wasmtime::Result<_>>()?;
        Ok(Ok(handles))
    }
}

impl cluster::Host for InstanceState {
    fn get(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    ) -> Answer<Option<Resource<DocumentRef>>> {
        let access = self.cluster_access.clone();
        let read = match access.declared(&api_version, &kind) {
            Ok(read) => read,
            Err(error) => return Ok(Err(error)),
        };
        match access
            .cluster()
            .get(&read.kind, &namespace, &name, read.metadata_only)
        {
            Ok(Some(document)) => Ok(Ok(Some(self.lend_one(&document)?))),
            Ok(None) => Ok(Ok(None)),
            Err(error) => Ok(Err(error.into())),
        }
    }

    fn list(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Answer<Vec<Resource<DocumentRef>>> {
        let access = self.cluster_access.clone();
        let read = match access.declared(&api_version, &kind) {
            Ok(read) => read,
            Err(error) => return Ok(Err(error)),
        };
        let selector = match label_selector.as_deref().map(Selector::parse).transpose() {
            Ok(selector) => selector.unwrap_or_default(),
            Err(error) => return Ok(Err(ClusterError::Invalid(error.to_string()))),
        };
        match access.cluster().list(
            &read.kind,
            namespace.as_deref(),
            &selector,
            read.metadata_only,
        ) {
            Ok(documents) => self.lend_all(documents),
            Err(error) => Ok(Err(error.into())),
        }
    }

    fn find(
        &mut self,
        api_version: String,
        kind: String,
        index: String,
        value: String,
    ) -> Answer<Vec<Resource<DocumentRef>>> {
        let access = self.cluster_access.clone();
        let read = match access.declared(&api_version, &kind) {
            Ok(read) => read,
            Err(error) => return Ok(Err(error)),
        };
        let Some(path) = read.indexes.get(&index) else {
            return Ok(Err(ClusterError::NotDeclared(format!(
                "{} declares no index {index:?} in the plugin's manifest",
                read.kind
            ))));
        };
        match access
            .cluster()
            .find(&read.kind, path, &value, read.metadata_only)
        {
            Ok(documents) => self.lend_all(documents),
            Err(error) => Ok(Err(error.into())),
        }
    }
}
