//! How the compiled form's longest list (the services) is read back: into one allocation of
//! the length the bytes announce. Serde's own `Vec` reading caps what it reserves up front
//! (untrusted lengths) and grows by doubling, so 100,000 services would peak at about twice
//! their size, old and new buffer at once, in a wasm VM whose memory never shrinks. What is
//! reserved up front is bounded by a budget of bytes that `crate::compact` sets for the
//! duration of a decode (a multiple of the compressed tables' size), shared by every table
//! and whatever lengths the bytes announce; past that, a list grows as serde's would.

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

/// How many of `items` announced items of `size` bytes a table may reserve up front: what
/// the decode's budget still holds, which the reservation then uses up (0 outside a decode).
/// One budget for every table, so that lengths announced and never filled cannot reserve
/// more in all than the bound.
pub(crate) fn grant(items: usize, size: usize) -> usize {
    BOUND.with(|budget| {
        let left = budget.get();
        let granted = items.min(left / size.max(1));
        budget.set(left.saturating_sub(granted.saturating_mul(size)));
        granted
    })
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
            let mut items = Vec::with_capacity(grant(announced, size_of::<T>()));
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items.into_boxed_slice())
        }
    }

    d.deserialize_seq(Exact(PhantomData))
}
