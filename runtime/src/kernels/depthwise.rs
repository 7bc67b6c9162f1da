//! The portable loop of the depthwise kernels: output pixels, blocks of 16
//! channels, and the window positions inside the input.

use crate::kernels::gemm::valid;
use crate::kernels::Weights;
use crate::ops::Conv2d;
use crate::Shape;

/// The window positions of one output pixel that lie inside the input, for
/// the block of channels starting at `c0`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Offsets of the first visited position in the input and the weights.
    x: usize,
    w: usize,
    /// Visited rows and columns of the window.
    rows: usize,
    cols: usize,
    /// Steps between rows and columns, in the input and the weights.
    x_row: usize,
    x_col: usize,
    w_row: usize,
    w_col: usize,
}

impl Window {
    /// Calls `f(x, w)` with the offsets of every visited position.
    #[inline(always)]
    pub(crate) fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        for i in 0..self.rows {
            for j in 0..self.cols {
                f(self.x + i * self.x_row + j * self.x_col, self.w + i * self.w_row + j * self.w_col);
            }
        }
    }
}

/// Calls `block(out, c0, window)` for every output pixel and every block
/// of up to `STEP` channels starting at `c0`: `out` is the offset of the
/// pixel's first channel in the output. The weights of a position hold the
/// channels rounded up to a multiple of 16.
#[inline(always)]
pub(crate) fn for_each_block<const STEP: usize>(
    p: &Conv2d,
    x: Shape,
    w: &Weights<'_>,
    y: Shape,
    mut block: impl FnMut(usize, usize, &Window),
) {
    let [n, h, width, c] = x.nhwc();
    let [_, kh, kw, _] = w.shape.nhwc();
    let [_, oh, ow, _] = y.nhwc();
    let padded = w.layout.padded_channels();
    let [top, left, ..] = p.pad;
    let [dy, dx] = p.dilation;
    for b in 0..n {
        for oy in 0..oh {
            let iy0 = (oy * p.stride[0]) as isize - top as isize;
            let (ky0, ky1) = valid(iy0, dy, kh, h);
            // The first visited row (any row if none is visited).
            let iy = (iy0 + (ky0 * dy) as isize).max(0) as usize;
            for ox in 0..ow {
                let ix0 = (ox * p.stride[1]) as isize - left as isize;
                let (kx0, kx1) = valid(ix0, dx, kw, width);
                let ix = (ix0 + (kx0 * dx) as isize).max(0) as usize;
                let out = ((b * oh + oy) * ow + ox) * c;
                for c0 in (0..c).step_by(STEP) {
                    let window = Window {
                        x: ((b * h + iy) * width + ix) * c + c0,
                        w: (ky0 * kw + kx0) * padded + c0,
                        rows: ky1 - ky0,
                        cols: kx1 - kx0,
                        x_row: dy * width * c,
                        x_col: dx * c,
                        w_row: kw * padded,
                        w_col: padded,
                    };
                    block(out, c0, &window);
                }
            }
        }
    }
}

/// Copies up to 16 values of `v` from `at`, zero-filled past its end.
#[inline(always)]
pub(crate) fn load16<T: Copy + Default>(v: &[T], at: usize) -> [T; 16] {
    if let Some(whole) = v.get(at..at + 16) {
        return whole.try_into().expect("16 values");
    }
    let mut out = [T::default(); 16];
    let n = v.len().saturating_sub(at).min(16);
    out[..n].copy_from_slice(&v[at..][..n]);
    out
}
