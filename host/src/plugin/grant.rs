//! The `[outbound]` table of a manifest: where a plugin may send HTTP
//! requests, and how long and how large each exchange may be. Pure: parsing
//! and matching only; the TLS files it names are read when the plugin loads
//! (see `outbound`).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use ipnet::IpNet;
use serde::Deserialize;

use super::tls_client::{TlsFiles, host_and_port};

/// The `[outbound]` table of a manifest: where a plugin may send HTTP
/// requests, and how long and how large each exchange may be.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Outbound {
    /// `host:port` patterns (see [`HostPattern`]).
    pub allowed_hosts: Vec<HostPattern>,
    /// Deadline to connect, then until the response's head, then between
    /// body chunks. The plugin's own deadline still bounds the whole review.
    #[serde(default = "Outbound::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest response body a request may read.
    #[serde(default = "Outbound::default_max_response_kib")]
    pub max_response_kib: u64,
    /// A private CA and client certificate for `https` (`[outbound.tls]`),
    /// read when the plugin is loaded; without it `https` trusts the public
    /// web PKI and presents no certificate.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

impl Outbound {
    /// The largest per-request timeout accepted (as for the plugin deadline).
    pub const MAX_TIMEOUT_MS: u64 = 9_000;
    /// The largest response cap accepted.
    pub const MAX_RESPONSE_KIB: u64 = 16 * 1024;

    fn default_timeout_ms() -> u64 {
        1_000
    }

    fn default_max_response_kib() -> u64 {
        1_024
    }

    /// The allowed hosts as written (normalised), for `/plugins` and the log.
    pub fn host_list(&self) -> Vec<String> {
        self.allowed_hosts.iter().map(ToString::to_string).collect()
    }

    /// The per-request deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The response cap in bytes.
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_kib << 10
    }

    /// Whether a request to `authority` (`host[:port]`) over `scheme` may go.
    /// Without a port the scheme's default port is meant.
    pub fn allows(&self, scheme: &Scheme, authority: &Authority) -> bool {
        let (host, port) = host_and_port(scheme, authority);
        let host = host.to_ascii_lowercase();
        self.allowed_hosts
            .iter()
            .any(|pattern| pattern.matches(&host, port))
    }

    /// The checks that serde cannot express.
    pub(super) fn check(&self) -> Result<(), GrantError> {
        if self.allowed_hosts.is_empty() {
            return Err(GrantError::NoHosts);
        }
        if !(1..=Self::MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(GrantError::Timeout);
        }
        if !(1..=Self::MAX_RESPONSE_KIB).contains(&self.max_response_kib) {
            return Err(GrantError::ResponseCap);
        }
        Ok(())
    }
}

/// Why an `[outbound]` table cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// `allowed-hosts` is empty.
    #[error("outbound.allowed-hosts must name at least one host:port")]
    NoHosts,
    /// `timeout-ms` is out of range.
    #[error(
        "outbound.timeout-ms must be between 1 and {}",
        Outbound::MAX_TIMEOUT_MS
    )]
    Timeout,
    /// `max-response-kib` is out of range.
    #[error(
        "outbound.max-response-kib must be between 1 and {}",
        Outbound::MAX_RESPONSE_KIB
    )]
    ResponseCap,
}

/// An `allowed-hosts` entry that is not a pattern, and why.
#[derive(Debug, thiserror::Error)]
#[error("allowed host {pattern:?}: {why}")]
pub struct PatternError {
    pattern: String,
    why: &'static str,
}

/// One entry of `allowed-hosts`: `HOST:PORT`, where HOST is a DNS name, an
/// IPv4 address, a bracketed IPv6 address, `*.SUFFIX` (any name of one or
/// more labels ending in `.SUFFIX`), or an address block in CIDR notation
/// (`10.244.0.0/16`, `[fd00::/64]`: any address in it, written as an address;
/// pod IPs), and PORT is a number. Names compare case-insensitively; there
/// is no wildcard port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: Host,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Exact(String),
    /// The suffix, with its leading dot.
    AnyUnder(String),
    /// An address block.
    Block(IpNet),
}

impl HostPattern {
    /// Whether `host` (lower case, without brackets) and `port` match.
    fn matches(&self, host: &str, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        match &self.host {
            Host::Exact(exact) => host == exact,
            Host::AnyUnder(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
            Host::Block(block) => host
                .parse::<IpAddr>()
                .is_ok_and(|address| block.contains(&address)),
        }
    }
}

impl std::str::FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<HostPattern, PatternError> {
        let bad = |why: &'static str| PatternError {
            pattern: text.to_owned(),
            why,
        };
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| bad("expected HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        let host = host.to_ascii_lowercase();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let host = if let Some((network, prefix)) = bare.split_once('/') {
            let network: IpAddr = network
                .parse()
                .map_err(|_| bad("an address block must start with an IP address"))?;
            let block = prefix
                .parse()
                .ok()
                .and_then(|prefix| IpNet::new(network, prefix).ok())
                .ok_or_else(|| bad("the prefix length does not fit the address"))?;
            Host::Block(block)
        } else if let Some(v6) = host.strip_prefix('[') {
            let v6 = v6
                .strip_suffix(']')
                .ok_or_else(|| bad("unclosed [ in an IPv6 address"))?;
            v6.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address"))?;
            Host::Exact(v6.to_owned())
        } else if let Some(suffix) = host.strip_prefix("*.") {
            check_dns_name(suffix).map_err(&bad)?;
            Host::AnyUnder(format!(".{suffix}"))
        } else {
            check_dns_name(&host).map_err(&bad)?;
            Host::Exact(host)
        };
        Ok(HostPattern { host, port })
    }
}

/// Letters, digits, `-` and `.`, in non-empty labels; IPv4 addresses pass.
fn check_dns_name(name: &str) -> Result<(), &'static str> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("not a host name or address (a wildcard may only be a leading `*.`)")
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Exact(host) if host.contains(':') => write!(f, "[{host}]:{}", self.port),
            Host::Exact(host) => write!(f, "{host}:{}", self.port),
            Host::AnyUnder(suffix) => write!(f, "*{suffix}:{}", self.port),
            Host::Block(block @ IpNet::V6(_)) => write!(f, "[{block}]:{}", self.port),
            Host::Block(block) => write!(f, "{block}:{}", self.port),
        }
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(hosts: &[&str]) -> Outbound {
        Outbound {
            allowed_hosts: hosts.iter().map(|host| host.parse().unwrap()).collect(),
            timeout_ms: 1_000,
            max_response_kib: 1_024,
            tls: None,
        }
    }

    fn allows(grant: &Outbound, url: &str) -> bool {
        let uri: http::Uri = url.parse().unwrap();
        grant.allows(uri.scheme().unwrap(), uri.authority().unwrap())
    }

    #[test]
    fn exact_hosts_and_ports_match_only_themselves() {
        let grant = grant(&["127.0.0.2:2379", "Etcd-0.etcd:2379", "[::1]:8080"]);
        assert!(allows(
            &grant,
            "http://127.0.0.2:2379/v3/maintenance/status"
        ));
        assert!(allows(&grant, "http://etcd-0.ETCD:2379/"));
        assert!(allows(&grant, "http://[::1]:8080/"));
        assert!(!allows(&grant, "http://127.0.0.2:2380/"));
        assert!(!allows(&grant, "http://127.0.0.3:2379/"));
        assert!(!allows(&grant, "http://127.0.0.2/"), "default port 80");
        assert!(!allows(&grant, "http://etcd-0.etcd.evil:2379/"));
    }

    #[test]
    fn wildcards_cover_one_or_more_leading_labels() {
        let grant = grant(&["*.etcd.svc:2379", "api.example.com:443"]);
        assert!(allows(&grant, "http://etcd-1.etcd.svc:2379/"));
        assert!(allows(&grant, "http://a.b.etcd.svc:2379/"));
        assert!(!allows(&grant, "http://etcd.svc:2379/"));
        assert!(!allows(&grant, "http://xetcd.svc:2379/"));
        assert!(!allows(&grant, "http://etcd-1.etcd.svc:2380/"));
        assert!(
            allows(&grant, "https://api.example.com/"),
            "default port 443"
        );
    }

    #[test]
    fn address_blocks_cover_pod_ips() {
        let grant = grant(&["10.244.0.0/16:2379", "[fd00::/64]:2379", "0.0.0.0/0:1"]);
        assert!(allows(&grant, "http://10.244.7.9:2379/"));
        assert!(!allows(&grant, "http://10.245.0.1:2379/"));
        assert!(!allows(&grant, "http://10.244.7.9:2380/"));
        assert!(allows(&grant, "http://[fd00::1:2]:2379/"));
        assert!(!allows(&grant, "http://[fd01::1]:2379/"));
        assert!(
            allows(&grant, "http://192.0.2.1:1/"),
            "a /0 block holds every IPv4 address"
        );
        assert!(!allows(&grant, "http://[::1]:1/"), "but no IPv6 one");
        assert!(
            !allows(&grant, "http://10.244.etcd:2379/"),
            "names are not addresses"
        );
        assert_eq!(grant.host_list()[1], "[fd00::/64]:2379");
    }

    #[test]
    fn malformed_patterns_are_refused_with_a_reason() {
        for bad in [
            "127.0.0.2",
            "host:0",
            "host:99999",
            "*:80",
            "a.*.b:80",
            "[::1:80",
            "[nope]:80",
            "exa mple:80",
            ":80",
            "10.0.0.0/33:80",
            "etcd/8:80",
        ] {
            let error = bad.parse::<HostPattern>().unwrap_err().to_string();
            assert!(error.contains(bad), "{error}");
        }
        assert_eq!(
            "*.Etcd.svc:2379"
                .parse::<HostPattern>()
                .unwrap()
                .to_string(),
            "*.etcd.svc:2379"
        );
    }
}
