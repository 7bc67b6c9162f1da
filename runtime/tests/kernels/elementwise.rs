//! Elementwise kernels: add, mul, max and min with broadcasting, prelu, lut, clamp,
//! requantize, quantize_f32 and dequantize.

use kiln_runtime::kernels::{scalar, QIn, QOut};
use kiln_runtime::quant::lut;
use kiln_runtime::Quant;
use proptest::prelude::*;

use crate::reference::{
    activation, calibrate, calibrate_act, check, check_act, quant, real, reals, run, shape, unravel, Activation, Rng,
    Stats,
};

/// A random activation quantization with real values up to about `range`.
fn random_quant(rng: &mut Rng, range: f64) -> Quant {
    quant(rng.uniform(0.1, 1.0) * range / 128.0, rng.int(-64, 64))
}

#[derive(Clone, Debug)]
struct Broadcast {
    /// Output dimensions.
    y: Vec<usize>,
    /// Input dimensions: a suffix of the output's, some of them 1.
    a: Vec<usize>,
    b: Vec<usize>,
    act: Activation,
    stretch: f64,
    seed: u64,
}

/// An output shape and two inputs that broadcast to it: each may have a
/// lower rank, and along each dimension either both inputs span it or one
/// of them repeats (size 1), so that the output still varies along it.
fn broadcast() -> impl Strategy<Value = Broadcast> {
    (
        proptest::collection::vec((1..=5usize, 0..3u8), 1..=4),
        (0..=3usize, 0..=3usize),
        (activation(), 0.9..1.2f64, any::<u64>()),
    )
        .prop_map(|(y, (drop_a, drop_b), (act, stretch, seed))| {
            // The input `which` (1 for a, 2 for b) without its first `drop`
            // dimensions; the other input spans those (ONNX's output shape
            // is the broadcast of its inputs' shapes).
            let input = |drop: usize, other_drop: usize, which: u8| -> Vec<usize> {
                let drop = drop.min(y.len() - 1);
                let dims =
                    y.iter().enumerate().map(|(i, &(d, ones))| if ones == which && i >= other_drop { 1 } else { d });
                dims.skip(drop).collect()
            };
            let drop_b = if drop_a > 0 { 0 } else { drop_b };
            let (a, b) = (input(drop_a, drop_b, 1), input(drop_b, drop_a, 2));
            Broadcast { a, b, y: y.iter().map(|&(d, _)| d).collect(), act, stretch, seed }
        })
}

/// The element of an input of dimensions `dims` that output index `idx`
/// reads under NumPy broadcasting: dimensions aligned at the end, a
/// dimension of 1 repeating.
fn broadcast_index(idx: &[usize], dims: &[usize]) -> usize {
    let skip = idx.len() - dims.len();
    dims.iter().zip(&idx[skip..]).fold(0, |at, (&d, &i)| at * d + if d == 1 { 0 } else { i })
}

/// The binary kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Binary {
    Add,
    Mul,
    Max,
    Min,
}

/// `op` of two broadcast inputs.
fn run_binary(c: &Broadcast, op: Binary) -> Result<Stats, TestCaseError> {
    let mut rng = Rng(c.seed);
    // Sums and products mostly within a few units, so that a Relu6 matters.
    let range = if op == Binary::Mul { 3.0 } else { 10.0 };
    let (aq, bq) = (random_quant(&mut rng, range), random_quant(&mut rng, range));
    let a = rng.i8s(c.a.iter().product());
    let b = rng.i8s(c.b.iter().product());
    let (ar, br) = (reals(&a, aq), reals(&b, bq));
    let len: usize = c.y.iter().product();
    let want: Vec<f64> = (0..len)
        .map(|i| {
            let idx = unravel(i, &c.y);
            let (u, v) = (ar[broadcast_index(&idx, &c.a)], br[broadcast_index(&idx, &c.b)]);
            match op {
                Binary::Add => u + v,
                Binary::Mul => u * v,
                Binary::Max => u.max(v),
                Binary::Min => u.min(v),
            }
        })
        .collect();
    let yq = calibrate_act(&want, c.act, c.stretch);
    let act = c.act.clamp(yq);
    let mut y = vec![0i8; len];
    let (a_in, b_in) =
        (QIn { data: &a, shape: shape(&c.a), quant: aq }, QIn { data: &b, shape: shape(&c.b), quant: bq });
    let y_out = QOut { data: &mut y, shape: shape(&c.y), quant: yq };
    let kernel = match op {
        Binary::Add => scalar::add,
        Binary::Mul => scalar::mul,
        Binary::Max => scalar::max,
        Binary::Min => scalar::min,
    };
    kernel(a_in, b_in, act, y_out);
    let case = || format!("{op:?}: a {:?} {aq:?}, b {:?} {bq:?}, y {:?}", c.a, c.b, c.y);
    check_act(&case, &y, &want, &c.y, yq, c.act)
}

#[test]
fn add_matches_f64() {
    run("add", 1024, 0.05, broadcast(), |c| run_binary(c, Binary::Add));
}

#[test]
fn mul_matches_f64() {
    run("mul", 1024, 0.05, broadcast(), |c| run_binary(c, Binary::Mul));
}

#[test]
fn max_and_min_match_f64() {
    // The extremes of two inputs crowd at the ends of the output's range
    // more than sums do, so a calibration that clips clips more of them.
    run("max", 1024, 0.1, broadcast(), |c| run_binary(c, Binary::Max));
    run("min", 1024, 0.1, broadcast(), |c| run_binary(c, Binary::Min));
}

/// A random tensor shape of rank 1 to 4.
fn dims(max: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1..=max, 1..=4)
}

#[test]
fn prelu_matches_f64() {
    run("prelu", 1024, 0.05, (dims(6), 0.9..1.2f64, any::<u64>()), |(d, stretch, seed)| {
        let mut rng = Rng(*seed);
        let xq = random_quant(&mut rng, 20.0);
        let channels = *d.last().unwrap();
        let alpha: Vec<f32> = (0..channels).map(|_| rng.uniform(-0.5, 1.5) as f32).collect();
        let x = rng.i8s(d.iter().product());
        // PRelu: y = x where x >= 0, alpha[c] * x elsewhere, c the last index.
        let want: Vec<f64> = reals(&x, xq)
            .iter()
            .enumerate()
            .map(|(i, &v)| if v < 0.0 { f64::from(alpha[i % channels]) * v } else { v })
            .collect();
        let yq = calibrate(&want, *stretch);
        let mut y = vec![0i8; x.len()];
        scalar::prelu(
            QIn { data: &x, shape: shape(d), quant: xq },
            &alpha,
            QOut { data: &mut y, shape: shape(d), quant: yq },
        );
        check(&|| format!("prelu: x {d:?} {xq:?}, alpha {alpha:?}"), &y, &want, d, yq)
    });
}

/// The functions built as lookup tables, from their definitions (ONNX
/// HardSigmoid with its default alpha 0.2 and beta 0.5).
#[derive(Clone, Copy, Debug)]
enum Function {
    Sigmoid,
    Tanh,
    HardSwish,
    HardSigmoid,
}

impl Function {
    fn eval(self, x: f64) -> f64 {
        match self {
            Function::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Function::Tanh => x.tanh(),
            Function::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Function::HardSigmoid => (0.2 * x + 0.5).clamp(0.0, 1.0),
        }
    }

    /// The output quantization TFLite fixes for the function, if it does.
    fn fixed_quant(self) -> Option<Quant> {
        match self {
            Function::Sigmoid | Function::HardSigmoid => Some(quant(1.0 / 256.0, -128)),
            Function::Tanh => Some(quant(1.0 / 128.0, 0)),
            Function::HardSwish => None,
        }
    }
}

#[test]
fn lut_matches_f64() {
    let function = prop_oneof![
        Just(Function::Sigmoid),
        Just(Function::Tanh),
        Just(Function::HardSwish),
        Just(Function::HardSigmoid)
    ];
    run("lut", 1024, 0.1, (function, any::<bool>(), 1..=300usize, any::<u64>()), |&(f, fixed, len, seed)| {
        let mut rng = Rng(seed);
        let xq = quant(rng.uniform(0.01, 0.06), rng.int(-64, 64));
        // Calibrated on the function over the whole input range, or fixed.
        let all: Vec<f64> = (-128..=127).map(|q| f.eval(real(q as i8, xq))).collect();
        let yq = f.fixed_quant().filter(|_| fixed).unwrap_or_else(|| calibrate(&all, 1.0));
        let table = lut(|v| f.eval(v), xq, yq);
        let x = rng.i8s(len);
        let want: Vec<f64> = reals(&x, xq).iter().map(|&v| f.eval(v)).collect();
        let mut y = vec![0i8; len];
        scalar::lut(&x, &table, &mut y);
        check(&|| format!("lut of {f:?}: x {xq:?}"), &y, &want, &[len], yq)
    });
}

#[test]
fn clamp_matches_f64() {
    let act = prop_oneof![
        Just(Activation::Relu),
        Just(Activation::Relu6),
        (0.0..0.4f64, 0.6..1.0f64).prop_map(|(a, b)| Activation::Clip(a, b))
    ];
    run("clamp", 512, 0.05, (dims(6), act, any::<u64>()), |(d, act, seed)| {
        let mut rng = Rng(*seed);
        let q = quant(rng.uniform(0.01, 0.1), rng.int(-100, 100));
        let x = rng.i8s(d.iter().product());
        let mut y = vec![0i8; x.len()];
        scalar::clamp(&x, act.clamp(q), &mut y);
        // Clip to the activation's real range: `check_act` clamps the
        // quantized reference to it.
        check_act(&|| format!("clamp: x {d:?} {q:?}, {act:?}"), &y, &reals(&x, q), d, q, *act)
    });
}

#[test]
fn requantize_matches_f64() {
    run("requantize", 1024, 0.05, (dims(6), 0.8..2.0f64, any::<u64>()), |(d, stretch, seed)| {
        let mut rng = Rng(*seed);
        let xq = random_quant(&mut rng, 20.0);
        let x = rng.i8s(d.iter().product());
        let want = reals(&x, xq);
        let yq = calibrate(&want, *stretch);
        let mut y = vec![0i8; x.len()];
        scalar::requantize(
            QIn { data: &x, shape: shape(d), quant: xq },
            QOut { data: &mut y, shape: shape(d), quant: yq },
        );
        check(&|| format!("requantize: x {d:?} {xq:?}"), &y, &want, d, yq)
    });
}

#[test]
fn quantize_f32_matches_f64() {
    run("quantize_f32", 1024, 0.1, (dims(6), any::<u64>()), |(d, seed)| {
        let mut rng = Rng(*seed);
        let yq = quant(rng.uniform(0.001, 1.0), rng.int(-128, 127));
        let s = f64::from(yq.scale);
        // Real values over the int8 range and a little beyond, a quarter of
        // them exactly half way between two steps.
        let x: Vec<f32> = (0..d.iter().product::<usize>())
            .map(|_| {
                let steps =
                    if rng.below(4) == 0 { f64::from(rng.int(-136, 135)) + 0.5 } else { rng.uniform(-136.0, 136.0) };
                ((steps - f64::from(yq.zero_point)) * s) as f32
            })
            .collect();
        let want: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let mut y = vec![0i8; x.len()];
        scalar::quantize_f32(&x, QOut { data: &mut y, shape: shape(d), quant: yq });
        check(&|| format!("quantize_f32: {d:?} to {yq:?}"), &y, &want, d, yq)
    });
}

#[test]
fn dequantize_is_exact() {
    run("dequantize", 512, 0.0, (dims(8), any::<u64>()), |(d, seed)| {
        let mut rng = Rng(*seed);
        let xq = quant(rng.uniform(1e-4, 10.0), rng.int(-128, 127));
        let x = rng.i8s(d.iter().product());
        let mut y = vec![0f32; x.len()];
        scalar::dequantize(QIn { data: &x, shape: shape(d), quant: xq }, &mut y);
        // One f32 rounding of an exact f64 product: the result is exact.
        for (i, (&q, &got)) in x.iter().zip(&y).enumerate() {
            let want = real(q, xq) as f32;
            prop_assert_eq!(got.to_bits(), want.to_bits(), "dequantize: {:?} {:?}: element {} ({})", d, xq, i, q);
        }
        Ok(Stats { cases: 1, outputs: x.len(), large: 1, varied: 1, ..Stats::default() })
    });
}
