//! The output stage on ymm registers (8 lanes), shared by the AVX2 and
//! AVX-VNNI kernels: the same steps, in the same order, as
//! [`crate::quant::requantize`].

use core::arch::x86_64::*;

use crate::kernels::gemm::Epilogue;

/// The output zero point and clamp, broadcast.
#[derive(Clone, Copy)]
pub(super) struct Clamp {
    zero_point: __m256i,
    min: __m256i,
    max: __m256i,
}

impl Clamp {
    #[target_feature(enable = "avx2")]
    pub(super) fn new(zero_point: i32, min: i32, max: i32) -> Clamp {
        Clamp { zero_point: _mm256_set1_epi32(zero_point), min: _mm256_set1_epi32(min), max: _mm256_set1_epi32(max) }
    }
}

/// [`crate::quant::quantize_output`] of 8 lanes: clamp to ±32768, round half
/// to even (`vcvtps2dq` under the default MXCSR), NaN to 0, plus the zero
/// point, clamped.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn quantize(y: __m256, c: Clamp) -> __m256i {
    let ordered = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_ORD_Q>(y, y));
    let y = _mm256_min_ps(_mm256_max_ps(y, _mm256_set1_ps(-32768.0)), _mm256_set1_ps(32768.0));
    let q = _mm256_add_epi32(_mm256_and_si256(_mm256_cvtps_epi32(y), ordered), c.zero_point);
    _mm256_min_epi32(_mm256_max_epi32(q, c.min), c.max)
}

/// [`crate::quant::requantize`] of 8 accumulators, with the negative-side
/// multiplier where an accumulator is negative.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn requantize(acc: __m256i, mult: __m256, neg: __m256, c: Clamp) -> __m256i {
    let negative = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_setzero_si256(), acc));
    quantize(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_blendv_ps(mult, neg, negative)), c)
}

/// Narrows 16 lanes already within int8 range to bytes, in order.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) fn pack16(lo: __m256i, hi: __m256i) -> __m128i {
    let words = _mm256_permute4x64_epi64::<0xD8>(_mm256_packs_epi32(lo, hi));
    let bytes = _mm256_packs_epi16(words, words);
    _mm_unpacklo_epi64(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256::<1>(bytes))
}

/// Stores the first `n` (at most 16) bytes of `v` at `y`.
///
/// # Safety
///
/// The CPU supports AVX2; `y` is valid for `min(n, 16)` bytes of writes.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn store(y: *mut i8, v: __m128i, n: usize) {
    if n >= 16 {
        // SAFETY: `y` holds 16 bytes.
        unsafe { _mm_storeu_si128(y as *mut __m128i, v) };
    } else {
        let mut bytes = [0i8; 16];
        // SAFETY: `bytes` holds 16 bytes.
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr() as *mut __m128i, v) };
        // SAFETY: `y` holds `n` bytes, which cannot overlap the stack copy.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), y, n) };
    }
}

/// Loads 8 lanes of `v` starting at `at`.
#[target_feature(enable = "avx2")]
#[inline]
fn lanes<T: Copy>(v: &[T; 32], at: usize) -> __m256i {
    // SAFETY: `at` is 0, 8, 16 or 24, so 8 lanes of 4 bytes fit in `v`.
    unsafe { _mm256_loadu_si256(v[at..][..8].as_ptr() as *const __m256i) }
}

/// The output stage of a 16-column GEMM tile of `MR` rows, accumulators
/// `acc[r]` (columns 0..8 and 8..16) and visited weight sums `sums`. The
/// accumulators come by value: indexing the caller's array with variables
/// would keep it in memory through the caller's loop.
///
/// # Safety
///
/// The CPU supports AVX2; `t` satisfies [`crate::kernels::gemm::Tile`]'s
/// guarantees.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn store_tile<const MR: usize>(
    t: &crate::kernels::gemm::Tile,
    acc: [[__m256i; 2]; MR],
    sums: [__m256i; 2],
) {
    // SAFETY: the driver points `epilogue` at a live `Epilogue`.
    let e: &Epilogue = unsafe { &*t.epilogue };
    let c = Clamp::new(e.zero_point, e.min, e.max);
    let shift = _mm256_set1_epi32(e.shift);
    let base = [0, 1].map(|h| _mm256_sub_epi32(lanes(&e.bias, 8 * h), _mm256_mullo_epi32(sums[h], shift)));
    let mult = [0, 1].map(|h| _mm256_castsi256_ps(lanes(&e.mult, 8 * h)));
    let neg = [0, 1].map(|h| _mm256_castsi256_ps(lanes(&e.neg, 8 * h)));
    for (r, acc) in acc.iter().enumerate() {
        if r < t.m {
            let q = [0, 1].map(|h| requantize(_mm256_add_epi32(acc[h], base[h]), mult[h], neg[h], c));
            // SAFETY: row `r < m` of `n` bytes lies in the output.
            unsafe { store(t.y.add(r * t.y_stride), pack16(q[0], q[1]), t.n) };
        }
    }
}
