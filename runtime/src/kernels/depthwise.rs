//! The portable half of the depthwise kernels: the output pixels of a block
//! of channels, where each window position of a pixel lies in the input,
//! and ([`depthwise_kernel`]) the kernel itself, written once over each
//! ISA's vector helpers.
//!
//! A kernel takes one block of channels at a time (its weights and output
//! constants stay in registers or on the stack for the whole block), then
//! every output pixel. Window positions outside the input read a row of the
//! input's zero point instead, so that they add `(zx - zx) * w = 0`, exactly
//! what the scalar kernel's skipping adds: the kernels need no per-position
//! branches beyond the address.
//!
//! Positions go in pairs, so that x86 can interleave two positions' 16-bit
//! values and multiply them with one instruction that sums adjacent
//! products (`vpmaddwd`, `vpdpwssd`).

use crate::kernels::gemm::valid;
use crate::ops::Conv2d;
use crate::Shape;

/// The window of one output pixel, for the current block of channels.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pixel {
    /// Where position (0, 0) would be, for the block's first channel (it may
    /// lie outside the input: never read unless inside).
    base: *const i8,
    /// Rows and columns of the window inside the input.
    ky: (usize, usize),
    kx: (usize, usize),
    /// Whether the whole window lies inside the input.
    pub full: bool,
}

/// A depthwise window: its size, and the steps between its rows and
/// columns in the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Positions, `KH * KW`.
    pub taps: usize,
    kw: usize,
    row: isize,
    col: isize,
}

impl Window {
    /// The address of window position `t` of pixel `px`: inside the input,
    /// or (if `CHECK` and the position lies outside) `outside`. `K` is the
    /// window's width when the caller knows it at compile time (so that
    /// `t / K` folds away), else 0.
    #[inline(always)]
    pub(crate) fn tap<const K: usize, const CHECK: bool>(&self, px: &Pixel, t: usize, outside: *const i8) -> *const i8 {
        let kw = if K == 0 { self.kw } else { K };
        let (ky, kx) = (t / kw, t % kw);
        if CHECK && !(px.ky.0 <= ky && ky < px.ky.1 && px.kx.0 <= kx && kx < px.kx.1) {
            return outside;
        }
        px.base.wrapping_offset(ky as isize * self.row + kx as isize * self.col)
    }
}

/// The window of a depthwise convolution over `x` with weights of logical
/// shape `w` (`[C, KH, KW, 1]`).
pub(crate) fn window(p: &Conv2d, x: Shape, w: Shape) -> Window {
    let [_, _, width, c] = x.nhwc();
    let [_, kh, kw, _] = w.nhwc();
    let [dy, dx] = p.dilation;
    Window { taps: kh * kw, kw, row: (dy * width * c) as isize, col: (dx * c) as isize }
}

/// Calls `pixel(out, px)` for every output pixel, for the block of channels
/// starting at `c0`: `out` is the offset of the pixel's channel `c0` in the
/// output, `px` its window in `x` (the input's first byte).
#[inline(always)]
pub(crate) fn for_each_pixel(
    p: &Conv2d,
    x: *const i8,
    xs: Shape,
    w: Shape,
    y: Shape,
    c0: usize,
    mut pixel: impl FnMut(usize, &Pixel),
) {
    let [n, h, width, c] = xs.nhwc();
    let [_, kh, kw, _] = w.nhwc();
    let [_, oh, ow, _] = y.nhwc();
    let [top, left, ..] = p.pad;
    let [dy, dx] = p.dilation;
    for b in 0..n {
        for oy in 0..oh {
            let iy0 = (oy * p.stride[0]) as isize - top as isize;
            let ky = valid(iy0, dy, kh, h);
            let row = (b * h) as isize + iy0;
            for ox in 0..ow {
                let ix0 = (ox * p.stride[1]) as isize - left as isize;
                let kx = valid(ix0, dx, kw, width);
                let at = (row * width as isize + ix0) * c as isize + c0 as isize;
                let full = ky == (0, kh) && kx == (0, kw);
                let px = Pixel { base: x.wrapping_offset(at), ky, kx, full };
                pixel(((b * oh + oy) * ow + ox) * c + c0, &px);
            }
        }
    }
}

/// Pairs of positions whose interleaved weights a kernel keeps on the stack
/// (windows up to 64 positions); larger windows interleave them per pixel.
pub(crate) const KEPT: usize = 32;

/// Whether weights of logical shape `w` make a 3x3 window: kernels have an
/// unrolled loop for it.
pub(crate) fn is_3x3(w: Shape) -> bool {
    matches!(w.nhwc(), [_, 3, 3, _])
}

/// Defines `dwconv`, an ISA's depthwise kernel (any window, stride,
/// dilation and padding, as [`crate::kernels::scalar::conv2d`]), in the
/// module that invokes it, for the CPU features `$features`, from that
/// module's helpers, which must be callable with those features:
///
/// - `STEP`: channels per block;
/// - `zero() -> X`; `weights(row: &[u8], cn) -> X`: a block's weights at one
///   position, widened (`row` starts at the block's first channel, and holds
///   at least `cn` and, when `cn < STEP`, whole 16-byte groups);
///   `unsafe load(at, cn, zx) -> X`: `x - zx` of `cn` channels read from
///   `at` (rest unspecified);
/// - `pair(X, X) -> P`; `zero_acc() -> A`; `madd(A, P, P) -> A`: adds the
///   products of a pair of positions to the accumulators;
/// - `Out::new(bias, rq, c0)`: the block's output constants;
///   `unsafe Out::store(&self, A, y, cn)`: requantizes and writes `cn`
///   channels at `y`.
macro_rules! depthwise_kernel {
    ($features:literal) => {
        /// `dwconv::<0>` takes any window (and runs 3x3 ones as
        /// `dwconv::<3>`, unrolled); `dwconv::<K>` a window `K` wide and high.
        ///
        /// # Safety
        ///
        /// The CPU supports this module's features; the operands passed the
        /// loader's checks for a depthwise [`crate::OpKind::Conv2d`] (weights
        /// in the depthwise layout); `K` is 0 or the window's width and height.
        #[target_feature(enable = $features)]
        pub(crate) unsafe fn dwconv<const K: usize>(p: &Conv2d, x: QIn, w: Weights, b: &[i32], rq: &Requant, y: QOut) {
            use crate::kernels::depthwise::{for_each_pixel, window, Pixel, KEPT};
            if K == 0 && crate::kernels::depthwise::is_3x3(w.shape) {
                // SAFETY: forwarded from the caller's contract.
                return unsafe { dwconv::<3>(p, x, w, b, rq, y) };
            }
            let c = x.shape.nhwc()[3];
            let win = window(p, x.shape, w.shape);
            let taps = if K == 0 { win.taps } else { K * K };
            let pairs = taps.div_ceil(2);
            let padded = w.layout.padded_channels();
            let zx = x.quant.zero_point;
            let outside = [zx as i8; STEP];
            let y_ptr = y.data.as_mut_ptr();
            for c0 in (0..c).step_by(STEP) {
                let cn = (c - c0).min(STEP);
                let weight = |t: usize| if t < taps { weights(&w.data[t * padded + c0..], cn) } else { zero() };
                let pair_of = |q: usize| pair(weight(2 * q), weight(2 * q + 1));
                let mut kept = [pair(zero(), zero()); KEPT];
                for (q, k) in kept.iter_mut().enumerate().take(pairs) {
                    *k = pair_of(q);
                }
                let out = Out::new(b, rq, c0);
                let sum = |px: &Pixel, check: bool| {
                    let tap = |t: usize| {
                        if t >= taps {
                            return zero();
                        }
                        let at = if check {
                            win.tap::<K, true>(px, t, outside.as_ptr())
                        } else {
                            win.tap::<K, false>(px, t, outside.as_ptr())
                        };
                        // SAFETY: `cn` channels from `at` lie in the input
                        // (a visited position) or in `outside`.
                        unsafe { load(at, cn, zx) }
                    };
                    let mut acc = zero_acc();
                    for q in 0..pairs {
                        let wq = kept.get(q).copied().unwrap_or_else(|| pair_of(q));
                        acc = madd(acc, pair(tap(2 * q), tap(2 * q + 1)), wq);
                    }
                    acc
                };
                for_each_pixel(p, x.data.as_ptr(), x.shape, w.shape, y.shape, c0, |o, px| {
                    let acc = if px.full { sum(px, false) } else { sum(px, true) };
                    // SAFETY: the pixel's `cn` channels from `o` lie in the
                    // output.
                    unsafe { out.store(acc, y_ptr.add(o), cn) };
                });
            }
        }
    };
}
pub(crate) use depthwise_kernel;
