//! `qgemm_i8_8x32c4__avx512vnni`: 8 rows × 32 columns (two packed blocks)
//! per tile, `vpdpbusd` on zmm over 4-byte K groups of `x ^ 0x80`.

use core::arch::x86_64::*;

use crate::kernels::gemm::{Epilogue, Microkernel, Tile};

/// The AVX-512 VNNI microkernel.
pub(crate) struct Avx512Vnni;

const MR: usize = 8;

impl Microkernel for Avx512Vnni {
    const MR: usize = MR;
    const NT: usize = 32;
    const X_SHIFT: i32 = 128;

    /// Tiles of 1 row (fully connected layers on one input) or up to 4
    /// rows (the last rows of a convolution) run a copy of the loop for
    /// that many rows, not 8.
    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded from the caller's contract; each copy computes
        // at least `t.m` rows.
        unsafe {
            match (t.shifted, t.m) {
                (true, 1) => tile::<false, 1>(t),
                (true, 2..=4) => tile::<false, 4>(t),
                (true, _) => tile::<false, MR>(t),
                (false, 1) => tile::<true, 1>(t),
                (false, 2..=4) => tile::<true, 4>(t),
                (false, _) => tile::<true, MR>(t),
            }
        }
    }
}

/// The tile's first `R` rows (`R ≥ t.m`), flipping the rows' sign bits
/// itself if `FLIP`.
///
/// # Safety
///
/// The CPU supports AVX-512 F, BW, VL and VNNI; `t` satisfies
/// [`Microkernel::tile`]'s contract.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<const FLIP: bool, const R: usize>(t: &Tile) {
    let flip = _mm512_set1_epi32(0x8080_8080u32 as i32);
    let mut acc = [[_mm512_setzero_si512(); 2]; R];
    let mut sums = [_mm512_setzero_si512(); 2];
    let w = t.w;
    let tap = |at: usize| {
        for (s, w) in sums.iter_mut().zip(w) {
            // SAFETY: `at` is the offset of 16 sums within a whole block.
            *s = _mm512_add_epi32(*s, unsafe { _mm512_loadu_si512(w.add(at) as *const __m512i) });
        }
    };
    let group = |rows: &[*const u8; R], at: usize| {
        // SAFETY: `at` is the offset of a 64-byte K group within a block.
        let b = w.map(|w| unsafe { _mm512_loadu_si512(w.add(at) as *const __m512i) });
        for (acc, &row) in acc.iter_mut().zip(rows) {
            // SAFETY: `walk` gives addresses of 4 readable bytes.
            let x = _mm512_set1_epi32(unsafe { (row as *const i32).read_unaligned() });
            let x = if FLIP { _mm512_xor_si512(x, flip) } else { x };
            acc[0] = _mm512_dpbusd_epi32(acc[0], x, b[0]);
            acc[1] = _mm512_dpbusd_epi32(acc[1], x, b[1]);
        }
    };
    // SAFETY: the tile satisfies the driver's guarantees.
    unsafe { t.walk::<R>(tap, group) };
    // SAFETY: the driver points `epilogue` at a live `Epilogue`.
    let e: &Epilogue = unsafe { &*t.epilogue };
    let shift = _mm512_set1_epi32(e.shift);
    // Index the accumulators by constants only, so that they stay in
    // registers through the loop above.
    let halves = [acc.map(|a| a[0]), acc.map(|a| a[1])];
    for (h, acc) in halves.iter().enumerate() {
        let cols = t.n.saturating_sub(16 * h).min(16);
        if cols == 0 {
            continue;
        }
        // SAFETY: 16 lanes at 16 * h lie within each 32-lane array.
        let (bias, mult, neg) = unsafe {
            (
                _mm512_loadu_si512(e.bias[16 * h..].as_ptr() as *const __m512i),
                _mm512_loadu_ps(e.mult[16 * h..].as_ptr()),
                _mm512_loadu_ps(e.neg[16 * h..].as_ptr()),
            )
        };
        let base = _mm512_sub_epi32(bias, _mm512_mullo_epi32(sums[h], shift));
        let mask = ((1u32 << cols) - 1) as u16;
        for (r, acc) in acc.iter().enumerate() {
            if r < t.m {
                let q = requantize(_mm512_add_epi32(*acc, base), mult, neg, [e.zero_point, e.min, e.max]);
                // SAFETY: row `r < m`, columns `16h..16h + cols` lie in the output.
                unsafe { _mm_mask_storeu_epi8(t.y.add(r * t.y_stride + 16 * h), mask, q) };
            }
        }
    }
}

/// [`crate::quant::requantize`] of 16 accumulators to output zero point
/// `zp`, clamped to `min..=max`, narrowed to bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[inline]
pub(super) fn requantize(acc: __m512i, mult: __m512, neg: __m512, [zp, min, max]: [i32; 3]) -> __m128i {
    let m = _mm512_mask_blend_ps(_mm512_cmplt_epi32_mask(acc, _mm512_setzero_si512()), mult, neg);
    let y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), m);
    let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(y, y);
    let y = _mm512_min_ps(_mm512_max_ps(y, _mm512_set1_ps(-32768.0)), _mm512_set1_ps(32768.0));
    let q = _mm512_add_epi32(_mm512_maskz_mov_epi32(ordered, _mm512_cvtps_epi32(y)), _mm512_set1_epi32(zp));
    let q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(min)), _mm512_set1_epi32(max));
    _mm512_cvtepi32_epi8(q)
}
