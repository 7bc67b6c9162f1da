//! Operators that normalize along the last dimension.

use crate::kernels::{QIn, QOut};
use crate::quant::quantize_output;

/// Rows of the last dimension of `x` and `y`, side by side.
fn rows<'a>(x: QIn<'a>, y: QOut<'a>) -> impl Iterator<Item = (&'a [i8], &'a mut [i8])> {
    let len = x.shape.dims().last().copied().unwrap_or(1);
    x.data.chunks_exact(len).zip(y.data.chunks_exact_mut(len))
}

/// Softmax over the last dimension with the exponential table `table`
/// (`table[d] = exp(-beta * sx * d)`): per row, `sum = Σ table[max - x]`
/// accumulated in f32 from first to last, then
/// `y = table[max - x] * (1 / (sum * sy))` and the output stage.
pub fn softmax(x: QIn<'_>, table: &[f32], y: QOut<'_>) {
    let (scale, zy) = (y.quant.scale, y.quant.zero_point);
    for (xs, ys) in rows(x, y) {
        let max = xs.iter().copied().max().unwrap_or(0);
        let weight = |v: i8| table[(i32::from(max) - i32::from(v)) as usize];
        let sum = xs.iter().fold(0.0f32, |s, &v| s + weight(v));
        let inv = 1.0 / (sum * scale);
        for (&v, out) in xs.iter().zip(ys) {
            *out = quantize_output(weight(v) * inv, zy, -128, 127);
        }
    }
}

/// L2 normalization over the last dimension: per row, with `v = x - zx`,
/// `ss = Σ v²` (exact integer), `norm = sqrt(ss as f32)` (correctly rounded),
/// `y = v * (1 / (norm * sy))` and the output stage; a zero row gives zeros.
pub fn l2_norm(x: QIn<'_>, y: QOut<'_>) {
    let (zx, scale, zy) = (x.quant.zero_point, y.quant.scale, y.quant.zero_point);
    for (xs, ys) in rows(x, y) {
        let ss: u64 = xs.iter().map(|&v| (i64::from(v) - i64::from(zx)).unsigned_abs().pow(2)).sum();
        let inv = if ss == 0 { 0.0 } else { 1.0 / (libm::sqrtf(ss as f32) * scale) };
        for (&v, out) in xs.iter().zip(ys) {
            *out = quantize_output((i32::from(v) - zx) as f32 * inv, zy, -128, 127);
        }
    }
}
