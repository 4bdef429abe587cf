//! What the operator lets plugins read at all (`--cluster-allow`): a
//! plugin that declares any other kind is refused at load. By default every
//! kind but Secrets: a plugin that needs a Secret's content is rare, and one
//! that can read them all can leak every credential in the cluster.

use std::fmt;

use super::kind::KindKey;

/// Kinds plugins may read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowList {
    /// Every kind but core Secrets (the default).
    #[default]
    AllButSecrets,
    /// Every kind (`--cluster-allow '*'`).
    All,
    /// These kinds alone, as `Kind` (core) or `Kind.group`.
    Only(Vec<String>),
}

impl AllowList {
    /// The list given on the command line: `*`, or kinds as `Kind` or
    /// `Kind.group` (`Namespace`, `Ingress.networking.k8s.io`); none given
    /// is the default.
    pub fn from_args(kinds: &[String]) -> AllowList {
        match kinds {
            [] => AllowList::AllButSecrets,
            kinds if kinds.iter().any(|kind| kind == "*") => AllowList::All,
            kinds => AllowList::Only(kinds.to_vec()),
        }
    }

    /// Whether plugins may read `kind`.
    pub fn allows(&self, kind: &KindKey) -> bool {
        match self {
            AllowList::AllButSecrets => !(kind.group.is_empty() && kind.kind == "Secret"),
            AllowList::All => true,
            AllowList::Only(kinds) => kinds.contains(&kind.kind_group()),
        }
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowList::AllButSecrets => f.write_str("every kind but Secret"),
            AllowList::All => f.write_str("every kind"),
            AllowList::Only(kinds) => f.write_str(&kinds.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_out_secrets_only() {
        let secret = KindKey::new("v1", "Secret").unwrap();
        let ingress = KindKey::new("networking.k8s.io/v1", "Ingress").unwrap();
        let namespace = KindKey::new("v1", "Namespace").unwrap();
        let default = AllowList::from_args(&[]);
        assert!(!default.allows(&secret) && default.allows(&ingress));
        assert!(AllowList::from_args(&["*".to_owned()]).allows(&secret));
        let only = AllowList::from_args(&[
            "Namespace".to_owned(),
            "Ingress.networking.k8s.io".to_owned(),
        ]);
        assert!(only.allows(&namespace) && only.allows(&ingress) && !only.allows(&secret));
        assert!(!only.allows(&KindKey::new("v1", "ConfigMap").unwrap()));
    }
}
