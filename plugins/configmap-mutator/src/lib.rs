//! Wicket's ConfigMap mutator: stamps a content hash so workloads can roll
//! when their configuration changes, adds default labels, annotations and
//! data keys, and refuses ConfigMaps that are too big or hold keys that look
//! like secrets.
//!
//! On UPDATE of a ConfigMap that was already immutable nothing is changed:
//! its data cannot change, so its hash stays right, and its labels and
//! annotations are the user's to edit.

mod content;
mod settings;

use serde::Deserialize;
use wicket_sdk::view::{ObjectMeta, TextMap};
use wicket_sdk::{Error, Operation, Patch, Plugin, Review, Verdict};

use crate::content::{content_hash, data_size, matches};
use crate::settings::Settings;

/// The plugin.
pub struct ConfigMapMutator;

/// A ConfigMap, borrowed from the request: metadata and content only.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigMapView<'a> {
    #[serde(borrow, default)]
    metadata: ObjectMeta<'a>,
    #[serde(borrow, default)]
    data: Option<TextMap<'a>>,
    #[serde(borrow, default)]
    binary_data: Option<TextMap<'a>>,
    #[serde(default)]
    immutable: Option<bool>,
}

impl Plugin for ConfigMapMutator {
    type Settings = Settings;

    fn review(&self, review: &Review, settings: &Settings) -> Result<Verdict, Error> {
        let operation = review.operation();
        let handled = matches!(operation, Operation::Create | Operation::Update)
            && review.resource().resource == "configmaps"
            && review.sub_resource().is_none();
        if !handled {
            return Ok(Verdict::allow());
        }
        if operation == Operation::Update {
            let old: ConfigMapView = review.old_object()?;
            if old.immutable == Some(true) {
                return Ok(Verdict::allow());
            }
        }
        let config_map: ConfigMapView = review.object()?;
        Ok(judge(&config_map, settings))
    }
}

/// The verdict on one ConfigMap being created or changed.
fn judge(config_map: &ConfigMapView, settings: &Settings) -> Verdict {
    let name = config_map.metadata.display_name();
    let data = config_map.data.as_ref();
    let binary_data = config_map.binary_data.as_ref();
    let has_key = |key: &str| {
        data.is_some_and(|data| data.contains_key(key))
            || binary_data.is_some_and(|binary| binary.contains_key(key))
    };
    let defaults: Vec<(&str, &str)> = settings
        .default_data
        .iter()
        .filter(|(key, _)| !has_key(key))
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    // The data as it will be stored, in key order.
    let mut final_data: Vec<(&str, &str)> = entries(data).chain(defaults.iter().copied()).collect();
    final_data.sort_unstable();

    let size = data_size(final_data.iter().copied(), entries(binary_data));
    if size > settings.max_data_bytes {
        return Verdict::deny_with_code(
            413,
            format!(
                "configmap {name} holds {} of data ({size} bytes), over the {} limit; split it, or mount large files from a volume",
                human(size),
                human(settings.max_data_bytes)
            ),
        );
    }
    for key in final_data
        .iter()
        .map(|(key, _)| *key)
        .chain(entries(binary_data).map(|(key, _)| key))
    {
        if let Some(pattern) = settings.deny_key_patterns.iter().find(|p| matches(p, key)) {
            return Verdict::deny(format!(
                "configmap {name}: key {key:?} looks like a secret (matches {pattern:?}); store it in a Secret and reference that instead"
            ));
        }
    }

    let meta = &config_map.metadata;
    let mut patch = Patch::new();
    for (key, value) in &defaults {
        patch.insert(&["data"], data.is_some(), key, value);
    }
    let wants = |current: Option<&str>, value: &str| match current {
        None => true,
        Some(current) => settings.overwrite && current != value,
    };
    for (key, value) in &settings.labels {
        if wants(meta.label(key), value) {
            patch.insert(&["metadata", "labels"], meta.labels.is_some(), key, value);
        }
    }
    let hash = (!settings.hash_annotation.is_empty()).then(|| {
        let hash = content_hash(final_data.iter().copied(), entries(binary_data));
        (settings.hash_annotation.as_str(), hash)
    });
    let annotations = settings
        .annotations
        .iter()
        .filter(|(key, value)| wants(meta.annotation(key), value))
        .map(|(key, value)| (key.as_str(), value.clone()));
    let hash_changed = hash
        .into_iter()
        .filter(|(key, hash)| meta.annotation(key) != Some(hash.as_str()));
    for (key, value) in annotations.chain(hash_changed) {
        patch.insert(
            &["metadata", "annotations"],
            meta.annotations.is_some(),
            key,
            &value,
        );
    }
    Verdict::allow().with_patch(&patch)
}

fn entries<'a>(map: Option<&'a TextMap>) -> impl Iterator<Item = (&'a str, &'a str)> {
    map.into_iter()
        .flatten()
        .map(|(key, value)| (key.as_str(), value.as_str()))
}

/// `bytes` for a message: KiB or MiB with one decimal.
fn human(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let bytes = bytes as f64;
    if bytes >= KIB * KIB {
        format!("{:.1} MiB", bytes / KIB / KIB)
    } else {
        format!("{:.1} KiB", bytes / KIB)
    }
}

wicket_sdk::export_plugin!(ConfigMapMutator);

/// Each review runs in a fresh instance: allocate from an arena, never free.
#[cfg(target_family = "wasm")]
#[global_allocator]
static ARENA: wicket_sdk::arena::Arena = wicket_sdk::arena::Arena::new();

#[cfg(test)]
mod tests;
