//! The operators a `.kiln` file can hold: their codes, parameters and
//! checks. The arithmetic of each is specified by its scalar kernel in
//! [`crate::kernels::scalar`], which every SIMD kernel must match bit for bit.

pub(crate) mod check;
mod params;

pub(crate) use check::check;
pub use params::{
    Act, Binary, Bounds, Conv2d, CoordTransform, FloatConv2d, NearestMode, Pool, Resize, ResizeMode, Unary,
};

use crate::error::{malformed, Error};

/// Operator kinds, with their inputs (`x`: int8 activation unless stated),
/// output `y` and parameter words. Every operator has exactly one output.
/// Activations are NHWC. "Requantized" means the output is computed in real
/// units and quantized with the output tensor's own scale and zero point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
#[non_exhaustive]
pub enum OpKind {
    /// Convolution, any kernel size, stride, dilation, padding and groups
    /// (depthwise when groups = channels).
    /// Inputs: `x` [N,H,W,C]; weights of logical shape [O,KH,KW,C/groups],
    /// zero point 0, packed ([`crate::DType::Packed`], layout
    /// [`crate::format::pack::Layout::conv`]);
    /// bias i32 [O] (scale `s_x * s_w[o]`); multiplier f32 [O]
    /// (`s_x * s_w[o] / s_y`); optional negative-side multiplier f32 [O] used
    /// where the accumulator is negative (a fused PRelu or leaky Relu).
    /// Output [N,OH,OW,O]. Params: [`Conv2d`].
    Conv2d = 1,
    /// Fully connected: `x` [N,K], weights [O,K] packed
    /// ([`crate::format::pack::Layout::fully_connected`]), then as
    /// [`OpKind::Conv2d`].
    /// Output [N,O]. Params: [`Act`].
    FullyConnected = 2,
    /// Elementwise sum of two tensors, requantized, with broadcasting
    /// (each input dimension equals the output's or is 1). Params: [`Act`].
    Add = 3,
    /// Elementwise product of two tensors, requantized, broadcasting as
    /// [`OpKind::Add`]. Params: [`Act`].
    Mul = 4,
    /// Concatenation of 1 to 255 inputs along an axis, each requantized to the
    /// output's quantization. Params: `[axis]`.
    Concat = 5,
    /// Max pooling; padding is ignored; `y` has `x`'s quantization.
    /// Params: [`Pool`].
    MaxPool = 6,
    /// Average pooling, requantized. Params: [`Pool`].
    AvgPool = 7,
    /// Mean over H and W: [N,H,W,C] to [N,1,1,C], requantized. No params.
    GlobalAvgPool = 8,
    /// PRelu: inputs `x` and slopes f32 [C] (last dimension), requantized.
    /// No params.
    PRelu = 9,
    /// Table lookup: inputs `x` and table i8 [256], `y = table[x + 128]`.
    /// Sigmoid, Tanh, HardSwish, HardSigmoid, Abs and Neg are built this way (see
    /// [`crate::quant::lut`]). Params: `[function]`, a code for display only.
    Lut = 10,
    /// Same bytes, new shape (same element count and quantization). No params.
    Reshape = 11,
    /// Permutation of dimensions: `y.dims[i] = x.dims[perm[i]]`, same
    /// quantization. Params: `perm`, one word per dimension.
    Transpose = 12,
    /// Constant padding: `y.dims[i] = before[i] + x.dims[i] + after[i]`, same
    /// quantization, padded cells set to `value` (an int8 in `y`'s units: the
    /// zero point for real zero). Params: `before` then `after`, one word per
    /// dimension each, then `value`.
    Pad = 13,
    /// Spatial resize of [N,H,W,C], nearest or bilinear, requantized.
    /// Params: [`Resize`].
    Resize = 14,
    /// Softmax over the last dimension. Inputs: `x`, and the table f32 [256]
    /// of `exp(-beta * s_x * d)` for `d = max - x`, so that the runtime
    /// needs no `exp`. No params.
    Softmax = 15,
    /// L2 normalization over the last dimension: `y = x / |x|`. No params.
    L2Norm = 16,
    /// Quantization of f32 (or requantization of int8) to int8. No params.
    Quantize = 17,
    /// Int8 to f32. No params.
    Dequantize = 18,
    /// Clamp to a range (a Relu, Relu6 or Clip that could not be fused into
    /// its producer); same quantization. Params: [`Act`].
    Clamp = 19,
    /// Elementwise difference `a - b` of two tensors, requantized,
    /// broadcasting as [`OpKind::Add`]. Params: [`Act`].
    Sub = 20,
    /// Strided slice: `y[i] = x[start + i * step]` along every dimension
    /// (a step may be negative), same quantization; `y`'s dimensions give
    /// the count along each. Params: `start` then `step`, one word per
    /// dimension each.
    Slice = 21,
    /// Elementwise maximum of two tensors, broadcasting as [`OpKind::Add`]:
    /// each input is requantized to the output's quantization, then the
    /// larger is taken and clamped. Params: [`Act`].
    Max = 22,
    /// Elementwise minimum, as [`OpKind::Max`]. Params: [`Act`].
    Min = 23,
    /// Mean or maximum over the last dimension, requantized: `y` has `x`'s
    /// dimensions with the last one 1. Params: `[mode]`, 0 for the mean,
    /// 1 for the maximum.
    Reduce = 24,
    /// Zero insertion, the first half of a transposed convolution (which
    /// the converter emits as this followed by an ordinary
    /// [`OpKind::Conv2d`] with the kernel flipped): `x` [N,H,W,C] to `y`
    /// [N,(H-1)*sh+1,(W-1)*sw+1,C] with `y[n, i*sh, j*sw, c] = x[n, i, j, c]`
    /// and every other cell the zero point (real zero); same quantization.
    /// A pure data move. Params: `[sh, sw]`, each at least 1.
    ZeroInsert = 30,
    /// Float convolution (a float island's, see [`crate::kernels::scalar::float`]).
    /// Inputs: `x` f32 [N,H,W,C]; weights f16 or f32 [KH,KW,C/groups,O]
    /// (output channel last, as the SIMD kernels read them); bias f32 [O];
    /// optional negative-side slope f32 [O] (a fused PRelu or leaky Relu).
    /// Output f32 [N,OH,OW,O]. Params: [`FloatConv2d`].
    FloatConv2d = 31,
    /// Float fully connected: `x` f32 [N,K], weights f16 or f32 [K,O], then
    /// as [`OpKind::FloatConv2d`]. Output f32 [N,O]. Params: [`Bounds`].
    FloatFullyConnected = 32,
    /// An elementwise function of two f32 tensors, broadcasting as
    /// [`OpKind::Add`]. Params: `[function]`, a [`Binary`] code.
    FloatBinary = 33,
    /// An elementwise function of an f32 tensor. Params: `[function, a, b]`:
    /// a [`Unary`] code and its two parameters as f32 bits (0 when unused).
    FloatUnary = 34,
    /// Softmax of an f32 tensor over its last dimension. No params.
    FloatSoftmax = 35,
    /// Mean or maximum of an f32 tensor over its last dimension, as
    /// [`OpKind::Reduce`]. Params: `[mode]`, 0 for the mean, 1 for the
    /// maximum.
    FloatReduce = 36,
    /// Matrix product of two f32 activations `a` [..,M,K] and `b` [..,K,N]
    /// of the same rank (2 to 4) and leading dimensions: output [..,M,N].
    /// No params.
    FloatMatMul = 37,
}

impl OpKind {
    /// Every kind, for decoding and listings.
    pub const ALL: [OpKind; 32] = [
        OpKind::Conv2d,
        OpKind::FullyConnected,
        OpKind::Add,
        OpKind::Mul,
        OpKind::Concat,
        OpKind::MaxPool,
        OpKind::AvgPool,
        OpKind::GlobalAvgPool,
        OpKind::PRelu,
        OpKind::Lut,
        OpKind::Reshape,
        OpKind::Transpose,
        OpKind::Pad,
        OpKind::Resize,
        OpKind::Softmax,
        OpKind::L2Norm,
        OpKind::Quantize,
        OpKind::Dequantize,
        OpKind::Clamp,
        OpKind::Sub,
        OpKind::Slice,
        OpKind::Max,
        OpKind::Min,
        OpKind::Reduce,
        OpKind::ZeroInsert,
        OpKind::FloatConv2d,
        OpKind::FloatFullyConnected,
        OpKind::FloatBinary,
        OpKind::FloatUnary,
        OpKind::FloatSoftmax,
        OpKind::FloatReduce,
        OpKind::FloatMatMul,
    ];

    /// The format minor version that introduced this kind: a file holds the
    /// lowest minor version that covers its operators, so that a model using
    /// none of the newer kinds still loads in older runtimes.
    pub fn since_minor(self) -> u16 {
        match self {
            OpKind::Sub | OpKind::Slice | OpKind::Max | OpKind::Min | OpKind::Reduce | OpKind::ZeroInsert => 1,
            k if k.is_float() => 2,
            _ => 0,
        }
    }

    /// Whether the kind computes in float (its activations are f32).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            OpKind::FloatConv2d
                | OpKind::FloatFullyConnected
                | OpKind::FloatBinary
                | OpKind::FloatUnary
                | OpKind::FloatSoftmax
                | OpKind::FloatReduce
                | OpKind::FloatMatMul
        )
    }

    /// Decodes a kind code.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u16 == code)
    }

    /// The number of inputs: (required, optional).
    fn arity(self) -> (usize, usize) {
        match self {
            OpKind::Conv2d | OpKind::FullyConnected => (4, 1),
            OpKind::FloatConv2d | OpKind::FloatFullyConnected => (3, 1),
            OpKind::FloatBinary | OpKind::FloatMatMul => (2, 0),
            OpKind::Add
            | OpKind::Sub
            | OpKind::Mul
            | OpKind::Max
            | OpKind::Min
            | OpKind::PRelu
            | OpKind::Lut
            | OpKind::Softmax => (2, 0),
            OpKind::Concat => (1, 254),
            _ => (1, 0),
        }
    }
}

/// A decoded operator with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    Conv2d(Conv2d),
    FullyConnected(Act),
    Add(Act),
    Sub(Act),
    Mul(Act),
    Concat { axis: usize },
    MaxPool(Pool),
    AvgPool(Pool),
    GlobalAvgPool,
    PRelu,
    Lut,
    Reshape,
    Transpose { perm: [usize; 4], axes: usize },
    Pad { before: [usize; 4], after: [usize; 4], axes: usize, value: i8 },
    Resize(Resize),
    Softmax,
    L2Norm,
    Quantize,
    Dequantize,
    Clamp(Act),
    Slice { start: [usize; 4], step: [isize; 4], axes: usize },
    Max(Act),
    Min(Act),
    Reduce { max: bool },
    ZeroInsert { stride: [usize; 2] },
    FloatConv2d(FloatConv2d),
    FloatFullyConnected(Bounds),
    FloatBinary(Binary),
    FloatUnary { f: Unary, a: f32, b: f32 },
    FloatSoftmax,
    FloatReduce { max: bool },
    FloatMatMul,
}

impl Op {
    /// Decodes the parameters of an operator of `kind`; the number of
    /// dimension-indexed parameters (`Transpose`, `Pad`, `Slice`) is checked later
    /// against the tensors.
    pub(crate) fn decode(kind: OpKind, p: &[i32], index: usize) -> Result<Op, Error> {
        let expect = |n: usize| -> Result<(), Error> {
            if p.len() != n {
                malformed!("operator {index} ({kind:?}) has {} parameters, {n} expected", p.len());
            }
            Ok(())
        };
        let dims = |p: &[i32]| -> Result<[usize; 4], Error> {
            let mut out = [0; 4];
            for (o, &v) in out.iter_mut().zip(p) {
                *o = params::non_negative(v, "dimension parameter", index)?;
            }
            Ok(out)
        };
        Ok(match kind {
            OpKind::Conv2d => {
                expect(Conv2d::WORDS)?;
                Op::Conv2d(Conv2d::from_words(p, index)?)
            }
            OpKind::FullyConnected
            | OpKind::Add
            | OpKind::Sub
            | OpKind::Mul
            | OpKind::Max
            | OpKind::Min
            | OpKind::Clamp => {
                expect(Act::WORDS)?;
                let act = Act::from_words(p, index)?;
                match kind {
                    OpKind::FullyConnected => Op::FullyConnected(act),
                    OpKind::Add => Op::Add(act),
                    OpKind::Sub => Op::Sub(act),
                    OpKind::Mul => Op::Mul(act),
                    OpKind::Max => Op::Max(act),
                    OpKind::Min => Op::Min(act),
                    _ => Op::Clamp(act),
                }
            }
            OpKind::Concat => {
                expect(1)?;
                Op::Concat { axis: params::non_negative(p[0], "axis", index)? }
            }
            OpKind::MaxPool | OpKind::AvgPool => {
                expect(Pool::WORDS)?;
                let pool = Pool::from_words(p, index)?;
                if kind == OpKind::MaxPool {
                    Op::MaxPool(pool)
                } else {
                    Op::AvgPool(pool)
                }
            }
            OpKind::Lut => {
                expect(1)?;
                Op::Lut
            }
            OpKind::Transpose => {
                if p.len() > 4 {
                    malformed!("operator {index} (Transpose) has {} axes, at most 4", p.len());
                }
                Op::Transpose { perm: dims(p)?, axes: p.len() }
            }
            OpKind::Pad => {
                let Some((&value, pads)) = p.split_last().filter(|(_, pads)| pads.len() <= 8 && pads.len() % 2 == 0)
                else {
                    malformed!(
                        "operator {index} (Pad) has {} parameters, 2 per dimension and a value expected",
                        p.len()
                    );
                };
                let Ok(value) = i8::try_from(value) else {
                    malformed!("operator {index} (Pad): value {value} is outside -128..=127");
                };
                let (before, after) = pads.split_at(pads.len() / 2);
                Op::Pad { before: dims(before)?, after: dims(after)?, axes: before.len(), value }
            }
            OpKind::Slice => {
                if p.len() > 8 || !p.len().is_multiple_of(2) {
                    malformed!("operator {index} (Slice) has {} parameters, 2 per dimension expected", p.len());
                }
                let (starts, steps) = p.split_at(p.len() / 2);
                let mut step = [1; 4];
                for (s, &v) in step.iter_mut().zip(steps) {
                    if v == 0 {
                        malformed!("operator {index} (Slice): a step is 0");
                    }
                    *s = v as isize;
                }
                Op::Slice { start: dims(starts)?, step, axes: starts.len() }
            }
            OpKind::Reduce | OpKind::FloatReduce => {
                expect(1)?;
                let max = match p[0] {
                    0 => false,
                    1 => true,
                    v => malformed!("operator {index} ({kind:?}): mode {v}, 0 (mean) or 1 (max) expected"),
                };
                if kind == OpKind::Reduce {
                    Op::Reduce { max }
                } else {
                    Op::FloatReduce { max }
                }
            }
            OpKind::FloatConv2d => {
                expect(FloatConv2d::WORDS)?;
                Op::FloatConv2d(FloatConv2d::from_words(p, index)?)
            }
            OpKind::FloatFullyConnected => {
                expect(Bounds::WORDS)?;
                Op::FloatFullyConnected(Bounds::from_words(p, index)?)
            }
            OpKind::FloatBinary => {
                expect(1)?;
                Op::FloatBinary(Binary::from_word(p[0], index)?)
            }
            OpKind::FloatUnary => {
                expect(3)?;
                let f = Unary::from_word(p[0], index)?;
                let (a, b) = (f32::from_bits(p[1] as u32), f32::from_bits(p[2] as u32));
                if f == Unary::Clamp {
                    Bounds::from_words(&p[1..], index)?;
                } else if !(a.is_finite() && b.is_finite()) {
                    malformed!("operator {index} (FloatUnary): parameters {a} and {b} must be finite");
                }
                Op::FloatUnary { f, a, b }
            }
            OpKind::ZeroInsert => {
                expect(2)?;
                let stride = [params::positive(p[0], "stride", index)?, params::positive(p[1], "stride", index)?];
                Op::ZeroInsert { stride }
            }
            OpKind::Resize => {
                expect(Resize::WORDS)?;
                Op::Resize(Resize::from_words(p, index)?)
            }
            OpKind::GlobalAvgPool
            | OpKind::PRelu
            | OpKind::Reshape
            | OpKind::Softmax
            | OpKind::L2Norm
            | OpKind::Quantize
            | OpKind::Dequantize
            | OpKind::FloatSoftmax
            | OpKind::FloatMatMul => {
                expect(0)?;
                match kind {
                    OpKind::GlobalAvgPool => Op::GlobalAvgPool,
                    OpKind::PRelu => Op::PRelu,
                    OpKind::Reshape => Op::Reshape,
                    OpKind::Softmax => Op::Softmax,
                    OpKind::L2Norm => Op::L2Norm,
                    OpKind::Quantize => Op::Quantize,
                    OpKind::FloatSoftmax => Op::FloatSoftmax,
                    OpKind::FloatMatMul => Op::FloatMatMul,
                    _ => Op::Dequantize,
                }
            }
        })
    }
}

/// One operator as the model keeps it: the decoded op, and where its tensor
/// indices start in the model's index pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub kind: OpKind,
    pub op: Op,
    /// Range of this node's inputs in the model's input pool.
    pub inputs: (usize, usize),
    pub output: usize,
}

/// Minimum and maximum input counts of `kind`.
pub(crate) fn arity(kind: OpKind) -> (usize, usize) {
    let (required, optional) = kind.arity();
    (required, required + optional)
}
