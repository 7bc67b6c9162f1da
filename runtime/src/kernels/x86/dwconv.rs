//! Depthwise convolution, any window, stride, dilation and padding:
//! `(x - zx) * w` exact in i16 (|x - zx| ≤ 255, |w| ≤ 128), summed in i32.

use core::arch::x86_64::*;

use super::gemm_avx512::requantize;
use super::ymm::{self, pack16, store, Clamp};
use crate::kernels::depthwise::{for_each_block, load16};
use crate::kernels::{QIn, QOut, Requant, Weights};
use crate::ops::Conv2d;

/// `dwconv_i8_kxk__avx2`: 16 channels at a time.
///
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
    for_each_block::<16>(p, xs, &w, ys, |out, c0, window| {
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
        let q0 = ymm::requantize(_mm256_add_epi32(acc[0], b0), m0, n0, clamp);
        let q1 = ymm::requantize(_mm256_add_epi32(acc[1], b1), m1, n1, clamp);
        let dst = &mut y.data[out + c0..][..cn];
        // SAFETY: `dst` holds `cn` bytes.
        unsafe { store(dst.as_mut_ptr(), pack16(q0, q1), cn) };
    });
}

/// `dwconv_i8_kxk__avx512bw`: as [`dwconv`], 32 channels at a time, with
/// masked loads and stores for the last block (masked-out bytes are not
/// accessed).
///
/// # Safety
///
/// The CPU supports AVX-512 F, BW and VL; the operands passed the loader's
/// checks for a depthwise [`crate::OpKind::Conv2d`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(crate) unsafe fn dwconv512(p: &Conv2d, x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
    let c = x.shape.nhwc()[3];
    let zx = _mm512_set1_epi16(x.quant.zero_point as i16);
    let (xs, ys) = (x.shape, y.shape);
    for_each_block::<32>(p, xs, &w, ys, |out, c0, window| {
        let cn = (c - c0).min(32);
        let bytes = (u64::MAX >> (64 - cn)) as u32;
        let mut acc = [_mm512_setzero_si512(); 2];
        window.for_each(|xa, wa| {
            // SAFETY: the first `cn` bytes from each offset lie in the input
            // and the weights; the mask keeps the loads to them.
            let (v, ws) = unsafe {
                (
                    _mm256_maskz_loadu_epi8(bytes, x.data[xa..].as_ptr()),
                    _mm256_maskz_loadu_epi8(bytes, w.data[wa..].as_ptr() as *const i8),
                )
            };
            let products = _mm512_mullo_epi16(_mm512_sub_epi16(_mm512_cvtepi8_epi16(v), zx), _mm512_cvtepi8_epi16(ws));
            acc[0] = _mm512_add_epi32(acc[0], _mm512_cvtepi16_epi32(_mm512_castsi512_si256(products)));
            acc[1] = _mm512_add_epi32(acc[1], _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64::<1>(products)));
        });
        let clamp = [rq.zero_point, rq.act.min, rq.act.max];
        let mut half = |h: usize, acc: __m512i| {
            let lanes = cn.saturating_sub(16 * h).min(16);
            let mask = ((1u32 << lanes) - 1) as u16;
            let at = (c0 + 16 * h).min(c);
            // SAFETY: the first `lanes` values from `at` lie in each vector.
            let (b, m, n) = unsafe {
                (
                    _mm512_maskz_loadu_epi32(mask, bias[at..].as_ptr()),
                    _mm512_maskz_loadu_ps(mask, rq.multiplier[at..].as_ptr()),
                    _mm512_maskz_loadu_ps(mask, rq.negative[at..].as_ptr()),
                )
            };
            let q = requantize(_mm512_add_epi32(acc, b), m, n, clamp);
            // SAFETY: the first `lanes` bytes from `out + at` lie in the output.
            unsafe { _mm_mask_storeu_epi8(y.data[out + at..].as_mut_ptr(), mask, q) };
        };
        half(0, acc[0]);
        half(1, acc[1]);
    });
}
