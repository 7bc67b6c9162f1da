//! Writes seed models for the fuzz corpus: `cargo run --bin seed -- DIR`.

#[path = "../../runtime/tests/support/mod.rs"]
mod support;

use kiln_runtime::format::ModelWriter;
use kiln_runtime::ops::{Act, CoordTransform, NearestMode, Pool, Resize, ResizeMode};
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

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus/from_bytes".into());
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    let mut models: Vec<(String, Vec<u8>)> =
        (1..=4).map(|s| (format!("small_net_{s}"), support::small_net(s))).collect();
    models.push(("other_ops".into(), other_ops()));
    for (name, bytes) in models {
        let path = format!("{dir}/{name}.kiln");
        std::fs::write(&path, bytes).expect("write a seed");
        println!("{path}");
    }
}
