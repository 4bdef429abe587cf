//! The host side of contract 0.2's `document` resource: a plugin reads the
//! review's objects and its settings through handles to the shared,
//! lazily indexed [`Document`]s, instead of receiving them as text.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::bindings::types::{self, JsonKind, Part};
use super::document_ref::DocumentRef;
use super::host::InstanceState;
use crate::document::{self, Document, Documents, Kind};

impl InstanceState {
    /// Hands `documents` and `settings` to the instance as handles for one
    /// call of `review`.
    pub fn lend(
        &mut self,
        documents: &Documents,
        settings: &Arc<Document>,
    ) -> wasmtime::Result<types::Documents> {
        let mut lend = |document: &Option<Arc<Document>>| {
            document
                .as_ref()
                .map(|document| self.lend_one(document))
                .transpose()
        };
        Ok(types::Documents {
            object: lend(&documents.object)?,
            old_object: lend(&documents.old_object)?,
            options: lend(&documents.options)?,
            settings: self.lend_one(settings)?,
        })
    }

    /// A handle to `document`.
    pub fn lend_one(
        &mut self,
        document: &Arc<Document>,
    ) -> wasmtime::Result<Resource<DocumentRef>> {
        let handle = self.table().push(DocumentRef(document.clone()))?;
        self.documents_held += 1;
        Ok(handle)
    }

    fn document(&self, handle: &Resource<DocumentRef>) -> wasmtime::Result<&Document> {
        Ok(&self.table_ref().get(handle)?.0)
    }
}

impl types::HostDocument for InstanceState {
    fn get(
        &mut self,
        document: Resource<DocumentRef>,
        pointer: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(self.document(&document)?.get(&pointer).map(str::to_owned))
    }

    fn part(
        &mut self,
        document: Resource<DocumentRef>,
        pointer: String,
        inline_bytes: u32,
    ) -> wasmtime::Result<Option<Part>> {
        let document = self.document(&document)?;
        Ok(document.part(&pointer, inline_bytes as usize).map(to_wit))
    }

    fn members(
        &mut self,
        document: Resource<DocumentRef>,
        pointer: String,
        names: Vec<String>,
        inline_bytes: u32,
    ) -> wasmtime::Result<Option<Vec<Option<Part>>>> {
        let document = self.document(&document)?;
        let members = document.members(&pointer, &names, inline_bytes as usize);
        Ok(members.map(|members| members.into_iter().map(|part| part.map(to_wit)).collect()))
    }

    fn elements(
        &mut self,
        document: Resource<DocumentRef>,
        pointer: String,
        inline_bytes: u32,
    ) -> wasmtime::Result<Option<Vec<Part>>> {
        let document = self.document(&document)?;
        let elements = document.elements(&pointer, inline_bytes as usize);
        Ok(elements.map(|elements| elements.into_iter().map(to_wit).collect()))
    }

    fn keys(
        &mut self,
        document: Resource<DocumentRef>,
        pointer: String,
    ) -> wasmtime::Result<Option<Vec<String>>> {
        Ok(self.document(&document)?.keys(&pointer))
    }

    fn len(
        &mut self,
        document: Resource<DocumentRef>,
        pointer: String,
    ) -> wasmtime::Result<Option<u32>> {
        Ok(self.document(&document)?.len(&pointer).map(saturating_u32))
    }

    fn drop(&mut self, document: Resource<DocumentRef>) -> wasmtime::Result<()> {
        self.table().delete(document)?;
        self.documents_held = self.documents_held.saturating_sub(1);
        Ok(())
    }
}

/// The `types` interface's functions are the `document` methods above.
impl types::Host for InstanceState {}

/// A length as WIT's `u32`; a document is far smaller than 4 GiB.
fn saturating_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A part of a document as WIT's `part`.
fn to_wit(part: document::Part<'_>) -> Part {
    Part {
        kind: match part.kind {
            Kind::Null => JsonKind::Null,
            Kind::Boolean => JsonKind::Boolean,
            Kind::Number => JsonKind::Number,
            Kind::String => JsonKind::String,
            Kind::Array => JsonKind::Array,
            Kind::Object => JsonKind::Object,
        },
        bytes: saturating_u32(part.bytes),
        text: part.text.map(str::to_owned),
    }
}
