//! Deserializing a plugin's own types straight from a host document.
//!
//! A large struct is read a field at a time: one host call (`members`)
//! returns the fields the type names, each with its text when it is short;
//! a large array is read the same way, an element at a time (`elements`).
//! Anything else (a string, a map of labels, a `Value`, a small struct) is
//! parsed by serde_json from its one JSON text, borrowing from it. So a view
//! of a few fields of a large pod never brings the rest of the pod into the
//! sandbox, in about one host call per object it walks.
//!
//! # Caveats
//! `#[serde(deny_unknown_fields)]` is enforced only on objects read whole
//! (up to `INLINE_BYTES` of text): a larger object is read by the names
//! the type lists, so fields it does not list are never fetched, and never
//! refused. Refusing them would cost a `keys` call per large object on
//! every read; check a large object's keys yourself where it matters.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Error;
use serde_json::de::StrRead;
use typed_arena::Arena;

use crate::bindings::wicket::admission::types::{JsonKind, Part};
use crate::patch::push_segment;
use crate::source::Source;

/// Values up to this size come with their text: a short parse costs less
/// than walking them a part at a time. Measured with `plugin_call`: at 512
/// bytes a small ConfigMap cost 20% more than reading it whole, at 8 KiB the
/// large pod's injector 6% more than at 2 KiB.
const INLINE_BYTES: u32 = 2048;

/// The value at `pointer` in `source`, as a serde deserializer whose
/// strings borrow from texts kept in `texts`.
pub(crate) struct At<'b, 'a> {
    source: &'b Source<'a>,
    texts: &'b Arena<String>,
    pointer: String,
    /// The value, once asked for (or told by its parent).
    part: Option<Option<Part>>,
}

impl<'b, 'a> At<'b, 'a> {
    /// The value at `pointer`.
    pub(crate) fn new(source: &'b Source<'a>, texts: &'b Arena<String>, pointer: &str) -> Self {
        At {
            source,
            texts,
            pointer: pointer.to_owned(),
            part: None,
        }
    }

    /// The value under `token` (a key or an index) of this one, which its
    /// parent has described as `part`.
    fn child(&self, token: &str, part: Part) -> Self {
        let mut pointer = String::with_capacity(self.pointer.len() + token.len() + 1);
        pointer.push_str(&self.pointer);
        push_segment(&mut pointer, token);
        At {
            source: self.source,
            texts: self.texts,
            pointer,
            part: Some(Some(part)),
        }
    }

    fn part(&mut self) -> Option<&Part> {
        let (source, pointer) = (self.source, &self.pointer);
        self.part
            .get_or_insert_with(|| source.part(pointer, INLINE_BYTES))
            .as_ref()
    }

    /// Whether the value is a `kind` that came without its text, too large
    /// to parse whole.
    fn worth_walking(&mut self, kind: JsonKind) -> bool {
        matches!(self.part(), Some(part) if part.kind == kind && part.text.is_none())
    }

    /// The value's JSON text, kept as long as the review.
    fn text(&mut self) -> Result<&'b str, Error> {
        let text = match self.part.take().flatten().and_then(|part| part.text) {
            Some(text) => text,
            None => self
                .source
                .get(&self.pointer)
                .ok_or_else(|| de::Error::custom(format_args!("no value at {:?}", self.pointer)))?,
        };
        Ok(self.texts.alloc(text))
    }

    /// `parse` run on the value's whole text; an error names the pointer.
    fn parsed<T>(
        mut self,
        parse: impl FnOnce(&mut serde_json::Deserializer<StrRead<'b>>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let text = self.text()?;
        parse(&mut serde_json::Deserializer::from_str(text))
            .map_err(|error| at(&self.pointer, error))
    }
}

/// The members `names` of the object at `pointer` in `source`, each as `T`,
/// in one host call; all `None` when there is no object there.
pub(crate) fn members<'b, T: Deserialize<'b>>(
    source: &'b Source<'_>,
    texts: &'b Arena<String>,
    pointer: &str,
    names: &[&str],
) -> Result<Vec<Option<T>>, Error> {
    let owned: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let Some(parts) = source.members(pointer, &owned, INLINE_BYTES) else {
        return Ok(names.iter().map(|_| None).collect());
    };
    let object = At::new(source, texts, pointer);
    names
        .iter()
        .zip(parts)
        .map(|(name, part)| {
            part.map(|part| T::deserialize(object.child(name, part)))
                .transpose()
        })
        .collect()
}

/// `error`, found parsing the value at `pointer`, naming where it is.
fn at(pointer: &str, error: Error) -> Error {
    match pointer {
        "" => error,
        _ => de::Error::custom(format_args!("at {pointer}: {error}")),
    }
}

/// Deserializer methods served by parsing the value's whole text.
macro_rules! by_text {
    ($($method:ident($($arg:ident: $type:ty),*);)*) => {$(
        fn $method<V: Visitor<'b>>(self, $($arg: $type,)* visitor: V) -> Result<V::Value, Error> {
            self.parsed(|json| json.$method($($arg,)* visitor))
        }
    )*};
}

impl<'b> Deserializer<'b> for At<'b, '_> {
    type Error = Error;

    fn deserialize_struct<V: Visitor<'b>>(
        mut self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if !self.worth_walking(JsonKind::Object) {
            return self.parsed(|json| json.deserialize_struct(name, fields, visitor));
        }
        let names: Vec<String> = fields.iter().map(|field| (*field).to_owned()).collect();
        let members = self
            .source
            .members(&self.pointer, &names, INLINE_BYTES)
            .unwrap_or_default();
        let present: Vec<(&'static str, Part)> = fields
            .iter()
            .zip(members)
            .filter_map(|(field, part)| Some((*field, part?)))
            .collect();
        visitor.visit_map(Fields {
            at: &self,
            fields: present.into_iter(),
            current: None,
        })
    }

    fn deserialize_seq<V: Visitor<'b>>(mut self, visitor: V) -> Result<V::Value, Error> {
        if !self.worth_walking(JsonKind::Array) {
            return self.parsed(|json| json.deserialize_seq(visitor));
        }
        let elements = self
            .source
            .elements(&self.pointer, INLINE_BYTES)
            .unwrap_or_default();
        visitor.visit_seq(Elements {
            at: &self,
            elements: elements.into_iter().enumerate(),
        })
    }

    fn deserialize_option<V: Visitor<'b>>(mut self, visitor: V) -> Result<V::Value, Error> {
        match self.part() {
            None => visitor.visit_none(),
            Some(part) if part.kind == JsonKind::Null => visitor.visit_none(),
            Some(_) => visitor.visit_some(self),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'b>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    by_text! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
    }
}

/// The fields of a struct that the object has, each read on its own.
struct Fields<'r, 'b, 'a> {
    at: &'r At<'b, 'a>,
    fields: std::vec::IntoIter<(&'static str, Part)>,
    current: Option<(&'static str, Part)>,
}

impl<'b> MapAccess<'b> for Fields<'_, 'b, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'b>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((field, part)) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some((field, part));
        seed.deserialize(de::value::BorrowedStrDeserializer::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'b>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (field, part) = self
            .current
            .take()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        seed.deserialize(self.at.child(field, part))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

/// The elements of an array, each read on its own.
struct Elements<'r, 'b, 'a> {
    at: &'r At<'b, 'a>,
    elements: std::iter::Enumerate<std::vec::IntoIter<Part>>,
}

impl<'b> SeqAccess<'b> for Elements<'_, 'b, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'b>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((index, part)) = self.elements.next() else {
            return Ok(None);
        };
        seed.deserialize(self.at.child(&index.to_string(), part))
            .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}
