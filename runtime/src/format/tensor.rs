//! Tensor records: element type, shape, quantization and storage.

use super::{Reader, ALIGN};
use crate::error::{malformed, Error};

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// Signed 8-bit: quantized activations and weights.
    I8,
    /// Unsigned 8-bit: lookup tables.
    U8,
    /// Signed 32-bit: biases.
    I32,
    /// IEEE binary32: requantization multipliers, float edges.
    F32,
    /// Int8 weights packed for the kernels ([`super::pack`]): the dims are
    /// the logical shape, the byte length is the packed layout's, which the
    /// operator reading the tensor checks. Constants only.
    Packed,
    /// IEEE binary16: float weights (widened to f32 exactly in the kernels).
    /// Constants only.
    F16,
}

impl DType {
    /// The code stored in the file.
    pub fn code(self) -> u8 {
        match self {
            DType::I8 => 1,
            DType::U8 => 2,
            DType::I32 => 3,
            DType::F32 => 4,
            DType::Packed => 5,
            DType::F16 => 6,
        }
    }

    /// Decodes a file code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => DType::I8,
            2 => DType::U8,
            3 => DType::I32,
            4 => DType::F32,
            5 => DType::Packed,
            6 => DType::F16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Packed => 1,
            DType::F16 => 2,
            DType::I32 | DType::F32 => 4,
        }
    }

    /// The range of zero points that makes sense for this type.
    fn zero_point_range(self) -> (i32, i32) {
        match self {
            DType::I8 => (-128, 127),
            DType::Packed => (0, 0),
            DType::U8 => (0, 255),
            DType::I32 | DType::F32 | DType::F16 => (0, 0),
        }
    }
}

/// The largest scale a file may declare, 2^40: every real value an int8
/// tensor then stands for, and the sum of their squares over a million
/// elements, stays finite in f32 (a scale near f32's limit made outputs
/// infinite and their cosines NaN).
pub const MAX_SCALE: f32 = 1_099_511_627_776.0;

/// Affine quantization: `real = scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quant {
    /// Size of one step, in real units.
    pub scale: f32,
    /// The quantized value that stands for real zero.
    pub zero_point: i32,
}

impl Quant {
    /// No quantization: `real = q`.
    pub const IDENTITY: Quant = Quant { scale: 1.0, zero_point: 0 };
}

/// A tensor shape of rank 0 to 4. Dimensions past the rank are 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    dims: [usize; 4],
    rank: usize,
}

impl Shape {
    /// A shape from its dimensions; `None` for a rank above 4.
    pub fn new(dims: &[usize]) -> Option<Self> {
        let mut all = [1; 4];
        all.get_mut(..dims.len())?.copy_from_slice(dims);
        Some(Shape { dims: all, rank: dims.len() })
    }

    /// The dimensions, `rank` of them.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of elements (validated at load not to overflow).
    pub fn elements(&self) -> usize {
        self.dims().iter().product()
    }

    /// Number of elements, or `None` on overflow.
    pub fn checked_elements(&self) -> Option<usize> {
        self.dims().iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// An NHWC shape as `[n, h, w, c]` (for rank 4).
    pub fn nhwc(&self) -> [usize; 4] {
        self.dims
    }
}

/// Where a tensor's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// An activation at an offset in the session's arena.
    Arena,
    /// A constant at an offset in the file's weights section.
    Constant,
}

/// One tensor record, decoded and checked on its own (the model checks it
/// against the arena and the weights section).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorDesc {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
    /// Quantization.
    pub quant: Quant,
    /// Arena or weights.
    pub storage: Storage,
    /// Byte offset in the arena or in the weights section.
    pub offset: usize,
    /// Byte length.
    pub len: usize,
    /// Name: offset and length in the strings section.
    pub name: (usize, usize),
}

impl TensorDesc {
    /// Decodes the 64-byte record of tensor `index`.
    pub fn read(r: &mut Reader<'_>, index: usize) -> Result<Self, Error> {
        let code = r.u8()?;
        let Some(dtype) = DType::from_code(code) else {
            malformed!("tensor {index}: unknown dtype code {code}");
        };
        let rank = usize::from(r.u8()?);
        let storage = match r.u8()? {
            0 => Storage::Arena,
            1 => Storage::Constant,
            s => malformed!("tensor {index}: unknown storage code {s}"),
        };
        r.reserved(1)?;
        let name = (to_usize(r.u32()?.into()), to_usize(r.u32()?.into()));
        r.reserved(4)?;
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = to_usize(r.u32()?.into());
        }
        if rank > 4 {
            malformed!("tensor {index}: rank {rank}, at most 4 is supported");
        }
        if dims[rank..].iter().any(|&d| d != 1) {
            malformed!("tensor {index}: dimensions past its rank {rank} must be 1, found {dims:?}");
        }
        let shape = Shape { dims, rank };
        let quant = Quant { scale: r.f32()?, zero_point: r.i32()? };
        if !(quant.scale.is_finite() && quant.scale > 0.0) {
            malformed!("tensor {index}: scale {} is not a finite positive number", quant.scale);
        }
        if quant.scale > MAX_SCALE {
            malformed!("tensor {index}: scale {} is above {MAX_SCALE:e}, the largest kiln takes", quant.scale);
        }
        let (lo, hi) = dtype.zero_point_range();
        if !(lo..=hi).contains(&quant.zero_point) {
            malformed!("tensor {index}: zero point {} is outside {lo}..={hi} for {dtype:?}", quant.zero_point);
        }
        let offset = r.u64()?;
        let len = r.u64()?;
        r.reserved(8)?;
        // In u64, not usize: on a 32-bit target a length that does not fit
        // usize must still be compared as written in the file, not saturated.
        let elements = shape.dims().iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        let expected = elements.and_then(|n| n.checked_mul(dtype.size() as u64));
        if dtype == DType::Packed {
            if storage != Storage::Constant {
                malformed!("tensor {index}: packed weights must be a constant");
            }
            // Kernels count a packed tensor's elements in usize.
            if shape.checked_elements().and_then(|n| n.checked_mul(dtype.size())).is_none() {
                malformed!("tensor {index}: the size of shape {:?} overflows", shape.dims());
            }
        } else if dtype == DType::F16 && storage != Storage::Constant {
            malformed!("tensor {index}: f16 tensors are weights and must be constants");
        } else if expected != Some(len) {
            malformed!(
                "tensor {index}: byte length {len} does not match shape {:?} of {dtype:?} \
                 (or the shape's size overflows)",
                shape.dims()
            );
        }
        let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
            let place = if storage == Storage::Arena { "arena" } else { "weights section" };
            malformed!(
                "tensor {index}: {len} bytes at {offset} lie outside the {place}, past what this {}-bit target can address",
                usize::BITS
            );
        };
        if !offset.is_multiple_of(ALIGN) {
            malformed!("tensor {index}: offset {offset} is not a multiple of {ALIGN}");
        }
        Ok(TensorDesc { dtype, shape, quant, storage, offset, len, name })
    }

    /// The byte range within the arena or the weights section.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
}

/// A file offset or length as `usize`, saturating so that a value too big
/// for this target fails the following bounds check instead of wrapping.
pub(crate) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
