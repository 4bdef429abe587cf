//! A manifest's `[cluster]` table: the kinds of other objects a plugin
//! reads, each with the indexes it looks objects up by.
//!
//! ```toml
//! [cluster]
//! read = [
//!   { api-version = "networking.k8s.io/v1", kind = "Ingress", index = { host = "/spec/rules/*/host" } },
//!   { api-version = "v1", kind = "Namespace", metadata-only = true },
//! ]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cluster::index::{IndexPath, IndexPathError};
use crate::cluster::kind::{KindError, KindKey};

/// The `[cluster]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterFile {
    read: Vec<ReadFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ReadFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata_only: bool,
    #[serde(default)]
    index: BTreeMap<String, String>,
}

/// One kind a plugin reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The kind.
    pub kind: KindKey,
    /// Whether the plugin sees only `apiVersion`, `kind` and `metadata`.
    pub metadata_only: bool,
    /// Its indexes: the name `find` gives, and the path it indexes.
    pub indexes: BTreeMap<String, IndexPath>,
}

/// A `[cluster]` table that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterReadError {
    /// `read = []`.
    #[error("cluster.read declares no kind")]
    Empty,
    /// A kind that is not one.
    #[error("cluster.read")]
    Kind(#[from] KindError),
    /// The same kind twice.
    #[error("cluster.read declares {0} twice")]
    Twice(KindKey),
    /// An index path that is not a pointer.
    #[error("cluster.read index {0:?}")]
    Index(String, #[source] IndexPathError),
}

impl ClusterFile {
    /// The declared reads, checked.
    pub(super) fn reads(self) -> Result<Vec<Read>, ClusterReadError> {
        if self.read.is_empty() {
            return Err(ClusterReadError::Empty);
        }
        let mut reads: Vec<Read> = Vec::new();
        for read in self.read {
            let kind = KindKey::new(&read.api_version, &read.kind)?;
            if reads.iter().any(|earlier| earlier.kind == kind) {
                return Err(ClusterReadError::Twice(kind));
            }
            let indexes = read
                .index
                .into_iter()
                .map(|(name, path)| match IndexPath::parse(&path) {
                    Ok(path) => Ok((name, path)),
                    Err(error) => Err(ClusterReadError::Index(name, error)),
                })
                .collect::<Result<_, _>>()?;
            reads.push(Read {
                kind,
                metadata_only: read.metadata_only,
                indexes,
            });
        }
        Ok(reads)
    }
}
