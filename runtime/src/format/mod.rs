//! The `.kiln` file format, version 2.0.
//!
//! A `.kiln` file is what the converter writes and the runtime executes: the
//! operators, every tensor's shape and quantization, the weights already in
//! the layout the kernels read, and the memory plan. It is read in place from
//! a memory map or a `&'static [u8]` in flash: nothing is copied.
//!
//! # Layout
//!
//! All integers and floats are **little-endian**; floats are IEEE-754 binary32.
//! Offsets are from the start of the file. The file starts on a 64-byte
//! boundary in memory (see [`Aligned`]), and so does every section.
//!
//! ```text
//! offset size  header (64 bytes)
//!  0      8    magic  "KILN\0\r\n\x1a" (the \r\n\x1a catch text-mode mangling)
//!  8      2    major version: 2. A reader rejects any other major version.
//!              (2.0 stores convolution and fully connected weights packed
//!              for the kernels, see [`pack`]; 1.x stored them as plain OHWI.)
//! 10      2    minor version: 0 to 2, the lowest that covers the file's
//!              operators ([`crate::OpKind::since_minor`]; 1 added `Sub`,
//!              `Slice`, `Max`, `Min`, `Reduce` and `ZeroInsert`; 2 the
//!              float operators, f32 activations inside the graph and
//!              f16 weights). A
//!              reader accepts minor versions up to its own: a new minor
//!              version only adds operator kinds or dtypes.
//! 12      4    flags: 0 (no flags are defined; a set bit is an error)
//! 16      8    file length in bytes (the whole file; no trailing data allowed:
//!              the bytes outside the header, section table and sections are
//!              alignment padding, zero and shorter than 64 bytes each)
//! 24      4    CRC-32 (IEEE, as zlib) of the whole file, computed with these
//!              four bytes set to zero. It catches accidents, not attackers.
//! 28      4    number of sections, n
//! 32      8    arena size in bytes: the one buffer all activations live in;
//!              at least the furthest end of an activation and at most that
//!              end rounded up to a multiple of 64
//! 40     24    reserved, zero
//! 64   24*n    section table, one entry per section:
//!                0 4 kind (a fourcc, below)   4 4 reserved, zero
//!                8 8 offset (a multiple of 64) 16 8 length in bytes
//! ```
//!
//! Sections do not overlap, lie inside the file, and each kind appears exactly
//! once. The kinds:
//!
//! * `STRS` strings: UTF-8 bytes that names point into (offset, length).
//! * `WGHT` weights: the bytes of every constant tensor, each starting at a
//!   multiple of 64 within the section (so that i32/f32 data is aligned and
//!   SIMD loads do not split cache lines).
//! * `TENS` tensors: `u32` count, `u32` zero, then one 64-byte record each:
//!   ```text
//!    0 1 dtype: 1 = i8, 2 = u8, 3 = i32, 4 = f32, 5 = packed i8 weights,
//!         6 = f16 (constants only; minor version 2)
//!    1 1 rank, 0..=4
//!    2 1 storage: 0 = activation in the arena, 1 = constant in WGHT
//!    3 1 reserved, zero
//!    4 4 name offset in STRS    8 4 name length     12 4 reserved, zero
//!   16 16 dims, 4 x u32: the first `rank` are the shape, the rest are 1.
//!         Activations are NHWC (rank 4) or [N, features] (rank 2).
//!   32 4 scale (f32, finite, > 0, at most 2^40; 1.0 for non-quantized dtypes)
//!   36 4 zero point (i32, within the dtype's range; 0 for i32 and f32)
//!   40 8 offset: in the arena (a multiple of 64) or in WGHT (a multiple of 64)
//!   48 8 byte length: exactly elements x dtype size; for packed weights
//!        (constants only) the length of their [`pack::Layout`], which the
//!        operator that reads them checks, with their sums and padding
//!   56 8 reserved, zero
//!   ```
//!   A quantized value `q` stands for the real value `scale * (q - zero_point)`.
//!   f32 and f16 constants (multipliers, slopes, float weights) are finite.
//! * `GRPH` graph interface: `u32` input count, `u32` output count, then the
//!   input tensor indices and the output tensor indices (`u32` each). Inputs
//!   and outputs are i8 or f32 activations; inputs are produced by no
//!   operator.
//! * `OPS_` operators, in execution order: `u32` count, `u32` zero, then one
//!   variable-length record each, made of 4-byte words:
//!   ```text
//!   0 2 kind (see OpKind)   2 1 input count   3 1 output count
//!   4 2 parameter count     6 2 reserved, zero
//!   8 .. input tensor indices (u32; 0xFFFF_FFFF = an absent optional input)
//!     .. output tensor indices (u32)
//!     .. parameters (i32 words; f32 parameters are stored as their bits)
//!   ```
//!   The inputs, outputs and parameters of each kind, and the arithmetic each
//!   performs, are specified on [`crate::OpKind`].
//!
//! # What loading checks
//!
//! Everything, once: the header, the checksum, section bounds and alignment,
//! every tensor's shape (no overflow), dtype, quantization, bounds and
//! alignment, every operator's kind, tensor counts, tensor indices, dtypes,
//! shapes and parameters, and the memory plan: every activation lies inside
//! the arena, every tensor is written by at most one operator and read only
//! after it was written, and no operator's output overlaps an input it reads
//! or any tensor still needed later. After loading, inference cannot fail on
//! account of the file.

mod aligned;
pub mod pack;
mod reader;
pub(crate) mod tensor;
mod writer;

pub use aligned::{Aligned, AlignedBytes};
pub use reader::Reader;
pub use tensor::{DType, Quant, Shape, Storage, TensorDesc, MAX_SCALE};
pub use writer::{ModelWriter, TensorId};

/// The eight bytes every `.kiln` file starts with.
pub const MAGIC: [u8; 8] = *b"KILN\0\r\n\x1a";
/// The format's major version: files of another major version are rejected.
pub const VERSION_MAJOR: u16 = 2;
/// The newest minor version this runtime reads.
pub const VERSION_MINOR: u16 = 2;
/// Alignment of the file in memory, of every section and of every tensor.
pub const ALIGN: usize = 64;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Size of one section-table entry.
pub const SECTION_ENTRY_LEN: usize = 24;
/// Size of one tensor record.
pub const TENSOR_RECORD_LEN: usize = 64;
/// Where the checksum sits in the header.
pub const CHECKSUM_OFFSET: usize = 24;
/// Marks an absent optional operator input.
pub const ABSENT: u32 = u32::MAX;

/// The section kinds, as fourcc codes.
pub mod section {
    /// Names.
    pub const STRINGS: [u8; 4] = *b"STRS";
    /// Constant tensor bytes.
    pub const WEIGHTS: [u8; 4] = *b"WGHT";
    /// Tensor table.
    pub const TENSORS: [u8; 4] = *b"TENS";
    /// Graph inputs and outputs.
    pub const GRAPH: [u8; 4] = *b"GRPH";
    /// Operator list.
    pub const OPS: [u8; 4] = *b"OPS_";
    /// Every kind, in the order the writer lays them out.
    pub const ALL: [[u8; 4]; 5] = [STRINGS, TENSORS, GRAPH, OPS, WEIGHTS];
}

/// CRC-32 of a whole file, computed as if its checksum field were zero.
pub fn checksum(file: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    if file.len() < CHECKSUM_OFFSET + 4 {
        hasher.update(file);
    } else {
        hasher.update(&file[..CHECKSUM_OFFSET]);
        hasher.update(&[0; 4]);
        hasher.update(&file[CHECKSUM_OFFSET + 4..]);
    }
    hasher.finalize()
}

/// Stores the correct checksum into a file's header, e.g. after a test or a
/// fuzzer changed the bytes on purpose. Does nothing to a too-short buffer.
pub fn reseal(file: &mut [u8]) {
    if file.len() >= HEADER_LEN {
        let sum = checksum(file);
        file[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&sum.to_le_bytes());
    }
}
