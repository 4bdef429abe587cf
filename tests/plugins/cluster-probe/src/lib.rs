//! A test plugin that makes the cluster read its object's annotations ask
//! for and refuses with what came back, so that tests see every answer of
//! the `cluster` interface through the real host:
//!
//! - `probe/call`: `get`, `list` or `find`;
//! - `probe/kind`: `Namespace`, `Ingress`, `ConfigMap` or `Secret`;
//! - `probe/namespace`, `probe/name` (get; list's namespace),
//!   `probe/selector` (list), `probe/index` and `probe/value` (find).
//!
//! The message is `found: NS/NAME, ...` (`found: none`), or the error.

use serde::Deserialize;
use wicket_sdk::cluster::kinds::{ConfigMap, Ingress, Namespace};
use wicket_sdk::cluster::{Cluster, ClusterError, Kind, Object, describe};
use wicket_sdk::view::{Metadata, Text, TextMap};
use wicket_sdk::{Error, NoSettings, Plugin, Review, Verdict};

struct ClusterProbe;

/// Secrets, which the default allow-list leaves out.
struct Secret;

impl Kind for Secret {
    const API_VERSION: &'static str = "v1";
    const KIND: &'static str = "Secret";
}

#[derive(Deserialize)]
struct Annotations<'a> {
    #[serde(borrow)]
    annotations: TextMap<'a>,
}

/// The reads asked for.
struct Ask<'a> {
    annotations: &'a TextMap<'a>,
}

impl Ask<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.annotations
            .get(format!("probe/{key}").as_str())
            .map(Text::as_str)
    }

    fn run<K: Kind>(&self, cluster: Cluster) -> Result<Vec<Object>, ClusterError> {
        match self.get("call").unwrap_or_default() {
            "get" => cluster
                .get::<K>(
                    self.get("namespace").unwrap_or_default(),
                    self.get("name").unwrap_or_default(),
                )
                .map(|found| found.into_iter().collect()),
            "list" => cluster.list::<K>(self.get("namespace"), self.get("selector")),
            _ => cluster.find::<K>(
                self.get("index").unwrap_or_default(),
                self.get("value").unwrap_or_default(),
            ),
        }
    }
}

impl Plugin for ClusterProbe {
    type Settings = NoSettings;

    fn review(&self, review: &Review, _settings: &NoSettings) -> Result<Verdict, Error> {
        let metadata: Annotations = review.object_at("/metadata")?;
        let ask = Ask {
            annotations: &metadata.annotations,
        };
        let cluster = review.cluster();
        let found = match ask.get("kind").unwrap_or_default() {
            "Namespace" => ask.run::<Namespace>(cluster),
            "Ingress" => ask.run::<Ingress>(cluster),
            "ConfigMap" => ask.run::<ConfigMap>(cluster),
            _ => ask.run::<Secret>(cluster),
        };
        let message = match found {
            Ok(objects) => {
                let mut names = Vec::new();
                for object in &objects {
                    let read: Metadata = object.read()?;
                    let namespace = read
                        .metadata
                        .namespace
                        .as_deref()
                        .unwrap_or_default()
                        .to_owned();
                    names.push(format!(
                        "{namespace}/{}",
                        read.metadata.name.as_deref().unwrap_or_default()
                    ));
                }
                match names.is_empty() {
                    true => "found: none".to_owned(),
                    false => format!("found: {}", names.join(", ")),
                }
            }
            Err(error) => describe(&error),
        };
        Ok(Verdict::deny(message))
    }
}

wicket_sdk::export_plugin!(ClusterProbe);
