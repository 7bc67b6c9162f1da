//! The f64 side of the kernel tests: real values of int8 tensors,
//! quantization with round-half-even and clamping, calibration of output
//! scales, index arithmetic, random data, and the comparison that reports an
//! offending element with its case.
//!
//! Nothing here uses the kernels' helpers (`kiln_runtime::quant`), so that a
//! mistake in them cannot hide in the reference too.

use kiln_runtime::ops::Act;
use kiln_runtime::{Quant, Shape};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRng, TestRunner};

/// A deterministic pseudo-random sequence (SplitMix64) that fills tensors;
/// proptest draws its seed along with the shapes and parameters.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn int(&mut self, lo: i32, hi: i32) -> i32 {
        lo + self.below((hi - lo + 1) as usize) as i32
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` int8 values, uniform over the whole range.
    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.next_u64() as i8).collect()
    }

    /// `n` int8 values, uniform in `lo..=hi`.
    pub fn i8s_in(&mut self, n: usize, lo: i32, hi: i32) -> Vec<i8> {
        (0..n).map(|_| self.int(lo, hi) as i8).collect()
    }
}

/// A quantization from an f64 scale (rounded to f32, as a file stores it).
pub fn quant(scale: f64, zero_point: i32) -> Quant {
    Quant { scale: scale as f32, zero_point }
}

/// The real value of `q`: `(q - zero_point) * scale`, exact in f64.
pub fn real(q: i8, quant: Quant) -> f64 {
    (f64::from(q) - f64::from(quant.zero_point)) * f64::from(quant.scale)
}

/// Real values of a whole tensor.
pub fn reals(data: &[i8], quant: Quant) -> Vec<f64> {
    data.iter().map(|&q| real(q, quant)).collect()
}

/// `v` in output steps, rounded half to even, plus the zero point, before
/// any clamping (saturated to ±1e6 so that it stays an integer).
pub fn steps(v: f64, quant: Quant) -> i64 {
    let s = (v / f64::from(quant.scale)).round_ties_even().clamp(-1e6, 1e6);
    s as i64 + i64::from(quant.zero_point)
}

/// The int8 that `v` quantizes to with `quant`, clamped to the activation.
pub fn quantize(v: f64, quant: Quant, act: Act) -> i32 {
    steps(v, quant).clamp(i64::from(act.min), i64::from(act.max)) as i32
}

/// The output quantization a converter would calibrate for real values
/// `values`: their range, widened to hold 0, spread over the 256 steps and
/// widened by `stretch` around its middle (below 1 the extremes saturate).
pub fn calibrate(values: &[f64], stretch: f64) -> Quant {
    let lo = values.iter().copied().fold(0.0, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let scale = ((hi - lo).max(1e-3) / 255.0 * stretch) as f32;
    let zero_point = (-0.5 - (lo + hi) / 2.0 / f64::from(scale)).round_ties_even().clamp(-128.0, 127.0) as i32;
    Quant { scale, zero_point }
}

/// The output quantization for real values `values` followed by the fused
/// activation `act`, calibrated on the activated values; a Relu6 whose
/// range already ends at 6 is not stretched below it.
pub fn calibrate_act(values: &[f64], act: Activation, stretch: f64) -> Quant {
    let stretch = if matches!(act, Activation::Relu6) { stretch.max(1.0) } else { stretch };
    calibrate(&values.iter().map(|&v| act.apply(v)).collect::<Vec<_>>(), stretch)
}

/// A fused activation, chosen in real terms as a converter sees it.
#[derive(Clone, Copy, Debug)]
pub enum Activation {
    None,
    Relu,
    Relu6,
    /// A Clip to the real range `[lo, hi]`, as fractions of the way through
    /// the output's int8 range.
    Clip(f64, f64),
}

impl Activation {
    /// The activation applied to a real value, for calibration.
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Activation::None | Activation::Clip(..) => v,
            Activation::Relu => v.max(0.0),
            Activation::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    /// The clamp in output units for output quantization `q`.
    pub fn clamp(self, q: Quant) -> Act {
        let zero = q.zero_point.clamp(-128, 127);
        match self {
            Activation::None => Act::NONE,
            Activation::Relu => Act { min: zero, max: 127 },
            Activation::Relu6 => {
                let six = (6.0 / f64::from(q.scale)).round_ties_even().min(255.0) as i32;
                Act { min: zero, max: (zero + six).min(127) }
            }
            Activation::Clip(a, b) => {
                let at = |f: f64| -128 + (255.0 * f) as i32;
                Act { min: at(a.min(b)), max: at(a.max(b)) }
            }
        }
    }
}

/// Proptest strategy for an activation.
pub fn activation() -> impl proptest::strategy::Strategy<Value = Activation> {
    use proptest::prelude::*;
    prop_oneof![
        2 => Just(Activation::None),
        1 => Just(Activation::Relu),
        1 => Just(Activation::Relu6),
        1 => (0.0..0.4f64, 0.6..1.0f64).prop_map(|(a, b)| Activation::Clip(a, b)),
    ]
}

/// A shape from its dimensions.
pub fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims).expect("rank at most 4")
}

/// The multi-index of flat index `i` in `dims`.
pub fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for k in (0..dims.len()).rev() {
        idx[k] = i % dims[k];
        i /= dims[k];
    }
    idx
}

/// The flat index of multi-index `idx` in `dims`.
pub fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// What a case says about how meaningful the test is.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Cases run.
    pub cases: usize,
    /// Output elements compared.
    pub outputs: usize,
    /// Outputs whose reference (after the fused activation, in real terms)
    /// quantizes outside int8.
    pub saturated: usize,
    /// Cases with at least [`VARIED_MIN_LEN`] outputs.
    pub large: usize,
    /// Of those, cases whose output takes at least 3 distinct values.
    pub varied: usize,
    /// Outputs 1 LSB away from the reference.
    pub off_by_one: usize,
}

/// Outputs from which a case must show variety to count as varied.
pub const VARIED_MIN_LEN: usize = 8;

impl Stats {
    fn add(&mut self, o: Stats) {
        self.cases += o.cases;
        self.outputs += o.outputs;
        self.saturated += o.saturated;
        self.large += o.large;
        self.varied += o.varied;
        self.off_by_one += o.off_by_one;
    }
}

/// Runs `cases` cases of `strategy` through `test`, shrinks and panics with
/// the minimal failing case if one fails, then asserts that the cases were
/// meaningful: at most `max_saturated` of all outputs saturate, at least a
/// quarter of the cases have [`VARIED_MIN_LEN`] outputs or more, and 80% of
/// those take 3 distinct values or more (a Relu may zero a whole small
/// case). Prints the statistics (seen with `--nocapture`).
pub fn run<S: Strategy>(
    name: &str,
    cases: u32,
    max_saturated: f64,
    strategy: S,
    test: impl Fn(&S::Value) -> Result<Stats, TestCaseError>,
) where
    S::Value: core::fmt::Debug,
{
    let total = core::cell::RefCell::new(Stats::default());
    // A fixed seed: the statistics asserted below (saturation, variety) hold
    // over the whole sample, and a random sample failed them now and then.
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&strategy, |v| {
        let stats = test(&v)?;
        total.borrow_mut().add(stats);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let t = total.into_inner();
    println!(
        "{name}: {} cases, {} outputs ({} off by 1 LSB), {:.2}% saturated, {} of {} cases with {VARIED_MIN_LEN}+ outputs varied",
        t.cases,
        t.outputs,
        t.off_by_one,
        100.0 * t.saturated as f64 / t.outputs as f64,
        t.varied,
        t.large
    );
    assert!(t.saturated as f64 <= max_saturated * t.outputs as f64, "{name}: too many saturated outputs: {t:?}");
    assert!(4 * t.large >= t.cases, "{name}: too few cases with {VARIED_MIN_LEN}+ outputs: {t:?}");
    assert!(5 * t.varied >= 4 * t.large, "{name}: too many cases with fewer than 3 distinct outputs: {t:?}");
}

/// Checks a kernel's output `got` (shape `dims`, quantization `q`, no fused
/// activation) against the real reference values `want`: see [`check_act`].
pub fn check(
    case: &dyn Fn() -> String,
    got: &[i8],
    want: &[f64],
    dims: &[usize],
    q: Quant,
) -> Result<Stats, TestCaseError> {
    check_act(case, got, want, dims, q, Activation::None)
}

/// Checks a kernel's output `got` (shape `dims`, quantization `q`, fused
/// activation `activation`, which clamps to `activation.clamp(q)`) against
/// the real reference values `want` (before the activation): every element
/// within 1 LSB of the quantized and clamped reference. `case` describes the
/// case for the failure message. Returns the case's statistics.
pub fn check_act(
    case: &dyn Fn() -> String,
    got: &[i8],
    want: &[f64],
    dims: &[usize],
    q: Quant,
    activation: Activation,
) -> Result<Stats, TestCaseError> {
    let candidates: Vec<Vec<f64>> = want.iter().map(|&w| vec![w]).collect();
    check_either(case, got, &candidates, dims, q, activation)
}

/// As [`check`], for kernels that only move or select values: every
/// element must equal the quantized reference exactly.
pub fn check_exact(
    case: &dyn Fn() -> String,
    got: &[i8],
    want: &[f64],
    dims: &[usize],
    q: Quant,
) -> Result<Stats, TestCaseError> {
    let stats = check(case, got, want, dims, q)?;
    if let Some(i) = (0..got.len()).find(|&i| i32::from(got[i]) != quantize(want[i], q, Act::NONE)) {
        return Err(TestCaseError::fail(format!(
            "{}\noutput {i} at index {:?} of {dims:?}: got {}, exactly {} expected (real {})",
            case(),
            unravel(i, dims),
            got[i],
            quantize(want[i], q, Act::NONE),
            want[i]
        )));
    }
    Ok(stats)
}

/// As [`check_act`], with one or more acceptable reference values per
/// element, the first the reference's own (several where the definition is
/// ambiguous within f32 precision, such as a nearest-neighbour source
/// coordinate a hair from a rounding boundary).
pub fn check_either(
    case: &dyn Fn() -> String,
    got: &[i8],
    want: &[Vec<f64>],
    dims: &[usize],
    q: Quant,
    activation: Activation,
) -> Result<Stats, TestCaseError> {
    let act = activation.clamp(q);
    if got.len() != want.len() {
        return Err(TestCaseError::fail(format!("{}\n{} outputs, {} expected", case(), got.len(), want.len())));
    }
    let mut off_by_one = 0;
    for (i, (&g, candidates)) in got.iter().zip(want).enumerate() {
        let off = candidates.iter().map(|&c| (i32::from(g) - quantize(c, q, act)).abs()).min().unwrap_or(0);
        off_by_one += usize::from(off == 1);
        if off > 1 {
            let (a, qa) = (candidates[0], quantize(candidates[0], q, act));
            let alt: String =
                candidates[1..].iter().map(|&c| format!(" or {} (real {c:.6})", quantize(c, q, act))).collect();
            return Err(TestCaseError::fail(format!(
                "{}\noutput {} at index {:?} of {:?}: got {g}, reference {qa} (real {a:.6}, got is {:+.4} steps off){alt}; \
                 output quantization {:?}, activation {:?}",
                case(),
                i,
                unravel(i, dims),
                dims,
                f64::from(i32::from(g) - q.zero_point) - a / f64::from(q.scale),
                q,
                act
            )));
        }
    }
    let mut seen = [false; 256];
    got.iter().for_each(|&g| seen[(i32::from(g) + 128) as usize] = true);
    let large = got.len() >= VARIED_MIN_LEN;
    Ok(Stats {
        cases: 1,
        outputs: got.len(),
        saturated: want.iter().filter(|c| !(-128..=127).contains(&steps(activation.apply(c[0]), q))).count(),
        large: usize::from(large),
        varied: usize::from(large && seen.iter().filter(|&&s| s).count() >= 3),
        off_by_one,
    })
}
