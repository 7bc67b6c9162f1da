//! The float kernels (`scalar::float`) against an independent f64
//! reference: each operator computed in f64 from its mathematical
//! definition, on the same f32 inputs (and for f16 weights on the values
//! their bits stand for, decoded here from the IEEE definition), over
//! random shapes and parameters drawn by proptest.
//!
//! f32 arithmetic rounds where f64 (nearly) does not, so every output
//! carries a tolerance: for a sum, `1e-5` of the sum of the absolute values
//! of its terms plus `1e-6`; for one correctly rounded operation about an
//! ulp; for a `libm` function a few ulps (`1e-6` relative); and more where
//! the definition cancels (`x + 3` in HardSwish, `1 + erf` in Gelu).
//! Selections (Clamp, Abs, Neg, Max, Min, the maximum of a row) are exact.

use half::f16;
use kiln_runtime::kernels::scalar::float;
use kiln_runtime::kernels::{FIn, FOut, FloatAffine, FloatWeights};
use kiln_runtime::ops::{Act, Binary, Bounds, Conv2d, Unary};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRng, TestRunner};

use crate::reference::{shape, unravel, Rng};

/// The relative tolerance of a sum, of the sum of its terms' magnitudes.
const SUM: f64 = 1e-5;
/// The absolute tolerance added to that of a sum.
const SUM_ABS: f64 = 1e-6;
/// A few ulps of f32, for `libm` functions.
const ULPS: f64 = 1e-6;
/// About one ulp of f32 (2^-23), for one correctly rounded operation.
const ULP: f64 = 1.2e-7;
/// Below the smallest normal f32: results this close to 0 are as good as 0.
const TINY: f64 = 1e-40;

/// What the cases of one test compared.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    cases: usize,
    outputs: usize,
    /// Outputs strictly inside the operator's bounds (not clamped), where
    /// it has bounds.
    inside: usize,
    /// The largest error seen, as a fraction of its tolerance.
    worst: f64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.cases += o.cases;
        self.outputs += o.outputs;
        self.inside += o.inside;
        self.worst = self.worst.max(o.worst);
    }
}

/// Runs `cases` cases of `strategy` through `test` with a fixed seed (as
/// `reference::run` does), shrinks and panics with the minimal failing case
/// if one fails, and prints what was compared (seen with `--nocapture`).
fn run<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(&S::Value) -> Result<Tally, TestCaseError>,
) -> Tally
where
    S::Value: core::fmt::Debug,
{
    let total = core::cell::RefCell::new(Tally::default());
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&strategy, |v| {
        let tally = test(&v)?;
        total.borrow_mut().add(tally);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let t = total.into_inner();
    let inside = if t.inside > 0 { format!(" ({} inside their bounds)", t.inside) } else { String::new() };
    println!("{name}: {} cases, {} outputs{inside}, worst error {:.3} of its tolerance", t.cases, t.outputs, t.worst);
    assert!(t.cases as u32 >= cases && t.outputs >= t.cases, "{name}: too little was compared: {t:?}");
    t
}

/// One reference output: its value and how far from it f32 may land.
#[derive(Clone, Copy, Debug)]
struct Want {
    value: f64,
    tol: f64,
}

/// Checks `got` (shape `dims`) against `want`, each element within its
/// tolerance; `case` describes the case for the failure message.
fn check(case: &dyn Fn() -> String, got: &[f32], want: &[Want], dims: &[usize]) -> Result<Tally, TestCaseError> {
    if got.len() != want.len() {
        return Err(TestCaseError::fail(format!("{}\n{} outputs, {} expected", case(), got.len(), want.len())));
    }
    let mut worst = 0.0f64;
    for (i, (&g, w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w.value).abs();
        if err.is_nan() || err > w.tol {
            return Err(TestCaseError::fail(format!(
                "{}\noutput {i} at index {:?} of {dims:?}: got {g:e}, reference {:e} (off by {err:e}, tolerance {:e})",
                case(),
                unravel(i, dims),
                w.value,
                w.tol
            )));
        }
        if w.tol > 0.0 {
            worst = worst.max(err / w.tol);
        }
    }
    Ok(Tally { cases: 1, outputs: got.len(), inside: 0, worst })
}

/// The value of IEEE binary16 bits, from the definition: sign, 5 exponent
/// bits (bias 15; 0 for subnormals), 10 fraction bits.
fn f16_value(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    assert!(exponent != 31, "f16 bits {bits:#06x} are not finite");
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        e => (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// `erf(x) = 2/√π · exp(-x²) · Σ_{n≥0} 2^n x^(2n+1) / (1·3·…·(2n+1))`, a
/// series of terms of one sign (no cancellation), in f64.
fn erf(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / core::f64::consts::PI.sqrt() * (-x2).exp() * sum
}

#[test]
fn the_reference_helpers_are_right() {
    // erf from tables (Abramowitz and Stegun 7.1).
    for (x, want) in
        [(0.0, 0.0), (0.5, 0.520_499_877_813_046_5), (1.0, 0.842_700_792_949_714_9), (3.0, 0.999_977_909_503_001_4)]
    {
        assert!((erf(x) - want).abs() < 1e-15, "erf({x}) = {}, {want} expected", erf(x));
        assert!((erf(-x) + want).abs() < 1e-15, "erf(-{x})");
    }
    // f16: one, the largest, the smallest subnormal and normal, and -2.
    for (bits, want) in
        [(0x3c00, 1.0), (0x7bff, 65504.0), (0x0001, 2f64.powi(-24)), (0x0400, 2f64.powi(-14)), (0xc000, -2.0)]
    {
        assert_eq!(f16_value(bits), want, "{bits:#06x}");
    }
}

/// Random float weights: magnitudes spread over six decades (so that f16
/// weights include subnormals), either sign.
fn weights(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let magnitude = 10f64.powf(rng.uniform(-6.0, 0.0));
            (if rng.below(2) == 0 { magnitude } else { -magnitude }) as f32
        })
        .collect()
}

/// Uniform values in `[lo, hi)`.
fn uniform(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()
}

/// Weights as the kernel reads them and as the reference does: f16 bits
/// rounded from `values`, or the f32 values themselves.
enum Stored {
    F16(Vec<f16>),
    F32(Vec<f32>),
}

impl Stored {
    fn new(values: &[f32], half: bool) -> Stored {
        if half {
            Stored::F16(values.iter().map(|&v| f16::from_f32(v)).collect())
        } else {
            Stored::F32(values.to_vec())
        }
    }

    fn kernel(&self) -> FloatWeights<'_> {
        match self {
            Stored::F16(w) => FloatWeights::F16(w),
            Stored::F32(w) => FloatWeights::F32(w),
        }
    }

    /// Weight `i` as the reference reads it.
    fn at(&self, i: usize) -> f64 {
        match self {
            Stored::F16(w) => f16_value(w[i].to_bits()),
            Stored::F32(w) => f64::from(w[i]),
        }
    }
}

/// Proptest strategy for a float operator's output bounds: none, Relu,
/// Relu6, or a random interval around 0.
fn bounds() -> impl Strategy<Value = Bounds> {
    prop_oneof![
        2 => Just(Bounds::NONE),
        1 => Just(Bounds { lo: 0.0, hi: f32::INFINITY }),
        1 => Just(Bounds { lo: 0.0, hi: 6.0 }),
        1 => (-2.0..0.0f32, 0.0..2.0f32).prop_map(|(lo, hi)| Bounds { lo, hi }),
    ]
}

/// The output stage of an affine layer in f64: `v = sum` (bias included),
/// times `alpha` where negative, clamped to `bounds`. `magnitude` is the sum
/// of the absolute values of the sum's terms. Returns the reference and
/// whether it lies strictly inside the bounds.
fn affine_out(sum: f64, magnitude: f64, alpha: Option<f64>, bounds: Bounds) -> (Want, bool) {
    let tol = SUM * magnitude + SUM_ABS;
    // Near 0 the kernel's sum may have the other sign, and be scaled by
    // alpha where the reference's is not (or the other way round).
    let (v, tol) = match alpha {
        Some(a) => (if sum < 0.0 { sum * a } else { sum }, tol * (1.0 + 2.0 * a.abs())),
        None => (sum, tol),
    };
    let (lo, hi) = (f64::from(bounds.lo), f64::from(bounds.hi));
    let value = v.clamp(lo, hi);
    (Want { value, tol: tol + ULP * value.abs() }, lo < value && value < hi)
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
    half: bool,
    slopes: bool,
    bounds: Bounds,
    seed: u64,
}

/// (groups, input channels per group, output channels per group): ordinary,
/// depthwise (with a channel multiplier) and grouped.
fn grouping() -> impl Strategy<Value = (usize, usize, usize)> {
    prop_oneof![
        (1..=8usize, 1..=24usize).prop_map(|(c, o)| (1, c, o)),
        (1..=20usize, 1..=2usize).prop_map(|(c, m)| (c, 1, m)),
        (2..=4usize, 1..=3usize, 1..=3usize),
    ]
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1..=2usize, [1..=8usize, 1..=8usize], grouping()),
        (
            [1..=5usize, 1..=5usize],
            [1..=3usize, 1..=3usize],
            [1..=3usize, 1..=3usize],
            [0..=3usize, 0..=3usize, 0..=3usize, 0..=3usize],
        ),
        (any::<bool>(), any::<bool>(), bounds(), any::<u64>()),
    )
        .prop_map(
            |(
                (batch, mut size, (groups, group_in, group_out)),
                (kernel, stride, dilation, pad),
                (half, slopes, bounds, seed),
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
                    half,
                    slopes,
                    bounds,
                    seed,
                }
            },
        )
}

fn run_conv(c: &ConvCase) -> Result<Tally, TestCaseError> {
    let mut rng = Rng(c.seed);
    let [h, w] = c.size;
    let (cin, o) = (c.groups * c.group_in, c.groups * c.group_out);
    let [kh, kw] = c.kernel;
    let x = uniform(&mut rng, c.batch * h * w * cin, -2.0, 2.0);
    let stored = Stored::new(&weights(&mut rng, kh * kw * c.group_in * o), c.half);
    let bias = uniform(&mut rng, o, -1.0, 1.0);
    let alpha = c.slopes.then(|| uniform(&mut rng, o, -0.5, 1.5));

    // ONNX Conv in NHWC with weights [KH, KW, C/groups, O]:
    // y[b, oy, ox, o] = bias[o] + Σ x[b, oy*sh - top + ky*dh, ox*sw - left + kx*dw, g*gi + i] * w[ky, kx, i, o]
    // with g = o / group_out and zeros outside the input.
    let out = |a: usize| {
        let span = (c.kernel[a] - 1) * c.dilation[a] + 1;
        (c.size[a] + c.pad[a] + c.pad[a + 2] - span) / c.stride[a] + 1
    };
    let dims = [c.batch, out(0), out(1), o];
    let (mut want, mut inside) = (Vec::new(), 0);
    for b in 0..c.batch {
        for oy in 0..dims[1] {
            for ox in 0..dims[2] {
                for oc in 0..o {
                    let g = oc / c.group_out;
                    let (mut sum, mut magnitude) = (f64::from(bias[oc]), f64::from(bias[oc]).abs());
                    for ky in 0..kh {
                        let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize - c.pad[0] as isize;
                        for kx in 0..kw {
                            let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize - c.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for i in 0..c.group_in {
                                let xv =
                                    f64::from(x[((b * h + iy as usize) * w + ix as usize) * cin + g * c.group_in + i]);
                                let term = xv * stored.at(((ky * kw + kx) * c.group_in + i) * o + oc);
                                sum += term;
                                magnitude += term.abs();
                            }
                        }
                    }
                    let (wanted, within) =
                        affine_out(sum, magnitude, alpha.as_ref().map(|a| f64::from(a[oc])), c.bounds);
                    want.push(wanted);
                    inside += usize::from(within);
                }
            }
        }
    }

    let p = Conv2d { stride: c.stride, dilation: c.dilation, pad: c.pad, groups: c.groups, act: Act::NONE };
    let f = FloatAffine {
        weights: stored.kernel(),
        shape: shape(&[kh, kw, c.group_in, o]),
        bias: &bias,
        alpha: alpha.as_deref(),
        bounds: c.bounds,
    };
    let mut y = vec![f32::NAN; want.len()];
    float::conv2d(&p, FIn::new(&x, shape(&[c.batch, h, w, cin])), &f, FOut::new(&mut y, shape(&dims)));
    let case = || {
        format!(
            "float conv2d: x [{}, {h}, {w}, {cin}], weights [{kh}, {kw}, {}, {o}] ({}), {p:?}, bounds {:?}, slopes {}",
            c.batch,
            c.group_in,
            if c.half { "f16" } else { "f32" },
            c.bounds,
            c.slopes
        )
    };
    Ok(Tally { inside, ..check(&case, &y, &want, &dims)? })
}

#[test]
fn float_conv2d_matches_f64() {
    let t = run("float conv2d", 1024, conv_case(), run_conv);
    assert!(2 * t.inside >= t.outputs, "most outputs are clamped: {t:?}");
}

#[derive(Clone, Debug)]
struct FcCase {
    batch: usize,
    features: usize,
    outputs: usize,
    half: bool,
    slopes: bool,
    bounds: Bounds,
    seed: u64,
}

fn run_fc(c: &FcCase) -> Result<Tally, TestCaseError> {
    let mut rng = Rng(c.seed);
    let (n, k, o) = (c.batch, c.features, c.outputs);
    let x = uniform(&mut rng, n * k, -2.0, 2.0);
    let stored = Stored::new(&weights(&mut rng, k * o), c.half);
    let bias = uniform(&mut rng, o, -1.0, 1.0);
    let alpha = c.slopes.then(|| uniform(&mut rng, o, -0.5, 1.5));
    // Gemm with weights [K, O]: y[b, j] = bias[j] + Σ_i x[b, i] * w[i, j].
    let (mut want, mut inside) = (Vec::new(), 0);
    for b in 0..n {
        for j in 0..o {
            let terms: Vec<f64> = (0..k).map(|i| f64::from(x[b * k + i]) * stored.at(i * o + j)).collect();
            let sum = f64::from(bias[j]) + terms.iter().sum::<f64>();
            let magnitude = f64::from(bias[j]).abs() + terms.iter().map(|t| t.abs()).sum::<f64>();
            let (wanted, within) = affine_out(sum, magnitude, alpha.as_ref().map(|a| f64::from(a[j])), c.bounds);
            want.push(wanted);
            inside += usize::from(within);
        }
    }
    let f = FloatAffine {
        weights: stored.kernel(),
        shape: shape(&[k, o]),
        bias: &bias,
        alpha: alpha.as_deref(),
        bounds: c.bounds,
    };
    let mut y = vec![f32::NAN; n * o];
    float::fully_connected(FIn::new(&x, shape(&[n, k])), &f, FOut::new(&mut y, shape(&[n, o])));
    let case = || {
        format!(
            "float fully_connected: x [{n}, {k}], weights [{k}, {o}] ({}), bounds {:?}, slopes {}",
            if c.half { "f16" } else { "f32" },
            c.bounds,
            c.slopes
        )
    };
    Ok(Tally { inside, ..check(&case, &y, &want, &[n, o])? })
}

#[test]
fn float_fully_connected_matches_f64() {
    let case = (1..=4usize, 1..=128usize, 1..=40usize, any::<bool>(), any::<bool>(), bounds(), any::<u64>()).prop_map(
        |(batch, features, outputs, half, slopes, bounds, seed)| FcCase {
            batch,
            features,
            outputs,
            half,
            slopes,
            bounds,
            seed,
        },
    );
    let t = run("float fully_connected", 1024, case, run_fc);
    assert!(2 * t.inside >= t.outputs, "most outputs are clamped: {t:?}");
}

/// An output shape of rank 0 to 4 and two inputs that broadcast to it: each
/// may drop leading dimensions, and any dimension of either may be 1.
#[derive(Clone, Debug)]
struct Broadcast {
    y: Vec<usize>,
    a: Vec<usize>,
    b: Vec<usize>,
    seed: u64,
}

fn broadcast() -> impl Strategy<Value = Broadcast> {
    (proptest::collection::vec((1..=5usize, 0..4u8), 0..=4), 0..=4usize, 0..=4usize, any::<u64>()).prop_map(
        |(y, drop_a, drop_b, seed)| {
            // Dimension kinds: 0 both span it, 1 `a` repeats, 2 `b` repeats,
            // 3 both repeat.
            let input = |drop: usize, repeats: u8| -> Vec<usize> {
                let drop = drop.min(y.len());
                y[drop..].iter().map(|&(d, kind)| if kind == repeats || kind == 3 { 1 } else { d }).collect()
            };
            Broadcast { a: input(drop_a, 1), b: input(drop_b, 2), y: y.iter().map(|&(d, _)| d).collect(), seed }
        },
    )
}

/// The element of an input of dimensions `dims` that output index `idx`
/// reads under NumPy broadcasting: dimensions aligned at the end, a
/// dimension of 1 repeating.
fn broadcast_index(idx: &[usize], dims: &[usize]) -> usize {
    let skip = idx.len() - dims.len();
    dims.iter().zip(&idx[skip..]).fold(0, |at, (&d, &i)| at * d + if d == 1 { 0 } else { i })
}

/// Inputs in the domain of `f`: `a` and `b` for `count` elements each.
fn binary_inputs(rng: &mut Rng, f: Binary, a: usize, b: usize) -> (Vec<f32>, Vec<f32>) {
    match f {
        // Positive bases, moderate exponents.
        Binary::Pow => (uniform(rng, a, 0.05, 20.0), uniform(rng, b, -4.0, 4.0)),
        // Divisors away from 0.
        Binary::Div => {
            let mut d = uniform(rng, b, 0.1, 10.0);
            d.iter_mut().for_each(|v| *v = if rng.below(2) == 0 { *v } else { -*v });
            (uniform(rng, a, -10.0, 10.0), d)
        }
        _ => (uniform(rng, a, -10.0, 10.0), uniform(rng, b, -10.0, 10.0)),
    }
}

fn run_binary(c: &Broadcast, f: Binary) -> Result<Tally, TestCaseError> {
    let mut rng = Rng(c.seed);
    let (a, b) = binary_inputs(&mut rng, f, c.a.iter().product(), c.b.iter().product());
    let len: usize = c.y.iter().product();
    let want: Vec<Want> = (0..len)
        .map(|i| {
            let idx = unravel(i, &c.y);
            let (u, v) = (f64::from(a[broadcast_index(&idx, &c.a)]), f64::from(b[broadcast_index(&idx, &c.b)]));
            let (value, tol) = match f {
                Binary::Add => (u + v, ULP),
                Binary::Sub => (u - v, ULP),
                Binary::Mul => (u * v, ULP),
                Binary::Div => (u / v, ULP),
                Binary::Max => (u.max(v), 0.0),
                Binary::Min => (u.min(v), 0.0),
                Binary::Pow => (u.powf(v), ULPS),
            };
            Want { value, tol: tol * value.abs() + TINY }
        })
        .collect();
    let mut y = vec![f32::NAN; len];
    float::binary(f, FIn::new(&a, shape(&c.a)), FIn::new(&b, shape(&c.b)), FOut::new(&mut y, shape(&c.y)));
    let case = || format!("float binary {f:?}: a {:?}, b {:?}, y {:?}", c.a, c.b, c.y);
    check(&case, &y, &want, &c.y)
}

#[test]
fn float_binary_matches_f64() {
    for f in Binary::ALL {
        run(&format!("float binary {f:?}"), 256, broadcast(), |c| run_binary(c, f));
    }
}

/// Each unary function's reference and tolerance for input `x` and
/// parameters `a`, `b`.
fn unary_reference(f: Unary, x: f64, a: f64, b: f64) -> Want {
    let (value, tol) = match f {
        Unary::Clamp => (x.clamp(a, b), 0.0),
        Unary::Sigmoid => {
            let v = 1.0 / (1.0 + (-x).exp());
            (v, ULPS * v)
        }
        Unary::Tanh => (x.tanh(), ULPS * x.tanh().abs()),
        // `x + 3` cancels near -3.
        Unary::HardSwish => {
            let v = x * (x + 3.0).clamp(0.0, 6.0) / 6.0;
            (v, ULPS * (v.abs() + x.abs()))
        }
        Unary::HardSigmoid => ((a * x + b).clamp(0.0, 1.0), ULPS * ((a * x).abs() + b.abs())),
        Unary::Abs => (x.abs(), 0.0),
        Unary::Neg => (-x, 0.0),
        Unary::Exp => (x.exp(), ULPS * x.exp()),
        Unary::Log => (x.ln(), ULPS * x.ln().abs() + ULP),
        Unary::Sqrt => (x.sqrt(), ULP * x.sqrt()),
        Unary::Erf => (erf(x), ULPS * erf(x).abs() + ULP * 0.1),
        // `1 + erf(x / √2)` cancels for negative x.
        Unary::Gelu => {
            let v = x * (1.0 + erf(x / core::f64::consts::SQRT_2)) / 2.0;
            (v, ULPS * (v.abs() + x.abs()))
        }
        Unary::Reciprocal => (1.0 / x, ULP * (1.0 / x).abs()),
        Unary::Pow => {
            let v = x.powf(a);
            (v, ULPS * v.abs())
        }
    };
    Want { value, tol: tol + TINY }
}

/// Inputs in the domain of `f`, and its parameters.
fn unary_inputs(rng: &mut Rng, f: Unary, n: usize) -> (Vec<f32>, f32, f32) {
    let spread = |rng: &mut Rng, lo: f64, hi: f64| -> Vec<f32> {
        (0..n).map(|_| 10f64.powf(rng.uniform(lo, hi)) as f32).collect()
    };
    let signed = |rng: &mut Rng, v: Vec<f32>| -> Vec<f32> {
        v.into_iter().map(|v| if rng.below(2) == 0 { v } else { -v }).collect()
    };
    match f {
        Unary::Clamp => {
            let (a, b) = (rng.uniform(-3.0, 0.0) as f32, rng.uniform(0.0, 3.0) as f32);
            (uniform(rng, n, -5.0, 5.0), a, b)
        }
        Unary::HardSigmoid => {
            let (a, b) = (rng.uniform(0.1, 0.5) as f32, rng.uniform(0.2, 0.8) as f32);
            (uniform(rng, n, -10.0, 10.0), a, b)
        }
        Unary::Sigmoid => (uniform(rng, n, -30.0, 30.0), 0.0, 0.0),
        Unary::Exp => (uniform(rng, n, -80.0, 80.0), 0.0, 0.0),
        Unary::HardSwish => (uniform(rng, n, -6.0, 6.0), 0.0, 0.0),
        Unary::Gelu => (uniform(rng, n, -8.0, 8.0), 0.0, 0.0),
        Unary::Erf => (uniform(rng, n, -5.0, 5.0), 0.0, 0.0),
        // Magnitudes over six decades: small arguments matter here.
        Unary::Tanh => {
            let v = spread(rng, -4.0, 1.0);
            (signed(rng, v), 0.0, 0.0)
        }
        Unary::Log | Unary::Sqrt => (spread(rng, -3.0, 3.0), 0.0, 0.0),
        Unary::Reciprocal => {
            let v = spread(rng, -3.0, 3.0);
            (signed(rng, v), 0.0, 0.0)
        }
        Unary::Abs | Unary::Neg => (uniform(rng, n, -10.0, 10.0), 0.0, 0.0),
        // LayerNorm squares; other exponents need a positive base.
        Unary::Pow => {
            let e = [2.0, 0.5, 3.0, -1.0][rng.below(4)];
            (spread(rng, -3.0, 3.0), e, 0.0)
        }
    }
}

#[test]
fn float_unary_matches_f64() {
    for f in Unary::ALL {
        run(&format!("float unary {f:?}"), 128, (1..=256usize, any::<u64>()), |&(n, seed)| {
            let mut rng = Rng(seed);
            let (x, a, b) = unary_inputs(&mut rng, f, n);
            let want: Vec<Want> =
                x.iter().map(|&v| unary_reference(f, f64::from(v), f64::from(a), f64::from(b))).collect();
            let mut y = vec![f32::NAN; n];
            float::unary(f, a, b, &x, &mut y);
            let case = || format!("float unary {f:?} ({a}, {b}) of {n} values");
            check(&case, &y, &want, &[n])
        });
    }
}

/// A random tensor shape of rank 1 to 4, the last dimension up to `last`.
fn dims(last: usize) -> impl Strategy<Value = Vec<usize>> {
    (proptest::collection::vec(1..=4usize, 0..=3), 1..=last).prop_map(|(mut d, l)| {
        d.push(l);
        d
    })
}

#[test]
fn float_softmax_matches_f64() {
    run("float softmax", 512, (dims(64), -20.0..20.0f64, any::<u64>()), |(d, offset, seed)| {
        let mut rng = Rng(*seed);
        let x = uniform(&mut rng, d.iter().product(), offset - 10.0, offset + 10.0);
        let len = *d.last().unwrap();
        // y = exp(x - max) / Σ exp(x - max) over each row.
        let mut want = Vec::new();
        for row in x.chunks(len) {
            let m = row.iter().map(|&v| f64::from(v)).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            want.extend(e.iter().map(|&e| Want { value: e / sum, tol: SUM * e / sum + TINY }));
        }
        let mut y = vec![f32::NAN; x.len()];
        float::softmax(FIn::new(&x, shape(d)), FOut::new(&mut y, shape(d)));
        check(&|| format!("float softmax of {d:?}"), &y, &want, d)
    });
}

#[test]
fn float_reduce_matches_f64() {
    for max in [false, true] {
        let name = if max { "float reduce max" } else { "float reduce mean" };
        run(name, 512, (dims(100), any::<u64>()), |(d, seed)| {
            let mut rng = Rng(*seed);
            let x = uniform(&mut rng, d.iter().product(), -10.0, 10.0);
            let len = *d.last().unwrap();
            let want: Vec<Want> = x
                .chunks(len)
                .map(|row| {
                    let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
                    if max {
                        Want { value: row.iter().copied().fold(f64::NEG_INFINITY, f64::max), tol: 0.0 }
                    } else {
                        let n = len as f64;
                        let magnitude = row.iter().map(|v| v.abs()).sum::<f64>() / n;
                        Want { value: row.iter().sum::<f64>() / n, tol: SUM * magnitude + SUM_ABS }
                    }
                })
                .collect();
            let mut y_dims = d.clone();
            *y_dims.last_mut().unwrap() = 1;
            let mut y = vec![f32::NAN; want.len()];
            float::reduce(max, FIn::new(&x, shape(d)), FOut::new(&mut y, shape(&y_dims)));
            check(&|| format!("{name} of {d:?}"), &y, &want, &y_dims)
        });
    }
}

#[test]
fn float_matmul_matches_f64() {
    let case = (proptest::collection::vec(1..=3usize, 0..=2), 1..=12usize, 1..=12usize, 1..=12usize, any::<u64>());
    run("float matmul", 512, case, |(lead, m, k, n, seed)| {
        let (m, k, n) = (*m, *k, *n);
        let mut rng = Rng(*seed);
        let batches: usize = lead.iter().product();
        let a = uniform(&mut rng, batches * m * k, -2.0, 2.0);
        let b = uniform(&mut rng, batches * k * n, -2.0, 2.0);
        // y[.., i, j] = Σ_t a[.., i, t] * b[.., t, j], batch by batch.
        let mut want = Vec::new();
        for batch in 0..batches {
            for i in 0..m {
                for j in 0..n {
                    let terms =
                        (0..k).map(|t| f64::from(a[(batch * m + i) * k + t]) * f64::from(b[(batch * k + t) * n + j]));
                    let (sum, magnitude) = terms.fold((0.0, 0.0), |(s, g), t| (s + t, g + t.abs()));
                    want.push(Want { value: sum, tol: SUM * magnitude + SUM_ABS });
                }
            }
        }
        let with = |tail: [usize; 2]| -> Vec<usize> { lead.iter().copied().chain(tail).collect() };
        let (ad, bd, yd) = (with([m, k]), with([k, n]), with([m, n]));
        let mut y = vec![f32::NAN; want.len()];
        float::matmul(FIn::new(&a, shape(&ad)), FIn::new(&b, shape(&bd)), FOut::new(&mut y, shape(&yd)));
        check(&|| format!("float matmul {ad:?} times {bd:?}"), &y, &want, &yd)
    });
}
