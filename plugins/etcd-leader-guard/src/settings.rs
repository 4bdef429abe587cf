//! The guard's settings: which pods are etcd members and how to reach them.

use std::collections::BTreeMap;

use serde::Deserialize;
use wicket_sdk::view::ObjectMeta;
use wicket_sdk::{Error, Validate};

/// The `[settings]` table of the guard's manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Labels a pod must all carry to be treated as an etcd member; other
    /// pods are allowed without any call to etcd.
    #[serde(default = "default_selector")]
    pub selector: BTreeMap<String, String>,
    /// `http` or `https` for the members' client URLs built from pod IPs.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// The members' client port.
    #[serde(default = "default_client_port")]
    pub client_port: u16,
    /// Client URLs to ask for the member list when the request does not
    /// carry the pod's IP (evictions): e.g. the headless service.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Refuse, rather than allow, when the member cannot be reached.
    #[serde(default)]
    pub fail_closed: bool,
}

fn default_selector() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), "etcd".to_owned())])
}

fn default_scheme() -> String {
    "http".to_owned()
}

fn default_client_port() -> u16 {
    2379
}

impl Validate for Settings {
    /// What serde cannot check.
    fn validate(&self) -> Result<(), Error> {
        if self.selector.is_empty() {
            return Err("selector must name at least one label (it picks the etcd pods)".into());
        }
        if !matches!(self.scheme.as_str(), "http" | "https") {
            return Err(Error::new(format!(
                "scheme must be http or https, not {:?}",
                self.scheme
            )));
        }
        if self.client_port == 0 {
            return Err("client-port must be between 1 and 65535".into());
        }
        if let Some(bad) = self
            .endpoints
            .iter()
            .find(|url| !(url.starts_with("http://") || url.starts_with("https://")))
        {
            return Err(Error::new(format!(
                "endpoint {bad:?} is not an http(s) URL"
            )));
        }
        Ok(())
    }
}

impl Settings {
    /// Whether the pod carries every selector label.
    pub fn selects(&self, metadata: &ObjectMeta) -> bool {
        self.selector
            .iter()
            .all(|(key, value)| metadata.label(key) == Some(value.as_str()))
    }

    /// The client URL of the member running at `ip`.
    pub fn client_url(&self, ip: &str) -> String {
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        format!("{}://{host}:{}", self.scheme, self.client_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Settings, String> {
        let settings: Settings = serde_json::from_value(json).map_err(|e| e.to_string())?;
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }

    #[test]
    fn defaults_select_app_etcd_on_port_2379() {
        let settings = parse(serde_json::json!({})).unwrap();
        assert_eq!(settings.selector["app"], "etcd");
        assert_eq!(settings.client_url("127.0.0.2"), "http://127.0.0.2:2379");
        assert_eq!(settings.client_url("fd00::2"), "http://[fd00::2]:2379");
        assert!(!settings.fail_closed);
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        for (settings, why) in [
            (serde_json::json!({"selector": {}}), "selector"),
            (serde_json::json!({"scheme": "grpc"}), "scheme"),
            (serde_json::json!({"client-port": 0}), "client-port"),
            (serde_json::json!({"endpoints": ["etcd:2379"]}), "endpoint"),
            (serde_json::json!({"selektor": {}}), "unknown field"),
        ] {
            let error = parse(settings).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
    }
}
