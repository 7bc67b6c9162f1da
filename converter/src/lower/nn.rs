//! Lowering of the ops that carry weights or windows: Conv, ConvTranspose,
//! Gemm, MatMul, BatchNormalization, MaxPool, AveragePool.

use anyhow::{bail, ensure, Result};
use tract_onnx::pb::NodeProto;

use super::{Lowering, Value};
use crate::ir::layout::transpose;
use crate::ir::{FusedActivation, Op, TensorId, Window, NCHW_TO_NHWC, NHWC_TO_NCHW};

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

/// A ConvTranspose's padding `[top, left, bottom, right]` for an input of
/// `size` `[h, w]`, its dilated kernel spanning `span + 1` cells: `pads`, or
/// split from `output_shape` (or, for `auto_pad` SAME_*, from `size *
/// stride`) as ONNX does. Negative where the output is to be larger than the
/// full transposed convolution's.
fn transposed_pads(
    node: &NodeProto,
    size: [usize; 2],
    span: [usize; 2],
    stride: [usize; 2],
    output_padding: [usize; 2],
) -> Result<[i64; 4]> {
    let auto: String = node.get_attr_opt("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let wanted = match node.get_attr_opt_vec::<usize>("output_shape")?.as_deref() {
        Some(&[.., h, w]) => Some([h, w]),
        Some(s) => bail!("output_shape {s:?} is not 2-D"),
        None if auto.starts_with("SAME_") => Some([size[0] * stride[0], size[1] * stride[1]]),
        None => None,
    };
    let mut pads = [0i64; 4];
    match (wanted, auto.as_str()) {
        (Some(out), _) => {
            for a in 0..2 {
                let full = stride[a] * (size[a] - 1) + output_padding[a] + span[a] + 1;
                let total = full as i64 - out[a] as i64;
                let (small, large) = (total.div_euclid(2), total - total.div_euclid(2));
                (pads[a], pads[a + 2]) = if auto == "SAME_UPPER" { (small, large) } else { (large, small) };
            }
        }
        (None, "NOTSET") => match node.get_attr_opt_vec::<i64>("pads")?.as_deref() {
            None => {}
            Some(&[t, l, b, r]) => pads = [t, l, b, r],
            Some(p) => bail!("pads {p:?} are not 2-D"),
        },
        (None, "VALID") => {}
        (None, other) => bail!("auto_pad {other} is not supported"),
    }
    Ok(pads)
}

/// ConvTranspose as zero insertion followed by an ordinary convolution:
/// input pixel `i` lands at `i * stride` of a zero image, which a
/// convolution with the kernel flipped in H and W (and, per group, its input
/// and output channels swapped) reads at stride 1, padded by
/// `dilation * (k - 1) - pad` on each side (plus `output_padding` at the
/// end). ONNX weights `[C_in, C_out / group, kH, kW]` become IR
/// `[C_out, kH, kW, C_in / group]`. BatchNorm and activations after it then
/// fold into that convolution like after any other.
///
/// Why zero insertion rather than a kernel of its own: the convolution is
/// kiln's optimised int8 GEMM path (SIMD, bit-exact with the scalar
/// specification), and the insertion is a byte move, so the op needs no new
/// arithmetic to specify, test or keep in step across ISAs. Its cost is the
/// zeros: at stride `s` the convolution does `s^2` times the useful
/// multiply-accumulates. Measured on PP-OCRv4's 2x2 stride-2 upsampling
/// (`benches/kernels.rs`, "convtranspose2x2"; AVX2, no VNNI) the SIMD
/// convolution still wins over a direct scalar transposed convolution that
/// does only the useful work: 13.6 ms against 19.2 ms at 80x80x24, 54 ms
/// against 75 ms at 160x160x24, 130 ms against 236 ms at 80x80x96. Only the
/// scalar fallback loses (0.3 s, 1.3 s, 4.6 s): a direct SIMD kernel is the
/// next step if that matters.
pub(super) fn conv_transpose(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let w = cx.constant(&node.input[1])?;
    let &[ci, og, kh, kw] = &w.shape[..] else {
        bail!("weights of shape {:?} are not 2-D ConvTranspose weights", &w.shape[..])
    };
    ensure!(kh > 0 && kw > 0, "an empty {kh}x{kw} kernel");
    if let Some(k) = node.get_attr_opt_vec::<usize>("kernel_shape")? {
        ensure!(k == [kh, kw], "kernel_shape {k:?} differs from the weights' {:?}", [kh, kw]);
    }
    let groups = node.get_attr_opt::<usize>("group")?.unwrap_or(1);
    ensure!(groups > 0 && ci % groups == 0, "{ci} input channels do not split into {groups} groups");
    let (stride, dilation) = (pair(node, "strides")?, pair(node, "dilations")?);
    ensure!(
        stride.iter().chain(&dilation).all(|&v| v > 0),
        "strides {stride:?} and dilations {dilation:?} must be positive"
    );
    let output_padding = match node.get_attr_opt_vec::<usize>("output_padding")?.as_deref() {
        None => [0, 0],
        Some(&[a, b]) => [a, b],
        Some(p) => bail!("output_padding {p:?} is not 2-D"),
    };
    let &[_, h, wd, _] = cx.shape(x) else { bail!("input of shape {:?} is not an image", cx.shape(x)) };
    let span = [(kh - 1) * dilation[0], (kw - 1) * dilation[1]];
    let pads = transposed_pads(node, [h, wd], span, stride, output_padding)?;
    // The equivalent convolution's padding.
    let mut conv_pads = [0; 4];
    for (i, p) in pads.iter().enumerate() {
        let extra = if i >= 2 { output_padding[i - 2] } else { 0 };
        let pad = (span[i % 2] + extra) as i64 - p;
        ensure!(
            pad >= 0,
            "padding {pads:?} crops more than the {kh}x{kw} kernel (dilation {dilation:?}) adds: \
             kiln does not crop a ConvTranspose's output"
        );
        conv_pads[i] = pad as usize;
    }
    let o = og * groups;
    let gi = ci / groups;
    // IR weight [g*og + oc][ky][kx][i] = ONNX weight [g*gi + i][oc][kh-1-ky][kw-1-kx].
    let mut weights = Vec::with_capacity(w.values.len());
    for oc in 0..o {
        let (g, oc_in_group) = (oc / og, oc % og);
        for ky in 0..kh {
            for kx in 0..kw {
                for i in 0..gi {
                    let input = g * gi + i;
                    weights.push(w.values[((input * og + oc_in_group) * kh + kh - 1 - ky) * kw + kw - 1 - kx]);
                }
            }
        }
    }
    let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
        Some(b) => cx.constant(b)?.values,
        None => vec![0.0; o],
    };
    let spread = if stride == [1, 1] { x } else { cx.push(&node.name, Op::ZeroInsert { stride }, vec![x], None)? };
    let op = Op::Conv2d {
        weights,
        weight_shape: [o, kh, kw, gi],
        bias,
        stride: [1, 1],
        dilation,
        pads: conv_pads,
        groups,
        pad_value: 0.0,
        activation: FusedActivation::default(),
    };
    cx.push(&node.name, op, vec![spread], Some(&node.output[0]))?;
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

/// MatMul by a constant matrix `[in, out]` (a fully connected layer), or
/// of two activations (float only).
pub(super) fn matmul(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    if let Value::Activation(y) = *cx.value(&node.input[1])? {
        return matmul_activations(cx, node, x, y);
    }
    ensure!(cx.shape(x).len() != 4, "MatMul of a rank-4 activation by a constant is not supported");
    let b = cx.constant(&node.input[1])?;
    let &[k, out] = &b.shape[..] else {
        bail!("MatMul by a constant of shape {:?}: kiln needs a matrix", &b.shape[..])
    };
    let weights = transpose(&b.values, &[k, out], &[1, 0]);
    fully_connected(cx, node, x, weights, out, vec![0.0; out])
}

/// MatMul of two activations of equal rank (2 to 4) and leading
/// dimensions. Rank-4 operands are NHWC in the IR: they move to ONNX order
/// for the product and the result moves back.
fn matmul_activations(cx: &mut Lowering, node: &NodeProto, a: TensorId, b: TensorId) -> Result<()> {
    let (sa, sb) = (cx.shape(a).to_vec(), cx.shape(b).to_vec());
    ensure!(
        sa.len() == sb.len() && (2..=4).contains(&sa.len()),
        "MatMul of activations of shapes {sa:?} and {sb:?}: kiln takes equal ranks from 2 to 4"
    );
    if sa.len() != 4 {
        return cx.push(&node.name, Op::MatMul, vec![a, b], Some(&node.output[0])).map(drop);
    }
    let to_onnx = |cx: &mut Lowering, t: TensorId, which: &str| {
        cx.push(&format!("{}.{which}_nchw", node.name), Op::Transpose { perm: NHWC_TO_NCHW.to_vec() }, vec![t], None)
    };
    let (a, b) = (to_onnx(cx, a, "a")?, to_onnx(cx, b, "b")?);
    let product = cx.push(&format!("{}.nchw", node.name), Op::MatMul, vec![a, b], None)?;
    let back = Op::Transpose { perm: NCHW_TO_NHWC.to_vec() };
    cx.push(&node.name, back, vec![product], Some(&node.output[0])).map(drop)
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
