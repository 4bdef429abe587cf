//! One pass over checked JSON text that finds where values, keys and
//! entries are, without decoding or allocating anything but the entry
//! lists: the index of a [`Document`](super::Document).
//!
//! Purpose-built because the index needs byte positions, which serde_json
//! does not expose, and jiter (which does) decodes every key and string it
//! passes: on a 17.5 KB pod, indexing four levels took 25 µs with jiter, of
//! which a third was string decoding and key allocation. Here strings are
//! only skipped and keys are kept as byte ranges. Strings, indentation and
//! the containers below the indexed levels are skipped eight bytes at a
//! time (word compares; `memchr` for long strings): on that pod this took
//! the index from 28 to 20 µs indented as the fixture is, and from 16 to
//! 12 µs compact as the API server sends it, about what serde_json takes
//! to skim it (`benches/document_index.rs`). The input has been checked as
//! JSON by serde_json before (a review's object, a manifest's settings), so
//! the scanner only needs to find structure; on bytes it does not expect it
//! gives up (`None`).

use std::ops::Range;

/// Where one entry of an object is: its key's raw text (between the quotes,
/// escapes undecoded) and its value.
pub type Entry = (Range<usize>, Range<usize>);

/// What a container holds, found in one pass.
pub enum Entries {
    /// An object's entries, in order.
    Object(Vec<Entry>),
    /// An array's elements, in order.
    Array(Vec<Range<usize>>),
}

/// Reads the value at or after `at` (whitespace skipped). Containers less
/// than `depth` levels down are handed to `found` with their entries;
/// deeper ones are skipped. Returns the value's span.
pub fn value(
    bytes: &[u8],
    at: usize,
    depth: usize,
    found: &mut impl FnMut(usize, Entries),
) -> Option<Range<usize>> {
    let start = skip_whitespace(bytes, at);
    let end = match bytes.get(start)? {
        b'{' | b'[' if depth == 0 => skip_container(bytes, start)?,
        b'{' => {
            let (entries, end) = object(bytes, start, depth, found)?;
            found(start, Entries::Object(entries));
            end
        }
        b'[' => {
            let (elements, end) = array(bytes, start, depth, found)?;
            found(start, Entries::Array(elements));
            end
        }
        b'"' => skip_string(bytes, start)?,
        b',' | b':' | b'}' | b']' => return None,
        _ => skip_scalar(bytes, start),
    };
    Some(start..end)
}

/// The entries of the object at `start` and the end of the object.
fn object(
    bytes: &[u8],
    start: usize,
    depth: usize,
    found: &mut impl FnMut(usize, Entries),
) -> Option<(Vec<Entry>, usize)> {
    let mut entries = Vec::new();
    let mut at = skip_whitespace(bytes, start + 1);
    if bytes.get(at) == Some(&b'}') {
        return Some((entries, at + 1));
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(bytes, at)?;
        let key = at + 1..key_end - 1;
        at = skip_whitespace(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let value = value(bytes, at + 1, depth - 1, found)?;
        at = skip_whitespace(bytes, value.end);
        entries.push((key, value));
        match bytes.get(at)? {
            b',' => at = skip_whitespace(bytes, at + 1),
            b'}' => return Some((entries, at + 1)),
            _ => return None,
        }
    }
}

/// The elements of the array at `start` and the end of the array.
fn array(
    bytes: &[u8],
    start: usize,
    depth: usize,
    found: &mut impl FnMut(usize, Entries),
) -> Option<(Vec<Range<usize>>, usize)> {
    let mut elements = Vec::new();
    let mut at = skip_whitespace(bytes, start + 1);
    if bytes.get(at) == Some(&b']') {
        return Some((elements, at + 1));
    }
    loop {
        let element = value(bytes, at, depth - 1, found)?;
        at = skip_whitespace(bytes, element.end);
        elements.push(element);
        match bytes.get(at)? {
            b',' => at += 1,
            b']' => return Some((elements, at + 1)),
            _ => return None,
        }
    }
}

/// The end of the object or array at `start`, counting brackets outside
/// strings.
fn skip_container(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    loop {
        match bytes.get(at)? {
            b'"' => {
                at = skip_string(bytes, at)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            // Indentation: jump to the next bracket or string.
            b' ' => {
                at = next_structural(bytes, at)?;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
}

/// The end (past the closing quote) of the string at `start`.
fn skip_string(bytes: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        at = next_quote_or_backslash(bytes, at)?;
        match bytes[at] {
            b'"' => return Some(at + 1),
            _ => at += 2,
        }
    }
}

/// The end of the number, `true`, `false` or `null` at `start`.
fn skip_scalar(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|byte| matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
        .map_or(bytes.len(), |offset| start + offset)
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    loop {
        // Indented JSON: runs of spaces, eight at a time.
        while word(bytes, at) == Some(swar::splat(b' ')) {
            at += 8;
        }
        match bytes.get(at) {
            Some(b' ' | b'\t' | b'\n' | b'\r') => at += 1,
            _ => return at,
        }
    }
}

/// The first of `"`, `{`, `[`, `}` or `]` at or after `at`, eight bytes at a
/// time: the bytes of a skipped container are mostly none of them.
fn next_structural(bytes: &[u8], mut at: usize) -> Option<usize> {
    while let Some(word) = word(bytes, at) {
        // Setting bit 5 turns `[` into `{` and `]` into `}`; the only other
        // bytes it turns into one of the three are control characters,
        // which checked JSON does not hold outside strings.
        let folded = word | swar::splat(0x20);
        let found =
            swar::equal(folded, b'"') | swar::equal(folded, b'{') | swar::equal(folded, b'}');
        if let Some(offset) = swar::first(found) {
            return Some(at + offset);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    let offset = rest
        .iter()
        .position(|byte| matches!(byte, b'"' | b'{' | b'[' | b'}' | b']'))?;
    Some(at + offset)
}

/// The first `"` or `\\` at or after `at`. Most strings in Kubernetes objects
/// are short, where a few words compare cheaper than `memchr` starts;
/// long ones go to `memchr`.
fn next_quote_or_backslash(bytes: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..SHORT_STRING_WORDS {
        let Some(word) = word(bytes, at) else { break };
        let found = swar::equal(word, b'"') | swar::equal(word, b'\\');
        if let Some(offset) = swar::first(found) {
            return Some(at + offset);
        }
        at += 8;
    }
    Some(at + memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?)
}

/// Words compared before a string is long enough to hand to `memchr`.
const SHORT_STRING_WORDS: usize = 4;

/// The eight bytes at `at`, if there are eight.
fn word(bytes: &[u8], at: usize) -> Option<u64> {
    let eight = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(eight.try_into().ok()?))
}

/// Byte comparisons eight at a time in a `u64` (SIMD within a register).
mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// `byte` in each of the eight lanes.
    pub const fn splat(byte: u8) -> u64 {
        ONES * byte as u64
    }

    /// The high bit set in lanes of `word` that equal `byte`. Exact up to
    /// the first such lane; lanes above it may be flagged wrongly, so only
    /// [`first`] reads the result.
    pub fn equal(word: u64, byte: u8) -> u64 {
        let zeroed = word ^ splat(byte);
        zeroed.wrapping_sub(ONES) & !zeroed & HIGHS
    }

    /// The lowest flagged lane (the first byte in the text).
    pub fn first(flags: u64) -> Option<usize> {
        (flags != 0).then(|| flags.trailing_zeros() as usize / 8)
    }
}
