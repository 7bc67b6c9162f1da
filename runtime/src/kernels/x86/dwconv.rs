//! `dwconv_i8_kxk__avx2`: depthwise convolution, any window, stride,
//! dilation and padding; 16 channels at a time, `(x - zx) * w` exact in
//! i16 (|x - zx| ≤ 255, |w| ≤ 128), summed in i32.

use core::arch::x86_64::*;

use super::ymm::{pack16, requantize, store, Clamp};
use crate::kernels::depthwise::{for_each_block, load16};
use crate::kernels::{QIn, QOut, Requant, Weights};
use crate::ops::Conv2d;

/// # Safety
///
/// The CPU supports AVX2; the operands passed the loader's checks for a
/// depthwise [`crate::OpKind::Conv2d`] (weights in the depthwise layout).
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dwconv(p: &Conv2d, x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
    let c = x.shape.nhwc()[3];
    let zx = _mm256_set1_epi16(x.quant.zero_point as i16);
    let clamp = Clamp::new(rq.zero_point, rq.act.min, rq.act.max);
    let (xs, ys) = (x.shape, y.shape);
    for_each_block(p, xs, &w, ys, |out, c0, window| {
        let cn = (c - c0).min(16);
        let mut acc = [_mm256_setzero_si256(); 2];
        window.for_each(|xa, wa| {
            let v = if cn == 16 {
                // SAFETY: 16 bytes of the input.
                unsafe { _mm_loadu_si128(x.data[xa..][..16].as_ptr() as *const __m128i) }
            } else {
                // SAFETY: a 16-byte stack copy.
                unsafe { _mm_loadu_si128(load16(&x.data[xa..xa + cn], 0).as_ptr() as *const __m128i) }
            };
            // SAFETY: positions hold 16 weights from `c0` (the layout pads).
            let ws = unsafe { _mm_loadu_si128(w.data[wa..][..16].as_ptr() as *const __m128i) };
            let products = _mm256_mullo_epi16(_mm256_sub_epi16(_mm256_cvtepi8_epi16(v), zx), _mm256_cvtepi8_epi16(ws));
            acc[0] = _mm256_add_epi32(acc[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(products)));
            acc[1] = _mm256_add_epi32(acc[1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(products)));
        });
        let (bs, ms, ns) = (load16(bias, c0), load16(rq.multiplier, c0), load16(rq.negative, c0));
        // Written out (no closure over `h`), so that it all inlines.
        // SAFETY: 8 lanes at 0 and 8 of 16-lane stack arrays.
        let (b0, b1, m0, m1, n0, n1) = unsafe {
            (
                _mm256_loadu_si256(bs.as_ptr() as *const __m256i),
                _mm256_loadu_si256(bs[8..].as_ptr() as *const __m256i),
                _mm256_loadu_ps(ms.as_ptr()),
                _mm256_loadu_ps(ms[8..].as_ptr()),
                _mm256_loadu_ps(ns.as_ptr()),
                _mm256_loadu_ps(ns[8..].as_ptr()),
            )
        };
        let q0 = requantize(_mm256_add_epi32(acc[0], b0), m0, n0, clamp);
        let q1 = requantize(_mm256_add_epi32(acc[1], b1), m1, n1, clamp);
        let dst = &mut y.data[out + c0..][..cn];
        // SAFETY: `dst` holds `cn` bytes.
        unsafe { store(dst.as_mut_ptr(), pack16(q0, q1), cn) };
    });
}
