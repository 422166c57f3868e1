//! How the compiled form's longest list (the services) is read back: into one allocation of
//! the length the bytes announce. Serde's own `Vec` reading caps what it reserves up front
//! (untrusted lengths) and grows by doubling, so 100,000 services would peak at about twice
//! their size, old and new buffer at once, in a wasm VM whose memory never shrinks. What is
//! reserved up front is bounded by a number of bytes that `crate::compact` sets for the
//! duration of a decode (a multiple of the compressed tables' size), whatever length the
//! bytes announce; past that, the list grows as serde's would.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    /// The most bytes a list may reserve up front.
    static BOUND: Cell<usize> = const { Cell::new(0) };
}

/// Runs `decode` with up-front reservations bounded by `bytes`.
pub(crate) fn bounded<T>(bytes: usize, decode: impl FnOnce() -> T) -> T {
    let before = BOUND.with(|b| b.replace(bytes));
    let out = decode();
    BOUND.with(|b| b.set(before));
    out
}

/// The most bytes a list may reserve up front in the decode under way (0 outside one).
pub(crate) fn bound() -> usize {
    BOUND.with(Cell::get)
}

pub(crate) fn serialize<T: Serialize, S: Serializer>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(items)
}

pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<Box<[T]>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    struct Exact<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Exact<T> {
        type Value = Box<[T]>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let announced = seq.size_hint().unwrap_or(0);
            let most = bound() / size_of::<T>().max(1);
            let mut items = Vec::with_capacity(announced.min(most));
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items.into_boxed_slice())
        }
    }

    d.deserialize_seq(Exact(PhantomData))
}
