//! Models built with the writer, shared by the runtime's tests.
#![allow(dead_code)]

use kiln_runtime::format::{ModelWriter, TensorId};
use kiln_runtime::ops::{Act, Conv2d, Pool};
use kiln_runtime::{DType, OpKind, Quant};

/// A deterministic pseudo-random sequence (xorshift), so that tests need no
/// seed plumbing.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.next() as i8).collect()
    }
    pub fn f32_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * (self.next() % 1_000_000) as f32 / 1_000_000.0
    }
}

fn q(scale: f32, zero_point: i32) -> Quant {
    Quant { scale, zero_point }
}

/// Adds a convolution with random weights and the tensors it needs.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    w: &mut ModelWriter,
    rng: &mut Rng,
    name: &str,
    x: TensorId,
    in_c: usize,
    out_dims: [usize; 4],
    kernel: usize,
    groups: usize,
    stride: usize,
    prelu: bool,
) -> TensorId {
    let out_c = out_dims[3];
    let per_group = in_c / groups;
    let weights = rng.i8s(out_c * kernel * kernel * per_group);
    let wt = w.conv_weights(&format!("{name}.w"), [out_c, kernel, kernel, per_group], groups, 0.02, &weights);
    let bias: Vec<i32> = (0..out_c).map(|_| (rng.next() % 2001) as i32 - 1000).collect();
    let b = w.constant_i32(&format!("{name}.b"), &bias);
    let mult: Vec<f32> = (0..out_c).map(|_| rng.f32_in(0.0005, 0.003)).collect();
    let m = w.constant_f32(&format!("{name}.m"), &mult);
    let neg = if prelu {
        let slopes: Vec<f32> = mult.iter().map(|m| m * rng.f32_in(0.0, 0.5)).collect();
        w.constant_f32(&format!("{name}.neg"), &slopes)
    } else {
        TensorId::ABSENT
    };
    let y = w.activation(name, DType::I8, &out_dims, q(0.05, (rng.next() % 21) as i32 - 10));
    let pad = kernel / 2;
    let p = Conv2d { stride: [stride; 2], dilation: [1, 1], pad: [pad; 4], groups, act: Act::NONE };
    w.op(OpKind::Conv2d, &[x, wt, b, m, neg], &[y], &p.words());
    y
}

/// A small face-embedding-like network: conv 3x3/2, depthwise 3x3 with a
/// fused PRelu, 1x1 conv, residual add, average pool, global average pool,
/// reshape, fully connected, L2 normalization. Input [1,16,16,3].
pub fn small_net(seed: u64) -> Vec<u8> {
    let (mut w, activations) = small_net_writer(seed);
    w.outputs(&activations[activations.len() - 1..]);
    w.finish().expect("the small net is valid")
}

/// [`small_net`] with every activation an operator writes (not only the
/// embedding) as a graph output, in execution order: golden tests compare all
/// of them, so that a difference is pinned to the operator that made it.
pub fn small_net_tapped(seed: u64) -> Vec<u8> {
    let (mut w, activations) = small_net_writer(seed);
    w.outputs(&activations);
    w.finish().expect("the tapped small net is valid")
}

/// The small net's writer, without graph outputs, and the activations its
/// operators write, in execution order.
fn small_net_writer(seed: u64) -> (ModelWriter, Vec<TensorId>) {
    let mut rng = Rng(seed);
    let mut w = ModelWriter::new();
    let x = w.activation("image", DType::I8, &[1, 16, 16, 3], q(1.0, -128));
    let c1 = conv(&mut w, &mut rng, "conv1", x, 3, [1, 8, 8, 16], 3, 1, 2, true);
    let dw = conv(&mut w, &mut rng, "dw", c1, 16, [1, 8, 8, 16], 3, 16, 1, true);
    let pw = conv(&mut w, &mut rng, "pw", dw, 16, [1, 8, 8, 16], 1, 1, 1, false);
    let sum = w.activation("sum", DType::I8, &[1, 8, 8, 16], q(0.08, 3));
    w.op(OpKind::Add, &[pw, c1], &[sum], &Act::NONE.words());
    let pooled = w.activation("pool", DType::I8, &[1, 4, 4, 16], q(0.08, 3));
    let pool = Pool { kernel: [2, 2], stride: [2, 2], pad: [0; 4], count_include_pad: false };
    w.op(OpKind::AvgPool, &[sum], &[pooled], &pool.words());
    let gap = w.activation("gap", DType::I8, &[1, 1, 1, 16], q(0.05, 0));
    w.op(OpKind::GlobalAvgPool, &[pooled], &[gap], &[]);
    let flat = w.activation("flat", DType::I8, &[1, 16], q(0.05, 0));
    w.op(OpKind::Reshape, &[gap], &[flat], &[]);
    let weights = rng.i8s(8 * 16);
    let fw = w.fc_weights("fc.w", [8, 16], 0.01, &weights);
    let fb = w.constant_i32("fc.b", &[100, -100, 0, 5, -5, 50, -50, 7]);
    let fm = w.constant_f32("fc.m", &[0.004; 8]);
    let fc = w.activation("fc", DType::I8, &[1, 8], q(0.02, 0));
    w.op(OpKind::FullyConnected, &[flat, fw, fb, fm], &[fc], &Act::NONE.words());
    let emb = w.activation("embedding", DType::I8, &[1, 8], q(1.0 / 128.0, 0));
    w.op(OpKind::L2Norm, &[fc], &[emb], &[]);
    w.inputs(&[x]);
    (w, vec![c1, dw, pw, sum, pooled, gap, flat, fc, emb])
}

/// Random float weights in `-scale..scale`.
pub fn f32s(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.f32_in(-scale, scale)).collect()
}

/// A network with a float island, using every float operator: int8 input
/// [1,12,12,8] → Dequantize → 3x3 float conv (f16 weights, PRelu, Relu6
/// bounds) → depthwise 3x3 float conv (f32 weights) → Sigmoid → Add of
/// the two → Max with the first → Transpose to [1,12,12,16]... →
/// Reshape [1,2304] → fully connected to 20 (f16) → Softmax; and from the
/// depthwise output, a mean over channels, and a batched matrix product
/// of two [1,12,12,16] slices. Outputs: the softmax, f32; the matrix
/// product requantized to int8.
pub fn float_island(seed: u64) -> Vec<u8> {
    use kiln_runtime::ops::{Binary, Bounds, FloatConv2d, Unary};
    let mut rng = Rng(seed);
    let mut w = ModelWriter::new();
    let f = Quant::IDENTITY;
    let x = w.activation("x", DType::I8, &[1, 12, 12, 8], q(0.05, 3));
    let xf = w.activation("x.f32", DType::F32, &[1, 12, 12, 8], f);
    w.op(OpKind::Dequantize, &[x], &[xf], &[]);
    let geometry = |groups| Conv2d { stride: [1, 1], dilation: [1, 1], pad: [1; 4], groups, act: Act::NONE };
    let cw = w.float_constant("c.w", DType::F16, &[3, 3, 8, 16], &f32s(&mut rng, 3 * 3 * 8 * 16, 0.3));
    let cb = w.constant_f32("c.b", &f32s(&mut rng, 16, 0.5));
    let ca = w.constant_f32("c.a", &f32s(&mut rng, 16, 0.3));
    let c = w.activation("c", DType::F32, &[1, 12, 12, 16], f);
    let p = FloatConv2d { conv: geometry(1), bounds: Bounds { lo: -3.0, hi: 6.0 } };
    w.op(OpKind::FloatConv2d, &[xf, cw, cb, ca], &[c], &p.words());
    let dw = w.float_constant("dw.w", DType::F32, &[3, 3, 1, 16], &f32s(&mut rng, 3 * 3 * 16, 0.5));
    let db = w.constant_f32("dw.b", &f32s(&mut rng, 16, 0.5));
    let d = w.activation("dw", DType::F32, &[1, 12, 12, 16], f);
    let p = FloatConv2d { conv: geometry(16), bounds: Bounds::NONE };
    w.op(OpKind::FloatConv2d, &[c, dw, db, TensorId::ABSENT], &[d], &p.words());
    let s = w.activation("sigmoid", DType::F32, &[1, 12, 12, 16], f);
    w.op(OpKind::FloatUnary, &[d], &[s], &[Unary::Sigmoid as i32, 0, 0]);
    let sum = w.activation("sum", DType::F32, &[1, 12, 12, 16], f);
    w.op(OpKind::FloatBinary, &[s, c], &[sum], &[Binary::Add as i32]);
    let m = w.activation("max", DType::F32, &[1, 12, 12, 16], f);
    w.op(OpKind::FloatBinary, &[sum, c], &[m], &[Binary::Max as i32]);
    let t = w.activation("t", DType::F32, &[1, 16, 12, 12], f);
    w.op(OpKind::Transpose, &[m], &[t], &[0, 3, 1, 2]);
    let flat = w.activation("flat", DType::F32, &[1, 2304], f);
    w.op(OpKind::Reshape, &[t], &[flat], &[]);
    let fw = w.float_constant("fc.w", DType::F16, &[2304, 20], &f32s(&mut rng, 2304 * 20, 0.05));
    let fb = w.constant_f32("fc.b", &f32s(&mut rng, 20, 0.5));
    let fc = w.activation("fc", DType::F32, &[1, 20], f);
    w.op(OpKind::FloatFullyConnected, &[flat, fw, fb, TensorId::ABSENT], &[fc], &Bounds::NONE.words());
    let soft = w.activation("softmax", DType::F32, &[1, 20], f);
    w.op(OpKind::FloatSoftmax, &[fc], &[soft], &[]);
    let mean = w.activation("mean", DType::F32, &[1, 12, 12, 1], f);
    w.op(OpKind::FloatReduce, &[d], &[mean], &[0]);
    let a = w.activation("a", DType::F32, &[1, 12, 12, 1], f);
    w.op(OpKind::Slice, &[d], &[a], &[0, 0, 0, 5, 1, 1, 1, 1]);
    let b = w.activation("b", DType::F32, &[1, 12, 1, 12], f);
    w.op(OpKind::Transpose, &[mean], &[b], &[0, 1, 3, 2]);
    let mm = w.activation("matmul", DType::F32, &[1, 12, 12, 12], f);
    w.op(OpKind::FloatMatMul, &[a, b], &[mm], &[]);
    let mq = w.activation("matmul.q", DType::I8, &[1, 12, 12, 12], q(0.02, 0));
    w.op(OpKind::Quantize, &[mm], &[mq], &[]);
    w.inputs(&[x]);
    w.outputs(&[soft, mq]);
    w.finish().expect("the float island is valid")
}
