//! Ops that slide over H and W of NHWC tensors: convolution, pooling, resize.

use super::{activate, dot};
use crate::ir::{Op, Window};

/// Convolution; padded cells hold `pad_value` (see [`Op::Conv2d`]).
///
/// Every output sums its terms in the same order as a plain loop would
/// (bias, then each tap's dot product in input order), so removing an
/// all-zero input channel changes no bit; the loops run across output
/// channels so that the compiler vectorises them.
pub(super) fn conv2d(op: &Op, x: &[f32], shape: &[usize], out_shape: &[usize]) -> Vec<f32> {
    let Op::Conv2d { weights, weight_shape, bias, stride, dilation, pads, groups, pad_value, activation } = op else {
        unreachable!("conv2d called on {}", op.name())
    };
    let (h, w, c) = (shape[1], shape[2], shape[3]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let [o, kh, kw, ci] = *weight_shape;
    let (taps, per_group) = (kh * kw, o / groups);
    let filter = |oc: usize, t: usize| &weights[(oc * taps + t) * ci..][..ci];
    // What a padded cell adds, and the weights as [tap][in][out].
    let pad_terms: Vec<f32> =
        (0..taps).flat_map(|t| (0..o).map(move |oc| pad_value * filter(oc, t).iter().sum::<f32>())).collect();
    let mut by_output = vec![0f32; weights.len()];
    for oc in 0..o {
        for t in 0..taps {
            for (i, &k) in filter(oc, t).iter().enumerate() {
                by_output[(t * ci + i) * o + oc] = k;
            }
        }
    }
    let mut out = Vec::with_capacity(out_shape.iter().product());
    let (mut acc, mut sum) = (vec![0f32; o], vec![0f32; o]);
    for image in x.chunks(h * w * c) {
        for y in 0..oh {
            for xo in 0..ow {
                acc.copy_from_slice(bias);
                for t in 0..taps {
                    let iy = (y * stride[0] + t / kw * dilation[0]).checked_sub(pads[0]).filter(|&iy| iy < h);
                    let ix = (xo * stride[1] + t % kw * dilation[1]).checked_sub(pads[1]).filter(|&ix| ix < w);
                    let (Some(iy), Some(ix)) = (iy, ix) else {
                        add(&mut acc, &pad_terms[t * o..][..o]);
                        continue;
                    };
                    let pixel = &image[(iy * w + ix) * c..][..c];
                    if *groups == 1 {
                        sum.fill(0.0);
                        for (i, &v) in pixel.iter().enumerate() {
                            for (s, &k) in sum.iter_mut().zip(&by_output[(t * ci + i) * o..][..o]) {
                                *s += v * k;
                            }
                        }
                        add(&mut acc, &sum);
                    } else if ci == 1 && per_group == 1 {
                        // Depthwise: output channel oc reads input channel oc.
                        for ((a, &v), &k) in acc.iter_mut().zip(pixel).zip(&by_output[t * o..][..o]) {
                            *a += v * k;
                        }
                    } else {
                        for (oc, a) in acc.iter_mut().enumerate() {
                            *a += dot(&pixel[oc / per_group * ci..][..ci], filter(oc, t));
                        }
                    }
                }
                out.extend_from_slice(&acc);
            }
        }
    }
    activate(&mut out, activation, o);
    out
}

fn add(acc: &mut [f32], terms: &[f32]) {
    acc.iter_mut().zip(terms).for_each(|(a, t)| *a += t);
}

/// MaxPool, AvgPool, GlobalAvgPool and Resize: each output pixel is a
/// function of a set of input pixels of the same channel.
pub(super) fn pool_or_resize(op: &Op, x: &[f32], shape: &[usize], out_shape: &[usize]) -> Vec<f32> {
    let (h, w, c) = (shape[1], shape[2], shape[3]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for image in x.chunks(h * w * c) {
        let at = |y: usize, xi: usize, ch: usize| image[(y * w + xi) * c + ch];
        for y in 0..oh {
            for xo in 0..ow {
                for ch in 0..c {
                    out.push(match op {
                        Op::MaxPool(win) => {
                            let cells = window_cells(win, y, xo, h, w);
                            cells.iter().map(|&(a, b)| at(a, b, ch)).fold(f32::NEG_INFINITY, f32::max)
                        }
                        Op::AvgPool { window, count_include_pad } => {
                            let cells = window_cells(window, y, xo, h, w);
                            let sum: f32 = cells.iter().map(|&(a, b)| at(a, b, ch)).sum();
                            let n = if *count_include_pad { window.kernel[0] * window.kernel[1] } else { cells.len() };
                            sum / n as f32
                        }
                        Op::GlobalAvgPool => {
                            let sum: f32 =
                                (0..h).flat_map(|a| (0..w).map(move |b| (a, b))).map(|(a, b)| at(a, b, ch)).sum();
                            sum / (h * w) as f32
                        }
                        Op::Resize { linear, coordinate_mode, nearest_mode, scales, .. } => {
                            let sy = source(coordinate_mode, y, h, scales[0]);
                            let sx = source(coordinate_mode, xo, w, scales[1]);
                            if *linear {
                                bilinear(sy, sx, h, w, |a, b| at(a, b, ch))
                            } else {
                                at(nearest(nearest_mode, sy, h), nearest(nearest_mode, sx, w), ch)
                            }
                        }
                        _ => unreachable!("pool_or_resize called on {}", op.name()),
                    });
                }
            }
        }
    }
    out
}

/// Input cells (inside the image) under the window of output pixel (y, x).
fn window_cells(win: &Window, y: usize, x: usize, h: usize, w: usize) -> Vec<(usize, usize)> {
    let mut cells = Vec::with_capacity(win.kernel[0] * win.kernel[1]);
    for ky in 0..win.kernel[0] {
        for kx in 0..win.kernel[1] {
            let iy = (y * win.stride[0] + ky).checked_sub(win.pads[0]);
            let ix = (x * win.stride[1] + kx).checked_sub(win.pads[1]);
            if let (Some(iy), Some(ix)) = (iy, ix) {
                if iy < h && ix < w {
                    cells.push((iy, ix));
                }
            }
        }
    }
    cells
}

/// ONNX Resize's coordinate transformation: source coordinate of output `o`
/// along an axis of `input` cells scaled by `scale`. The spec's resized
/// length is `input * scale`, unrounded.
fn source(mode: &str, o: usize, input: usize, scale: f32) -> f32 {
    let resized = input as f32 * scale;
    let o = o as f32;
    match mode {
        "asymmetric" => o / scale,
        "align_corners" if resized > 1.0 => o * (input - 1) as f32 / (resized - 1.0),
        "align_corners" => 0.0,
        "pytorch_half_pixel" if resized <= 1.0 => 0.0,
        "tf_half_pixel_for_nn" => (o + 0.5) / scale,
        // half_pixel, the ONNX default, and pytorch_half_pixel otherwise.
        _ => (o + 0.5) / scale - 0.5,
    }
}

fn nearest(mode: &str, s: f32, size: usize) -> usize {
    let i = match mode {
        "floor" => s.floor(),
        "ceil" => s.ceil(),
        "round_prefer_ceil" => (s + 0.5).floor(),
        // round_prefer_floor, the ONNX default.
        _ => (s - 0.5).ceil(),
    };
    (i.max(0.0) as usize).min(size - 1)
}

fn bilinear(sy: f32, sx: f32, h: usize, w: usize, at: impl Fn(usize, usize) -> f32) -> f32 {
    let axis = |s: f32, size: usize| {
        let s = s.clamp(0.0, (size - 1) as f32);
        let i0 = s.floor() as usize;
        (i0, (i0 + 1).min(size - 1), s - i0 as f32)
    };
    let (y0, y1, fy) = axis(sy, h);
    let (x0, x1, fx) = axis(sx, w);
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
    let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// The input patch of every output position of a convolution with one
/// group, as rows of `[kh][kw][in]` (padded cells hold `pad_value`): the
/// convolution is these rows times its weight rows, plus the bias.
pub(super) fn patches(op: &Op, x: &[f32], shape: &[usize], out_shape: &[usize]) -> Vec<f32> {
    let Op::Conv2d { weight_shape: [_, kh, kw, ci], stride, dilation, pads, groups: 1, pad_value, .. } = op else {
        unreachable!("patches of {} (only convolutions with one group have them)", op.name())
    };
    let (h, w, c) = (shape[1], shape[2], shape[3]);
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let mut rows = Vec::with_capacity(x.len() / (h * w * c) * oh * ow * kh * kw * ci);
    for image in x.chunks(h * w * c) {
        for y in 0..oh {
            for xo in 0..ow {
                for ky in 0..*kh {
                    for kx in 0..*kw {
                        let iy = (y * stride[0] + ky * dilation[0]).checked_sub(pads[0]);
                        let ix = (xo * stride[1] + kx * dilation[1]).checked_sub(pads[1]);
                        match (iy, ix) {
                            (Some(iy), Some(ix)) if iy < h && ix < w => {
                                rows.extend_from_slice(&image[(iy * w + ix) * c..][..*ci])
                            }
                            _ => rows.extend(std::iter::repeat_n(*pad_value, *ci)),
                        }
                    }
                }
            }
        }
    }
    rows
}
