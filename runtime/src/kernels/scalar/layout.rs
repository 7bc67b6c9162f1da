//! Operators that move elements without arithmetic. Transpose and slice
//! move int8 and f32 elements alike.

use crate::kernels::{In, Out, QIn, QOut};

/// `y[i0, i1, i2, i3] = x[i_perm[0], ...]`: `y.dims[k] = x.dims[perm[k]]`.
pub fn transpose<T: Copy>(x: In<'_, T>, perm: &[usize], y: Out<'_, T>) {
    let rank = x.shape.rank();
    let xd = x.shape.nhwc();
    let mut xstride = [0usize; 4];
    let mut step = 1;
    for i in (0..rank).rev() {
        xstride[i] = step;
        step *= xd[i];
    }
    // Stride in x of each output dimension.
    let mut s = [0usize; 4];
    for (k, &p) in perm.iter().enumerate() {
        s[k] = xstride[p];
    }
    let yd = y.shape.nhwc();
    let mut out = 0;
    for i0 in 0..yd[0] {
        for i1 in 0..yd[1] {
            for i2 in 0..yd[2] {
                for i3 in 0..yd[3] {
                    y.data[out] = x.data[i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3]];
                    out += 1;
                }
            }
        }
    }
}

/// Pads with `value`: `x` lands at offset `before`.
pub fn pad(x: QIn<'_>, before: &[usize], value: i8, y: QOut<'_>) {
    y.data.fill(value);
    let xd = x.shape.nhwc();
    let yd = y.shape.nhwc();
    let mut at = [0usize; 4];
    at[..before.len()].copy_from_slice(before);
    let row = xd[3];
    let mut src = 0;
    for i0 in 0..xd[0] {
        for i1 in 0..xd[1] {
            for i2 in 0..xd[2] {
                let dst = (((i0 + at[0]) * yd[1] + i1 + at[1]) * yd[2] + i2 + at[2]) * yd[3] + at[3];
                y.data[dst..dst + row].copy_from_slice(&x.data[src..src + row]);
                src += row;
            }
        }
    }
}

/// Strided slice: `y[i0, i1, i2, i3] = x[start[0] + i0 * step[0], ...]`
/// (dimensions past the rank have start 0 and step 1). The model checked
/// that every source index lies inside `x`.
pub fn slice<T: Copy>(x: In<'_, T>, start: &[usize], step: &[isize], y: Out<'_, T>) {
    let (xd, yd) = (x.shape.nhwc(), y.shape.nhwc());
    // Offset of the first element and signed stride in x of each output
    // dimension. A step matters only along an axis of more than one
    // output, where the model checked it stays inside `x` (so the product
    // fits); elsewhere it can be any word, whose product could overflow.
    let (mut base, mut s, mut stride) = (0isize, [0isize; 4], 1isize);
    for a in (0..4).rev() {
        base += start.get(a).map_or(0, |&v| v as isize) * stride;
        s[a] = if yd[a] > 1 { step.get(a).copied().unwrap_or(1) * stride } else { 0 };
        stride *= xd[a] as isize;
    }
    let mut out = 0;
    for i0 in 0..yd[0] as isize {
        for i1 in 0..yd[1] as isize {
            for i2 in 0..yd[2] as isize {
                for i3 in 0..yd[3] as isize {
                    y.data[out] = x.data[(base + i0 * s[0] + i1 * s[1] + i2 * s[2] + i3 * s[3]) as usize];
                    out += 1;
                }
            }
        }
    }
}

/// Zero insertion: `x`'s pixel `(i, j)` lands at `(i * stride[0], j *
/// stride[1])` of `y`, every other cell is `y`'s zero point (real zero).
pub fn zero_insert(x: QIn<'_>, stride: [usize; 2], y: QOut<'_>) {
    y.data.fill(y.quant.zero_point as i8);
    let [n, h, w, c] = x.shape.nhwc();
    let [_, yh, yw, _] = y.shape.nhwc();
    let mut src = 0;
    for image in 0..n {
        for i in 0..h {
            for j in 0..w {
                let dst = ((image * yh + i * stride[0]) * yw + j * stride[1]) * c;
                y.data[dst..dst + c].copy_from_slice(&x.data[src..src + c]);
                src += c;
            }
        }
    }
}
