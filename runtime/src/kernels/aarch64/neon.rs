//! The output stage on NEON registers (4 lanes): the same steps, in the same
//! order, as [`crate::quant::requantize`].

use core::arch::aarch64::*;

use crate::kernels::gemm::{Epilogue, Tile};

/// [`crate::quant::requantize`] of 4 accumulators: `scvtf` and `fcvtns`
/// round half to even, NaN becomes 0.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn requantize(acc: int32x4_t, mult: float32x4_t, neg: float32x4_t, e: &Epilogue) -> int32x4_t {
    let m = vbslq_f32(vcltzq_s32(acc), neg, mult);
    let y = vmulq_f32(vcvtq_f32_s32(acc), m);
    let ordered = vreinterpretq_s32_u32(vceqq_f32(y, y));
    let y = vminq_f32(vmaxq_f32(y, vdupq_n_f32(-32768.0)), vdupq_n_f32(32768.0));
    let q = vaddq_s32(vandq_s32(vcvtnq_s32_f32(y), ordered), vdupq_n_s32(e.zero_point));
    vminq_s32(vmaxq_s32(q, vdupq_n_s32(e.min)), vdupq_n_s32(e.max))
}

/// Narrows 16 lanes already within int8 range to bytes, in order.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn pack16(q: [int32x4_t; 4]) -> int8x16_t {
    let lo = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
    let hi = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
    vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi))
}

/// Stores the first `n` (at most 16) bytes of `v` at `y`.
///
/// # Safety
///
/// The CPU supports NEON; `y` is valid for `min(n, 16)` bytes of writes.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn store(y: *mut i8, v: int8x16_t, n: usize) {
    let mut bytes = [0i8; 16];
    // SAFETY: `bytes` holds 16 bytes.
    unsafe { vst1q_s8(bytes.as_mut_ptr(), v) };
    // SAFETY: `y` holds `min(n, 16)` bytes, apart from the stack copy.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), y, n.min(16)) };
}

/// Loads 4 lanes of `v` at `at`.
#[target_feature(enable = "neon")]
#[inline]
fn lanes(v: &[i32; 32], at: usize) -> int32x4_t {
    // SAFETY: `at` is a multiple of 4 below 16: 4 lanes fit.
    unsafe { vld1q_s32(v[at..][..4].as_ptr()) }
}

/// Loads 4 lanes of `v` at `at`.
#[target_feature(enable = "neon")]
#[inline]
fn float_lanes(v: &[f32; 32], at: usize) -> float32x4_t {
    // SAFETY: `at` is a multiple of 4 below 16: 4 lanes fit.
    unsafe { vld1q_f32(v[at..][..4].as_ptr()) }
}

/// The output stage of a 16-column tile of `MR` rows: accumulators
/// `acc[r][q]` for columns `4q..4q + 4`, visited weight sums `sums`. The
/// accumulators come by value: indexing the caller's array with variables
/// would keep it in memory through the caller's loop.
///
/// # Safety
///
/// The CPU supports NEON; `t` satisfies [`Tile`]'s guarantees.
#[target_feature(enable = "neon")]
#[inline]
pub(super) unsafe fn store_tile<const MR: usize>(t: &Tile, acc: [[int32x4_t; 4]; MR], sums: [int32x4_t; 4]) {
    // SAFETY: the driver points `epilogue` at a live `Epilogue`.
    let e: &Epilogue = unsafe { &*t.epilogue };
    let shift = vdupq_n_s32(e.shift);
    let base: [int32x4_t; 4] = core::array::from_fn(|q| vsubq_s32(lanes(&e.bias, 4 * q), vmulq_s32(sums[q], shift)));
    let mult: [float32x4_t; 4] = core::array::from_fn(|q| float_lanes(&e.mult, 4 * q));
    let neg: [float32x4_t; 4] = core::array::from_fn(|q| float_lanes(&e.neg, 4 * q));
    for (r, acc) in acc.iter().enumerate() {
        if r < t.m {
            let q = core::array::from_fn(|q| requantize(vaddq_s32(acc[q], base[q]), mult[q], neg[q], e));
            // SAFETY: row `r < m` of `n` bytes lies in the output.
            unsafe { store(t.y.add(r * t.y_stride), pack16(q), t.n) };
        }
    }
}
