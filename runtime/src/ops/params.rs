//! Operator parameters and their encoding as 32-bit words.

use alloc::vec::Vec;

use crate::error::{malformed, Error};

/// A non-negative parameter word as `usize`.
pub(crate) fn non_negative(v: i32, what: &str, op: usize) -> Result<usize, Error> {
    match usize::try_from(v) {
        Ok(v) => Ok(v),
        Err(_) => malformed!("operator {op}: {what} is {v}, must not be negative"),
    }
}

/// A positive parameter word as `usize`.
pub(crate) fn positive(v: i32, what: &str, op: usize) -> Result<usize, Error> {
    match non_negative(v, what, op)? {
        0 => malformed!("operator {op}: {what} is 0, must be at least 1"),
        v => Ok(v),
    }
}

/// A fused activation: the output is clamped to `min..=max`, in the output's
/// quantized units (Relu clamps at the zero point, Relu6 also at 6.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Act {
    /// Lowest output value.
    pub min: i32,
    /// Highest output value.
    pub max: i32,
}

impl Act {
    /// No clamp beyond int8's range.
    pub const NONE: Act = Act { min: -128, max: 127 };
    pub(crate) const WORDS: usize = 2;

    /// The parameter words: `[min, max]`.
    pub fn words(&self) -> Vec<i32> {
        alloc::vec![self.min, self.max]
    }

    pub(crate) fn from_words(p: &[i32], op: usize) -> Result<Self, Error> {
        let act = Act { min: p[0], max: p[1] };
        if !(-128 <= act.min && act.min <= act.max && act.max <= 127) {
            malformed!("operator {op}: activation range {}..={} is not within -128..=127", act.min, act.max);
        }
        Ok(act)
    }
}

/// Convolution parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
    /// Vertical and horizontal dilation.
    pub dilation: [usize; 2],
    /// Padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Groups: 1 for an ordinary convolution, the channel count for depthwise.
    pub groups: usize,
    /// Fused activation.
    pub act: Act,
}

impl Conv2d {
    pub(crate) const WORDS: usize = 11;

    /// The parameter words: stride h, w; dilation h, w; pad top, left,
    /// bottom, right; groups; activation min, max.
    pub fn words(&self) -> Vec<i32> {
        let mut w: Vec<i32> = [self.stride, self.dilation].iter().flatten().map(|&v| v as i32).collect();
        w.extend(self.pad.iter().map(|&v| v as i32));
        w.push(self.groups as i32);
        w.extend(self.act.words());
        w
    }

    pub(crate) fn from_words(p: &[i32], op: usize) -> Result<Self, Error> {
        Ok(Conv2d { act: Act::from_words(&p[9..11], op)?, ..Self::geometry_from_words(p, op)? })
    }

    /// The geometry words alone (the first 9 of [`Conv2d::words`]): what a
    /// float convolution shares with an int8 one.
    pub(crate) fn geometry_words(&self) -> Vec<i32> {
        let mut w = self.words();
        w.truncate(Self::GEOMETRY_WORDS);
        w
    }

    pub(crate) const GEOMETRY_WORDS: usize = 9;

    /// A convolution from its geometry words, with no activation.
    pub(crate) fn geometry_from_words(p: &[i32], op: usize) -> Result<Self, Error> {
        Ok(Conv2d {
            stride: [positive(p[0], "stride", op)?, positive(p[1], "stride", op)?],
            dilation: [positive(p[2], "dilation", op)?, positive(p[3], "dilation", op)?],
            pad: [
                non_negative(p[4], "padding", op)?,
                non_negative(p[5], "padding", op)?,
                non_negative(p[6], "padding", op)?,
                non_negative(p[7], "padding", op)?,
            ],
            groups: positive(p[8], "groups", op)?,
            act: Act::NONE,
        })
    }
}

/// The output bounds of a float operator, in real units: a value below
/// `lo` becomes `lo`, one above `hi` becomes `hi`, and a NaN stays NaN
/// (`max_ps(lo, v)` then `min_ps(hi, v)` on x86). Relu is `[0, inf]`,
/// Relu6 `[0, 6]`, none `[-inf, inf]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Lowest output value.
    pub lo: f32,
    /// Highest output value.
    pub hi: f32,
}

impl Bounds {
    /// No bounds.
    pub const NONE: Bounds = Bounds { lo: f32::NEG_INFINITY, hi: f32::INFINITY };
    pub(crate) const WORDS: usize = 2;

    /// The parameter words: `lo` and `hi` as f32 bits.
    pub fn words(&self) -> Vec<i32> {
        alloc::vec![self.lo.to_bits() as i32, self.hi.to_bits() as i32]
    }

    pub(crate) fn from_words(p: &[i32], op: usize) -> Result<Self, Error> {
        let b = Bounds { lo: f32::from_bits(p[0] as u32), hi: f32::from_bits(p[1] as u32) };
        if b.lo.is_nan() || b.hi.is_nan() || b.lo > b.hi {
            malformed!("operator {op}: bounds {}..={} are not an interval", b.lo, b.hi);
        }
        Ok(b)
    }

    /// `v` within the bounds.
    #[inline(always)]
    pub fn apply(&self, v: f32) -> f32 {
        let v = if v < self.lo { self.lo } else { v };
        if v > self.hi {
            self.hi
        } else {
            v
        }
    }
}

/// A float convolution: the geometry of [`Conv2d`] (whose `act` is
/// [`Act::NONE`] and unused) and output bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatConv2d {
    /// Stride, dilation, padding and groups.
    pub conv: Conv2d,
    /// Fused clamp.
    pub bounds: Bounds,
}

impl FloatConv2d {
    pub(crate) const WORDS: usize = Conv2d::GEOMETRY_WORDS + Bounds::WORDS;

    /// The parameter words: the 9 geometry words of [`Conv2d::words`], then
    /// [`Bounds::words`].
    pub fn words(&self) -> Vec<i32> {
        let mut w = self.conv.geometry_words();
        w.extend(self.bounds.words());
        w
    }

    pub(crate) fn from_words(p: &[i32], op: usize) -> Result<Self, Error> {
        let (geometry, bounds) = p.split_at(Conv2d::GEOMETRY_WORDS);
        Ok(FloatConv2d { conv: Conv2d::geometry_from_words(geometry, op)?, bounds: Bounds::from_words(bounds, op)? })
    }
}

/// An elementwise function of two float tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`
    Add = 0,
    /// `a - b`
    Sub = 1,
    /// `a * b`
    Mul = 2,
    /// `a / b`
    Div = 3,
    /// `b` if `a < b`, else `a`.
    Max = 4,
    /// `b` if `a > b`, else `a`.
    Min = 5,
    /// `a` to the power `b` (`libm::powf`).
    Pow = 6,
}

impl Binary {
    /// Every function.
    pub const ALL: [Binary; 7] =
        [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Max, Binary::Min, Binary::Pow];

    pub(crate) fn from_word(v: i32, op: usize) -> Result<Self, Error> {
        match Self::ALL.into_iter().find(|b| *b as i32 == v) {
            Some(b) => Ok(b),
            None => malformed!("operator {op}: unknown binary function {v}"),
        }
    }
}

/// An elementwise function of one float tensor, with up to two constant
/// parameters `a` and `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `a` below `a`, `b` above `b` ([`Bounds`]).
    Clamp = 0,
    /// `1 / (1 + exp(-x))`
    Sigmoid = 1,
    /// `tanh(x)`
    Tanh = 2,
    /// `x * min(max(x + 3, 0), 6) / 6`
    HardSwish = 3,
    /// `min(max(a * x + b, 0), 1)`
    HardSigmoid = 4,
    /// `|x|`
    Abs = 5,
    /// `-x`
    Neg = 6,
    /// `exp(x)`
    Exp = 7,
    /// `ln(x)`
    Log = 8,
    /// `sqrt(x)`
    Sqrt = 9,
    /// `erf(x)`
    Erf = 10,
    /// `x * (1 + erf(x / sqrt(2))) / 2`
    Gelu = 11,
    /// `1 / x`
    Reciprocal = 12,
    /// `x` to the power `a` (`libm::powf`)
    Pow = 13,
}

impl Unary {
    /// Every function.
    pub const ALL: [Unary; 14] = [
        Unary::Clamp,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::HardSwish,
        Unary::HardSigmoid,
        Unary::Abs,
        Unary::Neg,
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Erf,
        Unary::Gelu,
        Unary::Reciprocal,
        Unary::Pow,
    ];

    pub(crate) fn from_word(v: i32, op: usize) -> Result<Self, Error> {
        match Self::ALL.into_iter().find(|u| *u as i32 == v) {
            Some(u) => Ok(u),
            None => malformed!("operator {op}: unknown unary function {v}"),
        }
    }
}

/// Pooling parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right; each smaller than the window.
    pub pad: [usize; 4],
    /// Average pooling: divide by the whole window, padding included
    /// (ONNX `count_include_pad`), rather than by the valid elements.
    pub count_include_pad: bool,
}

impl Pool {
    pub(crate) const WORDS: usize = 9;

    /// The parameter words: kernel h, w; stride h, w; pad top, left, bottom,
    /// right; count_include_pad (0 or 1).
    pub fn words(&self) -> Vec<i32> {
        let mut w: Vec<i32> = [self.kernel, self.stride].iter().flatten().map(|&v| v as i32).collect();
        w.extend(self.pad.iter().map(|&v| v as i32));
        w.push(i32::from(self.count_include_pad));
        w
    }

    pub(crate) fn from_words(p: &[i32], op: usize) -> Result<Self, Error> {
        let pool = Pool {
            kernel: [positive(p[0], "kernel size", op)?, positive(p[1], "kernel size", op)?],
            stride: [positive(p[2], "stride", op)?, positive(p[3], "stride", op)?],
            pad: [
                non_negative(p[4], "padding", op)?,
                non_negative(p[5], "padding", op)?,
                non_negative(p[6], "padding", op)?,
                non_negative(p[7], "padding", op)?,
            ],
            count_include_pad: match p[8] {
                0 => false,
                1 => true,
                v => malformed!("operator {op}: count_include_pad is {v}, must be 0 or 1"),
            },
        };
        let [kh, kw] = pool.kernel;
        let [top, left, bottom, right] = pool.pad;
        if top >= kh || bottom >= kh || left >= kw || right >= kw {
            malformed!(
                "operator {op}: pooling padding {:?} is not smaller than the window {:?}",
                pool.pad,
                pool.kernel
            );
        }
        Ok(pool)
    }
}

/// How `Resize` picks or blends source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// Nearest neighbour.
    Nearest(NearestMode),
    /// Bilinear interpolation.
    Bilinear,
}

/// Rounding of the source coordinate for nearest-neighbour resize (ONNX
/// `nearest_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    /// Round, halves down.
    RoundPreferFloor,
    /// Round, halves up.
    RoundPreferCeil,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
}

/// Mapping from an output coordinate to a source coordinate (ONNX
/// `coordinate_transformation_mode`); `scale` is output size / input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordTransform {
    /// `(o + 0.5) / scale - 0.5`
    HalfPixel,
    /// `o / scale`
    Asymmetric,
    /// `o * (in - 1) / (out - 1)`, 0 when `out` is 1.
    AlignCorners,
    /// As `HalfPixel`, but 0 when `out` is 1.
    PytorchHalfPixel,
}

/// Resize parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resize {
    /// Nearest or bilinear.
    pub mode: ResizeMode,
    /// Coordinate mapping.
    pub coord: CoordTransform,
    /// Height and width scale factors (output / input), finite and positive.
    pub scale: [f32; 2],
}

impl Resize {
    pub(crate) const WORDS: usize = 5;

    /// The parameter words: mode (0 nearest, 1 bilinear), coordinate
    /// transform (0 half_pixel, 1 asymmetric, 2 align_corners,
    /// 3 pytorch_half_pixel), nearest mode (0 round_prefer_floor,
    /// 1 round_prefer_ceil, 2 floor, 3 ceil; 0 for bilinear), scale h and w
    /// as f32 bits.
    pub fn words(&self) -> Vec<i32> {
        let (mode, nearest) = match self.mode {
            ResizeMode::Nearest(n) => (0, n as i32),
            ResizeMode::Bilinear => (1, 0),
        };
        alloc::vec![mode, self.coord as i32, nearest, self.scale[0].to_bits() as i32, self.scale[1].to_bits() as i32]
    }

    pub(crate) fn from_words(p: &[i32], op: usize) -> Result<Self, Error> {
        let nearest = match p[2] {
            0 => NearestMode::RoundPreferFloor,
            1 => NearestMode::RoundPreferCeil,
            2 => NearestMode::Floor,
            3 => NearestMode::Ceil,
            v => malformed!("operator {op}: unknown nearest mode {v}"),
        };
        let mode = match p[0] {
            0 => ResizeMode::Nearest(nearest),
            1 => ResizeMode::Bilinear,
            v => malformed!("operator {op}: unknown resize mode {v}"),
        };
        let coord = match p[1] {
            0 => CoordTransform::HalfPixel,
            1 => CoordTransform::Asymmetric,
            2 => CoordTransform::AlignCorners,
            3 => CoordTransform::PytorchHalfPixel,
            v => malformed!("operator {op}: unknown coordinate transform {v}"),
        };
        let scale = [f32::from_bits(p[3] as u32), f32::from_bits(p[4] as u32)];
        if !scale.iter().all(|s| s.is_finite() && *s > 0.0) {
            malformed!("operator {op}: resize scales {scale:?} must be finite and positive");
        }
        Ok(Resize { mode, coord, scale })
    }
}
