//! Per-kernel benchmarks on SFace's shapes, at every kernel level this CPU
//! supports: 1x1 convolutions (the GEMM behind 94% of SFace's
//! multiply-accumulates), depthwise 3x3 at stride 1 and 2, and Add. Each
//! case is a one-operator model run by a `Session`, as in a real model.
//! Float islands' convolutions run on some of the same shapes.
//! Besides, PP-OCRv4's 2x2 stride-2 ConvTranspose upsampling as kiln runs
//! it (ZeroInsert, then a 2x2 convolution padded by 1), against a direct
//! scalar transposed convolution written here for the comparison.
//!
//! Besides criterion's timings, prints GMAC/s (best of a few runs) and, for
//! the GEMM, the share of the `vpdpbusd` peak, measured here by a loop of
//! independent `vpdpbusd` chains on zmm (64 multiply-accumulates each).
//! `KILN_BENCH=dwconv cargo bench --bench kernels` runs the matching cases.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_runtime::format::{AlignedBytes, ModelWriter, TensorId};
use kiln_runtime::kernels::Requant;
use kiln_runtime::ops::{Act, Bounds, Conv2d, FloatConv2d};
use kiln_runtime::{DType, Isa, Model, OpKind, Quant, Session, SessionOptions};

/// A deterministic byte pattern.
fn bytes(n: usize, seed: u64) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as i8
        })
        .collect()
}

/// A one-convolution model: input [1, h, w, c], `o` outputs, a `k`x`k`
/// window with padding `k / 2`, `groups` groups.
fn conv_model(h: usize, w: usize, c: usize, o: usize, k: usize, stride: usize, groups: usize) -> (Vec<u8>, u64) {
    let mut m = ModelWriter::new();
    let q = |zero_point| Quant { scale: 0.05, zero_point };
    let x = m.activation("x", DType::I8, &[1, h, w, c], q(-3));
    let cg = c / groups;
    let wt = m.conv_weights("w", [o, k, k, cg], groups, 0.01, &bytes(o * k * k * cg, 1));
    let b = m.constant_i32("b", &vec![100; o]);
    let mult = m.constant_f32("m", &vec![1.0 / (64.0 * (k * k * cg) as f32).sqrt(); o]);
    let pad = k / 2;
    let (oh, ow) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
    let y = m.activation("y", DType::I8, &[1, oh, ow, o], q(5));
    let p = Conv2d { stride: [stride; 2], dilation: [1, 1], pad: [pad; 4], groups, act: Act::NONE };
    m.op(OpKind::Conv2d, &[x, wt, b, mult], &[y], &p.words());
    m.inputs(&[x]);
    m.outputs(&[y]);
    (m.finish().unwrap(), (oh * ow * o * k * k * cg) as u64)
}

/// [`conv_model`] in float: f32 input and output, f16 weights laid out
/// `[k, k, c / groups, o]`, as a float island runs a layer.
fn float_conv_model(h: usize, w: usize, c: usize, o: usize, k: usize, groups: usize) -> (Vec<u8>, u64) {
    let mut m = ModelWriter::new();
    let f = Quant::IDENTITY;
    let x = m.activation("x", DType::F32, &[1, h, w, c], f);
    let cg = c / groups;
    let weights: Vec<f32> = bytes(o * k * k * cg, 1).iter().map(|&v| f32::from(v) / 1024.0).collect();
    let wt = m.float_constant("w", DType::F16, &[k, k, cg, o], &weights);
    let b = m.constant_f32("b", &vec![0.1; o]);
    let pad = k / 2;
    let y = m.activation("y", DType::F32, &[1, h, w, o], f);
    let conv = Conv2d { stride: [1, 1], dilation: [1, 1], pad: [pad; 4], groups, act: Act::NONE };
    let p = FloatConv2d { conv, bounds: Bounds { lo: 0.0, hi: 6.0 } };
    m.op(OpKind::FloatConv2d, &[x, wt, b, TensorId::ABSENT], &[y], &p.words());
    m.inputs(&[x]);
    m.outputs(&[y]);
    (m.finish().unwrap(), (h * w * o * k * k * cg) as u64)
}

/// Int8 constants of a 2x2 stride-2 transposed convolution from `c` to `o`
/// channels: weights `[o, 2, 2, c]`, bias, multiplier.
fn upsample_constants(c: usize, o: usize) -> (Vec<i8>, Vec<i32>, Vec<f32>) {
    (bytes(o * 4 * c, 2), vec![100; o], vec![1.0 / (64.0 * c as f32).sqrt(); o])
}

/// ConvTranspose 2x2 stride 2 as kiln converts it: [1, h, w, c] spread by
/// ZeroInsert to [1, 2h-1, 2w-1, c], then a 2x2 convolution padded by 1 to
/// [1, 2h, 2w, o]. Counts the useful multiply-accumulates, `h w 4 c o` (the
/// convolution does four times as many, three of them on inserted zeros).
fn upsample_model(h: usize, w: usize, c: usize, o: usize) -> (Vec<u8>, u64) {
    let mut m = ModelWriter::new();
    let q = |zero_point| Quant { scale: 0.05, zero_point };
    let x = m.activation("x", DType::I8, &[1, h, w, c], q(-3));
    let spread = m.activation("spread", DType::I8, &[1, 2 * h - 1, 2 * w - 1, c], q(-3));
    m.op(OpKind::ZeroInsert, &[x], &[spread], &[2, 2]);
    let (weights, bias, mult) = upsample_constants(c, o);
    let wt = m.conv_weights("w", [o, 2, 2, c], 1, 0.01, &weights);
    let (b, mult) = (m.constant_i32("b", &bias), m.constant_f32("m", &mult));
    let y = m.activation("y", DType::I8, &[1, 2 * h, 2 * w, o], q(5));
    let p = Conv2d { stride: [1, 1], dilation: [1, 1], pad: [1; 4], groups: 1, act: Act::NONE };
    m.op(OpKind::Conv2d, &[spread, wt, b, mult], &[y], &p.words());
    m.inputs(&[x]);
    m.outputs(&[y]);
    (m.finish().unwrap(), (h * w * 4 * c * o) as u64)
}

/// A direct scalar int8 transposed convolution, 2x2 at stride 2 (the
/// windows do not overlap, so every output is one tap of one input pixel):
/// `y[2i + ky, 2j + kx, oc] = requant(bias[oc] + Σ (x[i, j, ·] - zx) w[oc, ky, kx, ·])`.
/// The alternative to zero insertion that the benchmark weighs.
fn direct_upsample(
    x: &[i8],
    [h, w, c]: [usize; 3],
    zx: i32,
    weights: &[i8],
    bias: &[i32],
    rq: &Requant<'_>,
    y: &mut [i8],
) {
    let o = bias.len();
    for i in 0..h {
        for j in 0..w {
            let pixel = &x[(i * w + j) * c..][..c];
            for tap in 0..4 {
                let (ky, kx) = (tap / 2, tap % 2);
                let out = &mut y[((2 * i + ky) * 2 * w + 2 * j + kx) * o..][..o];
                for (oc, v) in out.iter_mut().enumerate() {
                    let filter = &weights[(oc * 4 + tap) * c..][..c];
                    let dot: i32 = pixel.iter().zip(filter).map(|(&a, &b)| (i32::from(a) - zx) * i32::from(b)).sum();
                    *v = rq.apply(bias[oc] + dot, oc);
                }
            }
        }
    }
}

/// Times [`direct_upsample`] on the shapes of [`upsample_model`].
fn direct_case(c: &mut Criterion, name: &str, [h, w, ch, o]: [usize; 4]) {
    if std::env::var("KILN_BENCH").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let (weights, bias, mult) = upsample_constants(ch, o);
    let rq = Requant { multiplier: &mult, negative: &mult, zero_point: 5, act: Act::NONE };
    let x = bytes(h * w * ch, 3);
    let mut y = vec![0i8; 4 * h * w * o];
    let mut run = || direct_upsample(&x, [h, w, ch], -3, &weights, &bias, &rq, &mut y);
    let best = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..20 {
                run();
            }
            t.elapsed().as_secs_f64() / 20.0
        })
        .fold(f64::INFINITY, f64::min);
    let gmacs = (h * w * 4 * ch * o) as f64 / best / 1e9;
    println!("{name:<28} {:<11} {:<28} {gmacs:7.1} GMAC/s", "direct", "direct_upsample (bench)");
    c.bench_function(&format!("{name}/direct"), |b| b.iter(&mut run));
}

fn add_model(h: usize, w: usize, c: usize) -> (Vec<u8>, u64) {
    let mut m = ModelWriter::new();
    let q = |scale, zero_point| Quant { scale, zero_point };
    let a = m.activation("a", DType::I8, &[1, h, w, c], q(0.05, 3));
    let b = m.activation("b", DType::I8, &[1, h, w, c], q(0.07, -2));
    let y = m.activation("y", DType::I8, &[1, h, w, c], q(0.1, 0));
    m.op(OpKind::Add, &[a, b], &[y], &Act::NONE.words());
    m.inputs(&[a, b]);
    m.outputs(&[y]);
    (m.finish().unwrap(), (h * w * c) as u64)
}

/// Levels to measure: every supported one.
fn levels() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|isa| isa.is_supported()).collect()
}

/// Best seconds per run over a few batches.
fn best_seconds(session: &mut Session<'_>) -> f64 {
    let runs = 20;
    (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..runs {
                session.run();
            }
            t.elapsed().as_secs_f64() / runs as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// One core's `vpdpbusd` zmm peak in G multiply-accumulates per second.
#[cfg(target_arch = "x86_64")]
fn vnni_peak() -> Option<f64> {
    use core::arch::x86_64::*;
    const CHAINS: usize = 12;
    /// # Safety
    ///
    /// The CPU supports AVX-512 F and VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn chains(iterations: u64, a: __m512i, b: __m512i) -> i32 {
        let mut acc = [_mm512_setzero_si512(); CHAINS];
        for _ in 0..iterations {
            for acc in &mut acc {
                *acc = _mm512_dpbusd_epi32(*acc, a, b);
            }
        }
        acc.iter().fold(0, |s, &v| s ^ _mm512_reduce_add_epi32(v))
    }
    if !Isa::Avx512Vnni.is_supported() {
        return None;
    }
    let iterations = 20_000_000u64;
    let ones = core::hint::black_box(0x0101_0101);
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            // SAFETY: AVX-512 VNNI support was checked above; the loop
            // touches registers only.
            let r = unsafe { chains(iterations, _mm512_set1_epi32(ones), _mm512_set1_epi32(ones)) };
            core::hint::black_box(r);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    Some((iterations * CHAINS as u64 * 64) as f64 / best / 1e9)
}

#[cfg(not(target_arch = "x86_64"))]
fn vnni_peak() -> Option<f64> {
    None
}

/// Which of [`kiln_runtime::Kernels::names`] a case measures.
const GEMM: usize = 0;
const DWCONV: usize = 1;
const ADD: usize = 2;
const FLOAT: usize = 3;

/// Runs case `name` unless `KILN_BENCH` is set to text the name lacks.
fn case(c: &mut Criterion, name: &str, (file, macs): (Vec<u8>, u64), kernel: usize, peak: Option<f64>) {
    if std::env::var("KILN_BENCH").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    let file = AlignedBytes::copy_of(&file);
    let model = Model::from_bytes(&file).unwrap();
    for isa in levels() {
        let mut session = Session::with_options(&model, SessionOptions::isa(isa)).unwrap();
        let gmacs = macs as f64 / best_seconds(&mut session) / 1e9;
        let share =
            peak.map_or(String::new(), |p| format!(" ({:.0}% of the {p:.0} G vpdpbusd peak)", 100.0 * gmacs / p));
        println!("{name:<28} {isa:<11} {:<28} {gmacs:7.1} GMAC/s{share}", session.kernels().names()[kernel]);
        c.bench_function(&format!("{name}/{isa}"), |b| b.iter(|| session.run()));
    }
}

fn kernels(c: &mut Criterion) {
    let peak = vnni_peak();
    if let Some(p) = peak {
        println!("vpdpbusd zmm peak, one core: {p:.1} G MAC/s (12 independent chains)");
    }
    // (pixels as h x w, K, N) of SFace's pointwise convolutions.
    for (hw, k, n) in
        [(56, 64, 128), (28, 128, 128), (28, 128, 256), (14, 256, 256), (14, 256, 512), (7, 512, 512), (7, 512, 128)]
    {
        case(c, &format!("conv1x1 M={} K={k} N={n}", hw * hw), conv_model(hw, hw, k, n, 1, 1, 1), GEMM, peak);
    }
    case(c, "dwconv3x3 56x56x64 s1", conv_model(56, 56, 64, 64, 3, 1, 64), DWCONV, None);
    case(c, "dwconv3x3 56x56x64 s2", conv_model(56, 56, 64, 64, 3, 2, 64), DWCONV, None);
    case(c, "conv3x3 112x112x3 -> 64 s2", conv_model(112, 112, 3, 64, 3, 2, 1), GEMM, peak);
    case(c, "conv3x3 28x28x64 -> 64", conv_model(28, 28, 64, 64, 3, 1, 1), GEMM, peak);
    // PP-OCRv4's DBNet head upsamples 2x twice with ConvTranspose 2x2
    // stride 2 (24 channels at 1/4 of a 640x640 input, and 96 channels
    // as a wider case); GMAC/s count useful multiply-accumulates.
    for (hw, ch) in [(80, 24), (160, 24), (80, 96)] {
        let name = format!("convtranspose2x2 {hw}x{hw}x{ch}");
        case(c, &name, upsample_model(hw, hw, ch, ch), GEMM, None);
        direct_case(c, &name, [hw, hw, ch, ch]);
    }
    // Float islands' convolutions (f16 weights, separate multiply and add
    // for bit-identity), on shapes of the int8 cases above.
    case(c, "float conv1x1 M=784 K=128 N=128", float_conv_model(28, 28, 128, 128, 1, 1), FLOAT, None);
    case(c, "float conv1x1 M=196 K=256 N=512", float_conv_model(14, 14, 256, 512, 1, 1), FLOAT, None);
    case(c, "float dwconv3x3 56x56x64 s1", float_conv_model(56, 56, 64, 64, 3, 64), FLOAT, None);
    // Add moves bytes: its "GMAC/s" are G elements/s.
    case(c, "add 56x56x64", add_model(56, 56, 64), ADD, None);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(core::time::Duration::from_millis(300)).measurement_time(core::time::Duration::from_secs(1));
    targets = kernels
}
criterion_main!(benches);
