//! Pooling.

use core::ops::Range;

use crate::kernels::{QIn, QOut};
use crate::ops::Pool;
use crate::quant::{quantize_output, rescale};

/// Calls `f(batch, y_index, window)` for every output position of a
/// pooling, with the valid (unpadded) input rows and columns of its window.
fn windows(p: &Pool, x: &QIn<'_>, y_dims: [usize; 4], mut f: impl FnMut(usize, usize, [Range<usize>; 2])) {
    let [n, h, w, _] = x.shape.nhwc();
    let [_, oh, ow, c] = y_dims;
    let span = |o: usize, axis: usize, size: usize| {
        let start = o * p.stride[axis];
        let lo = start.saturating_sub(p.pad[axis]);
        let hi = (start + p.kernel[axis]).saturating_sub(p.pad[axis]).min(size);
        lo..hi
    };
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let at = ((b * oh + oy) * ow + ox) * c;
                f(b, at, [span(oy, 0, h), span(ox, 1, w)]);
            }
        }
    }
}

/// Maximum over the valid part of each window (input and output share
/// their quantization).
pub fn max_pool(p: &Pool, x: QIn<'_>, y: QOut<'_>) {
    let [_, h, w, c] = x.shape.nhwc();
    let b_stride = h * w * c;
    windows(p, &x, y.shape.nhwc(), |b, at, [rows, cols]| {
        for ch in 0..c {
            let mut m = i8::MIN;
            for iy in rows.clone() {
                for ix in cols.clone() {
                    m = m.max(x.data[b * b_stride + (iy * w + ix) * c + ch]);
                }
            }
            y.data[at + ch] = m;
        }
    });
}

/// Mean over each window: `acc = Σ (x - zx)` (wrapping i32, as in
/// [`global_avg_pool`]) over the valid part, `n` the
/// window's area (`count_include_pad`) or its valid count, then
/// `acc * ((sx / sy) / n)` and the output stage.
pub fn avg_pool(p: &Pool, x: QIn<'_>, y: QOut<'_>) {
    let [_, h, w, c] = x.shape.nhwc();
    let b_stride = h * w * c;
    let m = rescale(x.quant, y.quant);
    windows(p, &x, y.shape.nhwc(), |b, at, [rows, cols]| {
        let count = if p.count_include_pad { p.kernel[0] * p.kernel[1] } else { rows.len() * cols.len() };
        let scale = m / count as f32;
        for ch in 0..c {
            let mut acc = 0i32;
            for iy in rows.clone() {
                for ix in cols.clone() {
                    let v = i32::from(x.data[b * b_stride + (iy * w + ix) * c + ch]) - x.quant.zero_point;
                    acc = acc.wrapping_add(v);
                }
            }
            y.data[at + ch] = quantize_output(acc as f32 * scale, y.quant.zero_point, -128, 127);
        }
    });
}

/// Mean over H and W per channel: `acc = Σ (x - zx)`, then
/// `acc * ((sx / sy) / (H * W))` and the output stage.
pub fn global_avg_pool(x: QIn<'_>, y: QOut<'_>) {
    let [n, h, w, c] = x.shape.nhwc();
    let scale = rescale(x.quant, y.quant) / (h * w) as f32;
    for b in 0..n {
        for ch in 0..c {
            let acc = (0..h * w).fold(0i32, |acc, i| {
                acc.wrapping_add(i32::from(x.data[(b * h * w + i) * c + ch]) - x.quant.zero_point)
            });
            y.data[b * c + ch] = quantize_output(acc as f32 * scale, y.quant.zero_point, -128, 127);
        }
    }
}

/// Mean or maximum over the last dimension (`n` values per row). Mean:
/// `acc = Σ (x - zx)` (wrapping i32, as in [`global_avg_pool`]), then
/// `acc * ((sx / sy) / n)` and the output stage. Maximum: `m = max(x)`, then
/// `(m - zx) * (sx / sy)` and the output stage.
pub fn reduce(max: bool, x: QIn<'_>, y: QOut<'_>) {
    let n = x.shape.dims().last().copied().unwrap_or(1);
    let m = rescale(x.quant, y.quant);
    let zx = x.quant.zero_point;
    for (row, out) in x.data.chunks_exact(n).zip(y.data.iter_mut()) {
        let t = if max {
            let top = row.iter().copied().max().unwrap_or(i8::MIN);
            (i32::from(top) - zx) as f32 * m
        } else {
            let acc = row.iter().fold(0i32, |acc, &v| acc.wrapping_add(i32::from(v) - zx));
            acc as f32 * (m / n as f32)
        };
        *out = quantize_output(t, y.quant.zero_point, -128, 127);
    }
}
