//! conv2d and fully_connected against the f64 definition: real weights
//! `w * s_w[o]`, real bias `bias * s_x * s_w[o]`, output scale calibrated on
//! the reference and multipliers `s_x * s_w[o] / s_y` derived from it as a
//! converter does.

use kiln_runtime::kernels::{scalar, QIn, QOut, Requant};
use kiln_runtime::ops::Conv2d;
use kiln_runtime::Quant;
use proptest::prelude::*;

use crate::reference::{activation, calibrate_act, check_act, quant, reals, run, shape, Activation, Rng, Stats};

/// The quantized constants of an affine layer with `outputs` channels and
/// `fan_in` inputs per output, and its input quantization.
struct Affine {
    x_quant: Quant,
    w_scales: Vec<f32>,
    weights: Vec<i8>,
    bias: Vec<i32>,
    /// Fused PRelu slopes, if any.
    alpha: Option<Vec<f64>>,
}

impl Affine {
    fn random(rng: &mut Rng, outputs: usize, fan_in: usize, prelu: bool) -> Affine {
        let x_quant = quant(rng.uniform(0.005, 0.1), rng.int(-128, 127));
        let w_scales = (0..outputs).map(|_| rng.uniform(0.001, 0.02) as f32).collect();
        let weights = rng.i8s_in(outputs * fan_in, -127, 127);
        // A bias about as large as the spread of the accumulator.
        let spread = 5000 * (fan_in as f64).sqrt() as i32 + 1;
        let bias = (0..outputs).map(|_| rng.int(-spread, spread)).collect();
        let alpha = prelu.then(|| (0..outputs).map(|_| rng.uniform(-0.3, 1.2)).collect());
        Affine { x_quant, w_scales, weights, bias, alpha }
    }

    /// Real weight `i` of output channel `o`.
    fn weight(&self, o: usize, i: usize, fan_in: usize) -> f64 {
        f64::from(self.weights[o * fan_in + i]) * f64::from(self.w_scales[o])
    }

    /// Real bias of output channel `o`.
    fn bias(&self, o: usize) -> f64 {
        f64::from(self.bias[o]) * f64::from(self.x_quant.scale) * f64::from(self.w_scales[o])
    }

    /// The real output of channel `o` for pre-activation sum `v`.
    fn finish(&self, v: f64, o: usize) -> f64 {
        match &self.alpha {
            Some(alpha) if v < 0.0 => v * alpha[o],
            _ => v,
        }
    }

    /// Multipliers (positive side, negative side) for output quantization
    /// `y`, computed in f64 and stored as f32.
    fn multipliers(&self, y: Quant) -> (Vec<f32>, Vec<f32>) {
        let m: Vec<f64> = self
            .w_scales
            .iter()
            .map(|&sw| f64::from(self.x_quant.scale) * f64::from(sw) / f64::from(y.scale))
            .collect();
        let neg = match &self.alpha {
            Some(alpha) => m.iter().zip(alpha).map(|(m, a)| (m * a) as f32).collect(),
            None => m.iter().map(|&m| m as f32).collect(),
        };
        (m.iter().map(|&m| m as f32).collect(), neg)
    }
}

#[derive(Clone, Debug)]
struct ConvCase {
    batch: usize,
    size: [usize; 2],
    groups: usize,
    group_in: usize,
    group_out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 4],
    prelu: bool,
    act: Activation,
    stretch: f64,
    seed: u64,
}

/// (groups, input channels per group, output channels per group): ordinary,
/// depthwise (with a channel multiplier) and grouped.
fn grouping() -> impl Strategy<Value = (usize, usize, usize)> {
    prop_oneof![
        (1..=8usize, 1..=8usize).prop_map(|(c, o)| (1, c, o)),
        (1..=8usize, 1..=2usize).prop_map(|(c, m)| (c, 1, m)),
        (2..=4usize, 1..=3usize, 1..=3usize),
    ]
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1..=2usize, [1..=9usize, 1..=9usize], grouping()),
        (
            [1..=5usize, 1..=5usize],
            [1..=3usize, 1..=3usize],
            [1..=2usize, 1..=2usize],
            [0..=3usize, 0..=3usize, 0..=3usize, 0..=3usize],
        ),
        (any::<bool>(), activation(), 0.9..1.2f64, any::<u64>()),
    )
        .prop_map(
            |(
                (batch, mut size, (groups, group_in, group_out)),
                (kernel, stride, dilation, pad),
                (prelu, act, stretch, seed),
            )| {
                // Grow the input until the dilated window fits the padded input.
                for a in 0..2 {
                    let span = (kernel[a] - 1) * dilation[a] + 1;
                    size[a] = size[a].max(span.saturating_sub(pad[a] + pad[a + 2])).max(1);
                }
                ConvCase {
                    batch,
                    size,
                    groups,
                    group_in,
                    group_out,
                    kernel,
                    stride,
                    dilation,
                    pad,
                    prelu,
                    act,
                    stretch,
                    seed,
                }
            },
        )
}

/// ONNX Conv in NHWC/OHWI, in f64: `y[b, oy, ox, o] = bias[o] +
/// Σ x[b, oy*sh - top + ky*dh, ox*sw - left + kx*dw, g*gi + i] * w[o, ky, kx, i]`
/// with `g = o / group_out` and zeros outside the input.
fn conv_reference(c: &ConvCase, x: &[f64], a: &Affine) -> (Vec<f64>, [usize; 4]) {
    let [h, w] = c.size;
    let cin = c.groups * c.group_in;
    let o_total = c.groups * c.group_out;
    let out = |a: usize| {
        let span = (c.kernel[a] - 1) * c.dilation[a] + 1;
        (c.size[a] + c.pad[a] + c.pad[a + 2] - span) / c.stride[a] + 1
    };
    let dims = [c.batch, out(0), out(1), o_total];
    let fan_in = c.kernel[0] * c.kernel[1] * c.group_in;
    let mut y = Vec::with_capacity(dims.iter().product());
    for b in 0..c.batch {
        for oy in 0..dims[1] {
            for ox in 0..dims[2] {
                for o in 0..o_total {
                    let g = o / c.group_out;
                    let mut sum = a.bias(o);
                    for ky in 0..c.kernel[0] {
                        let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize - c.pad[0] as isize;
                        for kx in 0..c.kernel[1] {
                            let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize - c.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for i in 0..c.group_in {
                                let xv = x[((b * h + iy as usize) * w + ix as usize) * cin + g * c.group_in + i];
                                sum += xv * a.weight(o, (ky * c.kernel[1] + kx) * c.group_in + i, fan_in);
                            }
                        }
                    }
                    y.push(a.finish(sum, o));
                }
            }
        }
    }
    (y, dims)
}

fn run_conv(c: &ConvCase) -> Result<Stats, TestCaseError> {
    let mut rng = Rng(c.seed);
    let [h, w] = c.size;
    let (cin, o) = (c.groups * c.group_in, c.groups * c.group_out);
    let fan_in = c.kernel[0] * c.kernel[1] * c.group_in;
    let a = Affine::random(&mut rng, o, fan_in, c.prelu);
    let x = rng.i8s(c.batch * h * w * cin);
    let (want, dims) = conv_reference(c, &reals(&x, a.x_quant), &a);
    let y_quant = calibrate_act(&want, c.act, c.stretch);
    let act = c.act.clamp(y_quant);
    let (multiplier, negative) = a.multipliers(y_quant);
    let p = Conv2d { stride: c.stride, dilation: c.dilation, pad: c.pad, groups: c.groups, act };
    let requant = Requant { multiplier: &multiplier, negative: &negative, zero_point: y_quant.zero_point, act };
    let mut y = vec![0i8; want.len()];
    scalar::conv2d(
        &p,
        QIn { data: &x, shape: shape(&[c.batch, h, w, cin]), quant: a.x_quant },
        QIn {
            data: &a.weights,
            shape: shape(&[o, c.kernel[0], c.kernel[1], c.group_in]),
            quant: Quant { scale: 1.0, zero_point: 0 },
        },
        &a.bias,
        &requant,
        QOut { data: &mut y, shape: shape(&dims), quant: y_quant },
    );
    let case = || {
        format!(
            "conv2d: x [{}, {h}, {w}, {cin}] {:?}, weights [{o}, {}, {}, {}], {p:?}, prelu {:?}, bias {:?}",
            c.batch, a.x_quant, c.kernel[0], c.kernel[1], c.group_in, a.alpha, a.bias
        )
    };
    check_act(&case, &y, &want, &dims, y_quant, c.act)
}

#[derive(Clone, Debug)]
struct FcCase {
    batch: usize,
    features: usize,
    outputs: usize,
    prelu: bool,
    act: Activation,
    stretch: f64,
    seed: u64,
}

fn run_fc(c: &FcCase) -> Result<Stats, TestCaseError> {
    let mut rng = Rng(c.seed);
    let (n, k, o) = (c.batch, c.features, c.outputs);
    let a = Affine::random(&mut rng, o, k, c.prelu);
    let x = rng.i8s(n * k);
    let xr = reals(&x, a.x_quant);
    // Gemm: y[b, j] = bias[j] + Σ_i x[b, i] * w[j, i].
    let want: Vec<f64> = (0..n * o)
        .map(|at| {
            let (b, j) = (at / o, at % o);
            a.finish(a.bias(j) + (0..k).map(|i| xr[b * k + i] * a.weight(j, i, k)).sum::<f64>(), j)
        })
        .collect();
    let y_quant = calibrate_act(&want, c.act, c.stretch);
    let act = c.act.clamp(y_quant);
    let (multiplier, negative) = a.multipliers(y_quant);
    let requant = Requant { multiplier: &multiplier, negative: &negative, zero_point: y_quant.zero_point, act };
    let mut y = vec![0i8; n * o];
    scalar::fully_connected(
        QIn { data: &x, shape: shape(&[n, k]), quant: a.x_quant },
        QIn { data: &a.weights, shape: shape(&[o, k]), quant: Quant { scale: 1.0, zero_point: 0 } },
        &a.bias,
        &requant,
        QOut { data: &mut y, shape: shape(&[n, o]), quant: y_quant },
    );
    let case =
        || format!("fully_connected: x [{n}, {k}] {:?}, weights [{o}, {k}], prelu {:?}, {act:?}", a.x_quant, a.alpha);
    check_act(&case, &y, &want, &[n, o], y_quant, c.act)
}

#[test]
fn conv2d_matches_f64() {
    run("conv2d", 1024, 0.05, conv_case(), run_conv);
}

#[test]
fn fully_connected_matches_f64() {
    let case = (1..=4usize, 1..=64usize, 1..=16usize, any::<bool>(), activation(), 0.9..1.2f64, any::<u64>()).prop_map(
        |(batch, features, outputs, prelu, act, stretch, seed)| FcCase {
            batch,
            features,
            outputs,
            prelu,
            act,
            stretch,
            seed,
        },
    );
    run("fully_connected", 1024, 0.05, case, run_fc);
}
