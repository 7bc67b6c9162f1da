//! A bounds-checked little-endian cursor: every read of the file goes
//! through it, so a short or hostile file yields an error, never a panic.

use crate::error::{malformed, Error};

/// Reads little-endian values from a byte slice, front to back.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; `what` names them in error messages.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.bytes.len() {
            malformed!("{} ends early: {} more bytes needed, {} left", self.what, n, self.bytes.len());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads a `u16`.
    pub fn u16(&mut self) -> Result<u16, Error> {
        self.array().map(u16::from_le_bytes)
    }
    /// Reads a `u32`.
    pub fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_le_bytes)
    }
    /// Reads an `i32`.
    pub fn i32(&mut self) -> Result<i32, Error> {
        self.array().map(i32::from_le_bytes)
    }
    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_le_bytes)
    }
    /// Reads an `f32`.
    pub fn f32(&mut self) -> Result<f32, Error> {
        self.array().map(f32::from_le_bytes)
    }
    /// Reads a fourcc.
    pub fn fourcc(&mut self) -> Result<[u8; 4], Error> {
        self.array()
    }

    /// Reads `n` bytes that the format reserves and requires to be zero.
    pub fn reserved(&mut self, n: usize) -> Result<(), Error> {
        let what = self.what;
        if self.take(n)?.iter().any(|&b| b != 0) {
            malformed!("{what}: reserved bytes are not zero (written by a newer or broken converter?)");
        }
        Ok(())
    }
}
