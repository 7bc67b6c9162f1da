//! Float convolution lanes ([`crate::kernels::float_conv`]) on NEON: 4.
//! Products and sums are `fmul` and `fadd`, never `fmla`. The clamp is
//! compare and select (`fcmgt`, `bsl`), exactly the scalar `if v < lo { lo }`
//! then `if v > hi { hi }`: a comparison with NaN is false, so NaN passes
//! through, and `-0.0` stays `-0.0` against a bound of `0.0` (`fmax`/`fmin`
//! would order the zeros). f16 weights widen with `fcvtl`, emitted with
//! inline `asm!` because `vcvt_f32_f16` is stable only since Rust 1.94,
//! after the crate's MSRV (1.89).

use core::arch::aarch64::*;

use crate::kernels::float_conv::{conv2d, fully_connected, Lanes};
use crate::kernels::{FIn, FOut, FloatAffine};
use crate::ops::Conv2d;

/// 4 lanes of NEON.
#[derive(Clone, Copy)]
pub(crate) struct Neon(float32x4_t);

// SAFETY (every block in this impl): the trait's contract: the CPU supports
// NEON, and pointers are valid for 4 elements.
impl Lanes for Neon {
    const N: usize = 4;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: see the impl.
        Neon(unsafe { vdupq_n_f32(0.0) })
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        // SAFETY: see the impl.
        Neon(unsafe { vdupq_n_f32(v) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: see the impl.
        Neon(unsafe { vld1q_f32(p) })
    }
    /// `fcvtl`: exact for every binary16 value (subnormals included: Linux
    /// runs with FPCR.FZ16 clear, and conversions ignore it anyway); NaNs
    /// keep their payload and become quiet, as `half::f16::to_f32` makes them.
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self {
        let wide: float32x4_t;
        // SAFETY: see the impl; `fcvtl` reads and writes these registers
        // only (it may set FPSR's invalid flag on a signalling NaN, hence
        // no `preserves_flags`), and is part of base AArch64 NEON.
        unsafe {
            core::arch::asm!(
                "fcvtl {wide:v}.4s, {half:v}.4h",
                wide = lateout(vreg) wide,
                half = in(vreg) vld1_u16(p),
                options(pure, nomem, nostack),
            )
        };
        Neon(wide)
    }
    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        // SAFETY: see the impl.
        Neon(unsafe { vaddq_f32(self.0, other.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, other: Self) -> Self {
        // SAFETY: see the impl.
        Neon(unsafe { vmulq_f32(self.0, other.0) })
    }
    #[inline(always)]
    unsafe fn prelu(self, alpha: Self) -> Self {
        // SAFETY: see the impl.
        unsafe {
            let negative = vcltq_f32(self.0, vdupq_n_f32(0.0));
            Neon(vbslq_f32(negative, vmulq_f32(self.0, alpha.0), self.0))
        }
    }
    #[inline(always)]
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self {
        // SAFETY: see the impl.
        unsafe {
            let v = vbslq_f32(vcltq_f32(self.0, lo.0), lo.0, self.0);
            Neon(vbslq_f32(vcgtq_f32(v, hi.0), hi.0, v))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: see the impl.
        unsafe { vst1q_f32(p, self.0) }
    }
}

/// `fconv_f32_4x4__neon`.
///
/// # Safety
///
/// The CPU supports NEON; as [`conv2d`].
#[target_feature(enable = "neon")]
pub(crate) unsafe fn conv_neon(p: &Conv2d, x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    // SAFETY: forwarded.
    unsafe { conv2d::<Neon>(p, x, f, y) }
}

/// `ffc_f32_4x4__neon`.
///
/// # Safety
///
/// The CPU supports NEON; as [`fully_connected`].
#[target_feature(enable = "neon")]
pub(crate) unsafe fn fc_neon(x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    // SAFETY: forwarded.
    unsafe { fully_connected::<Neon>(x, f, y) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every binary16 value widens as the scalar kernels widen it
    /// (`half::f16::to_f32`), bit for bit, NaNs included.
    #[test]
    fn every_f16_widens_as_scalar() {
        for first in (0..=u16::MAX).step_by(4) {
            let halves: [u16; 4] = core::array::from_fn(|i| first + i as u16);
            let mut wide = [0.0f32; 4];
            // SAFETY: aarch64 Linux always has NEON; both arrays hold 4
            // elements.
            unsafe { Neon::load_f16(halves.as_ptr()).store(wide.as_mut_ptr()) };
            for (h, w) in halves.into_iter().zip(wide) {
                let expected = half::f16::from_bits(h).to_f32();
                assert_eq!(w.to_bits(), expected.to_bits(), "f16 {h:#06x}: {w} vs {expected}");
            }
        }
    }
}
