//! Depthwise convolution ([`crate::kernels::depthwise::depthwise_kernel`]),
//! any window, stride, dilation and padding. A pair of window positions'
//! `x - zx` (exact in i16: |x - zx| ≤ 255) are interleaved and multiplied by
//! the two positions' weights, interleaved alike, with a multiply that sums
//! adjacent products into i32 (`vpmaddwd`; `vpdpwssd` adds to the
//! accumulator too), which leaves channels `8j..8j + 4` in the low
//! accumulator and `8j + 4..8j + 8` in the high one
//! ([`interleaved_channel`]).

/// `dwconv_i8_kxk__avx2`: 16 channels at a time.
pub(crate) mod avx2 {
    use core::arch::x86_64::*;

    use super::super::ymm::{requantize, store, Clamp};
    use super::interleaved;
    use crate::kernels::depthwise::depthwise_kernel;
    use crate::kernels::{QIn, QOut, Requant, Weights};
    use crate::ops::Conv2d;

    const STEP: usize = 16;

    #[target_feature(enable = "avx2")]
    #[inline]
    fn zero() -> __m256i {
        _mm256_setzero_si256()
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn weights(row: &[u8], _cn: usize) -> __m256i {
        // SAFETY: a 16-byte group of the row.
        _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(row[..16].as_ptr() as *const __m128i) })
    }

    /// # Safety
    ///
    /// `at` is valid for `cn` (at most 16) bytes of reads.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load(at: *const i8, cn: usize, zx: i32) -> __m256i {
        let v = if cn == STEP {
            // SAFETY: 16 bytes from `at`.
            unsafe { _mm_loadu_si128(at as *const __m128i) }
        } else {
            let mut v = [0i8; 16];
            // SAFETY: `cn` bytes from `at`, into a 16-byte stack array.
            unsafe {
                core::ptr::copy_nonoverlapping(at, v.as_mut_ptr(), cn);
                _mm_loadu_si128(v.as_ptr() as *const __m128i)
            }
        };
        _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), _mm256_set1_epi16(zx as i16))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn pair(a: __m256i, b: __m256i) -> [__m256i; 2] {
        [_mm256_unpacklo_epi16(a, b), _mm256_unpackhi_epi16(a, b)]
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn zero_acc() -> [__m256i; 2] {
        [_mm256_setzero_si256(); 2]
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn madd(acc: [__m256i; 2], x: [__m256i; 2], w: [__m256i; 2]) -> [__m256i; 2] {
        // Written out: a closure through `array::map` would not inline.
        [
            _mm256_add_epi32(acc[0], _mm256_madd_epi16(x[0], w[0])),
            _mm256_add_epi32(acc[1], _mm256_madd_epi16(x[1], w[1])),
        ]
    }

    /// A block's bias and multipliers in the accumulators' order, and the clamp.
    struct Out {
        bias: [__m256i; 2],
        mult: [__m256; 2],
        neg: [__m256; 2],
        clamp: Clamp,
    }

    impl Out {
        #[target_feature(enable = "avx2")]
        #[inline]
        fn new(bias: &[i32], rq: &Requant<'_>, c0: usize) -> Out {
            let ints = |v: [i32; 8]| {
                // SAFETY: an 8-lane stack array.
                unsafe { _mm256_loadu_si256(v.as_ptr() as *const __m256i) }
            };
            let floats = |v: [f32; 8]| {
                // SAFETY: an 8-lane stack array.
                unsafe { _mm256_loadu_ps(v.as_ptr()) }
            };
            Out {
                bias: [0, 1].map(|h| ints(interleaved(bias, c0, h))),
                mult: [0, 1].map(|h| floats(interleaved(rq.multiplier, c0, h))),
                neg: [0, 1].map(|h| floats(interleaved(rq.negative, c0, h))),
                clamp: Clamp::new(rq.zero_point, rq.act.min, rq.act.max),
            }
        }

        /// # Safety
        ///
        /// `y` is valid for `cn` (at most 16) bytes of writes.
        #[target_feature(enable = "avx2")]
        #[inline]
        unsafe fn store(&self, acc: [__m256i; 2], y: *mut i8, cn: usize) {
            // Written out: a closure through `array::map` would not inline.
            let (b, m, n) = (self.bias, self.mult, self.neg);
            let q = [
                requantize(_mm256_add_epi32(acc[0], b[0]), m[0], n[0], self.clamp),
                requantize(_mm256_add_epi32(acc[1], b[1]), m[1], n[1], self.clamp),
            ];
            // The in-lane pack puts channels 0..4, 4..8 (lane 0) and 8..12,
            // 12..16 (lane 1) in order.
            let words = _mm256_packs_epi32(q[0], q[1]);
            let bytes = _mm256_packs_epi16(words, words);
            let v = _mm_unpacklo_epi64(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256::<1>(bytes));
            // SAFETY: forwarded.
            unsafe { store(y, v, cn) };
        }
    }

    depthwise_kernel!("avx2");
}

/// `dwconv_i8_kxk__avx512vnni`: 32 channels at a time with `vpdpwssd`, and
/// masked loads and stores for a partial block (masked-out bytes are not
/// accessed).
pub(crate) mod avx512 {
    use core::arch::x86_64::*;

    use super::super::gemm_avx512::requantize;
    use super::interleaved;
    use crate::kernels::depthwise::depthwise_kernel;
    use crate::kernels::{QIn, QOut, Requant, Weights};
    use crate::ops::Conv2d;

    const STEP: usize = 32;

    /// The first `cn` (at most 32) bytes.
    fn mask(cn: usize) -> u32 {
        (u64::MAX >> (64 - cn)) as u32
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    fn zero() -> __m512i {
        _mm512_setzero_si512()
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    #[inline]
    fn weights(row: &[u8], cn: usize) -> __m512i {
        let row = &row[..cn];
        // SAFETY: the mask keeps the load to the `cn` bytes of `row`.
        _mm512_cvtepi8_epi16(unsafe { _mm256_maskz_loadu_epi8(mask(cn), row.as_ptr() as *const i8) })
    }

    /// # Safety
    ///
    /// `at` is valid for `cn` (at most 32) bytes of reads.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    #[inline]
    unsafe fn load(at: *const i8, cn: usize, zx: i32) -> __m512i {
        // SAFETY: the mask keeps the load to the `cn` bytes from `at`.
        let v = unsafe { _mm256_maskz_loadu_epi8(mask(cn), at) };
        _mm512_sub_epi16(_mm512_cvtepi8_epi16(v), _mm512_set1_epi16(zx as i16))
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    fn pair(a: __m512i, b: __m512i) -> [__m512i; 2] {
        [_mm512_unpacklo_epi16(a, b), _mm512_unpackhi_epi16(a, b)]
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn zero_acc() -> [__m512i; 2] {
        [_mm512_setzero_si512(); 2]
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    fn madd(acc: [__m512i; 2], x: [__m512i; 2], w: [__m512i; 2]) -> [__m512i; 2] {
        // Written out: a closure through `array::map` would not inline.
        [_mm512_dpwssd_epi32(acc[0], x[0], w[0]), _mm512_dpwssd_epi32(acc[1], x[1], w[1])]
    }

    /// A block's bias and multipliers in the accumulators' order, and the
    /// output zero point and clamp.
    struct Out {
        bias: [__m512i; 2],
        mult: [__m512; 2],
        neg: [__m512; 2],
        clamp: [i32; 3],
    }

    impl Out {
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn new(bias: &[i32], rq: &Requant<'_>, c0: usize) -> Out {
            let ints = |v: [i32; 16]| {
                // SAFETY: a 16-lane stack array.
                unsafe { _mm512_loadu_si512(v.as_ptr() as *const __m512i) }
            };
            let floats = |v: [f32; 16]| {
                // SAFETY: a 16-lane stack array.
                unsafe { _mm512_loadu_ps(v.as_ptr()) }
            };
            Out {
                bias: [0, 1].map(|h| ints(interleaved(bias, c0, h))),
                mult: [0, 1].map(|h| floats(interleaved(rq.multiplier, c0, h))),
                neg: [0, 1].map(|h| floats(interleaved(rq.negative, c0, h))),
                clamp: [rq.zero_point, rq.act.min, rq.act.max],
            }
        }

        /// # Safety
        ///
        /// `y` is valid for `cn` (at most 32) bytes of writes.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        #[inline]
        unsafe fn store(&self, acc: [__m512i; 2], y: *mut i8, cn: usize) {
            // Written out: a closure through `array::map` would not inline.
            let (b, m, n) = (self.bias, self.mult, self.neg);
            let q = [
                requantize(_mm512_add_epi32(acc[0], b[0]), m[0], n[0], self.clamp),
                requantize(_mm512_add_epi32(acc[1], b[1]), m[1], n[1], self.clamp),
            ];
            // Channels 8j..8j + 4 are in q[0]'s 4-byte group j, 8j + 4..8j + 8 in q[1]'s.
            let v = _mm256_set_m128i(_mm_unpackhi_epi32(q[0], q[1]), _mm_unpacklo_epi32(q[0], q[1]));
            // SAFETY: the mask keeps the store to the `cn` bytes from `y`.
            unsafe { _mm256_mask_storeu_epi8(y, mask(cn), v) };
        }
    }

    depthwise_kernel!("avx512f,avx512bw,avx512vl,avx512vnni");
}

/// The channel (within the block) that lane `lane` of accumulator `half`
/// holds.
fn interleaved_channel(half: usize, lane: usize) -> usize {
    8 * (lane / 4) + 4 * half + lane % 4
}

/// `v[c0 + interleaved_channel(half, lane)]` for each lane, zero past `v`'s
/// end: per-channel output constants in the accumulators' order.
#[inline(always)]
fn interleaved<T: Copy + Default, const N: usize>(v: &[T], c0: usize, half: usize) -> [T; N] {
    core::array::from_fn(|lane| v.get(c0 + interleaved_channel(half, lane)).copied().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::interleaved_channel;

    #[test]
    fn interleaved_lanes_cover_each_channel_once() {
        let mut seen = [0; 32];
        for half in 0..2 {
            for lane in 0..16 {
                seen[interleaved_channel(half, lane)] += 1;
            }
        }
        assert_eq!(seen, [1; 32]);
        assert_eq!(interleaved_channel(0, 4), 8);
        assert_eq!(interleaved_channel(1, 0), 4);
    }
}
