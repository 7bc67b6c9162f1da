//! Convolution and fully connected layers.

use crate::kernels::{QIn, QOut, Requant, WeightSource};
use crate::ops::Conv2d;

/// Convolution of NHWC `x` with OHWI weights `w` (zero point 0; packed in
/// a model, see [`WeightSource`]):
/// for every output element, `acc = bias[o] + Σ (x - x.zero_point) * w` over
/// the window (wrapping i32 arithmetic; padded positions contribute nothing),
/// then `requant.apply(acc, o)`.
pub fn conv2d(p: &Conv2d, x: QIn<'_>, w: impl WeightSource, bias: &[i32], requant: &Requant<'_>, y: QOut<'_>) {
    let [n, h, width, c] = x.shape.nhwc();
    let [o, kh, kw, group_in] = w.shape().nhwc();
    let [_, oh, ow, _] = y.shape.nhwc();
    let group_out = o / p.groups;
    let zx = x.quant.zero_point;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let out = &mut y.data[((b * oh + oy) * ow + ox) * o..][..o];
                for (oc, out) in out.iter_mut().enumerate() {
                    let first_in = oc / group_out * group_in;
                    let mut acc = bias[oc];
                    for (tap, iy, ix) in window(p, [oy, ox], [h, width], [kh, kw]) {
                        let xs = &x.data[((b * h + iy) * width + ix) * c + first_in..][..group_in];
                        let ws = (0..group_in).map(|i| w.at(oc, tap, i));
                        acc = dot(acc, xs, zx, ws);
                    }
                    *out = requant.apply(acc, oc);
                }
            }
        }
    }
}

/// Fully connected layer: `x` [N,K], weights [O,K]; as [`conv2d`] with a
/// 1x1 window.
pub fn fully_connected(x: QIn<'_>, w: impl WeightSource, bias: &[i32], requant: &Requant<'_>, y: QOut<'_>) {
    let [n, k, ..] = x.shape.nhwc();
    let [o, ..] = w.shape().nhwc();
    for b in 0..n {
        let xs = &x.data[b * k..][..k];
        for (oc, out) in y.data[b * o..][..o].iter_mut().enumerate() {
            let acc = dot(bias[oc], xs, x.quant.zero_point, (0..k).map(|i| w.at(oc, 0, i)));
            *out = requant.apply(acc, oc);
        }
    }
}

/// The window positions of output pixel `[oy, ox]` that lie inside an
/// input of `[h, w]`, rows then columns: `(ky * kw + kx, iy, ix)`. Padded
/// positions are skipped.
pub(super) fn window(
    p: &Conv2d,
    [oy, ox]: [usize; 2],
    [h, w]: [usize; 2],
    [kh, kw]: [usize; 2],
) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let [top, left, ..] = p.pad;
    let rows = (0..kh).filter_map(move |ky| {
        (oy * p.stride[0] + ky * p.dilation[0]).checked_sub(top).filter(|&iy| iy < h).map(|iy| (ky, iy))
    });
    rows.flat_map(move |(ky, iy)| {
        (0..kw).filter_map(move |kx| {
            let ix = (ox * p.stride[1] + kx * p.dilation[1]).checked_sub(left).filter(|&ix| ix < w)?;
            Some((ky * kw + kx, iy, ix))
        })
    })
}

/// `acc + Σ (x - zx) * w`, wrapping.
#[inline(always)]
fn dot(acc: i32, x: &[i8], zx: i32, w: impl Iterator<Item = i8>) -> i32 {
    x.iter().zip(w).fold(acc, |acc, (&x, w)| acc.wrapping_add((i32::from(x) - zx) * i32::from(w)))
}
