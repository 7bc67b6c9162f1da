//! A plain f32 interpreter of the IR: the semantics that every later stage
//! (quantizer, pruner, runtime) must reproduce, written for clarity, not speed.

mod spatial;

use anyhow::{ensure, Context, Result};

use super::{FusedActivation, Graph, Op};

/// Runs `graph` on `input` (IR layout, NHWC for images) and returns the value
/// of every tensor, indexed by tensor id (`None` for dead tensors).
pub fn evaluate(graph: &Graph, input: &[f32]) -> Result<Vec<Option<Vec<f32>>>> {
    let expected: usize = graph.tensors[graph.input].shape.iter().product();
    ensure!(
        input.len() == expected,
        "input has {} values, the model takes {:?} = {expected}",
        input.len(),
        graph.tensors[graph.input].shape
    );
    let mut values: Vec<Option<Vec<f32>>> = vec![None; graph.tensors.len()];
    values[graph.input] = Some(input.to_vec());
    for n in 0..graph.nodes.len() {
        step(graph, n, &mut values)?;
    }
    Ok(values)
}

/// Computes the output of node `n` into `values` (indexed by tensor id),
/// which must hold its inputs: for callers that change the graph between
/// nodes (pruning's layer-by-layer recovery).
pub fn step(graph: &Graph, n: usize, values: &mut [Option<Vec<f32>>]) -> Result<()> {
    let node = &graph.nodes[n];
    let inputs = node
        .inputs
        .iter()
        .map(|&t| {
            let v = values[t].as_deref().context("input computed later")?;
            Ok((v, &graph.tensors[t].shape[..]))
        })
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("node `{}`", node.name))?;
    let out = apply(&node.op, &inputs, &graph.tensors[node.output].shape);
    values[node.output] = Some(out);
    Ok(())
}

/// The input patches of node `n`, a convolution with one group or a fully
/// connected layer, on `input` (the node's input value): one row per output
/// position, so that the node computes `rows × weightsᵀ + bias` before its
/// activation.
pub fn patches(graph: &Graph, n: usize, input: &[f32]) -> Vec<f32> {
    let node = &graph.nodes[n];
    match &node.op {
        Op::FullyConnected { .. } => input.to_vec(),
        op => spatial::patches(op, input, &graph.tensors[node.inputs[0]].shape, &graph.tensors[node.output].shape),
    }
}

/// The mean of `f(value)` over all positions and `inputs`, per channel (the
/// last axis), of every tensor of `graph`, indexed by tensor id.
pub fn channel_means(graph: &Graph, inputs: &[Vec<f32>], f: impl Fn(f32) -> f64) -> Result<Vec<Vec<f64>>> {
    let width = |t: usize| graph.tensors[t].shape.last().copied().unwrap_or(1);
    let mut sums: Vec<Vec<f64>> = (0..graph.tensors.len()).map(|t| vec![0.0; width(t)]).collect();
    let mut counts = vec![0usize; graph.tensors.len()];
    for input in inputs {
        for (t, v) in evaluate(graph, input)?.into_iter().enumerate() {
            let Some(v) = v else { continue };
            for (i, &x) in v.iter().enumerate() {
                sums[t][i % width(t)] += f(x);
            }
            counts[t] += v.len() / width(t);
        }
    }
    for (s, &n) in sums.iter_mut().zip(&counts) {
        s.iter_mut().for_each(|x| *x /= n.max(1) as f64);
    }
    Ok(sums)
}

/// Runs `graph` and returns only its outputs.
pub fn run(graph: &Graph, input: &[f32]) -> Result<Vec<Vec<f32>>> {
    let mut values = evaluate(graph, input)?;
    Ok(graph.outputs.iter().map(|&t| values[t].take().unwrap_or_default()).collect())
}

type Input<'a> = (&'a [f32], &'a [usize]);

fn apply(op: &Op, inputs: &[Input], out_shape: &[usize]) -> Vec<f32> {
    let (x, shape) = inputs[0];
    let channels = shape.last().copied().unwrap_or(1);
    let per_channel = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i % channels] };
    match op {
        Op::Conv2d { .. } => spatial::conv2d(op, x, shape, out_shape),
        Op::FullyConnected { weights, bias, activation, .. } => {
            let k = channels;
            let mut out: Vec<f32> =
                x.chunks(k).flat_map(|row| weights.chunks(k).zip(bias).map(move |(w, b)| b + dot(row, w))).collect();
            activate(&mut out, activation, bias.len());
            out
        }
        Op::ScaleShift { scale, shift } => {
            (0..x.len()).map(|i| x[i] * per_channel(scale, i) + per_channel(shift, i)).collect()
        }
        Op::PRelu { slope } => (0..x.len()).map(|i| prelu(x[i], per_channel(slope, i))).collect(),
        Op::Clamp { lo, hi } => x.iter().map(|v| v.max(*lo).min(*hi)).collect(),
        Op::Sigmoid | Op::Tanh | Op::HardSigmoid { .. } => {
            let f = op.squashing().expect("Sigmoid, Tanh and HardSigmoid squash");
            x.iter().map(|&v| f(v)).collect()
        }
        Op::Abs => x.iter().map(|v| v.abs()).collect(),
        Op::Neg => x.iter().map(|v| -v).collect(),
        Op::HardSwish => x.iter().map(|v| v * (v + 3.0).clamp(0.0, 6.0) / 6.0).collect(),
        Op::Add => broadcast(inputs, out_shape, |a, b| a + b),
        Op::Sub => broadcast(inputs, out_shape, |a, b| a - b),
        Op::Mul => broadcast(inputs, out_shape, |a, b| a * b),
        Op::Max => broadcast(inputs, out_shape, f32::max),
        Op::Min => broadcast(inputs, out_shape, f32::min),
        Op::Div => broadcast(inputs, out_shape, |a, b| a / b),
        Op::MatMul => matmul(inputs, out_shape),
        Op::Math(f) => x.iter().map(|&v| f.apply(v)).collect(),
        Op::Concat { axis } => concat(inputs, *axis),
        Op::MaxPool(_) | Op::AvgPool { .. } | Op::GlobalAvgPool | Op::Resize { .. } => {
            spatial::pool_or_resize(op, x, shape, out_shape)
        }
        Op::Reshape { .. } => x.to_vec(),
        Op::Transpose { perm } => super::layout::transpose(x, shape, perm),
        Op::Pad { pads, value } => pad(x, shape, pads, *value, out_shape),
        Op::Softmax { axis } => softmax(x, shape, *axis),
        Op::Slice { start, step, .. } => slice(x, shape, start, step, out_shape),
        Op::Reduce { max: true } => {
            x.chunks(channels).map(|row| row.iter().copied().fold(f32::MIN, f32::max)).collect()
        }
        Op::Reduce { max: false } => x.chunks(channels).map(|row| row.iter().sum::<f32>() / channels as f32).collect(),
        Op::ZeroInsert { stride } => zero_insert(x, shape, *stride, out_shape),
    }
}

/// `[.., M, K] × [.., K, N]`, batched over the leading dimensions.
fn matmul(inputs: &[Input], out: &[usize]) -> Vec<f32> {
    let ((a, sa), (b, sb)) = (inputs[0], inputs[1]);
    let rank = sa.len();
    let (m, k, n) = (sa[rank - 2], sa[rank - 1], sb[rank - 1]);
    let batches: usize = out[..rank - 2].iter().product();
    let mut y = vec![0.0; batches * m * n];
    for batch in 0..batches {
        let (am, bm) = (&a[batch * m * k..][..m * k], &b[batch * k * n..][..k * n]);
        for i in 0..m {
            for j in 0..n {
                y[(batch * m + i) * n + j] = (0..k).map(|t| am[i * k + t] * bm[t * n + j]).sum();
            }
        }
    }
    y
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn prelu(x: f32, slope: f32) -> f32 {
    if x < 0.0 {
        x * slope
    } else {
        x
    }
}

/// Applies a fused activation in place; `channels` is the last axis' size.
fn activate(values: &mut [f32], act: &FusedActivation, channels: usize) {
    match act.alpha.as_deref() {
        Some(&[alpha]) => values.iter_mut().for_each(|v| *v = prelu(*v, alpha)),
        Some(alpha) => {
            for pixel in values.chunks_mut(channels) {
                pixel.iter_mut().zip(alpha).for_each(|(v, &a)| *v = prelu(*v, a));
            }
        }
        None => {}
    }
    if let Some((lo, hi)) = act.clamp {
        for v in values.iter_mut() {
            *v = v.max(lo).min(hi);
        }
    }
}

/// Row-major strides of `shape`, with 0 on broadcast (size-1) axes of an
/// input whose output axis is larger.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut s = 1;
    for a in (0..shape.len()).rev() {
        strides[a] = if shape[a] == out[a] { s } else { 0 };
        s *= shape[a];
    }
    strides
}

/// Steps the multi-index `index` over `dims` to the next element in
/// row-major order (back to all zeros after the last).
fn advance(index: &mut [usize], dims: &[usize]) {
    for a in (0..dims.len()).rev() {
        index[a] += 1;
        if index[a] < dims[a] {
            break;
        }
        index[a] = 0;
    }
}

fn broadcast(inputs: &[Input], out: &[usize], f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    let ((a, sa), (b, sb)) = (inputs[0], inputs[1]);
    if sa == sb {
        return a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect();
    }
    let (ta, tb) = (broadcast_strides(sa, out), broadcast_strides(sb, out));
    let total: usize = out.iter().product();
    let mut index = vec![0; out.len()];
    let mut result = Vec::with_capacity(total);
    for _ in 0..total {
        let ia: usize = index.iter().zip(&ta).map(|(i, s)| i * s).sum();
        let ib: usize = index.iter().zip(&tb).map(|(i, s)| i * s).sum();
        result.push(f(a[ia], b[ib]));
        advance(&mut index, out);
    }
    result
}

fn concat(inputs: &[Input], axis: usize) -> Vec<f32> {
    let outer: usize = inputs[0].1[..axis].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for (x, shape) in inputs {
            let inner: usize = shape[axis..].iter().product();
            out.extend_from_slice(&x[o * inner..(o + 1) * inner]);
        }
    }
    out
}

fn pad(x: &[f32], shape: &[usize], pads: &[(usize, usize)], value: f32, out: &[usize]) -> Vec<f32> {
    let total: usize = out.iter().product();
    let mut result = vec![value; total];
    let mut index = vec![0; shape.len()];
    for &v in x {
        let mut flat = 0;
        for a in 0..shape.len() {
            flat = flat * out[a] + index[a] + pads[a].0;
        }
        result[flat] = v;
        advance(&mut index, shape);
    }
    result
}

fn slice(x: &[f32], shape: &[usize], start: &[usize], step: &[i64], out: &[usize]) -> Vec<f32> {
    let total: usize = out.iter().product();
    let mut index = vec![0; out.len()];
    let mut result = Vec::with_capacity(total);
    for _ in 0..total {
        let mut flat = 0;
        for a in 0..shape.len() {
            flat = flat * shape[a] + (start[a] as i64 + index[a] as i64 * step[a]) as usize;
        }
        result.push(x[flat]);
        advance(&mut index, out);
    }
    result
}

fn zero_insert(x: &[f32], shape: &[usize], stride: [usize; 2], out: &[usize]) -> Vec<f32> {
    let (h, w, c) = (shape[1], shape[2], shape[3]);
    let mut result = vec![0.0; out.iter().product()];
    for (p, pixel) in x.chunks(c).enumerate() {
        let (n, i, j) = (p / (h * w), p / w % h, p % w);
        let at = ((n * out[1] + i * stride[0]) * out[2] + j * stride[1]) * c;
        result[at..at + c].copy_from_slice(pixel);
    }
    result
}

fn softmax(x: &[f32], shape: &[usize], axis: usize) -> Vec<f32> {
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let mut out = x.to_vec();
    for block in out.chunks_mut(n * inner) {
        for i in 0..inner {
            let max = (0..n).map(|j| block[j * inner + i]).fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = (0..n).map(|j| (block[j * inner + i] - max).exp()).sum();
            for j in 0..n {
                block[j * inner + i] = (block[j * inner + i] - max).exp() / sum;
            }
        }
    }
    out
}
