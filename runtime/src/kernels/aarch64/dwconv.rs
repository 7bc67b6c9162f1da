//! `dwconv_i8_kxk__neon`: depthwise convolution, any window, stride,
//! dilation and padding; 16 channels at a time, `(x - zx)` in i16 times
//! `w`, accumulated in i32 with `smlal`.

use core::arch::aarch64::*;

use super::neon::{pack16, requantize, store};
use crate::kernels::depthwise::{for_each_block, load16};
use crate::kernels::gemm::Epilogue;
use crate::kernels::{QIn, QOut, Requant, Weights};
use crate::ops::Conv2d;

/// # Safety
///
/// The CPU supports NEON; the operands passed the loader's checks for a
/// depthwise [`crate::OpKind::Conv2d`] (weights in the depthwise layout).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dwconv(p: &Conv2d, x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
    let c = x.shape.nhwc()[3];
    let zx = vdupq_n_s16(x.quant.zero_point as i16);
    let (xs, ys) = (x.shape, y.shape);
    let mut e = Epilogue {
        bias: [0; 32],
        mult: [0.0; 32],
        neg: [0.0; 32],
        shift: 0,
        zero_point: rq.zero_point,
        min: rq.act.min,
        max: rq.act.max,
    };
    for_each_block::<16>(p, xs, &w, ys, |out, c0, window| {
        let cn = (c - c0).min(16);
        let mut acc = [vdupq_n_s32(0); 4];
        window.for_each(|xa, wa| {
            let v = if cn == 16 {
                x.data[xa..][..16].try_into().expect("16 bytes")
            } else {
                load16(&x.data[xa..xa + cn], 0)
            };
            // SAFETY: 16-byte arrays: input (or a stack copy) and a padded
            // weight row.
            let (v, ws) = unsafe { (vld1q_s8(v.as_ptr()), vld1q_s8(w.data[wa..][..16].as_ptr() as *const i8)) };
            let lo = vsubq_s16(vmovl_s8(vget_low_s8(v)), zx);
            let hi = vsubq_s16(vmovl_high_s8(v), zx);
            let (wl, wh) = (vmovl_s8(vget_low_s8(ws)), vmovl_high_s8(ws));
            acc[0] = vmlal_s16(acc[0], vget_low_s16(lo), vget_low_s16(wl));
            acc[1] = vmlal_high_s16(acc[1], lo, wl);
            acc[2] = vmlal_s16(acc[2], vget_low_s16(hi), vget_low_s16(wh));
            acc[3] = vmlal_high_s16(acc[3], hi, wh);
        });
        e.bias[..16].copy_from_slice(&load16(bias, c0));
        e.mult[..16].copy_from_slice(&load16(rq.multiplier, c0));
        e.neg[..16].copy_from_slice(&load16(rq.negative, c0));
        let q = core::array::from_fn(|q| {
            // SAFETY: 4 lanes at 4 * q < 16 of 32-lane arrays.
            let (b, m, n) = unsafe {
                (
                    vld1q_s32(e.bias[4 * q..].as_ptr()),
                    vld1q_f32(e.mult[4 * q..].as_ptr()),
                    vld1q_f32(e.neg[4 * q..].as_ptr()),
                )
            };
            requantize(vaddq_s32(acc[q], b), m, n, &e)
        });
        let dst = &mut y.data[out + c0..][..cn];
        // SAFETY: `dst` holds `cn` bytes.
        unsafe { store(dst.as_mut_ptr(), pack16(q), cn) };
    });
}
