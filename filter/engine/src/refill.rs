//! Where the decoder reads the inflated tables from: one buffer, refilled from the inflater in
//! bulk. (`postcard`'s own reader asks for every byte with a `read_exact` call, which took a
//! fifth of loading 100,000 services natively.) A string is read whole from the buffer, so the
//! buffer's size is the longest string the tables may hold.

use std::io::Read;

use postcard::de_flavors::Flavor;

pub(crate) struct Refill<R> {
    reader: R,
    buf: Box<[u8]>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes read from `reader` so far.
    read: u64,
    /// Whether `reader` said it had no more.
    ended: bool,
    /// The first error `reader` gave (the decoder reports any as the end of its input).
    error: Option<std::io::Error>,
}

impl<R: Read> Refill<R> {
    /// Reads from `reader` through a buffer of `size` bytes.
    pub(crate) fn new(reader: R, size: usize) -> Self {
        Self {
            reader,
            buf: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
            read: 0,
            ended: false,
            error: None,
        }
    }

    /// Bytes read from the reader so far.
    pub(crate) fn read(&self) -> u64 {
        self.read
    }

    /// Whether the reader ran out: a decode that ran out of input while this is `false`
    /// asked for more than the buffer holds.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// The first error the reader gave.
    pub(crate) fn error(&self) -> Option<&std::io::Error> {
        self.error.as_ref()
    }

    /// Bytes read into the buffer and not decoded.
    pub(crate) fn unread(&self) -> usize {
        self.end - self.start
    }

    /// The reader, for what follows.
    pub(crate) fn reader(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Makes `need` unread bytes available, or says the input ended first (or `need` is more
    /// than the buffer holds, which [`Refill::ended`] tells apart).
    fn fill(&mut self, need: usize) -> postcard::Result<()> {
        if need > self.buf.len() {
            return Err(postcard::Error::DeserializeUnexpectedEnd);
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < need {
            let free = self
                .buf
                .get_mut(self.end..)
                .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
            match self.reader.read(free) {
                Ok(0) => {
                    self.ended = true;
                    return Err(postcard::Error::DeserializeUnexpectedEnd);
                }
                Ok(n) => {
                    self.end += n;
                    self.read += u64::try_from(n).unwrap_or(u64::MAX);
                }
                Err(e) => {
                    self.error.get_or_insert(e);
                    return Err(postcard::Error::DeserializeUnexpectedEnd);
                }
            }
        }
        Ok(())
    }
}

impl<'de, R: Read + 'de> Flavor<'de> for Refill<R> {
    /// Itself: what was read, left unread, and how the input ended.
    type Remainder = Self;
    type Source = R;

    fn pop(&mut self) -> postcard::Result<u8> {
        if self.start == self.end {
            self.fill(1)?;
        }
        let byte = self
            .buf
            .get(self.start)
            .copied()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.start += 1;
        Ok(byte)
    }

    /// The tables are decoded into owned values only; nothing borrows from the input.
    fn try_take_n(&mut self, _count: usize) -> postcard::Result<&'de [u8]> {
        Err(crate::decode_error::refuse(
            "the tables ask for borrowed bytes, which the engine's types never hold",
        ))
    }

    fn try_take_n_temp<'a>(&'a mut self, count: usize) -> postcard::Result<&'a [u8]>
    where
        'de: 'a,
    {
        self.fill(count)?;
        let bytes = self
            .buf
            .get(self.start..self.start + count)
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.start += count;
        Ok(bytes)
    }

    fn finalize(self) -> postcard::Result<Self> {
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Values decode across refills of a small buffer, strings up to its size; a longer one
    /// is an error; what is left is counted.
    #[test]
    fn values_decode_across_refills() {
        let value: (Vec<String>, u64) = ((0..50).map(|i| "x".repeat(i)).collect(), u64::MAX - 7);
        let mut bytes = postcard::to_allocvec(&value).unwrap();
        bytes.extend_from_slice(b"rest");
        let mut de = postcard::Deserializer::from_flavor(Refill::new(&bytes[..], 64));
        let decoded: (Vec<String>, u64) = serde::Deserialize::deserialize(&mut de).unwrap();
        assert_eq!(decoded, value);
        let mut rest = de.finalize().unwrap();
        let mut tail = Vec::new();
        rest.reader().read_to_end(&mut tail).unwrap();
        assert_eq!(rest.unread() + tail.len(), 4);
        assert!(!rest.ended() && rest.error().is_none());
        let long = postcard::to_allocvec(&"y".repeat(65)).unwrap();
        let mut de = postcard::Deserializer::from_flavor(Refill::new(&long[..], 64));
        let err = <String as serde::Deserialize>::deserialize(&mut de).unwrap_err();
        assert_eq!(err, postcard::Error::DeserializeUnexpectedEnd);
        // The input had not ended: the string was longer than the buffer.
        assert!(!de.finalize().unwrap().ended());
    }
}
