//! Strings packed one after another into one text and found by position through where each
//! ends: the layout of the service names ([`crate::name::NameTable`]) and of the host tables'
//! keys ([`crate::key_table::KeyTable`]). A string costs its bytes and four more, with no
//! allocation of its own, and a position names a string for good.
//!
//! In the compiled form a packed table is `(total length, entries)`. Decoding appends each
//! entry's string to the one text straight from the decoder's buffer, checks it by the
//! table's own rule ([`Entries::check`]), and refuses a total that is not the announced one.
//! What is reserved up front comes from the decode's shared budget ([`crate::exact_seq`]).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The strings, by position.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Packed {
    text: Box<str>,
    /// Where each string ends in `text`.
    ends: Box<[u32]>,
}

impl Packed {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The string at `position`.
    pub(crate) fn get(&self, position: usize) -> Option<&str> {
        let end = *self.ends.get(position)? as usize;
        let start = match position.checked_sub(1) {
            Some(before) => *self.ends.get(before)? as usize,
            None => 0,
        };
        self.text.get(start..end)
    }

    /// Every string, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|p| self.get(p))
    }

    /// The compiled form: the total length, then `entries`, one per string in order (each the
    /// string, with whatever else the table keeps beside it). `what` names the strings in an
    /// error.
    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        &self,
        s: S,
        what: &str,
        entries: impl Iterator<Item = T>,
    ) -> Result<S::Ok, S::Error> {
        /// The entries as one sequence of the table's length.
        struct Sequence<I>(usize, Cell<Option<I>>);
        impl<I: Iterator<Item = T>, T: Serialize> Serialize for Sequence<I> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0))?;
                for entry in self.1.take().into_iter().flatten().take(self.0) {
                    seq.serialize_element(&entry)?;
                }
                seq.end()
            }
        }
        let text_len = u32::try_from(self.text.len())
            .map_err(|_| serde::ser::Error::custom(format!("{what} take over 4 GiB")))?;
        let mut tuple = s.serialize_tuple(2)?;
        tuple.serialize_element(&text_len)?;
        tuple.serialize_element(&Sequence(self.len(), Cell::new(Some(entries))))?;
        tuple.end()
    }
}

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Builds a table one string at a time.
#[derive(Default)]
pub(crate) struct Builder {
    text: String,
    ends: Vec<u32>,
}

impl Builder {
    /// Room for `count` strings of `text_len` bytes in all.
    pub(crate) fn with_capacity(text_len: usize, count: usize) -> Self {
        Self {
            text: String::with_capacity(text_len),
            ends: Vec::with_capacity(count),
        }
    }

    /// Appends one string, written as the concatenation of `pieces`.
    pub(crate) fn push(&mut self, pieces: &[&str]) {
        for piece in pieces {
            self.text.push_str(piece);
        }
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    pub(crate) fn finish(self) -> Packed {
        Packed {
            text: self.text.into_boxed_str(),
            ends: self.ends.into_boxed_slice(),
        }
    }
}

/// How one table's entries read and what each string must be.
pub(crate) trait Entries {
    /// What the table keeps beside each string (`()` for none).
    type Value;
    /// The strings as an error names them ("the names", "a host table's keys").
    const WHAT: &'static str;

    /// Reads one entry, appending its string to `text` (with [`Append`]); its value.
    fn read<'de, D: Deserializer<'de>>(d: D, text: &mut String) -> Result<Self::Value, D::Error>;

    /// Whether `string`, just read after `previous`, may stand in the table; why not.
    fn check(previous: Option<&str>, string: &str) -> Result<(), String>;
}

/// Decodes a packed table whose entries `E` reads: the strings, and the values beside them.
pub(crate) fn deserialize<'de, E: Entries, D: Deserializer<'de>>(
    d: D,
) -> Result<(Packed, Vec<E::Value>), D::Error> {
    d.deserialize_tuple(2, Table::<E>(PhantomData))
}

/// Appends one string to a text, straight from the decoder's buffer.
pub(crate) struct Append<'a>(pub(crate) &'a mut String);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_string(self)
    }
}

impl Visitor<'_> for Append<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<Er: serde::de::Error>(self, s: &str) -> Result<(), Er> {
        self.0.push_str(s);
        Ok(())
    }
}

/// Reads an entry that is `(string, value)`: appends the string to `text`; the value.
pub(crate) fn read_pair<'de, V: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
    text: &mut String,
) -> Result<V, D::Error> {
    struct Pair<'a, V>(&'a mut String, PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Pair<'_, V> {
        type Value = V;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string and its value")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V, A::Error> {
            seq.next_element_seed(Append(self.0))?
                .ok_or_else(|| A::Error::invalid_length(0, &self))?;
            seq.next_element()?
                .ok_or_else(|| A::Error::invalid_length(1, &self))
        }
    }
    d.deserialize_tuple(2, Pair(text, PhantomData))
}

/// The table as it is decoded.
struct Parts<V> {
    text: String,
    ends: Vec<u32>,
    values: Vec<V>,
    /// Where the last string read starts in `text`.
    last_start: usize,
}

struct Table<E>(PhantomData<E>);

impl<'de, E: Entries> Visitor<'de> for Table<E> {
    type Value = (Packed, Vec<E::Value>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: their total length and the entries", E::WHAT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let text_len: u32 = seq
            .next_element()?
            .ok_or_else(|| A::Error::invalid_length(0, &self))?;
        let announced = text_len as usize;
        let mut parts = Parts {
            text: String::with_capacity(crate::exact_seq::grant(announced, 1)),
            ends: Vec::new(),
            values: Vec::new(),
            last_start: 0,
        };
        seq.next_element_seed(Sequence::<E>(&mut parts))?
            .ok_or_else(|| A::Error::invalid_length(1, &self))?;
        if parts.text.len() != announced {
            return Err(crate::decode_error::refuse(format!(
                "{} take {} bytes, and the table says {announced}",
                E::WHAT,
                parts.text.len()
            )));
        }
        let packed = Packed {
            text: parts.text.into_boxed_str(),
            ends: parts.ends.into_boxed_slice(),
        };
        Ok((packed, parts.values))
    }
}

/// The entries, reserved up front for what the bytes announce within the decode's budget.
struct Sequence<'a, E: Entries>(&'a mut Parts<E::Value>);

impl<'de, E: Entries> DeserializeSeed<'de> for Sequence<'_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, E: Entries> Visitor<'de> for Sequence<'_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the entries of {}", E::WHAT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let parts = self.0;
        let announced = seq.size_hint().unwrap_or(0);
        let reserved = crate::exact_seq::grant(announced, size_of::<u32>() + size_of::<E::Value>());
        parts.ends.reserve_exact(reserved);
        parts.values.reserve_exact(reserved);
        while seq.next_element_seed(Entry::<E>(parts))?.is_some() {}
        Ok(())
    }
}

/// One entry: its string appended and checked, its value kept.
struct Entry<'a, E: Entries>(&'a mut Parts<E::Value>);

impl<'de, E: Entries> DeserializeSeed<'de> for Entry<'_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let parts = self.0;
        let start = parts.text.len();
        let value = E::read(d, &mut parts.text)?;
        let previous = if parts.ends.is_empty() {
            None
        } else {
            parts.text.get(parts.last_start..start)
        };
        let string = parts.text.get(start..).unwrap_or_default();
        E::check(previous, string).map_err(crate::decode_error::refuse)?;
        let end = u32::try_from(parts.text.len())
            .map_err(|_| crate::decode_error::refuse(format!("{} take over 4 GiB", E::WHAT)))?;
        parts.ends.push(end);
        parts.values.push(value);
        parts.last_start = start;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Strings in ascending order, each with a number beside it.
    struct Ascending;

    impl Entries for Ascending {
        type Value = u8;
        const WHAT: &'static str = "the test's strings";

        fn read<'de, D: Deserializer<'de>>(d: D, text: &mut String) -> Result<u8, D::Error> {
            read_pair(d, text)
        }

        fn check(previous: Option<&str>, string: &str) -> Result<(), String> {
            match previous {
                Some(p) if p >= string => Err(format!("{string:?} after {p:?}")),
                _ => Ok(()),
            }
        }
    }

    fn decode(len: u32, entries: &[(&str, u8)]) -> Result<(Packed, Vec<u8>), postcard::Error> {
        let bytes = postcard::to_allocvec(&(len, entries)).unwrap();
        let mut d = postcard::Deserializer::from_bytes(&bytes);
        deserialize::<Ascending, _>(&mut d)
    }

    /// Strings come back by position with their values; a string the table's rule refuses
    /// (here the second "a", the first checked against the one before it) and a total length
    /// that is not the announced one are refused.
    #[test]
    fn entries_decode_in_place_and_are_checked() {
        let (packed, values) = decode(6, &[("a", 1), ("bc", 2), ("def", 3)]).unwrap();
        assert_eq!(packed.len(), 3);
        assert_eq!(packed.iter().collect::<Vec<_>>(), ["a", "bc", "def"]);
        assert_eq!(packed.get(1), Some("bc"));
        assert_eq!(packed.get(3), None);
        assert_eq!(values, [1, 2, 3]);
        let (empty, none) = decode(0, &[]).unwrap();
        assert_eq!((empty.len(), none.len()), (0, 0));
        for (len, entries) in [
            (3, vec![("a", 1), ("b", 2), ("a", 3)]),
            (2, vec![("b", 1), ("a", 2)]),
            (2, vec![("a", 1), ("a", 2)]),
            (5, vec![("a", 1), ("b", 2)]),
            (1, vec![("a", 1), ("b", 2)]),
        ] {
            assert_eq!(
                decode(len, &entries).unwrap_err(),
                postcard::Error::SerdeDeCustom,
                "{entries:?}"
            );
        }
        let mut built = Builder::default();
        built.push(&["a"]);
        built.push(&["b", "/", "c"]);
        assert_eq!(built.finish().iter().collect::<Vec<_>>(), ["a", "b/c"]);
    }
}
