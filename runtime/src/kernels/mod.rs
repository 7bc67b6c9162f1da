//! Int8 kernels. [`scalar`] is the specification: plain loops that say what
//! every operator computes, to the bit. Faster kernels must match it exactly.
//!
//! Kernels take their operands as views whose shapes the model checked at
//! load, so they have no failure cases of their own.

pub mod scalar;

use crate::format::pack::Layout;
use crate::ops::Act;
use crate::{Quant, Shape};

/// Convolution or fully connected weights, packed in the file
/// ([`crate::format::pack`]).
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a> {
    /// The packed bytes.
    pub data: &'a [u8],
    /// The logical shape: `[O, KH, KW, C/groups]` or `[O, K]`.
    pub shape: Shape,
    /// How `data` is laid out.
    pub layout: Layout,
}

impl Weights<'_> {
    /// The weight of output channel `o`, window position `tap`
    /// (`ky * KW + kx`) and input channel `i` (within the group).
    #[inline(always)]
    pub fn at(&self, o: usize, tap: usize, i: usize) -> i8 {
        self.data[self.layout.index(o, tap, i)] as i8
    }
}

/// An int8 tensor that a kernel reads.
#[derive(Clone, Copy, Debug)]
pub struct QIn<'a> {
    /// The elements, row-major.
    pub data: &'a [i8],
    /// The shape.
    pub shape: Shape,
    /// The quantization.
    pub quant: Quant,
}

/// An int8 tensor that a kernel writes.
#[derive(Debug)]
pub struct QOut<'a> {
    /// The elements, row-major.
    pub data: &'a mut [i8],
    /// The shape.
    pub shape: Shape,
    /// The quantization.
    pub quant: Quant,
}

/// The output stage of a convolution or fully connected layer.
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    /// Per output channel, `s_x * s_w[c] / s_y`.
    pub multiplier: &'a [f32],
    /// Per output channel, used instead where the accumulator is negative
    /// (a fused PRelu); the same slice as `multiplier` when there is none.
    pub negative: &'a [f32],
    /// Output zero point.
    pub zero_point: i32,
    /// Fused activation.
    pub act: Act,
}

impl Requant<'_> {
    /// The int8 output of channel `c` for accumulator `acc`.
    #[inline(always)]
    pub fn apply(&self, acc: i32, c: usize) -> i8 {
        let m = if acc >= 0 { self.multiplier[c] } else { self.negative[c] };
        crate::quant::requantize(acc, m, self.zero_point, self.act.min, self.act.max)
    }
}
