//! What a `document` handle in an instance's table refers to: its own file,
//! so that the `bindgen!` naming it and the host functions reading it
//! (`documents`) both depend on it and not on each other.

use std::sync::Arc;

use crate::document::Document;

/// A review's document (or the settings), lent to one instance.
pub struct DocumentRef(pub(super) Arc<Document>);
