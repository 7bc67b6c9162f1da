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
