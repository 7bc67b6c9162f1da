//! Every SIMD kernel equals the scalar specification bit for bit: one-operator
//! models over random shapes (every tail of the tiles: K % 4, O % 16 and
//! % 32, rows % MR), windows, strides, dilations, paddings, zero points,
//! multipliers (saturating, infinite and NaN ones included) and fused
//! activations, run at every kernel level this CPU supports. Levels the CPU
//! lacks are skipped, and say so.

mod support;

use kiln_runtime::format::{AlignedBytes, ModelWriter, TensorId, MAX_SCALE};
use kiln_runtime::ops::{Act, Bounds, Conv2d, FloatConv2d};
use kiln_runtime::{DType, Isa, Model, OpKind, Quant, Session, SessionOptions};
use support::Rng;

/// The supported levels above scalar.
fn levels() -> Vec<Isa> {
    Isa::ALL
        .into_iter()
        .filter(|&isa| isa != Isa::Scalar)
        .filter(|isa| {
            let ok = isa.is_supported();
            if !ok {
                eprintln!("skipping {isa}: this CPU does not support it");
            }
            ok
        })
        .collect()
}

/// Runs `file` on `input` at every level and compares with scalar.
fn same_at_every_level(file: &[u8], input: &[i8], what: &str) {
    let file = AlignedBytes::copy_of(file);
    let model = Model::from_bytes(&file).unwrap();
    let run = |isa| {
        let mut s = Session::with_options(&model, SessionOptions::isa(isa)).unwrap();
        s.set_input_i8(0, input).unwrap();
        s.run();
        (s.output_i8(0).unwrap().to_vec(), s.kernels().names())
    };
    let (expected, _) = run(Isa::Scalar);
    for isa in levels() {
        let (got, names) = run(isa);
        if got != expected {
            let at = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap();
            panic!("{what}: {isa} ({names:?}) differs from scalar at output {at}: {} vs {}", got[at], expected[at]);
        }
    }
}

fn q(scale: f32, zero_point: i32) -> Quant {
    Quant { scale, zero_point }
}

fn zero_point(rng: &mut Rng) -> i32 {
    [(rng.next() % 256) as i32 - 128, 0, -128, 127][rng.next() as usize % 4]
}

/// Multipliers for accumulators of `terms` products, mostly spreading the
/// outputs over int8; now and then saturating or the largest finite f32
/// (files hold finite multipliers only; products can still be infinite).
fn multipliers(rng: &mut Rng, n: usize, terms: usize) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.next() % 40 {
            0 => f32::MAX,
            1 => -f32::MAX,
            2 => 1e30,
            3 => 0.0,
            _ => rng.f32_in(0.05, 4.0) / (terms as f32 * 40.0).sqrt() / 40.0,
        })
        .collect()
}

fn act(rng: &mut Rng) -> Act {
    match rng.next() % 3 {
        0 => Act::NONE,
        1 => Act { min: (rng.next() % 100) as i32 - 60, max: 127 },
        _ => Act { min: -20, max: 50 },
    }
}

/// Bias, multiplier and optional negative multiplier of `o` channels.
fn affine(w: &mut ModelWriter, rng: &mut Rng, o: usize, terms: usize) -> [TensorId; 3] {
    let bias: Vec<i32> = (0..o).map(|_| (rng.next() % 20001) as i32 - 10000).collect();
    let b = w.constant_i32("b", &bias);
    let m = w.constant_f32("m", &multipliers(rng, o, terms));
    let neg = if rng.next().is_multiple_of(2) {
        w.constant_f32("neg", &multipliers(rng, o, terms))
    } else {
        TensorId::ABSENT
    };
    [b, m, neg]
}

struct ConvCase {
    input: [usize; 4],
    out: usize,
    kernel: [usize; 2],
    p: Conv2d,
}

fn conv_model(rng: &mut Rng, case: &ConvCase) -> Option<(Vec<u8>, Vec<i8>)> {
    let [n, h, width, c] = case.input;
    let p = case.p;
    let [kh, kw] = case.kernel;
    let span = |k: usize, d: usize| (k - 1) * d + 1;
    let oh = (h + p.pad[0] + p.pad[2]).checked_sub(span(kh, p.dilation[0]))? / p.stride[0] + 1;
    let ow = (width + p.pad[1] + p.pad[3]).checked_sub(span(kw, p.dilation[1]))? / p.stride[1] + 1;
    let cg = c / p.groups;
    let mut w = ModelWriter::new();
    let x = w.activation("x", DType::I8, &case.input, q(0.1, zero_point(rng)));
    let weights = rng.i8s(case.out * kh * kw * cg);
    let wt = w.conv_weights("w", [case.out, kh, kw, cg], p.groups, 0.01, &weights);
    let [b, m, neg] = affine(&mut w, rng, case.out, kh * kw * cg);
    let y = w.activation("y", DType::I8, &[n, oh, ow, case.out], q(0.1, zero_point(rng)));
    w.op(OpKind::Conv2d, &[x, wt, b, m, neg], &[y], &p.words());
    w.inputs(&[x]);
    w.outputs(&[y]);
    Some((w.finish().unwrap(), rng.i8s(n * h * width * c)))
}

fn random_conv(rng: &mut Rng, depthwise: bool) -> ConvCase {
    let mut r = |lo: usize, hi: usize| lo + rng.next() as usize % (hi - lo + 1);
    let kernel = if r(0, 2) == 0 { [1, 1] } else { [r(1, 5), r(1, 5)] };
    let c = if depthwise { r(1, 40) } else { r(1, 24) };
    let groups = if depthwise { c } else { 1 };
    let out = if depthwise { c } else { r(1, 70) };
    let p = Conv2d {
        stride: [r(1, 3), r(1, 3)],
        dilation: [r(1, 2), r(1, 2)],
        pad: [r(0, 2), r(0, 2), r(0, 2), r(0, 2)],
        groups,
        act: Act::NONE,
    };
    ConvCase { input: [r(1, 2), r(1, 13), r(1, 13), c], out, kernel, p }
}

#[test]
fn convolutions_match_scalar() {
    let mut rng = Rng(0x5eed_c0de);
    let mut done = 0;
    while done < 300 {
        let mut case = random_conv(&mut rng, done % 3 == 0);
        case.p.act = act(&mut rng);
        let Some((file, input)) = conv_model(&mut rng, &case) else { continue };
        let what = format!("conv {:?} -> {} {:?} {:?}", case.input, case.out, case.kernel, case.p);
        same_at_every_level(&file, &input, &what);
        done += 1;
    }
}

/// Depthwise beyond `convolutions_match_scalar`'s small cases: channel
/// counts across several 16- and 32-channel blocks and every tail, 3x3
/// windows (their own unrolled loops) at strides 1 and 2, padding wider
/// than the window (pixels that see no input), and windows of more than 64
/// positions (weights interleaved per pixel).
#[test]
fn depthwise_convolutions_match_scalar() {
    let mut rng = Rng(0xd3a7);
    let mut done = 0;
    while done < 150 {
        let mut r = |lo: usize, hi: usize| lo + rng.next() as usize % (hi - lo + 1);
        let c = if done % 5 == 0 { r(60, 100) } else { r(1, 70) };
        let kernel = match done % 4 {
            0 | 1 => [3, 3],
            2 => [r(1, 7), r(1, 7)],
            _ => [r(8, 10), r(7, 9)],
        };
        let pad =
            if done % 7 == 0 { [r(3, 5), r(0, 4), r(0, 4), r(3, 5)] } else { [r(0, 1), r(0, 1), r(0, 1), r(0, 1)] };
        let stride = [r(1, 2), r(1, 2)];
        let big = kernel[0] >= 8;
        let input = if big { [1, r(8, 14), r(8, 14), c] } else { [r(1, 2), r(1, 12), r(1, 12), c] };
        if c == 1 {
            continue; // one channel is a plain convolution, not depthwise
        }
        let dilation = [1 + usize::from(!big && done % 3 == 0), 1];
        let p = Conv2d { stride, dilation, pad, groups: c, act: act(&mut rng) };
        let case = ConvCase { input, out: c, kernel, p };
        let Some((file, input)) = conv_model(&mut rng, &case) else { continue };
        let what = format!("depthwise {:?} {:?} {:?}", case.input, case.kernel, case.p);
        same_at_every_level(&file, &input, &what);
        done += 1;
    }
}

#[test]
fn pointwise_convolutions_match_scalar() {
    let mut rng = Rng(0x1234_5678);
    for i in 0..120 {
        let mut r = |lo: usize, hi: usize| lo + rng.next() as usize % (hi - lo + 1);
        let (c, out) = if i < 100 { (r(1, 70), r(1, 100)) } else { (r(200, 300), r(100, 140)) };
        let case = ConvCase {
            input: [1, r(1, 20), r(1, 20), c],
            out,
            kernel: [1, 1],
            p: Conv2d { stride: [1, 1], dilation: [1, 1], pad: [0; 4], groups: 1, act: Act::NONE },
        };
        let (file, input) = conv_model(&mut rng, &case).unwrap();
        same_at_every_level(&file, &input, &format!("1x1 conv {:?} -> {out}", case.input));
    }
}

#[test]
fn fully_connected_matches_scalar() {
    let mut rng = Rng(0xfc);
    for _ in 0..100 {
        let mut r = |lo: usize, hi: usize| lo + rng.next() as usize % (hi - lo + 1);
        let (n, k, o) = (r(1, 11), r(1, 300), r(1, 70));
        let mut w = ModelWriter::new();
        let x = w.activation("x", DType::I8, &[n, k], q(0.1, zero_point(&mut rng)));
        let wt = w.fc_weights("w", [o, k], 0.01, &rng.i8s(o * k));
        let [b, m, neg] = affine(&mut w, &mut rng, o, k);
        let y = w.activation("y", DType::I8, &[n, o], q(0.1, zero_point(&mut rng)));
        w.op(OpKind::FullyConnected, &[x, wt, b, m, neg], &[y], &act(&mut rng).words());
        w.inputs(&[x]);
        w.outputs(&[y]);
        same_at_every_level(&w.finish().unwrap(), &rng.i8s(n * k), &format!("fc [{n},{k}] -> {o}"));
    }
}

#[test]
fn add_matches_scalar() {
    let mut rng = Rng(0xadd);
    for i in 0..100 {
        let mut r = |lo: usize, hi: usize| lo + rng.next() as usize % (hi - lo + 1);
        let dims = [1, r(1, 9), r(1, 9), r(1, 40)];
        let b_dims = if i % 4 == 0 { vec![dims[3]] } else { dims.to_vec() };
        let mut w = ModelWriter::new();
        let scale = |rng: &mut Rng| [rng.f32_in(0.01, 1.0), 1e-30, MAX_SCALE][(rng.next() % 20).min(2) as usize];
        let a = w.activation("a", DType::I8, &dims, q(scale(&mut rng), zero_point(&mut rng)));
        let bq = q(scale(&mut rng), zero_point(&mut rng));
        let b = w.constant(
            "b",
            DType::I8,
            &b_dims,
            bq,
            &rng.i8s(b_dims.iter().product()).iter().map(|&v| v as u8).collect::<Vec<_>>(),
        );
        let y = w.activation("y", DType::I8, &dims, q(scale(&mut rng), zero_point(&mut rng)));
        w.op(OpKind::Add, &[a, b], &[y], &act(&mut rng).words());
        w.inputs(&[a]);
        w.outputs(&[y]);
        let input = rng.i8s(dims.iter().product());
        same_at_every_level(&w.finish().unwrap(), &input, &format!("add {dims:?} + {b_dims:?}"));
    }
}

#[test]
fn small_net_is_byte_identical_at_every_level() {
    for seed in 1..6 {
        let mut rng = Rng(seed * 77);
        same_at_every_level(&support::small_net(seed), &rng.i8s(16 * 16 * 3), "small_net");
    }
}

#[test]
fn forcing_a_level_the_cpu_lacks_is_an_error() {
    let file = AlignedBytes::copy_of(&support::small_net(1));
    let model = Model::from_bytes(&file).unwrap();
    for isa in Isa::ALL.into_iter().filter(|isa| !isa.is_supported()) {
        let err = Session::with_options(&model, SessionOptions::isa(isa)).err().unwrap().to_string();
        assert!(err.contains("does not support"), "{err}");
    }
    assert_eq!(Isa::parse("avx512vnni"), Some(Isa::Avx512Vnni));
    assert_eq!(Isa::parse("sse"), None);
}

/// Runs `file` on the f32 `input` at every level and compares every f32
/// output with scalar's, bit for bit (any NaN matching any NaN).
fn same_floats_at_every_level(file: &[u8], input: &[f32], what: &str) {
    let file = AlignedBytes::copy_of(file);
    let model = Model::from_bytes(&file).unwrap();
    let run = |isa| {
        let mut s = Session::with_options(&model, SessionOptions::isa(isa)).unwrap();
        s.set_input_f32(0, input).unwrap();
        s.run();
        let outputs: Vec<Vec<f32>> = model
            .outputs()
            .enumerate()
            .map(|(i, t)| {
                let mut v = vec![0.0; t.shape.elements()];
                s.output_f32(i, &mut v).unwrap();
                v
            })
            .collect();
        (outputs, s.kernels().names())
    };
    let (expected, _) = run(Isa::Scalar);
    for isa in levels() {
        let (got, names) = run(isa);
        for (o, (got, expected)) in got.iter().zip(&expected).enumerate() {
            let same = |a: &f32, b: &f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            if let Some(at) = got.iter().zip(expected).position(|(a, b)| !same(a, b)) {
                panic!(
                    "{what}: {isa} ({names:?}) differs from scalar at output {o}[{at}]: {} vs {}",
                    got[at], expected[at]
                );
            }
        }
    }
}

/// Float inputs: mostly moderate, some zeros of either sign, some huge
/// (products then overflow to infinities, and their sums to NaN).
fn float_input(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.next() % 50 {
            0 => 0.0,
            1 => -0.0,
            2 => 3e38,
            _ => rng.f32_in(-4.0, 4.0),
        })
        .collect()
}

/// A one-operator model: a float convolution of `case` or, with `fc`, a
/// fully connected layer of `[n, h * w * c]` to `case.out`.
fn float_affine_model(rng: &mut Rng, case: &ConvCase, fc: bool) -> Option<(Vec<u8>, Vec<f32>)> {
    let [n, h, width, c] = case.input;
    let p = case.p;
    let [kh, kw] = case.kernel;
    let span = |k: usize, d: usize| (k - 1) * d + 1;
    let oh = (h + p.pad[0] + p.pad[2]).checked_sub(span(kh, p.dilation[0]))? / p.stride[0] + 1;
    let ow = (width + p.pad[1] + p.pad[3]).checked_sub(span(kw, p.dilation[1]))? / p.stride[1] + 1;
    let o = case.out;
    let mut w = ModelWriter::new();
    let dtype = if rng.next().is_multiple_of(2) { DType::F16 } else { DType::F32 };
    let bounds = match rng.next() % 3 {
        0 => Bounds::NONE,
        1 => Bounds { lo: 0.0, hi: f32::INFINITY },
        _ => Bounds { lo: -1.5, hi: 6.0 },
    };
    let b = w.constant_f32("b", &support::f32s(rng, o, 1.0));
    let alpha =
        if rng.next().is_multiple_of(2) { w.constant_f32("a", &support::f32s(rng, o, 1.0)) } else { TensorId::ABSENT };
    let f = Quant::IDENTITY;
    let x;
    if fc {
        let k = h * width * c;
        x = w.activation("x", DType::F32, &[n, k], f);
        let wt = w.float_constant("w", dtype, &[k, o], &support::f32s(rng, k * o, 0.5));
        let y = w.activation("y", DType::F32, &[n, o], f);
        w.op(OpKind::FloatFullyConnected, &[x, wt, b, alpha], &[y], &bounds.words());
        w.outputs(&[y]);
    } else {
        let cg = c / p.groups;
        x = w.activation("x", DType::F32, &case.input, f);
        let wt = w.float_constant("w", dtype, &[kh, kw, cg, o], &support::f32s(rng, kh * kw * cg * o, 0.5));
        let y = w.activation("y", DType::F32, &[n, oh, ow, o], f);
        w.op(OpKind::FloatConv2d, &[x, wt, b, alpha], &[y], &FloatConv2d { conv: p, bounds }.words());
        w.outputs(&[y]);
    }
    w.inputs(&[x]);
    Some((w.finish().unwrap(), float_input(rng, n * h * width * c)))
}

#[test]
fn float_convolutions_match_scalar() {
    let mut rng = Rng(0xf10a7);
    let mut ran = [0; 3];
    while ran.iter().any(|&r| r < 40) {
        let kind = (rng.next() % 3) as usize;
        let mut case = random_conv(&mut rng, kind == 1);
        if kind == 2 {
            // Grouped, not depthwise: the scalar kernel at every level.
            let groups = [2, 4][rng.next() as usize % 2];
            case.input[3] = groups * (1 + rng.next() as usize % 5);
            case.out = groups * (1 + rng.next() as usize % 6);
            case.p.groups = groups;
        }
        let Some((file, input)) = float_affine_model(&mut rng, &case, false) else { continue };
        same_floats_at_every_level(&file, &input, &format!("float conv {:?} {:?}", case.input, case.p));
        ran[kind] += 1;
    }
}

#[test]
fn float_fully_connected_matches_scalar() {
    let mut rng = Rng(0xfc);
    for _ in 0..60 {
        let input = [1 + rng.next() as usize % 3, 1, 1, 1 + rng.next() as usize % 300];
        let p = Conv2d { stride: [1, 1], dilation: [1, 1], pad: [0; 4], groups: 1, act: Act::NONE };
        let case = ConvCase { input, out: 1 + rng.next() as usize % 90, kernel: [1, 1], p };
        let (file, x) = float_affine_model(&mut rng, &case, true).unwrap();
        same_floats_at_every_level(&file, &x, &format!("float fc {input:?} -> {}", case.out));
    }
}

#[test]
fn a_float_island_is_identical_at_every_level() {
    for seed in 1..4 {
        let mut rng = Rng(seed * 31);
        let input: Vec<f32> = rng.i8s(12 * 12 * 8).iter().map(|&v| f32::from(v) * 0.05).collect();
        same_floats_at_every_level(&support::float_island(seed), &input, "float island");
    }
}
