//! `dwconv_i8_kxk__neon` ([`crate::kernels::depthwise::depthwise_kernel`]):
//! depthwise convolution, any window, stride, dilation and padding; 16
//! channels at a time, `(x - zx)` in i16 times `w`, accumulated in i32 with
//! `smlal` (a pair of positions is simply both positions).

use core::arch::aarch64::*;

use super::neon::{pack16, requantize, store};
use crate::kernels::depthwise::depthwise_kernel;
use crate::kernels::gemm::Epilogue;
use crate::kernels::{QIn, QOut, Requant, Weights};
use crate::ops::Conv2d;

const STEP: usize = 16;

/// 16 channels widened to i16.
type X = [int16x8_t; 2];

#[target_feature(enable = "neon")]
#[inline]
fn widen(v: int8x16_t) -> X {
    [vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v)]
}

#[target_feature(enable = "neon")]
#[inline]
fn zero() -> X {
    [vdupq_n_s16(0); 2]
}

#[target_feature(enable = "neon")]
#[inline]
fn weights(row: &[u8], _cn: usize) -> X {
    // SAFETY: a 16-byte group of the row.
    widen(unsafe { vld1q_s8(row[..16].as_ptr() as *const i8) })
}

/// # Safety
///
/// `at` is valid for `cn` (at most 16) bytes of reads.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load(at: *const i8, cn: usize, zx: i32) -> X {
    let v = if cn == STEP {
        // SAFETY: 16 bytes from `at`.
        unsafe { vld1q_s8(at) }
    } else {
        let mut v = [0i8; 16];
        // SAFETY: `cn` bytes from `at`, into a 16-byte stack array.
        unsafe {
            core::ptr::copy_nonoverlapping(at, v.as_mut_ptr(), cn);
            vld1q_s8(v.as_ptr())
        }
    };
    let [lo, hi] = widen(v);
    [vsubq_s16(lo, vdupq_n_s16(zx as i16)), vsubq_s16(hi, vdupq_n_s16(zx as i16))]
}

#[target_feature(enable = "neon")]
#[inline]
fn pair(a: X, b: X) -> [X; 2] {
    [a, b]
}

#[target_feature(enable = "neon")]
#[inline]
fn zero_acc() -> [int32x4_t; 4] {
    [vdupq_n_s32(0); 4]
}

#[target_feature(enable = "neon")]
#[inline]
fn madd(mut acc: [int32x4_t; 4], x: [X; 2], w: [X; 2]) -> [int32x4_t; 4] {
    for (x, w) in x.iter().zip(&w) {
        acc[0] = vmlal_s16(acc[0], vget_low_s16(x[0]), vget_low_s16(w[0]));
        acc[1] = vmlal_high_s16(acc[1], x[0], w[0]);
        acc[2] = vmlal_s16(acc[2], vget_low_s16(x[1]), vget_low_s16(w[1]));
        acc[3] = vmlal_high_s16(acc[3], x[1], w[1]);
    }
    acc
}

/// A block's output constants.
struct Out(Epilogue);

impl Out {
    fn new(bias: &[i32], rq: &Requant<'_>, c0: usize) -> Out {
        let mut e = Epilogue {
            bias: [0; 32],
            mult: [0.0; 32],
            neg: [0.0; 32],
            shift: 0,
            zero_point: rq.zero_point,
            min: rq.act.min,
            max: rq.act.max,
        };
        for (i, ch) in (c0..bias.len().min(c0 + STEP)).enumerate() {
            (e.bias[i], e.mult[i], e.neg[i]) = (bias[ch], rq.multiplier[ch], rq.negative[ch]);
        }
        Out(e)
    }

    /// # Safety
    ///
    /// `y` is valid for `cn` (at most 16) bytes of writes.
    #[target_feature(enable = "neon")]
    #[inline]
    unsafe fn store(&self, acc: [int32x4_t; 4], y: *mut i8, cn: usize) {
        let e = &self.0;
        let q = core::array::from_fn(|q| {
            // SAFETY: 4 lanes at 4 * q < 16 of 32-lane arrays.
            let (b, m, n) = unsafe {
                (
                    vld1q_s32(e.bias[4 * q..].as_ptr()),
                    vld1q_f32(e.mult[4 * q..].as_ptr()),
                    vld1q_f32(e.neg[4 * q..].as_ptr()),
                )
            };
            requantize(vaddq_s32(acc[q], b), m, n, e)
        });
        // SAFETY: forwarded.
        unsafe { store(y, pack16(q), cn) };
    }
}

depthwise_kernel!("neon");
