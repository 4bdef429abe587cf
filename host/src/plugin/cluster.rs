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

/// The most document handles one call of a plugin may hold at once: a
/// plugin keeping every object of every `list` would otherwise grow the
/// host's memory without bound, outside its own memory cap.
const MAX_DOCUMENTS_HELD: usize = 50_000;

impl InstanceState {
    fn lend_all(&mut self, documents: Vec<Arc<Document>>) -> Answer<Vec<Resource<DocumentRef>>> {
        if self.documents_held + documents.len() > MAX_DOCUMENTS_HELD {
            return Ok(Err(ClusterError::Invalid(format!(
                "the read would hold {} objects besides the {} held, over the {MAX_DOCUMENTS_HELD} \
                 a review may hold at once: narrow it with a namespace, a selector or an index",
                documents.len(),
                self.documents_held
            ))));
        }
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
            Ok(Some(document)) => Ok(self.lend_all(vec![document])?.map(|mut one| one.pop())),
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
