//! Resize, nearest (every nearest mode) and bilinear, under every
//! coordinate transform, against ONNX Resize computed in f64.

use kiln_runtime::kernels::{scalar, QIn, QOut};
use kiln_runtime::ops::{CoordTransform, NearestMode, Resize, ResizeMode};
use proptest::prelude::*;

use crate::reference::{calibrate, check_either, quant, reals, run, shape, Activation, Rng};

#[derive(Clone, Debug)]
struct ResizeCase {
    x: [usize; 4],
    y: [usize; 2],
    p: Resize,
    stretch: f64,
    seed: u64,
}

fn mode() -> impl Strategy<Value = ResizeMode> {
    prop_oneof![
        Just(ResizeMode::Bilinear),
        Just(ResizeMode::Nearest(NearestMode::RoundPreferFloor)),
        Just(ResizeMode::Nearest(NearestMode::RoundPreferCeil)),
        Just(ResizeMode::Nearest(NearestMode::Floor)),
        Just(ResizeMode::Nearest(NearestMode::Ceil)),
    ]
}

fn coord() -> impl Strategy<Value = CoordTransform> {
    prop_oneof![
        Just(CoordTransform::HalfPixel),
        Just(CoordTransform::Asymmetric),
        Just(CoordTransform::AlignCorners),
        Just(CoordTransform::PytorchHalfPixel),
    ]
}

/// An input size, and either an output size with the scale `out / in` (as
/// when a model gives sizes) or a scale with the output size
/// `floor(in * scale)` (as when it gives scales).
fn axis() -> impl Strategy<Value = (usize, usize, f32)> {
    prop_oneof![
        (1..=6usize, 1..=12usize).prop_map(|(i, o)| (i, o, o as f32 / i as f32)),
        (1..=6usize, 0.3..3.0f32).prop_map(|(i, s)| (i, ((i as f32 * s) as usize).max(1), s)),
    ]
}

fn resize_case() -> impl Strategy<Value = ResizeCase> {
    (1..=2usize, axis(), axis(), 1..=3usize, mode(), coord(), 0.9..1.2f64, any::<u64>()).prop_map(
        |(n, (h, oh, sh), (w, ow, sw), c, mode, coord, stretch, seed)| ResizeCase {
            x: [n, h, w, c],
            y: [oh, ow],
            p: Resize { mode, coord, scale: [sh, sw] },
            stretch,
            seed,
        },
    )
}

/// ONNX's source coordinate of output coordinate `o`, in f64.
fn source(coord: CoordTransform, o: usize, scale: f32, input: usize, output: usize) -> f64 {
    let (o, scale) = (o as f64, f64::from(scale));
    match coord {
        CoordTransform::HalfPixel => (o + 0.5) / scale - 0.5,
        CoordTransform::Asymmetric => o / scale,
        // Undefined by ONNX for a single output; kiln takes 0.
        CoordTransform::AlignCorners if output == 1 => 0.0,
        CoordTransform::AlignCorners => o * (input - 1) as f64 / (output - 1) as f64,
        CoordTransform::PytorchHalfPixel if output == 1 => 0.0,
        CoordTransform::PytorchHalfPixel => (o + 0.5) / scale - 0.5,
    }
}

/// The input index that nearest mode `mode` picks for source coordinate
/// `v`, clamped into `0..input`; with a second index when `v` lies within
/// f32 precision of a rounding boundary (but not on it), where f32
/// arithmetic may land on the other side.
fn nearest(mode: NearestMode, v: f64, input: usize) -> (usize, Option<usize>) {
    let pick = |v: f64| {
        let r = match mode {
            NearestMode::RoundPreferFloor if v - v.floor() == 0.5 => v.floor(),
            NearestMode::RoundPreferCeil if v - v.floor() == 0.5 => v.ceil(),
            NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => v.round(),
            NearestMode::Floor => v.floor(),
            NearestMode::Ceil => v.ceil(),
        };
        r.clamp(0.0, (input - 1) as f64) as usize
    };
    let boundary = match mode {
        NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => v.floor() + 0.5,
        NearestMode::Floor | NearestMode::Ceil => v.round(),
    };
    let eps = 1e-5 * v.abs().max(1.0);
    let near = v != boundary && (v - boundary).abs() < eps;
    (pick(v), near.then(|| pick(2.0 * boundary - v)))
}

/// Linear interpolation weights: the source coordinate clamped into the
/// input (ONNX extends the edge), its two neighbours and the weight of the
/// second.
fn linear(v: f64, input: usize) -> (usize, usize, f64) {
    let v = v.clamp(0.0, (input - 1) as f64);
    let i0 = v.floor() as usize;
    (i0, (i0 + 1).min(input - 1), v - v.floor())
}

#[test]
fn resize_matches_f64() {
    run("resize", 1536, 0.05, resize_case(), |c| {
        let mut rng = Rng(c.seed);
        let [n, h, w, ch] = c.x;
        let [oh, ow] = c.y;
        let xq = quant(rng.uniform(0.01, 0.1), rng.int(-64, 64));
        let x = rng.i8s(n * h * w * ch);
        let xr = reals(&x, xq);
        let at = |b: usize, iy: usize, ix: usize, k: usize| xr[((b * h + iy) * w + ix) * ch + k];
        let mut want = Vec::new();
        for b in 0..n {
            for oy in 0..oh {
                let sy = source(c.p.coord, oy, c.p.scale[0], h, oh);
                for ox in 0..ow {
                    let sx = source(c.p.coord, ox, c.p.scale[1], w, ow);
                    for k in 0..ch {
                        want.push(match c.p.mode {
                            ResizeMode::Nearest(mode) => {
                                let ((y0, y1), (x0, x1)) = (nearest(mode, sy, h), nearest(mode, sx, w));
                                let mut v = vec![at(b, y0, x0, k)];
                                for (iy, ix) in [
                                    (y1.unwrap_or(y0), x0),
                                    (y0, x1.unwrap_or(x0)),
                                    (y1.unwrap_or(y0), x1.unwrap_or(x0)),
                                ] {
                                    v.push(at(b, iy, ix, k));
                                }
                                v
                            }
                            ResizeMode::Bilinear => {
                                let ((y0, y1, fy), (x0, x1, fx)) = (linear(sy, h), linear(sx, w));
                                let top = at(b, y0, x0, k) * (1.0 - fx) + at(b, y0, x1, k) * fx;
                                let bottom = at(b, y1, x0, k) * (1.0 - fx) + at(b, y1, x1, k) * fx;
                                vec![top * (1.0 - fy) + bottom * fy]
                            }
                        });
                    }
                }
            }
        }
        let firsts: Vec<f64> = want.iter().map(|v| v[0]).collect();
        let yq = calibrate(&firsts, c.stretch);
        let dims = [n, oh, ow, ch];
        let mut y = vec![0i8; want.len()];
        scalar::resize(
            &c.p,
            QIn { data: &x, shape: shape(&c.x), quant: xq },
            QOut { data: &mut y, shape: shape(&dims), quant: yq },
        );
        check_either(
            &|| format!("resize: x {:?} {xq:?} to {:?}, {:?}", c.x, c.y, c.p),
            &y,
            &want,
            &dims,
            yq,
            Activation::None,
        )
    });
}
