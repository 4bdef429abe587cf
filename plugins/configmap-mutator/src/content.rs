//! What a ConfigMap holds: its size as the API server counts it, a stable
//! hash of it, and key patterns.

use sha2::{Digest, Sha256};

/// The bytes the API server counts against its 1 MiB limit: every key plus
/// its value, with `binaryData` values decoded from base64.
pub fn data_size<'a>(
    data: impl Iterator<Item = (&'a str, &'a str)>,
    binary_data: impl Iterator<Item = (&'a str, &'a str)>,
) -> u64 {
    let text: usize = data.map(|(key, value)| key.len() + value.len()).sum();
    let binary: usize = binary_data
        .map(|(key, value)| key.len() + base64_decoded_len(value))
        .sum();
    (text + binary) as u64
}

fn base64_decoded_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|b| *b == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

/// The content hash: SHA-256, hex, over `data` then `binaryData` in key
/// order, each key and value followed by a NUL byte and the two maps
/// separated by a 0x01 byte (`binaryData` values as their base64 text).
/// Keys arrive sorted.
pub fn content_hash<'a>(
    data: impl Iterator<Item = (&'a str, &'a str)>,
    binary_data: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut hasher = Sha256::new();
    feed(&mut hasher, data);
    hasher.update([1]);
    feed(&mut hasher, binary_data);
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn feed<'a>(hasher: &mut Sha256, entries: impl Iterator<Item = (&'a str, &'a str)>) {
    for (key, value) in entries {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
}

/// Whether `key` matches `pattern` (`*` any run, `?` one character),
/// ignoring ASCII case.
pub fn matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let key: Vec<char> = key.to_ascii_lowercase().chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut p, mut k) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, k));
                p += 1;
            }
            Some(c) if *c == '?' || *c == key[k] => {
                p += 1;
                k += 1;
            }
            _ => match star {
                Some((star_p, star_k)) => {
                    p = star_p + 1;
                    k = star_k + 1;
                    star = Some((star_p, star_k + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_counts_keys_values_and_decoded_binary() {
        let data = [("a", "12345")];
        let binary = [("b", "aGVsbG8=")]; // "hello"
        assert_eq!(
            data_size(data.into_iter(), binary.into_iter()),
            1 + 5 + 1 + 5
        );
        assert_eq!(base64_decoded_len("aGk="), 2);
        assert_eq!(base64_decoded_len("aGV5"), 3);
    }

    #[test]
    fn hash_separates_keys_values_and_maps() {
        let hash = |data: &[(&'static str, &'static str)],
                    binary: &[(&'static str, &'static str)]| {
            content_hash(data.iter().copied(), binary.iter().copied())
        };
        let base = hash(&[("ab", "c")], &[]);
        assert_eq!(base.len(), 64);
        assert_ne!(base, hash(&[("a", "bc")], &[]));
        assert_ne!(base, hash(&[], &[("ab", "c")]));
        assert_eq!(base, hash(&[("ab", "c")], &[]));
        // sha256 of "\x01": the hash of an empty ConfigMap is fixed.
        assert_eq!(
            hash(&[], &[]),
            "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
        );
    }

    #[test]
    fn wildcards_match_like_shell_globs_ignoring_case() {
        assert!(matches("*password*", "DB_PASSWORD"));
        assert!(matches("*.pem", "tls.pem"));
        assert!(matches("key?", "KEY1"));
        assert!(matches("*a*b", "xaxxb"));
        assert!(!matches("*.pem", "tls.pem.txt"));
        assert!(!matches("key?", "key"));
        assert!(!matches("token", "tokens"));
    }
}
