//! The arithmetic every kernel shares: rounding and requantization, exactly
//! as DESIGN.md specifies, so that every SIMD kernel can match it bit for bit.

use crate::Quant;

/// Largest magnitude kept before rounding. Any value beyond it saturates the
/// int8 output anyway (the zero point is within ±255), and below it the
/// magic-number rounding below is exact.
const SATURATE: f32 = 32768.0;
/// 1.5 × 2²³: adding and subtracting it rounds an f32 of magnitude below 2²²
/// to an integer, half to even, in the default rounding mode.
const MAGIC: f32 = 12_582_912.0;

/// Rounds to the nearest integer, halves to even (`cvtps2dq`, `fcvtns`),
/// after clamping to ±32768. `NaN` gives 0.
#[inline(always)]
pub fn round_half_even(y: f32) -> i32 {
    if y.is_nan() {
        return 0;
    }
    let y = y.clamp(-SATURATE, SATURATE);
    ((y + MAGIC) - MAGIC) as i32
}

/// The output stage of every int8 kernel: `y` in output units (already
/// multiplied by the requantization scale) is rounded half to even, shifted
/// by the output zero point and clamped to `min..=max`.
#[inline(always)]
pub fn quantize_output(y: f32, zero_point: i32, min: i32, max: i32) -> i8 {
    (round_half_even(y) + zero_point).clamp(min, max) as i8
}

/// Requantizes an int32 accumulator: to f32 (round to nearest even), times
/// `multiplier` (a plain multiply, never fused), then [`quantize_output`].
#[inline(always)]
pub fn requantize(acc: i32, multiplier: f32, zero_point: i32, min: i32, max: i32) -> i8 {
    quantize_output(acc as f32 * multiplier, zero_point, min, max)
}

/// Quantizes a real value with `q`, for the float edges of a graph:
/// `x * (1 / scale)`, rounded, plus the zero point, clamped to int8.
#[inline(always)]
pub fn quantize(x: f32, inv_scale: f32, zero_point: i32) -> i8 {
    quantize_output(x * inv_scale, zero_point, -128, 127)
}

/// The real value of a quantized one: `(q - zero_point) * scale`.
#[inline(always)]
pub fn dequantize(q: i8, quant: Quant) -> f32 {
    (i32::from(q) - quant.zero_point) as f32 * quant.scale
}

/// The multiplier that takes values of scale `from` to scale `to`.
#[inline(always)]
pub fn rescale(from: Quant, to: Quant) -> f32 {
    from.scale / to.scale
}

/// Builds the 256-entry table of a [`crate::OpKind::Lut`] operator for the
/// real function `f`: entry `i` holds `f(x)` for the input `x = i - 128`,
/// quantized with `output`. `f` is evaluated in f64, so the table is exact to
/// half an output step.
pub fn lut(f: impl Fn(f64) -> f64, input: Quant, output: Quant) -> [i8; 256] {
    core::array::from_fn(|i| {
        let x = (i as i32 - 128 - input.zero_point) as f64 * input.scale as f64;
        let y = f(x) / output.scale as f64 + output.zero_point as f64;
        // Round half to even in f64, then saturate to int8.
        let r = y - libm::floor(y);
        let mut q = libm::floor(y);
        if r > 0.5 || (r == 0.5 && libm::fmod(q, 2.0) != 0.0) {
            q += 1.0;
        }
        q.clamp(-128.0, 127.0) as i8
    })
}

/// Builds the table of a [`crate::OpKind::Softmax`] operator: entry `d` is
/// `exp(-beta * scale * d)`, the weight of an input `d` steps below the
/// row's maximum.
pub fn softmax_table(beta: f32, input: Quant) -> [f32; 256] {
    core::array::from_fn(|d| libm::exp(-(beta as f64) * input.scale as f64 * d as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_halves_to_even() {
        let cases = [(0.5, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (-2.5, -2), (0.49999997, 0), (3.7, 4)];
        for (y, want) in cases {
            assert_eq!(round_half_even(y), want, "{y}");
        }
        assert_eq!(round_half_even(1e30), 32768);
        assert_eq!(round_half_even(f32::NEG_INFINITY), -32768);
        assert_eq!(round_half_even(f32::NAN), 0);
    }

    #[test]
    fn requantize_saturates_and_clamps() {
        assert_eq!(requantize(1000, 0.5, 3, -128, 127), 127);
        assert_eq!(requantize(-7, 0.5, 3, -128, 127), -1); // -3.5 -> -4, + 3
        assert_eq!(requantize(5, 0.5, 0, 0, 127), 2); // 2.5 -> 2
        assert_eq!(requantize(i32::MIN, 1.0, 0, -128, 127), -128);
    }

    #[test]
    fn lut_of_identity_is_identity() {
        let q = Quant { scale: 0.1, zero_point: -3 };
        let table = lut(|x| x, q, q);
        for (i, &v) in table.iter().enumerate() {
            assert_eq!(v as i32, i as i32 - 128);
        }
    }
}
