//! Elementwise operators.

use crate::kernels::{QIn, QOut};
use crate::ops::Act;
use crate::quant::{self, quantize_output, rescale};
use crate::Shape;

/// Visits every output index of a broadcast: `f(y_index, a_index, b_index)`.
/// Shapes are aligned at their last dimension; an input dimension of 1
/// repeats.
pub(super) fn broadcast(a: Shape, b: Shape, y: Shape, mut f: impl FnMut(usize, usize, usize)) {
    let ydims = right_aligned(y.dims());
    let strides = |dims: &[usize]| {
        let d = right_aligned(dims);
        let mut s = [0usize; 4];
        let mut step = 1;
        for i in (0..4).rev() {
            s[i] = if d[i] == 1 { 0 } else { step };
            step *= d[i];
        }
        s
    };
    let (sa, sb) = (strides(a.dims()), strides(b.dims()));
    let mut out = 0;
    for i0 in 0..ydims[0] {
        for i1 in 0..ydims[1] {
            for i2 in 0..ydims[2] {
                for i3 in 0..ydims[3] {
                    let at = |s: [usize; 4]| i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3];
                    f(out, at(sa), at(sb));
                    out += 1;
                }
            }
        }
    }
}

/// Dimensions padded with leading 1s to rank 4.
fn right_aligned(dims: &[usize]) -> [usize; 4] {
    let mut out = [1; 4];
    out[4 - dims.len()..].copy_from_slice(dims);
    out
}

/// `y = (a - za) * (sa / sy) + (b - zb) * (sb / sy)`: two products rounded
/// to f32, then their sum, then the output stage.
pub fn add(a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>) {
    add_scaled(a, b, rescale(b.quant, y.quant), act, y);
}

/// `y = (a - za) * (sa / sy) - (b - zb) * (sb / sy)`: [`add`] with the
/// second product negated (exact in f32).
pub fn sub(a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>) {
    add_scaled(a, b, -rescale(b.quant, y.quant), act, y);
}

/// `y = (a - za) * (sa / sy) + (b - zb) * mb`, then the output stage.
fn add_scaled(a: QIn<'_>, b: QIn<'_>, mb: f32, act: Act, y: QOut<'_>) {
    let ma = rescale(a.quant, y.quant);
    let (za, zb, zy) = (a.quant.zero_point, b.quant.zero_point, y.quant.zero_point);
    broadcast(a.shape, b.shape, y.shape, |o, i, j| {
        let t = (i32::from(a.data[i]) - za) as f32 * ma + (i32::from(b.data[j]) - zb) as f32 * mb;
        y.data[o] = quantize_output(t, zy, act.min, act.max);
    });
}

/// `y = ((a - za) * (b - zb)) * (sa * sb / sy)`: the product is exact in
/// i32, then one f32 multiply and the output stage.
pub fn mul(a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>) {
    let m = a.quant.scale * b.quant.scale / y.quant.scale;
    let (za, zb, zy) = (a.quant.zero_point, b.quant.zero_point, y.quant.zero_point);
    broadcast(a.shape, b.shape, y.shape, |o, i, j| {
        let p = (i32::from(a.data[i]) - za) * (i32::from(b.data[j]) - zb);
        y.data[o] = quantize_output(p as f32 * m, zy, act.min, act.max);
    });
}

/// Elementwise maximum: each input is first requantized to `y`'s
/// quantization on its own, `qa = round((a - za) * (sa / sy)) + zy` and
/// likewise `qb` (each saturated to int8 as by [`requantize`]); then
/// `y = clamp(max(qa, qb), act)`. Requantization is monotonic, so this is
/// the maximum of the real values, rounded once.
pub fn max(a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>) {
    select(a, b, act, y, core::cmp::max);
}

/// Elementwise minimum, in the order of [`max`].
pub fn min(a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>) {
    select(a, b, act, y, core::cmp::min);
}

/// Requantizes `a` and `b` to `y`'s quantization, then `y = clamp(pick(qa, qb))`.
fn select(a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>, pick: fn(i32, i32) -> i32) {
    let (ma, mb) = (rescale(a.quant, y.quant), rescale(b.quant, y.quant));
    let (za, zb, zy) = (a.quant.zero_point, b.quant.zero_point, y.quant.zero_point);
    let to_y = |v: i8, z: i32, m: f32| i32::from(quantize_output((i32::from(v) - z) as f32 * m, zy, -128, 127));
    broadcast(a.shape, b.shape, y.shape, |o, i, j| {
        let v = pick(to_y(a.data[i], za, ma), to_y(b.data[j], zb, mb));
        y.data[o] = v.clamp(act.min, act.max) as i8;
    });
}

/// `t = (x - zx) * (sx / sy)`, then `t * alpha[c]` where `x - zx < 0`, then
/// the output stage; `c` is the index in the last dimension.
pub fn prelu(x: QIn<'_>, alpha: &[f32], y: QOut<'_>) {
    let m = rescale(x.quant, y.quant);
    for (i, (&v, out)) in x.data.iter().zip(y.data.iter_mut()).enumerate() {
        let v = i32::from(v) - x.quant.zero_point;
        let mut t = v as f32 * m;
        if v < 0 {
            t *= alpha[i % alpha.len()];
        }
        *out = quantize_output(t, y.quant.zero_point, -128, 127);
    }
}

/// `y = table[x + 128]`.
pub fn lut(x: &[i8], table: &[i8], y: &mut [i8]) {
    for (&v, out) in x.iter().zip(y) {
        *out = table[(i32::from(v) + 128) as usize];
    }
}

/// `y = clamp(x, min, max)`.
pub fn clamp(x: &[i8], act: Act, y: &mut [i8]) {
    for (&v, out) in x.iter().zip(y) {
        *out = i32::from(v).clamp(act.min, act.max) as i8;
    }
}

/// `y = (x - zx) * (sx / sy)`, then the output stage: a change of
/// quantization (Concat and Resize use it too).
pub fn requantize(x: QIn<'_>, y: QOut<'_>) {
    let m = rescale(x.quant, y.quant);
    for (&v, out) in x.data.iter().zip(y.data.iter_mut()) {
        *out = quantize_output((i32::from(v) - x.quant.zero_point) as f32 * m, y.quant.zero_point, -128, 127);
    }
}

/// `y = x * (1 / sy)`, then the output stage.
pub fn quantize_f32(x: &[f32], y: QOut<'_>) {
    let inv = 1.0 / y.quant.scale;
    for (&v, out) in x.iter().zip(y.data.iter_mut()) {
        *out = quant::quantize(v, inv, y.quant.zero_point);
    }
}

/// `y = (x - zx) * sx`.
pub fn dequantize(x: QIn<'_>, y: &mut [f32]) {
    for (&v, out) in x.data.iter().zip(y) {
        *out = quant::dequantize(v, x.quant);
    }
}
