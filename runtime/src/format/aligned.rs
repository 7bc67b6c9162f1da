//! 64-byte-aligned byte buffers: the file and the arena both need them.

use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};

use super::ALIGN;

/// A value placed on a 64-byte boundary, for embedding a model in the binary:
///
/// ```ignore
/// use kiln_runtime::{format::Aligned, Model};
/// static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("face.kiln"));
/// let model = Model::from_bytes(&MODEL.0)?;
/// ```
#[repr(C, align(64))]
pub struct Aligned<T: ?Sized>(pub T);

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u8; ALIGN]);

/// A heap buffer of bytes that starts on a 64-byte boundary.
#[derive(Clone)]
pub struct AlignedBytes {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBytes {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        AlignedBytes { lines: alloc::vec![Line([0; ALIGN]); len.div_ceil(ALIGN)], len }
    }

    /// `len` zero bytes, or `None` when the heap cannot hold them: for
    /// sizes a file asks for, which must not abort the process.
    pub fn try_zeroed(len: usize) -> Option<Self> {
        let mut lines = Vec::new();
        lines.try_reserve_exact(len.div_ceil(ALIGN)).ok()?;
        lines.resize(len.div_ceil(ALIGN), Line([0; ALIGN]));
        Some(AlignedBytes { lines, len })
    }

    /// An aligned copy of `bytes`.
    pub fn copy_of(bytes: &[u8]) -> Self {
        let mut out = Self::zeroed(bytes.len());
        out.copy_from_slice(bytes);
        out
    }

    /// An aligned copy of `bytes`, or `None` when the heap cannot hold it.
    pub fn try_copy_of(bytes: &[u8]) -> Option<Self> {
        let mut out = Self::try_zeroed(bytes.len())?;
        out.copy_from_slice(bytes);
        Some(out)
    }
}

impl Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
}

impl DerefMut for AlignedBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
}

impl core::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}
