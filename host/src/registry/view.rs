//! `GET /plugins`: a snapshot as JSON, for operators.

use crate::text::rfc3339;

use serde_json::{Value, json};

use super::snapshot::{Entry, PluginSet, served_path};

impl PluginSet {
    /// Everything `GET /plugins` shows: for each plugin its paths, digest,
    /// mode, limits, load time, generation, last error and counters; each
    /// pipeline; and a pipelines-file error.
    pub fn describe(&self) -> Value {
        let plugins: Vec<Value> = self
            .entries
            .iter()
            .map(|(name, entry)| describe_plugin(name, entry))
            .collect();
        let pipelines: Vec<Value> = self
            .pipelines
            .iter()
            .map(|(name, entry)| {
                let (served, error) = match &entry.resolved {
                    Ok(pipeline) => (Some(pipeline), None),
                    Err(error) => (None, Some(error.to_string())),
                };
                json!({
                    "name": name,
                    "paths": served.map(|_| vec![served_path(entry.spec.mode, name)]).unwrap_or_default(),
                    "mode": entry.spec.mode.as_str(),
                    "plugins": entry.spec.plugins,
                    "enforcement": entry.spec.enforcement.as_str(),
                    "served": served.is_some(),
                    "error": error,
                    "counters": served.map(|pipeline| pipeline.counters.view()),
                })
            })
            .collect();
        json!({
            "plugins": plugins,
            "pipelines": pipelines,
            "pipelinesError": self.pipelines_error,
            "loading": self.loading,
        })
    }
}

fn describe_plugin(name: &str, entry: &Entry) -> Value {
    let served = entry.served.as_deref();
    let manifest = served.map(|served| served.plugin.manifest());
    json!({
        "name": name,
        "paths": manifest.map(|manifest| vec![served_path(manifest.mode, name)]).unwrap_or_default(),
        "served": served.is_some(),
        "digest": served.map(|served| format!("sha256:{}", served.plugin.digest())),
        "contract": served.map(|served| served.plugin.contract()),
        "component": served.map(|served| {
            let (origin, took) = served.plugin.component();
            json!({"origin": origin.as_str(), "readyMs": took.as_millis()})
        }),
        "mode": manifest.map(|manifest| manifest.mode.as_str()),
        "failurePolicy": manifest.map(|manifest| manifest.failure_policy.as_str()),
        "enforcement": manifest.map(|manifest| manifest.enforcement.as_str()),
        "limits": manifest.map(|manifest| json!({
            "timeoutMs": manifest.limits.timeout_ms,
            "memoryMib": manifest.limits.memory_mib,
            "maxOutputKib": manifest.limits.max_output_kib,
            "maxConcurrency": manifest.limits.max_concurrency,
        })),
        "outbound": manifest.and_then(|manifest| manifest.outbound.as_ref()).map(|outbound| json!({
            "allowedHosts": outbound.host_list(),
            "timeoutMs": outbound.timeout_ms,
            "maxResponseKib": outbound.max_response_kib,
        })),
        "clusterReads": manifest.map(|manifest| manifest.cluster.iter().map(|read| json!({
            "kind": read.kind.to_string(),
            "metadataOnly": read.metadata_only,
            "indexes": read.indexes.iter().map(|(name, path)| (name.clone(), json!(path.to_string()))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>()),
        "loadedAt": served.map(|served| rfc3339(served.loaded_at)),
        "generation": served.map_or(0, |served| served.generation),
        "lastError": entry.last_error,
        "counters": entry.counters.view(),
    })
}
