//! Where a review's documents are read from: the host's `document`
//! resource inside Wicket, or a parsed copy in a plugin's native tests.

use crate::bindings::wicket::admission::types::{Document, Part};

/// A document held by the host, read as the `document` resource is.
#[cfg(feature = "native")]
pub trait Reader {
    /// The JSON text of the value at `pointer`.
    fn get(&self, pointer: &str) -> Option<String>;
    /// The value at `pointer`, with its text if at most `inline` bytes.
    fn part(&self, pointer: &str, inline: u32) -> Option<Part>;
    /// Each of `names` in the object at `pointer`.
    fn members(&self, pointer: &str, names: &[String], inline: u32) -> Option<Vec<Option<Part>>>;
    /// Each element of the array at `pointer`.
    fn elements(&self, pointer: &str, inline: u32) -> Option<Vec<Part>>;
}

/// One document of a review (the object, the stored object, the options or
/// the settings).
#[derive(Clone)]
pub(crate) enum Source<'a> {
    /// Read through the host, a part at a time.
    Host(&'a Document),
    /// The same, for a document the plugin holds (a cluster object).
    Owned(std::rc::Rc<Document>),
    /// Read from a host's document natively (benchmarks).
    #[cfg(feature = "native")]
    Native(&'a dyn Reader),
    /// A copy held by the plugin (native tests).
    #[cfg(any(test, feature = "testing"))]
    Text(std::rc::Rc<Text>),
}

impl Source<'_> {
    /// The JSON text of the value at `pointer`.
    pub(crate) fn get(&self, pointer: &str) -> Option<String> {
        match self {
            Source::Host(document) => document.get(pointer),
            Source::Owned(document) => document.get(pointer),
            #[cfg(feature = "native")]
            Source::Native(reader) => reader.get(pointer),
            #[cfg(any(test, feature = "testing"))]
            Source::Text(text) => match pointer {
                "" => Some(text.text.clone()),
                _ => text.value.pointer(pointer).map(|value| value.to_string()),
            },
        }
    }

    /// The value at `pointer`, with its text if at most `inline` bytes.
    pub(crate) fn part(&self, pointer: &str, inline: u32) -> Option<Part> {
        match self {
            Source::Host(document) => document.part(pointer, inline),
            Source::Owned(document) => document.part(pointer, inline),
            #[cfg(feature = "native")]
            Source::Native(reader) => reader.part(pointer, inline),
            #[cfg(any(test, feature = "testing"))]
            Source::Text(text) => text
                .value
                .pointer(pointer)
                .map(|value| Text::part(value, inline)),
        }
    }

    /// Each of `names` in the object at `pointer`.
    pub(crate) fn members(
        &self,
        pointer: &str,
        names: &[String],
        inline: u32,
    ) -> Option<Vec<Option<Part>>> {
        match self {
            Source::Host(document) => document.members(pointer, names, inline),
            Source::Owned(document) => document.members(pointer, names, inline),
            #[cfg(feature = "native")]
            Source::Native(reader) => reader.members(pointer, names, inline),
            #[cfg(any(test, feature = "testing"))]
            Source::Text(text) => {
                let object = text.value.pointer(pointer)?.as_object()?;
                Some(
                    names
                        .iter()
                        .map(|name| object.get(name).map(|value| Text::part(value, inline)))
                        .collect(),
                )
            }
        }
    }

    /// Each element of the array at `pointer`.
    pub(crate) fn elements(&self, pointer: &str, inline: u32) -> Option<Vec<Part>> {
        match self {
            Source::Host(document) => document.elements(pointer, inline),
            Source::Owned(document) => document.elements(pointer, inline),
            #[cfg(feature = "native")]
            Source::Native(reader) => reader.elements(pointer, inline),
            #[cfg(any(test, feature = "testing"))]
            Source::Text(text) => {
                let array = text.value.pointer(pointer)?.as_array()?;
                Some(
                    array
                        .iter()
                        .map(|value| Text::part(value, inline))
                        .collect(),
                )
            }
        }
    }
}

/// A document held by the plugin: its text and its parse.
#[cfg(any(test, feature = "testing"))]
pub(crate) struct Text {
    text: String,
    value: serde_json::Value,
}

#[cfg(any(test, feature = "testing"))]
impl Text {
    /// The document of `text`, which is JSON.
    pub(crate) fn source(text: String) -> Result<Source<'static>, serde_json::Error> {
        let value = serde_json::from_str(&text)?;
        Ok(Source::Text(std::rc::Rc::new(Text { text, value })))
    }

    /// `value` as the host describes it.
    fn part(value: &serde_json::Value, inline: u32) -> Part {
        use crate::bindings::wicket::admission::types::JsonKind;
        use serde_json::Value;
        let kind = match value {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Boolean,
            Value::Number(_) => JsonKind::Number,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        };
        let text = value.to_string();
        let bytes = u32::try_from(text.len()).unwrap_or(u32::MAX);
        Part {
            kind,
            bytes,
            text: (bytes <= inline).then_some(text),
        }
    }
}
