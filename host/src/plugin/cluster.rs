//! The host side of the `cluster` import: what a plugin's read found
//! (`cluster_access` checks and answers it) lent to the instance as
//! document handles, within the bound on what one review may hold.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::bindings::cluster::{self, ClusterError};
use super::document_ref::DocumentRef;
use super::host::InstanceState;
use crate::document::Document;

/// What a read answers: documents, or why not.
type Answer<T> = wasmtime::Result<Result<T, ClusterError>>;

/// The most document handles one call of a plugin may hold at once: a
/// plugin keeping every object of every `list` would otherwise grow the
/// host's memory without bound, outside its own memory cap.
const MAX_DOCUMENTS_HELD: usize = 50_000;

impl InstanceState {
    /// Handles to what a read found, or why it found nothing.
    fn lend_found(
        &mut self,
        found: Result<Vec<Arc<Document>>, ClusterError>,
    ) -> Answer<Vec<Resource<DocumentRef>>> {
        let documents = match found {
            Ok(documents) => documents,
            Err(error) => return Ok(Err(error)),
        };
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
        let found = self
            .cluster_access
            .get(&api_version, &kind, &namespace, &name)
            .map(|found| found.into_iter().collect());
        Ok(self.lend_found(found)?.map(|mut lent| lent.pop()))
    }

    fn list(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Answer<Vec<Resource<DocumentRef>>> {
        let found = self.cluster_access.list(
            &api_version,
            &kind,
            namespace.as_deref(),
            label_selector.as_deref(),
        );
        self.lend_found(found)
    }

    fn find(
        &mut self,
        api_version: String,
        kind: String,
        index: String,
        value: String,
    ) -> Answer<Vec<Resource<DocumentRef>>> {
        let found = self
            .cluster_access
            .find(&api_version, &kind, &index, &value);
        self.lend_found(found)
    }
}
