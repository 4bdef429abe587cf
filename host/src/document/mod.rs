//! A JSON document read a part at a time by JSON Pointer: the text as it
//! arrived, and a lazy index of the objects and arrays on the paths asked
//! for, so plugins of contract 0.2 read a few fields of a large object
//! without anyone parsing all of it.
//!
//! # The index
//! An index entry is an object's or array's entries: the byte range of each
//! key and value, kept by the container's offset in the text. The first read
//! builds the entries of the top [`FIRST_PASS_DEPTH`] levels in one pass
//! (`scan.rs`); a container deeper than that is indexed alone when a pointer
//! first passes through it. Both halves matter on a large pod (17.5 KB):
//! indexing each level on demand re-reads the bytes of every level on the
//! path, three times the object for a handful of pointers; indexing every
//! level builds entries for the hundreds of small objects in `managedFields`
//! that nobody reads. A document nobody reads is never indexed. One
//! [`Documents`] is built per review and shared by every plugin of a
//! pipeline, so the second plugin reads through the first one's index.

mod scan;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::value::RawValue;

use crate::review::AdmissionRequest;

/// What kind of JSON value sits at a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// One value of a document: its kind, its size, and its text when short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// What it is.
    pub kind: Kind,
    /// The length of its text in bytes.
    pub bytes: usize,
    /// Its text, when it was short enough.
    pub text: Option<&'a str>,
}

/// How many levels the first read indexes: the object, its fields, theirs
/// and one more, where plugins read (`metadata.labels`,
/// `spec.containers[0]`).
const FIRST_PASS_DEPTH: usize = 4;

/// A JSON document held as text, indexed on demand.
pub struct Document {
    text: Box<str>,
    /// The containers of the top levels, by the offset of their first byte.
    top: OnceLock<Index>,
    /// Deeper containers indexed so far.
    deeper: Mutex<Index>,
}

/// Containers by the offset of their first byte.
type Index = HashMap<usize, Arc<Container>>;

/// One indexed object or array: where each key (its raw text, escapes
/// undecoded) and each value are in the text.
type Container = scan::Entries;

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("bytes", &self.text.len())
            .finish_non_exhaustive()
    }
}

impl Document {
    /// A document over `text`, which must be one JSON value (the review
    /// decoder and the manifest loader have checked it).
    pub fn new(text: impl Into<Box<str>>) -> Document {
        Document {
            text: text.into(),
            top: OnceLock::new(),
            deeper: Mutex::new(Index::new()),
        }
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of the value at `pointer`.
    pub fn get(&self, pointer: &str) -> Option<&str> {
        self.resolve(pointer).map(|span| &self.text[span])
    }

    /// The value at `pointer`, with its text if at most `inline` bytes.
    pub fn part(&self, pointer: &str, inline: usize) -> Option<Part<'_>> {
        self.resolve(pointer).map(|span| self.part_at(span, inline))
    }

    /// Each of `names` in the object at `pointer`, as [`Document::part`].
    pub fn members(
        &self,
        pointer: &str,
        names: &[String],
        inline: usize,
    ) -> Option<Vec<Option<Part<'_>>>> {
        let Container::Object(entries) = &*self.container(self.resolve(pointer)?)? else {
            return None;
        };
        Some(
            names
                .iter()
                .map(|name| {
                    let span = self.member(entries, name)?;
                    Some(self.part_at(span, inline))
                })
                .collect(),
        )
    }

    /// Each element of the array at `pointer`, as [`Document::part`].
    pub fn elements(&self, pointer: &str, inline: usize) -> Option<Vec<Part<'_>>> {
        let Container::Array(elements) = &*self.container(self.resolve(pointer)?)? else {
            return None;
        };
        Some(
            elements
                .iter()
                .map(|span| self.part_at(span.clone(), inline))
                .collect(),
        )
    }

    fn part_at(&self, span: Range<usize>, inline: usize) -> Part<'_> {
        let text = &self.text[span];
        Part {
            kind: kind_of(text),
            bytes: text.len(),
            text: (text.len() <= inline).then_some(text),
        }
    }

    /// The keys of the object at `pointer`, in document order.
    pub fn keys(&self, pointer: &str) -> Option<Vec<String>> {
        match &*self.container(self.resolve(pointer)?)? {
            Container::Object(entries) => Some(
                entries
                    .iter()
                    .map(|(key, _)| self.key(key.clone()).into_owned())
                    .collect(),
            ),
            Container::Array(_) => None,
        }
    }

    /// The number of elements (or keys) of the array or object at `pointer`.
    pub fn len(&self, pointer: &str) -> Option<usize> {
        Some(match &*self.container(self.resolve(pointer)?)? {
            Container::Object(entries) => entries.len(),
            Container::Array(elements) => elements.len(),
        })
    }

    /// Where the value at `pointer` is in the text.
    fn resolve(&self, pointer: &str) -> Option<Range<usize>> {
        let start = self.text.len() - self.text.trim_start().len();
        let mut span = start..self.text.trim_end().len();
        if pointer.is_empty() {
            return Some(span);
        }
        for token in pointer.strip_prefix('/')?.split('/') {
            span = match &*self.container(span)? {
                Container::Object(entries) => self.member(entries, &unescape(token))?,
                Container::Array(elements) => elements.get(array_index(token)?)?.clone(),
            };
        }
        Some(span)
    }

    /// The index of the object or array at `span`, built on first use;
    /// `None` when the value there is neither.
    fn container(&self, span: Range<usize>) -> Option<Arc<Container>> {
        if !self.text[span.clone()].starts_with(['{', '[']) {
            return None;
        }
        let top = self
            .top
            .get_or_init(|| self.scan(0..self.text.len(), FIRST_PASS_DEPTH));
        if let Some(container) = top.get(&span.start) {
            return Some(container.clone());
        }
        let mut deeper = self.deeper.lock().expect("document index");
        if !deeper.contains_key(&span.start) {
            deeper.extend(self.scan(span.clone(), 1));
        }
        deeper.get(&span.start).cloned()
    }

    /// The containers of the value at `span`, `depth` levels down.
    fn scan(&self, span: Range<usize>, depth: usize) -> Index {
        let mut index = Index::new();
        let scanned = scan::value(
            self.text.as_bytes(),
            span.start,
            depth,
            &mut |at, entries| {
                index.insert(at, Arc::new(entries));
            },
        );
        if scanned.is_none() {
            // The text is checked JSON; a scan that fails indexes nothing.
            index.clear();
        }
        index
    }

    /// The value of the member `name` among `entries`; the last of duplicate
    /// keys wins, as in serde_json.
    fn member(&self, entries: &[scan::Entry], name: &str) -> Option<Range<usize>> {
        let (_, value) = entries
            .iter()
            .rev()
            .find(|(key, _)| self.key(key.clone()) == name)?;
        Some(value.clone())
    }

    /// A key's text, decoded when it holds escapes.
    fn key(&self, raw: Range<usize>) -> Cow<'_, str> {
        let text = &self.text[raw.clone()];
        match text.contains('\\') {
            false => Cow::Borrowed(text),
            true => {
                let quoted = &self.text[raw.start - 1..raw.end + 1];
                serde_json::from_str::<String>(quoted).map_or(Cow::Borrowed(text), Cow::Owned)
            }
        }
    }
}

/// The kind of the JSON value `text`, by its first byte.
fn kind_of(text: &str) -> Kind {
    match text.as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Boolean,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// A pointer token with `~1` and `~0` decoded.
fn unescape(token: &str) -> Cow<'_, str> {
    match token.contains('~') {
        true => token.replace("~1", "/").replace("~0", "~").into(),
        false => token.into(),
    }
}

/// An array index token: digits, without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits = token.bytes().all(|byte| byte.is_ascii_digit());
    let leading_zero = token.len() > 1 && token.starts_with('0');
    match digits && !leading_zero {
        true => token.parse().ok(),
        false => None,
    }
}

/// The documents of one review, built once and shared by every plugin that
/// judges it; a pipeline builds a new object document after a step changed
/// the object.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    /// The new object.
    pub object: Option<Arc<Document>>,
    /// The stored object.
    pub old_object: Option<Arc<Document>>,
    /// The operation's options.
    pub options: Option<Arc<Document>>,
}

impl Documents {
    /// The documents of `request`, each a copy of its text.
    pub fn of(request: &AdmissionRequest<'_>) -> Documents {
        let document = |raw: Option<&RawValue>| raw.map(|raw| Arc::new(Document::new(raw.get())));
        Documents {
            object: document(request.object),
            old_object: document(request.old_object),
            options: document(request.options),
        }
    }

    /// The same documents with the JSON text `object` in place of the
    /// object (a new document, indexed anew).
    pub fn with_object(&self, object: String) -> Documents {
        Documents {
            object: Some(Arc::new(Document::new(object))),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = include_str!("../../../tests/fixtures/v1-pod-create-large-orders-api.json");

    fn pod() -> Document {
        let review: serde_json::Value = serde_json::from_str(POD).unwrap();
        Document::new(review["request"]["object"].to_string())
    }

    #[test]
    fn reads_what_serde_json_reads_at_every_pointer() {
        let document = pod();
        let value: serde_json::Value = serde_json::from_str(document.text()).unwrap();
        for pointer in [
            "",
            "/metadata",
            "/metadata/name",
            "/metadata/annotations",
            "/spec/containers/0/name",
            "/spec/containers/0/ports",
            "/spec/volumes/1",
            "/spec/nope",
            "/spec/containers/99",
            "/spec/containers/01",
            "/spec/containers/-",
            "/metadata/name/x",
        ] {
            let expected = value.pointer(pointer);
            let got = document
                .get(pointer)
                .map(|text| serde_json::from_str::<serde_json::Value>(text).unwrap());
            assert_eq!(got.as_ref(), expected, "at {pointer:?}");
        }
        assert_eq!(document.get("metadata"), None, "a pointer starts with '/'");
    }

    #[test]
    fn keys_len_and_kind() {
        let document =
            Document::new(r#" {"a": {"x/y": 1, "t~": [true, null, "s"]}, "a": {"b": 2}} "#);
        assert_eq!(document.keys("").unwrap(), ["a", "a"]);
        assert_eq!(
            document.get("/a"),
            Some(r#"{"b": 2}"#),
            "the last duplicate wins"
        );
        let nested = Document::new(r#"{"a": {"x/y": 1, "t~": [true, null, "s"]}}"#);
        assert_eq!(nested.get("/a/x~1y"), Some("1"));
        assert_eq!(nested.len("/a/t~0"), Some(3));
        assert_eq!(nested.len("/a/x~1y"), None);
        assert_eq!(nested.keys("/a/t~0"), None);
        let kind = |pointer| nested.part(pointer, 0).map(|part| part.kind);
        assert_eq!(kind("/a/t~0/0"), Some(Kind::Boolean));
        assert_eq!(kind("/a/t~0/1"), Some(Kind::Null));
        assert_eq!(kind("/a/t~0/2"), Some(Kind::String));
        assert_eq!(kind("/a/x~1y"), Some(Kind::Number));
        assert_eq!(kind("/a/t~0"), Some(Kind::Array));
        assert_eq!(kind("/a"), Some(Kind::Object));
        assert_eq!(kind("/b"), None);
    }

    #[test]
    fn parts_carry_short_texts_only() {
        let document = Document::new(r#"{"short": [1], "long": [1, 2, 3, 4], "n": null}"#);
        let part = |kind, bytes, text| Some(Part { kind, bytes, text });
        assert_eq!(
            document.members("", &["long".into(), "nope".into(), "short".into()], 3),
            Some(vec![
                part(Kind::Array, 12, None),
                None,
                part(Kind::Array, 3, Some("[1]"))
            ])
        );
        assert_eq!(document.members("/short", &[], 3), None, "not an object");
        assert_eq!(
            document.elements("/long", 1).unwrap()[3],
            Part {
                kind: Kind::Number,
                bytes: 1,
                text: Some("4")
            }
        );
        assert_eq!(document.elements("/n", 1), None, "not an array");
        assert_eq!(document.part("/n", 3), part(Kind::Null, 4, None));
    }

    #[test]
    fn indexes_the_top_levels_at_once_and_deeper_ones_on_demand() {
        let document = pod();
        assert!(
            document.top.get().is_none(),
            "nothing before the first read"
        );
        assert_eq!(document.get("/metadata/name"), Some(r#""orders-api""#));
        let top = document.top.get().unwrap().len();
        assert!(top > 10, "{top} containers in the first pass");
        let deeper = || document.deeper.lock().unwrap().len();
        assert_eq!(deeper(), 0);
        assert!(document.get("/spec/containers/0/ports/0").is_some());
        assert_eq!(deeper(), 1, "the ports list");
        document.get("/spec/containers/0/ports/0/containerPort");
        assert_eq!(deeper(), 2, "the port");
        document.get("/spec/containers/0/ports/0/protocol");
        assert_eq!(deeper(), 2, "reused");
    }
}
