//! Writes seed models for the fuzz corpus: `cargo run --bin seed -- DIR`.

#[path = "../../runtime/tests/support/mod.rs"]
mod support;

use kiln_runtime::format::{ModelWriter, TensorId};
use kiln_runtime::ops::{
    Act, Binary, Bounds, Conv2d, CoordTransform, FloatConv2d, NearestMode, Pool, Resize, ResizeMode, Unary,
};
use kiln_runtime::{DType, OpKind, Quant};

/// The operators `small_net` lacks: f32 input, Quantize, MaxPool, Resize,
/// Concat, Lut, PRelu, Mul, Pad, Transpose, Clamp, Reshape, Softmax,
/// Dequantize.
fn other_ops() -> Vec<u8> {
    let q = |scale: f32, zero_point: i32| Quant { scale, zero_point };
    let mut w = ModelWriter::new();
    let x = w.activation("x", DType::F32, &[1, 8, 8, 4], Quant::IDENTITY);
    let a = w.activation("a", DType::I8, &[1, 8, 8, 4], q(0.1, 2));
    w.op(OpKind::Quantize, &[x], &[a], &[]);
    let b = w.activation("b", DType::I8, &[1, 4, 4, 4], q(0.1, 2));
    let pool = Pool { kernel: [2, 2], stride: [2, 2], pad: [0; 4], count_include_pad: false };
    w.op(OpKind::MaxPool, &[a], &[b], &pool.words());
    let c = w.activation("c", DType::I8, &[1, 8, 8, 4], q(0.12, -1));
    let resize = Resize {
        mode: ResizeMode::Nearest(NearestMode::RoundPreferFloor),
        coord: CoordTransform::HalfPixel,
        scale: [2.0, 2.0],
    };
    w.op(OpKind::Resize, &[b], &[c], &resize.words());
    let d = w.activation("d", DType::I8, &[1, 8, 8, 8], q(0.1, 0));
    w.op(OpKind::Concat, &[a, c], &[d], &[3]);
    let table: Vec<i8> = (0..256).map(|i| ((i - 128) / 2) as i8).collect();
    let t = w.constant_i8("lut", &[256], 1.0, &table);
    let e = w.activation("e", DType::I8, &[1, 8, 8, 8], q(0.1, 0));
    w.op(OpKind::Lut, &[d, t], &[e], &[0]);
    let slopes = w.constant_f32("slopes", &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
    let f = w.activation("f", DType::I8, &[1, 8, 8, 8], q(0.1, 0));
    w.op(OpKind::PRelu, &[e, slopes], &[f], &[]);
    let g = w.activation("g", DType::I8, &[1, 8, 8, 8], q(0.05, 1));
    w.op(OpKind::Mul, &[f, d], &[g], &Act::NONE.words());
    let h = w.activation("h", DType::I8, &[1, 10, 10, 8], q(0.05, 1));
    w.op(OpKind::Pad, &[g], &[h], &[0, 1, 1, 0, 0, 1, 1, 0, 1]);
    let i = w.activation("i", DType::I8, &[1, 8, 10, 10], q(0.05, 1));
    w.op(OpKind::Transpose, &[h], &[i], &[0, 3, 1, 2]);
    let j = w.activation("j", DType::I8, &[1, 8, 10, 10], q(0.05, 1));
    w.op(OpKind::Clamp, &[i], &[j], &Act { min: -100, max: 100 }.words());
    let k = w.activation("k", DType::I8, &[8, 100], q(0.05, 1));
    w.op(OpKind::Reshape, &[j], &[k], &[]);
    let exp: Vec<f32> = (0..256).map(|d| (-0.05 * d as f32).exp()).collect();
    let exp = w.constant_f32("exp", &exp);
    let l = w.activation("l", DType::I8, &[8, 100], q(1.0 / 256.0, -128));
    w.op(OpKind::Softmax, &[k, exp], &[l], &[]);
    let m = w.activation("m", DType::F32, &[8, 100], Quant::IDENTITY);
    w.op(OpKind::Dequantize, &[l], &[m], &[]);
    w.inputs(&[x]);
    w.outputs(&[m]);
    w.finish().expect("a valid model")
}

/// A float island with an f32 graph input, beside `support::float_island`
/// (which enters through Dequantize): the float operators' other inputs and
/// parameters, so that the fuzzer starts from each of them: f32 Concat,
/// every unary function, Pow and Div broadcasting a constant row, a strided
/// and dilated grouped float conv with f32 weights, a fully connected layer
/// with slopes and bounds, a rank-3 matrix product, Slice and Reshape on
/// f32, a reduction to the maximum and Quantize to an int8 output.
fn float_ops() -> Vec<u8> {
    let f = Quant::IDENTITY;
    let bits = |v: f32| v.to_bits() as i32;
    let mut rng = support::Rng(5);
    let mut w = ModelWriter::new();
    let x = w.activation("x", DType::F32, &[1, 6, 6, 4], f);
    let xx = w.activation("xx", DType::F32, &[1, 6, 6, 8], f);
    w.op(OpKind::Concat, &[x, x], &[xx], &[3]);
    // Every unary function in turn, the domain-limited ones behind a Clamp.
    let mut at = xx;
    let steps: [(Unary, f32, f32); 14] = [
        (Unary::Clamp, -4.0, 4.0),
        (Unary::Sigmoid, 0.0, 0.0),
        (Unary::Tanh, 0.0, 0.0),
        (Unary::HardSwish, 0.0, 0.0),
        (Unary::HardSigmoid, 0.2, 0.5),
        (Unary::Neg, 0.0, 0.0),
        (Unary::Abs, 0.0, 0.0),
        (Unary::Exp, 0.0, 0.0),
        (Unary::Clamp, 0.01, 80.0),
        (Unary::Log, 0.0, 0.0),
        (Unary::Sqrt, 0.0, 0.0),
        (Unary::Reciprocal, 0.0, 0.0),
        (Unary::Erf, 0.0, 0.0),
        (Unary::Gelu, 0.0, 0.0),
    ];
    for (i, (u, a, b)) in steps.into_iter().enumerate() {
        let y = w.activation(&format!("u{i}"), DType::F32, &[1, 6, 6, 8], f);
        w.op(OpKind::FloatUnary, &[at], &[y], &[u as i32, bits(a), bits(b)]);
        at = y;
    }
    let row = w.constant_f32("row", &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, -1.0, 0.25]);
    let pow = w.activation("pow", DType::F32, &[1, 6, 6, 8], f);
    w.op(OpKind::FloatBinary, &[at, row], &[pow], &[Binary::Pow as i32]);
    let div = w.activation("div", DType::F32, &[1, 6, 6, 8], f);
    w.op(OpKind::FloatBinary, &[pow, row], &[div], &[Binary::Div as i32]);
    // A 3x3 convolution in 2 groups, stride 2, dilation 2.
    let cw = w.float_constant("c.w", DType::F32, &[3, 3, 4, 6], &support::f32s(&mut rng, 3 * 3 * 4 * 6, 0.4));
    let cb = w.constant_f32("c.b", &support::f32s(&mut rng, 6, 0.5));
    let conv = Conv2d { stride: [2, 2], dilation: [2, 2], pad: [2, 1, 2, 1], groups: 2, act: Act::NONE };
    let c = w.activation("c", DType::F32, &[1, 3, 2, 6], f);
    let p = FloatConv2d { conv, bounds: Bounds { lo: -6.0, hi: f32::INFINITY } };
    w.op(OpKind::FloatConv2d, &[div, cw, cb, TensorId::ABSENT], &[c], &p.words());
    let flat = w.activation("flat", DType::F32, &[1, 36], f);
    w.op(OpKind::Reshape, &[c], &[flat], &[]);
    let fw = w.float_constant("fc.w", DType::F32, &[36, 12], &support::f32s(&mut rng, 36 * 12, 0.2));
    let fb = w.constant_f32("fc.b", &support::f32s(&mut rng, 12, 0.5));
    let fa = w.constant_f32("fc.a", &support::f32s(&mut rng, 12, 0.3));
    let fc = w.activation("fc", DType::F32, &[1, 12], f);
    w.op(OpKind::FloatFullyConnected, &[flat, fw, fb, fa], &[fc], &Bounds { lo: -2.0, hi: 2.0 }.words());
    let m = w.activation("m", DType::F32, &[3, 4], f);
    w.op(OpKind::Reshape, &[fc], &[m], &[]);
    let m3 = w.activation("m3", DType::F32, &[1, 3, 4], f);
    w.op(OpKind::Reshape, &[m], &[m3], &[]);
    let back = w.activation("back", DType::F32, &[1, 4, 3], f);
    w.op(OpKind::Transpose, &[m3], &[back], &[0, 2, 1]);
    let mm = w.activation("mm", DType::F32, &[1, 3, 3], f);
    w.op(OpKind::FloatMatMul, &[m3, back], &[mm], &[]);
    let s = w.activation("s", DType::F32, &[1, 2, 3], f);
    w.op(OpKind::Slice, &[mm], &[s], &[0, 2, 0, 1, -2, 1]);
    let mx = w.activation("max", DType::F32, &[1, 2, 1], f);
    w.op(OpKind::FloatReduce, &[s], &[mx], &[1]);
    let q = w.activation("q", DType::I8, &[1, 2, 1], Quant { scale: 0.05, zero_point: -3 });
    w.op(OpKind::Quantize, &[mx], &[q], &[]);
    w.inputs(&[x]);
    w.outputs(&[q, s]);
    w.finish().expect("a valid model")
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus/from_bytes".into());
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    let mut models: Vec<(String, Vec<u8>)> =
        (1..=4).map(|s| (format!("small_net_{s}"), support::small_net(s))).collect();
    models.push(("other_ops".into(), other_ops()));
    // The float operators (format minor version 2).
    models.extend((1..=2).map(|s| (format!("float_island_{s}"), support::float_island(s))));
    models.push(("float_ops".into(), float_ops()));
    for (name, bytes) in models {
        let path = format!("{dir}/{name}.kiln");
        std::fs::write(&path, bytes).expect("write a seed");
        println!("{path}");
    }
}
