//! Naming a kind of object as an object names itself: `apiVersion`
//! (`v1`, `networking.k8s.io/v1`) and `kind` (`Ingress`).

use std::fmt;

/// A group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindKey {
    /// The API group; the core group is empty.
    pub group: String,
    /// The version, e.g. `v1`.
    pub version: String,
    /// The kind, e.g. `Ingress`.
    pub kind: String,
}

/// An `apiVersion` or `kind` that names nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// Not `VERSION` or `GROUP/VERSION`.
    #[error("api-version {0:?} is not VERSION or GROUP/VERSION")]
    ApiVersion(String),
    /// Empty, or not a name.
    #[error("kind {0:?} is not a kind")]
    Kind(String),
}

impl KindKey {
    /// The kind named by `api_version` and `kind`.
    pub fn new(api_version: &str, kind: &str) -> Result<KindKey, KindError> {
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let name_like = |text: &str| {
            !text.is_empty()
                && text
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-'))
        };
        let group_ok = match api_version.contains('/') {
            true => name_like(group),
            false => true,
        };
        if !name_like(version) || !group_ok {
            return Err(KindError::ApiVersion(api_version.to_owned()));
        }
        if !name_like(kind) || kind.contains('.') {
            return Err(KindError::Kind(kind.to_owned()));
        }
        Ok(KindKey {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        })
    }

    /// The kind of `object`, from its `apiVersion` and `kind`.
    pub fn of(object: &serde_json::Value) -> Option<KindKey> {
        let field = |name: &str| object.get(name).and_then(serde_json::Value::as_str);
        KindKey::new(field("apiVersion")?, field("kind")?).ok()
    }

    /// `apiVersion` as an object spells it.
    pub fn api_version(&self) -> String {
        match self.group.is_empty() {
            true => self.version.clone(),
            false => format!("{}/{}", self.group, self.version),
        }
    }

    /// The kind and group as `--cluster-allow` names them: `Namespace`,
    /// `Ingress.networking.k8s.io`.
    pub fn kind_group(&self) -> String {
        match self.group.is_empty() {
            true => self.kind.clone(),
            false => format!("{}.{}", self.kind, self.group),
        }
    }
}

impl fmt::Display for KindKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.api_version(), self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_grouped_kinds_parse_and_print_back() {
        let namespace = KindKey::new("v1", "Namespace").unwrap();
        assert_eq!(
            (namespace.group.as_str(), namespace.kind_group()),
            ("", "Namespace".to_owned())
        );
        let ingress = KindKey::new("networking.k8s.io/v1", "Ingress").unwrap();
        assert_eq!(ingress.api_version(), "networking.k8s.io/v1");
        assert_eq!(ingress.kind_group(), "Ingress.networking.k8s.io");
        assert_eq!(ingress.to_string(), "networking.k8s.io/v1 Ingress");
        for (api_version, kind) in [
            ("", "Pod"),
            ("a/b/c", "Pod"),
            ("v1", ""),
            ("v1", "Pod.x"),
            ("/v1", "Pod"),
        ] {
            assert!(
                KindKey::new(api_version, kind).is_err(),
                "{api_version} {kind}"
            );
        }
    }
}
