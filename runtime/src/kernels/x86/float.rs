//! Float convolution lanes ([`crate::kernels::float_conv`]): 8 on AVX2
//! (with F16C to widen f16 weights), 16 on AVX-512. The clamp is
//! `max_ps(lo, v)` then `min_ps(hi, v)`, which return their second operand
//! on NaN and on equal operands: exactly the scalar `if v < lo { lo }`,
//! `if v > hi { hi }`.

use core::arch::x86_64::*;

use crate::kernels::float_conv::{conv2d, fully_connected, Lanes};
use crate::kernels::{FIn, FOut, FloatAffine};
use crate::ops::Conv2d;

/// 8 lanes of AVX2.
#[derive(Clone, Copy)]
pub(crate) struct Ymm(__m256);

// SAFETY (every block in this impl): the trait's contract: the CPU supports
// AVX2 and F16C, and pointers are valid for 8 elements.
impl Lanes for Ymm {
    const N: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl.
        Ymm(unsafe { _mm256_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: see the impl.
        Ymm(unsafe { _mm256_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl.
        Ymm(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self {
        // SAFETY: see the impl.
        Ymm(unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) })
    }
    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        // SAFETY: see the impl.
        Ymm(unsafe { _mm256_add_ps(self.0, other.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, other: Self) -> Self {
        // SAFETY: see the impl.
        Ymm(unsafe { _mm256_mul_ps(self.0, other.0) })
    }
    #[inline(always)]
    unsafe fn prelu(self, alpha: Self) -> Self {
        // SAFETY: see the impl.
        unsafe {
            let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, _mm256_setzero_ps());
            Ymm(_mm256_blendv_ps(self.0, _mm256_mul_ps(self.0, alpha.0), negative))
        }
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
        // SAFETY: see the impl.
        Ymm(unsafe { _mm256_min_ps(hi.0, _mm256_max_ps(lo.0, self.0)) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: see the impl.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
}

/// 16 lanes of AVX-512.
#[derive(Clone, Copy)]
pub(crate) struct Zmm(__m512);

// SAFETY (every block in this impl): the trait's contract: the CPU supports
// AVX-512 F, and pointers are valid for 16 elements.
impl Lanes for Zmm {
    const N: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl.
        Zmm(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: see the impl.
        Zmm(unsafe { _mm512_set1_ps(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl.
        Zmm(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self {
        // SAFETY: see the impl.
        Zmm(unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)) })
    }
    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        // SAFETY: see the impl.
        Zmm(unsafe { _mm512_add_ps(self.0, other.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, other: Self) -> Self {
        // SAFETY: see the impl.
        Zmm(unsafe { _mm512_mul_ps(self.0, other.0) })
    }
    #[inline(always)]
    unsafe fn prelu(self, alpha: Self) -> Self {
        // SAFETY: see the impl.
        unsafe {
            let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, _mm512_setzero_ps());
            Zmm(_mm512_mask_mul_ps(self.0, negative, self.0, alpha.0))
        }
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
        // SAFETY: see the impl.
        Zmm(unsafe { _mm512_min_ps(hi.0, _mm512_max_ps(lo.0, self.0)) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: see the impl.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
}

/// `fconv_f32_16x4__avx512`.
///
/// # Safety
///
/// The CPU supports AVX-512 F; as [`conv2d`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn conv_avx512(p: &Conv2d, x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    // SAFETY: forwarded.
    unsafe { conv2d::<Zmm>(p, x, f, y) }
}

/// `ffc_f32_16x4__avx512`.
///
/// # Safety
///
/// The CPU supports AVX-512 F; as [`fully_connected`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn fc_avx512(x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    // SAFETY: forwarded.
    unsafe { fully_connected::<Zmm>(x, f, y) }
}

/// `fconv_f32_8x4__avx2`.
///
/// # Safety
///
/// The CPU supports AVX2 and F16C; as [`conv2d`].
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn conv_avx2(p: &Conv2d, x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    // SAFETY: forwarded.
    unsafe { conv2d::<Ymm>(p, x, f, y) }
}

/// `ffc_f32_8x4__avx2`.
///
/// # Safety
///
/// The CPU supports AVX2 and F16C; as [`fully_connected`].
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn fc_avx2(x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    // SAFETY: forwarded.
    unsafe { fully_connected::<Ymm>(x, f, y) }
}
