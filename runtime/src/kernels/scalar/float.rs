//! Float operators, the arithmetic of float islands. Every sum runs in f32
//! in the order written here, each product and sum rounded on its own
//! (never a fused multiply-add), and transcendental functions come from
//! `libm` rather than the platform's maths library, so that every target
//! and every SIMD kernel that keeps the order computes the same bits.

use super::conv::window;
use super::elementwise::broadcast;
use crate::kernels::{FIn, FOut, FloatAffine};
use crate::ops::{Binary, Conv2d, Unary};

/// Convolution of NHWC `x` with weights `[KH,KW,C/groups,O]`: for every
/// output element, `acc = 0`, then `acc = acc + x * w` over the window's
/// rows, columns and input channels in that order (padded positions
/// skipped), then [`FloatAffine::finish`].
pub fn conv2d(p: &Conv2d, x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    let [n, h, width, c] = x.shape.nhwc();
    let [kh, kw, group_in, o] = f.shape.nhwc();
    let [_, oh, ow, _] = y.shape.nhwc();
    let group_out = o / p.groups;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let out = &mut y.data[((b * oh + oy) * ow + ox) * o..][..o];
                for (oc, out) in out.iter_mut().enumerate() {
                    let first_in = oc / group_out * group_in;
                    let mut acc = 0.0f32;
                    for (tap, iy, ix) in window(p, [oy, ox], [h, width], [kh, kw]) {
                        let xs = &x.data[((b * h + iy) * width + ix) * c + first_in..][..group_in];
                        let at = tap * group_in * o + oc;
                        for (i, &v) in xs.iter().enumerate() {
                            acc += v * f.weights.at(at + i * o);
                        }
                    }
                    *out = f.finish(acc, oc);
                }
            }
        }
    }
}

/// Fully connected layer: `x` [N,K], weights [K,O]: `acc = 0`, then
/// `acc = acc + x[k] * w[k][o]` for `k` from first to last, then
/// [`FloatAffine::finish`].
pub fn fully_connected(x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
    let [n, k, ..] = x.shape.nhwc();
    let o = f.shape.nhwc()[1];
    for b in 0..n {
        let xs = &x.data[b * k..][..k];
        for (oc, out) in y.data[b * o..][..o].iter_mut().enumerate() {
            let acc = xs.iter().enumerate().fold(0.0f32, |acc, (i, &v)| acc + v * f.weights.at(i * o + oc));
            *out = f.finish(acc, oc);
        }
    }
}

/// `y = f(a, b)` elementwise, broadcasting as the int8 `Add`.
pub fn binary(f: Binary, a: FIn<'_>, b: FIn<'_>, y: FOut<'_>) {
    let op = |u: f32, v: f32| match f {
        Binary::Add => u + v,
        Binary::Sub => u - v,
        Binary::Mul => u * v,
        Binary::Div => u / v,
        Binary::Max => {
            if u < v {
                v
            } else {
                u
            }
        }
        Binary::Min => {
            if u > v {
                v
            } else {
                u
            }
        }
        Binary::Pow => libm::powf(u, v),
    };
    broadcast(a.shape, b.shape, y.shape, |o, i, j| y.data[o] = op(a.data[i], b.data[j]));
}

/// `y = f(x)` elementwise, with the function's parameters `a` and `b`.
pub fn unary(f: Unary, a: f32, b: f32, x: &[f32], y: &mut [f32]) {
    let op = |v: f32| match f {
        Unary::Clamp => crate::ops::Bounds { lo: a, hi: b }.apply(v),
        Unary::Sigmoid => 1.0 / (1.0 + libm::expf(-v)),
        Unary::Tanh => libm::tanhf(v),
        Unary::HardSwish => v * ((v + 3.0).clamp(0.0, 6.0) / 6.0),
        Unary::HardSigmoid => (a * v + b).clamp(0.0, 1.0),
        Unary::Abs => v.abs(),
        Unary::Neg => -v,
        Unary::Exp => libm::expf(v),
        Unary::Log => libm::logf(v),
        Unary::Sqrt => libm::sqrtf(v),
        Unary::Erf => libm::erff(v),
        Unary::Gelu => 0.5 * v * (1.0 + libm::erff(v * core::f32::consts::FRAC_1_SQRT_2)),
        Unary::Reciprocal => 1.0 / v,
        Unary::Pow => libm::powf(v, a),
    };
    for (out, &v) in y.iter_mut().zip(x) {
        *out = op(v);
    }
}

/// Softmax over the last dimension: per row, `m` the maximum,
/// `e = exp(x - m)`, `sum = Σ e` from first to last, `y = e / sum`.
pub fn softmax(x: FIn<'_>, y: FOut<'_>) {
    let len = x.shape.dims().last().copied().unwrap_or(1);
    for (xs, ys) in x.data.chunks_exact(len).zip(y.data.chunks_exact_mut(len)) {
        let m = xs.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        for (out, &v) in ys.iter_mut().zip(xs) {
            *out = libm::expf(v - m);
        }
        let sum = ys.iter().fold(0.0f32, |s, &e| s + e);
        for out in ys {
            *out /= sum;
        }
    }
}

/// Mean (the sum from first to last, divided by the count) or maximum
/// over the last dimension.
pub fn reduce(max: bool, x: FIn<'_>, y: FOut<'_>) {
    let n = x.shape.dims().last().copied().unwrap_or(1);
    for (row, out) in x.data.chunks_exact(n).zip(y.data.iter_mut()) {
        *out = if max {
            row.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
        } else {
            row.iter().fold(0.0f32, |s, &v| s + v) / n as f32
        };
    }
}

/// Batched matrix product: `y[.., m, n] = Σ a[.., m, k] * b[.., k, n]`,
/// summed from `k = 0` up, starting at 0.
pub fn matmul(a: FIn<'_>, b: FIn<'_>, y: FOut<'_>) {
    let rank = a.shape.rank();
    let (m, k) = (a.shape.dims()[rank - 2], a.shape.dims()[rank - 1]);
    let n = b.shape.dims()[rank - 1];
    let batches = a.shape.dims()[..rank - 2].iter().product::<usize>();
    for batch in 0..batches {
        let (am, bm) = (&a.data[batch * m * k..][..m * k], &b.data[batch * k * n..][..k * n]);
        let ym = &mut y.data[batch * m * n..][..m * n];
        for i in 0..m {
            for j in 0..n {
                ym[i * n + j] = (0..k).fold(0.0f32, |acc, t| acc + am[i * k + t] * bm[t * n + j]);
            }
        }
    }
}
