//! The portable half of the SIMD float convolutions and fully connected
//! layers ([`crate::kernels::scalar::float`] is their specification). The
//! lanes of a vector are output channels: each lane accumulates exactly the
//! scalar kernel's sum, `acc = acc + x * w` over the window's rows, columns
//! and input channels in order, with a separate multiply and add, so the
//! results are the scalar kernel's to the bit. Channels past the last whole
//! vector run the scalar arithmetic itself.

use crate::kernels::gemm::valid;
use crate::kernels::{FIn, FOut, FloatAffine, FloatWeights};
use crate::ops::Conv2d;

/// A vector of f32 lanes on one ISA. Every method is `unsafe`: the CPU must
/// support the ISA, and pointers must be valid for [`Lanes::N`] elements.
pub(crate) trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    /// Widens `N` IEEE binary16 values.
    unsafe fn load_f16(p: *const u16) -> Self;
    unsafe fn add(self, other: Self) -> Self;
    unsafe fn mul(self, other: Self) -> Self;
    /// `self * alpha` in the lanes where `self < 0`.
    unsafe fn prelu(self, alpha: Self) -> Self;
    /// `lo` where `self < lo`, then `hi` where the result `> hi`.
    unsafe fn clamp(self, lo: Self, hi: Self) -> Self;
    unsafe fn store(self, p: *mut f32);
}

/// Reads `N` weights from `at` of either type.
#[inline(always)]
unsafe fn load_w<V: Lanes>(w: FloatWeights<'_>, at: usize) -> V {
    // SAFETY: the caller guarantees `at..at + N` lies inside the weights.
    unsafe {
        match w {
            FloatWeights::F16(w) => V::load_f16(w.as_ptr().add(at) as *const u16),
            FloatWeights::F32(w) => V::load(w.as_ptr().add(at)),
        }
    }
}

/// The output stage of `N` channels from `c`, stored at `y`.
#[inline(always)]
unsafe fn finish<V: Lanes>(acc: V, f: &FloatAffine<'_>, c: usize, y: *mut f32) {
    // SAFETY: the caller guarantees `c..c + N` are channels of the layer and
    // `y` is valid for `N` writes.
    unsafe {
        let mut v = acc.add(V::load(f.bias.as_ptr().add(c)));
        if let Some(alpha) = f.alpha {
            v = v.prelu(V::load(alpha.as_ptr().add(c)));
        }
        v.clamp(V::splat(f.bounds.lo), V::splat(f.bounds.hi)).store(y);
    }
}

/// One output pixel of a convolution with one group (or a fully connected
/// row): `taps` yields, for each visited window position in order, the
/// offset of its input row in `x` and of its weights in `f.weights`
/// (`k × o`, output channel last); `y` is the pixel's `o` outputs.
#[inline(always)]
unsafe fn dense_pixel<V: Lanes>(
    x: &[f32],
    k: usize,
    f: &FloatAffine<'_>,
    taps: impl Iterator<Item = (usize, usize)> + Clone,
    y: &mut [f32],
) {
    let o = y.len();
    let mut c = 0;
    // Four vectors at a time share each broadcast input value.
    while c + 4 * V::N <= o {
        // SAFETY: lanes `c..c + 4N` are channels; tap offsets lie inside
        // `x` (k values) and the weights (k rows of o).
        unsafe {
            let mut acc = [V::zero(); 4];
            for (xa, wa) in taps.clone() {
                for i in 0..k {
                    let xv = V::splat(*x.get_unchecked(xa + i));
                    let row = wa + i * o + c;
                    acc[0] = acc[0].add(xv.mul(load_w(f.weights, row)));
                    acc[1] = acc[1].add(xv.mul(load_w(f.weights, row + V::N)));
                    acc[2] = acc[2].add(xv.mul(load_w(f.weights, row + 2 * V::N)));
                    acc[3] = acc[3].add(xv.mul(load_w(f.weights, row + 3 * V::N)));
                }
            }
            for (j, acc) in acc.into_iter().enumerate() {
                finish(acc, f, c + j * V::N, y.as_mut_ptr().add(c + j * V::N));
            }
        }
        c += 4 * V::N;
    }
    while c + V::N <= o {
        // SAFETY: as above, for lanes `c..c + N`.
        unsafe {
            let mut acc = V::zero();
            for (xa, wa) in taps.clone() {
                for i in 0..k {
                    let xv = V::splat(*x.get_unchecked(xa + i));
                    acc = acc.add(xv.mul(load_w(f.weights, wa + i * o + c)));
                }
            }
            finish(acc, f, c, y.as_mut_ptr().add(c));
        }
        c += V::N;
    }
    for (oc, out) in y.iter_mut().enumerate().skip(c) {
        let mut acc = 0.0f32;
        for (xa, wa) in taps.clone() {
            for i in 0..k {
                acc += x[xa + i] * f.weights.at(wa + i * o + oc);
            }
        }
        *out = f.finish(acc, oc);
    }
}

/// One output pixel of a depthwise convolution: as [`dense_pixel`], with
/// each visited position's `o` inputs multiplied lane by lane.
#[inline(always)]
unsafe fn depthwise_pixel<V: Lanes>(
    x: &[f32],
    f: &FloatAffine<'_>,
    taps: impl Iterator<Item = (usize, usize)> + Clone,
    y: &mut [f32],
) {
    let o = y.len();
    let mut c = 0;
    while c + V::N <= o {
        // SAFETY: lanes `c..c + N` are channels of every visited input row
        // and weight row.
        unsafe {
            let mut acc = V::zero();
            for (xa, wa) in taps.clone() {
                acc = acc.add(V::load(x.as_ptr().add(xa + c)).mul(load_w(f.weights, wa + c)));
            }
            finish(acc, f, c, y.as_mut_ptr().add(c));
        }
        c += V::N;
    }
    for (oc, out) in y.iter_mut().enumerate().skip(c) {
        let acc = taps.clone().fold(0.0f32, |acc, (xa, wa)| acc + x[xa + oc] * f.weights.at(wa + oc));
        *out = f.finish(acc, oc);
    }
}

/// A float convolution with one group or depthwise, as
/// [`crate::kernels::scalar::float::conv2d`].
///
/// # Safety
///
/// The CPU supports `V`'s ISA; the operands passed the loader's checks and
/// `p.groups` is 1 or the channel count with one weight per group.
#[inline(always)]
pub(crate) unsafe fn conv2d<V: Lanes>(p: &Conv2d, x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    let [n, h, width, c] = x.shape.nhwc();
    let [kh, kw, k, o] = f.shape.nhwc();
    let [_, oh, ow, _] = y.shape.nhwc();
    let depthwise = p.groups > 1;
    let [top, left, ..] = p.pad;
    for b in 0..n {
        for oy in 0..oh {
            let y0 = (oy * p.stride[0]) as isize - top as isize;
            let (ky0, ky1) = valid(y0, p.dilation[0], kh, h);
            for ox in 0..ow {
                let x0 = (ox * p.stride[1]) as isize - left as isize;
                let (kx0, kx1) = valid(x0, p.dilation[1], kw, width);
                let taps = (ky0..ky1).flat_map(move |ky| {
                    (kx0..kx1).map(move |kx| {
                        let iy = (y0 + (ky * p.dilation[0]) as isize) as usize;
                        let ix = (x0 + (kx * p.dilation[1]) as isize) as usize;
                        (((b * h + iy) * width + ix) * c, (ky * kw + kx) * k * o)
                    })
                });
                let out = &mut y.data[((b * oh + oy) * ow + ox) * o..][..o];
                // SAFETY: forwarded; every tap lies inside the input.
                unsafe {
                    if depthwise {
                        depthwise_pixel::<V>(x.data, f, taps, out)
                    } else {
                        dense_pixel::<V>(x.data, k, f, taps, out)
                    }
                }
            }
        }
    }
}

/// A float fully connected layer, as
/// [`crate::kernels::scalar::float::fully_connected`].
///
/// # Safety
///
/// The CPU supports `V`'s ISA; the operands passed the loader's checks.
#[inline(always)]
pub(crate) unsafe fn fully_connected<V: Lanes>(x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    let [n, k, ..] = x.shape.nhwc();
    let o = f.shape.nhwc()[1];
    for b in 0..n {
        // SAFETY: forwarded; row `b` holds `k` inputs.
        unsafe { dense_pixel::<V>(x.data, k, f, core::iter::once((b * k, 0)), &mut y.data[b * o..][..o]) }
    }
}
