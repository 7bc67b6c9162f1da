//! Lowering of the ops that carry weights or windows: Conv, Gemm, MatMul,
//! BatchNormalization, MaxPool, AveragePool.

use anyhow::{bail, ensure, Result};
use tract_onnx::pb::NodeProto;

use super::{Lowering, NeedsFloat, Value};
use crate::ir::layout::transpose;
use crate::ir::{FusedActivation, Op, Window};

/// ONNX `pads` (`[top, left, bottom, right]` for 2-D) after resolving
/// `auto_pad` for an input of `size` `[h, w]`.
fn pads_2d(
    node: &NodeProto,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<[usize; 4]> {
    let auto: String = node.get_attr_opt("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    match auto.as_str() {
        "NOTSET" => match node.get_attr_opt_vec::<usize>("pads")?.as_deref() {
            None => Ok([0; 4]),
            Some(&[t, l, b, r]) => Ok([t, l, b, r]),
            Some(p) => bail!("pads {p:?} are not 2-D"),
        },
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = [0; 4];
            for a in 0..2 {
                let out = size[a].div_ceil(stride[a]);
                let span = dilation[a] * (kernel[a] - 1) + 1;
                let total = ((out - 1) * stride[a] + span).saturating_sub(size[a]);
                let small = total / 2;
                let (before, after) =
                    if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                pads[a] = before;
                pads[a + 2] = after;
            }
            Ok(pads)
        }
        other => bail!("auto_pad {other} is not supported"),
    }
}

fn pair(node: &NodeProto, attr: &str) -> Result<[usize; 2]> {
    match node.get_attr_opt_vec::<usize>(attr)?.as_deref() {
        None => Ok([1, 1]),
        Some(&[a, b]) => Ok([a, b]),
        Some(v) => bail!("{attr} {v:?} is not 2-D: kiln supports 2-D convolution and pooling only"),
    }
}

/// Conv: weights OIHW → OHWI, so each output channel's filter is contiguous
/// in the NHWC input's channel order.
pub(super) fn conv(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let w = cx.constant(&node.input[1])?;
    let &[o, ci, kh, kw] = &w.shape[..] else { bail!("weights of shape {:?} are not 2-D conv weights", &w.shape[..]) };
    let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
        Some(b) => cx.constant(b)?.values,
        None => vec![0.0; o],
    };
    let (stride, dilation) = (pair(node, "strides")?, pair(node, "dilations")?);
    let shape = cx.shape(x);
    let pads = pads_2d(node, [shape[1], shape[2]], [kh, kw], stride, dilation)?;
    let op = Op::Conv2d {
        weights: transpose(&w.values, &[o, ci, kh, kw], &[0, 2, 3, 1]),
        weight_shape: [o, kh, kw, ci],
        bias,
        stride,
        dilation,
        pads,
        groups: node.get_attr_opt::<usize>("group")?.unwrap_or(1),
        pad_value: 0.0,
        activation: FusedActivation::default(),
    };
    cx.push(&node.name, op, vec![x], Some(&node.output[0]))?;
    Ok(())
}

/// Gemm `alpha * A' * B' + beta * C` with constant B and C (A' by an
/// explicit transpose when `transA` is set).
pub(super) fn gemm(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let mut x = cx.activation(&node.input[0])?;
    if node.get_attr_opt::<i64>("transA")?.unwrap_or(0) == 1 {
        let rank = cx.shape(x).len();
        ensure!(rank == 2, "transA=1 on a rank-{rank} input");
        x = cx.push(&node.name, Op::Transpose { perm: vec![1, 0] }, vec![x], None)?;
    }
    let b = cx.constant(&node.input[1])?;
    let &[r, c] = &b.shape[..] else { bail!("B of shape {:?} is not a matrix", &b.shape[..]) };
    let trans_b = node.get_attr_opt::<i64>("transB")?.unwrap_or(0) == 1;
    let alpha = node.get_attr_opt::<f32>("alpha")?.unwrap_or(1.0);
    let beta = node.get_attr_opt::<f32>("beta")?.unwrap_or(1.0);
    let (out, mut weights) = if trans_b { (r, b.values) } else { (c, transpose(&b.values, &[r, c], &[1, 0])) };
    weights.iter_mut().for_each(|w| *w *= alpha);
    let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
        Some(name) => {
            let c = cx.constant(name)?.values;
            match c.len() {
                1 => vec![beta * c[0]; out],
                n if n == out => c.iter().map(|v| beta * v).collect(),
                n => {
                    bail!("bias of {n} values for {out} outputs (kiln supports a per-output bias)")
                }
            }
        }
        None => vec![0.0; out],
    };
    fully_connected(cx, node, x, weights, out, bias)
}

/// MatMul by a constant matrix `[in, out]`.
pub(super) fn matmul(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    if matches!(cx.value(&node.input[1])?, Value::Activation(_)) {
        return Err(NeedsFloat("MatMul of two activations has no int8 form".into()).into());
    }
    ensure!(cx.shape(x).len() != 4, "MatMul of a rank-4 activation by a constant is not supported");
    let b = cx.constant(&node.input[1])?;
    let &[k, out] = &b.shape[..] else {
        bail!("MatMul by a constant of shape {:?}: kiln needs a matrix", &b.shape[..])
    };
    let weights = transpose(&b.values, &[k, out], &[1, 0]);
    fully_connected(cx, node, x, weights, out, vec![0.0; out])
}

fn fully_connected(
    cx: &mut Lowering,
    node: &NodeProto,
    x: usize,
    weights: Vec<f32>,
    out: usize,
    bias: Vec<f32>,
) -> Result<()> {
    let op = Op::FullyConnected { weights, out_features: out, bias, activation: FusedActivation::default() };
    cx.push(&node.name, op, vec![x], Some(&node.output[0]))?;
    Ok(())
}

/// BatchNormalization (inference) as `x * scale + shift` per channel.
pub(super) fn batch_norm(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let eps = node.get_attr_opt::<f32>("epsilon")?.unwrap_or(1e-5);
    let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| cx.constant(&node.input[i]));
    let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
    let (gamma, beta, mean, var) = (&gamma.values, &beta.values, &mean.values, &var.values);
    let scale: Vec<f32> = gamma.iter().zip(var).map(|(g, v)| g / (v + eps).sqrt()).collect();
    let shift = beta.iter().zip(mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
    cx.unary(node, Op::ScaleShift { scale, shift })
}

/// MaxPool and AveragePool. `ceil_mode` becomes extra bottom/right padding,
/// which neither max pooling nor an average that excludes padding can see
/// (an average that counts padding would, so that case is refused).
pub(super) fn pool(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let kernel = match node.get_attr_vec::<usize>("kernel_shape")?.as_slice() {
        &[a, b] => [a, b],
        k => bail!("kernel {k:?} is not 2-D"),
    };
    let stride = pair(node, "strides")?;
    ensure!(pair(node, "dilations")? == [1, 1], "dilated pooling is not supported");
    let shape = cx.shape(x).to_vec();
    let mut pads = pads_2d(node, [shape[1], shape[2]], kernel, stride, [1, 1])?;
    let count_include_pad = node.get_attr_opt::<i64>("count_include_pad")?.unwrap_or(0) == 1;
    if node.get_attr_opt::<i64>("ceil_mode")?.unwrap_or(0) == 1 {
        ensure!(node.op_type == "MaxPool" || !count_include_pad, "ceil_mode with count_include_pad is not supported");
        for a in 0..2 {
            let (size, begin) = (shape[1 + a], pads[a]);
            let span = size + begin + pads[a + 2] - kernel[a];
            let mut out = span.div_ceil(stride[a]) + 1;
            // As in ONNX and PyTorch, a last window that would start in the
            // end padding is dropped.
            if (out - 1) * stride[a] >= size + begin {
                out -= 1;
            }
            pads[a + 2] += ((out - 1) * stride[a]).saturating_sub(span);
        }
    }
    let window = Window { kernel, stride, pads };
    let op = if node.op_type == "MaxPool" { Op::MaxPool(window) } else { Op::AvgPool { window, count_include_pad } };
    cx.unary(node, op)
}
