//! Light views: deserialize only what a plugin reads, borrowing strings from
//! the texts fetched for the review.
//!
//! Parsing a whole 17 KB pod into `serde_json::Value` inside the sandbox costs
//! about 250 µs. A view names the few fields a plugin needs: Wicket sends
//! only those (a struct's fields come in one host call, from an index the
//! host built natively), the bytes of the rest never enter the sandbox, and
//! strings are borrowed instead of copied. Declare your own view structs
//! with the same pattern:
//!
//! ```
//! use serde::Deserialize;
//! use wicket_sdk::view::{ObjectMeta, Text};
//!
//! #[derive(Deserialize)]
//! struct PodView<'a> {
//!     #[serde(borrow)]
//!     metadata: ObjectMeta<'a>,
//!     #[serde(borrow)]
//!     spec: SpecView<'a>,
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct SpecView<'a> {
//!     #[serde(borrow, default)]
//!     service_account_name: Option<Text<'a>>,
//! }
//! # let pod: PodView = serde_json::from_str(r#"{"metadata":{},"spec":{}}"#).unwrap();
//! ```

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string from the request's JSON: borrowed when the JSON text holds it
/// verbatim, owned when it had escapes to decode.
///
/// `&str` fails on escaped strings (annotations often hold JSON) and a nested
/// `Cow<str>` never borrows; `Text` always works and borrows when it can.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Self(Cow::Borrowed(text))
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> serde::de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// A string map from the request's JSON (labels, annotations, data).
pub type TextMap<'a> = BTreeMap<Text<'a>, Text<'a>>;

/// The parts of `metadata` that plugins read most; everything else is
/// skipped without being built. A plugin that reads a few labels or
/// annotations of large objects reads [`Names`] and asks for each key
/// ([`crate::Review::label`], [`crate::Review::annotation`]).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta<'a> {
    /// The object's name; absent on a create that uses `generateName`.
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
    /// The prefix the API server completes into a name.
    #[serde(borrow, default)]
    pub generate_name: Option<Text<'a>>,
    /// The namespace, when the object itself carries it (a create's object
    /// often does not: use [`crate::Review::namespace`]).
    #[serde(borrow, default)]
    pub namespace: Option<Text<'a>>,
    /// Labels; `None` when the object has no `labels` field, which matters
    /// when patching (see [`crate::Patch::insert`]).
    #[serde(borrow, default)]
    pub labels: Option<TextMap<'a>>,
    /// Annotations; `None` when the object has no `annotations` field.
    #[serde(borrow, default)]
    pub annotations: Option<TextMap<'a>>,
}

impl ObjectMeta<'_> {
    /// The value of label `key`, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(Text::as_str)
    }

    /// The value of annotation `key`, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(Text::as_str)
    }

    /// The name, or the `generateName` prefix followed by `*` when the server
    /// has yet to choose one: what to call the object in a message.
    pub fn display_name(&self) -> String {
        display_name(self.name.as_deref(), self.generate_name.as_deref())
    }
}

/// An object's names from `metadata`, without its labels and annotations.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Names<'a> {
    /// The object's name; absent on a create that uses `generateName`.
    #[serde(borrow, default)]
    pub name: Option<Text<'a>>,
    /// The prefix the API server completes into a name.
    #[serde(borrow, default)]
    pub generate_name: Option<Text<'a>>,
    /// The namespace, when the object itself carries it.
    #[serde(borrow, default)]
    pub namespace: Option<Text<'a>>,
}

impl Names<'_> {
    /// As [`ObjectMeta::display_name`].
    pub fn display_name(&self) -> String {
        display_name(self.name.as_deref(), self.generate_name.as_deref())
    }
}

fn display_name(name: Option<&str>, generate_name: Option<&str>) -> String {
    match (name, generate_name) {
        (Some(name), _) => name.to_owned(),
        (None, Some(prefix)) => format!("{prefix}*"),
        (None, None) => "(unnamed)".to_owned(),
    }
}

/// Any object of which a plugin reads only `metadata`.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata<'a> {
    /// The object's metadata.
    #[serde(borrow, default)]
    pub metadata: ObjectMeta<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_borrows_plain_strings_and_decodes_escaped_ones() {
        let json = r#"{"metadata":{"name":"web","annotations":{"a":"plain","b":"say \"hi\""}}}"#;
        let object: Metadata = serde_json::from_str(json).unwrap();
        let annotations = object.metadata.annotations.as_ref().unwrap();
        assert!(matches!(annotations["a"].0, Cow::Borrowed("plain")));
        assert_eq!(object.metadata.annotation("b"), Some("say \"hi\""));
        assert!(matches!(annotations["b"].0, Cow::Owned(_)));
        assert_eq!(object.metadata.label("x"), None);
        assert!(object.metadata.labels.is_none());
    }

    #[test]
    fn display_name_covers_generated_names() {
        let generated: Metadata =
            serde_json::from_str(r#"{"metadata":{"generateName":"web-"}}"#).unwrap();
        assert_eq!(generated.metadata.display_name(), "web-*");
        let named: Metadata = serde_json::from_str(r#"{"metadata":{"name":"web"}}"#).unwrap();
        assert_eq!(named.metadata.display_name(), "web");
    }
}
