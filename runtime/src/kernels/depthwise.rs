//! The portable loop of the depthwise kernels: output pixels, blocks of 16
//! channels, and the window positions inside the input.

use crate::format::pack::BLOCK;
use crate::kernels::gemm::valid;
use crate::kernels::Weights;
use crate::ops::Conv2d;
use crate::Shape;

/// Calls `block(out, c0, positions)` for every output pixel and every block
/// of up to 16 channels starting at `c0`: `out` is the offset of the
/// pixel's first channel in the output, `positions` the offsets (in the
/// input, in the packed weights) of channel `c0` at every window position
/// inside the input. The weights of a position always hold 16 channels.
pub(crate) fn for_each_block(
    p: &Conv2d,
    x: Shape,
    w: &Weights<'_>,
    y: Shape,
    mut block: impl FnMut(usize, usize, &mut dyn Iterator<Item = (usize, usize)>),
) {
    let [n, h, width, c] = x.nhwc();
    let [_, kh, kw, _] = w.shape.nhwc();
    let [_, oh, ow, _] = y.nhwc();
    let padded = w.layout.padded_channels();
    let [top, left, ..] = p.pad;
    for b in 0..n {
        for oy in 0..oh {
            let iy0 = (oy * p.stride[0]) as isize - top as isize;
            let (ky0, ky1) = valid(iy0, p.dilation[0], kh, h);
            for ox in 0..ow {
                let ix0 = (ox * p.stride[1]) as isize - left as isize;
                let (kx0, kx1) = valid(ix0, p.dilation[1], kw, width);
                let out = ((b * oh + oy) * ow + ox) * c;
                for c0 in (0..c).step_by(BLOCK) {
                    let mut positions = (ky0..ky1).flat_map(|ky| {
                        let iy = (iy0 + (ky * p.dilation[0]) as isize) as usize;
                        (kx0..kx1).map(move |kx| {
                            let ix = (ix0 + (kx * p.dilation[1]) as isize) as usize;
                            (((b * h + iy) * width + ix) * c + c0, (ky * kw + kx) * padded + c0)
                        })
                    });
                    block(out, c0, &mut positions);
                }
            }
        }
    }
}

/// Copies up to 16 values of `v` from `at`, zero-filled past its end.
#[inline(always)]
pub(crate) fn load16<T: Copy + Default>(v: &[T], at: usize) -> [T; 16] {
    let mut out = [T::default(); 16];
    let n = v.len().saturating_sub(at).min(16);
    out[..n].copy_from_slice(&v[at..][..n]);
    out
}
