//! Spatial resize, nearest and bilinear, with ONNX's coordinate mappings.

use crate::kernels::{QIn, QOut};
use crate::ops::{CoordTransform, NearestMode, Resize, ResizeMode};
use crate::quant::{quantize_output, rescale};

/// The source coordinate of output coordinate `o` (f32 arithmetic, in the
/// order written).
fn source(coord: CoordTransform, o: usize, scale: f32, input: usize, output: usize) -> f32 {
    let o = o as f32;
    match coord {
        CoordTransform::HalfPixel => (o + 0.5) / scale - 0.5,
        CoordTransform::Asymmetric => o / scale,
        CoordTransform::AlignCorners if output == 1 => 0.0,
        CoordTransform::AlignCorners => o * (input - 1) as f32 / (output - 1) as f32,
        CoordTransform::PytorchHalfPixel if output == 1 => 0.0,
        CoordTransform::PytorchHalfPixel => (o + 0.5) / scale - 0.5,
    }
}

/// The nearest source index, rounded per `mode` and clamped into the input.
fn nearest(mode: NearestMode, v: f32, input: usize) -> usize {
    let r = match mode {
        NearestMode::RoundPreferFloor => libm::ceilf(v - 0.5),
        NearestMode::RoundPreferCeil => libm::floorf(v + 0.5),
        NearestMode::Floor => libm::floorf(v),
        NearestMode::Ceil => libm::ceilf(v),
    };
    // Clamped as an index: `(input - 1) as f32` can round up past the input.
    (r.max(0.0) as usize).min(input - 1)
}

/// The two source indices around `v` (clamped into the input) and the
/// weight of the second.
fn linear(v: f32, input: usize) -> (usize, usize, f32) {
    let v = v.clamp(0.0, (input - 1) as f32);
    // As in `nearest`: the f32 bound can round up past the input.
    let i0 = (libm::floorf(v) as usize).min(input - 1);
    (i0, (i0 + 1).min(input - 1), v - i0 as f32)
}

/// Resizes NHWC `x` to `y`'s height and width. Nearest copies the chosen
/// pixel; bilinear blends the four around the source point as
/// `(a·(1−fx) + b·fx)·(1−fy) + (c·(1−fx) + d·fx)·fy` on `x − zx` in f32.
/// Both then multiply by `sx / sy` and apply the output stage.
pub fn resize(p: &Resize, x: QIn<'_>, y: QOut<'_>) {
    let [n, h, w, c] = x.shape.nhwc();
    let [_, oh, ow, _] = y.shape.nhwc();
    let m = rescale(x.quant, y.quant);
    let zx = x.quant.zero_point;
    let at =
        |b: usize, iy: usize, ix: usize, ch: usize| (i32::from(x.data[((b * h + iy) * w + ix) * c + ch]) - zx) as f32;
    let mut out = 0;
    for b in 0..n {
        for oy in 0..oh {
            let sy = source(p.coord, oy, p.scale[0], h, oh);
            for ox in 0..ow {
                let sx = source(p.coord, ox, p.scale[1], w, ow);
                for ch in 0..c {
                    let v = match p.mode {
                        ResizeMode::Nearest(mode) => at(b, nearest(mode, sy, h), nearest(mode, sx, w), ch),
                        ResizeMode::Bilinear => {
                            let (y0, y1, fy) = linear(sy, h);
                            let (x0, x1, fx) = linear(sx, w);
                            let top = at(b, y0, x0, ch) * (1.0 - fx) + at(b, y0, x1, ch) * fx;
                            let bottom = at(b, y1, x0, ch) * (1.0 - fx) + at(b, y1, x1, ch) * fx;
                            top * (1.0 - fy) + bottom * fy
                        }
                    };
                    y.data[out] = quantize_output(v * m, y.quant.zero_point, -128, 127);
                    out += 1;
                }
            }
        }
    }
}
