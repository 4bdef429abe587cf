//! The mutator's settings.

use std::collections::BTreeMap;

use serde::Deserialize;
use wicket_sdk::{Error, Validate};

/// The API server refuses a ConfigMap over 1 MiB; the default limit leaves
/// room for metadata.
pub const DEFAULT_MAX_DATA_BYTES: u64 = 900 * 1024;

/// The manifest's `[settings]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Labels to add to every ConfigMap.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations to add to every ConfigMap.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Replace label/annotation values a user set (normally theirs win).
    #[serde(default)]
    pub overwrite: bool,
    /// Data keys added, with these values, when absent.
    #[serde(default)]
    pub default_data: BTreeMap<String, String>,
    /// Deny ConfigMaps whose data (keys and values, `binaryData` decoded)
    /// exceeds this many bytes.
    #[serde(default = "default_max_data_bytes")]
    pub max_data_bytes: u64,
    /// The annotation that carries the content hash; empty turns it off.
    #[serde(default = "default_hash_annotation")]
    pub hash_annotation: String,
    /// Deny data keys matching any of these patterns (`*` and `?`, case
    /// insensitive), e.g. `*password*`: such values belong in a Secret.
    #[serde(default)]
    pub deny_key_patterns: Vec<String>,
}

fn default_max_data_bytes() -> u64 {
    DEFAULT_MAX_DATA_BYTES
}

fn default_hash_annotation() -> String {
    "wicket.dev/content-sha256".to_owned()
}

impl Validate for Settings {
    /// Checks what serde cannot.
    fn validate(&self) -> Result<(), Error> {
        if self.max_data_bytes == 0 {
            return Err("max-data-bytes must be above 0".into());
        }
        if self.annotations.contains_key(&self.hash_annotation) {
            return Err(Error::new(format!(
                "annotations sets {:?}, which is the hash annotation",
                self.hash_annotation
            )));
        }
        let keys = self.labels.keys().chain(self.annotations.keys());
        if let Some(empty) = keys
            .chain(self.default_data.keys())
            .find(|key| key.is_empty())
        {
            return Err(Error::new(format!(
                "a label, annotation or data key is empty: {empty:?}"
            )));
        }
        if self.deny_key_patterns.iter().any(String::is_empty) {
            return Err("deny-key-patterns holds an empty pattern".into());
        }
        Ok(())
    }
}
