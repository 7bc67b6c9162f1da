//! Lowering of ops whose meaning depends on the axis order: Reshape, Flatten,
//! Squeeze, Unsqueeze, DepthToSpace, SpaceToDepth, Transpose, Concat, Pad,
//! Resize, Softmax. ONNX axes are NCHW; the IR's rank-4 tensors are NHWC, so
//! axes and permutations are translated here.

use anyhow::{bail, ensure, Context, Result};
use tract_onnx::pb::NodeProto;

use super::{ir_axis, onnx_axis, Lowering};
use crate::ir::{Op, TensorId, NCHW_TO_NHWC, NHWC_TO_NCHW};

/// ONNX shape of an IR tensor shape.
pub(super) fn onnx_shape(ir: &[usize]) -> Vec<usize> {
    match ir {
        &[n, h, w, c] => vec![n, c, h, w],
        _ => ir.to_vec(),
    }
}

/// Reshape and Flatten, which are defined on NCHW order: the IR reshapes an
/// NCHW copy (explicit transposes around it, removed by passes when a
/// consumer can absorb them).
pub(super) fn reshape(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let input = onnx_shape(cx.shape(x));
    let target: Vec<usize> = if node.op_type == "Flatten" {
        let axis = node.get_attr_opt::<i64>("axis")?.unwrap_or(1);
        let axis = if axis < 0 { axis + input.len() as i64 } else { axis } as usize;
        ensure!(axis <= input.len(), "flatten axis {axis} out of rank {}", input.len());
        vec![input[..axis].iter().product(), input[axis..].iter().product()]
    } else {
        let Some(spec) = cx.constant_ints(node, 1)? else { bail!("Reshape needs a shape") };
        let allow_zero = node.get_attr_opt::<i64>("allowzero")?.unwrap_or(0) == 1;
        let mut dims: Vec<usize> = spec
            .iter()
            .enumerate()
            .map(|(i, &d)| match d {
                0 if !allow_zero => input.get(i).copied().unwrap_or(0),
                -1 => 1,
                d => d as usize,
            })
            .collect();
        if let Some(free) = spec.iter().position(|&d| d == -1) {
            let known: usize = dims.iter().product();
            dims[free] = input.iter().product::<usize>() / known.max(1);
        }
        dims
    };
    reshape_to(cx, &node.name, x, target, &node.output[0])
}

/// Appends the IR form of an ONNX (NCHW order) reshape of `x` to the ONNX
/// shape `target`, writing ONNX value `out`: the IR reshapes an NCHW copy.
pub(super) fn reshape_to(cx: &mut Lowering, name: &str, mut x: TensorId, target: Vec<usize>, out: &str) -> Result<()> {
    let to_nhwc = target.len() == 4;
    if cx.shape(x).len() == 4 {
        x = cx.push(name, Op::Transpose { perm: NHWC_TO_NCHW.to_vec() }, vec![x], None)?;
    }
    let y = cx.push(name, Op::Reshape { shape: target }, vec![x], (!to_nhwc).then_some(out))?;
    if to_nhwc {
        cx.push(name, Op::Transpose { perm: NCHW_TO_NHWC.to_vec() }, vec![y], Some(out))?;
    }
    Ok(())
}

/// Squeeze and Unsqueeze (axes as an attribute before opset 13, an input
/// from 13 on): reshapes that drop or insert dimensions of 1.
pub(super) fn squeeze(cx: &mut Lowering, node: &NodeProto, opset: i64) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let input = onnx_shape(cx.shape(x));
    let axes = if opset < 13 { node.get_attr_opt_vec::<i64>("axes")? } else { cx.constant_ints(node, 1)? };
    let target: Vec<usize> = if node.op_type == "Squeeze" {
        let axes = match axes {
            Some(axes) => axes.iter().map(|&a| onnx_axis(a, input.len())).collect::<Result<Vec<_>>>()?,
            None => (0..input.len()).filter(|&a| input[a] == 1).collect(),
        };
        for &a in &axes {
            ensure!(input[a] == 1, "Squeeze of axis {a}, of size {} in {input:?}", input[a]);
        }
        (0..input.len()).filter(|a| !axes.contains(a)).map(|a| input[a]).collect()
    } else {
        let axes = axes.context("Unsqueeze needs axes")?;
        let rank = input.len() + axes.len();
        let mut axes = axes.iter().map(|&a| onnx_axis(a, rank)).collect::<Result<Vec<_>>>()?;
        axes.sort_unstable();
        axes.dedup();
        ensure!(axes.len() + input.len() == rank, "Unsqueeze names an axis twice");
        let mut kept = input.iter();
        (0..rank).map(|a| if axes.contains(&a) { 1 } else { kept.next().copied().unwrap_or(1) }).collect()
    };
    reshape_to(cx, &node.name, x, target, &node.output[0])
}

/// DepthToSpace (modes DCR and CRD) and SpaceToDepth with block size `b`,
/// as reshapes and transposes of rank at most 4 on the NHWC tensor.
///
/// DCR reads input channel `(i * b + j) * C' + c` into pixel `(h * b + i,
/// w * b + j)`, channel `c`: in NHWC the input is `[N·H, W, b(i), b·C'(j,
/// c)]`, and swapping its two middle axes gives the output's row-major
/// order `[N, H·b, W·b, C']`. CRD reads channel `c * b² + i * b + j`: one
/// transpose of `[N·H·W, C', b²]` to `[N·H·W, b², C']` first makes it DCR.
/// SpaceToDepth is DCR backwards: `[N·H', b, W', b·C]` with the middle axes
/// swapped is `[N, H', W', b²·C]`, output channel `(i * b + j) * C + c`.
pub(super) fn depth_space(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let mut x = cx.activation(&node.input[0])?;
    let &[n, h, w, c] = cx.shape(x) else { bail!("{} of a rank-{} tensor", node.op_type, cx.shape(x).len()) };
    let b = node.get_attr::<usize>("blocksize")?;
    ensure!(b > 0, "block size 0");
    let name = node.name.as_str();
    let swap = Op::Transpose { perm: vec![0, 2, 1, 3] };
    let out = node.output[0].as_str();
    if node.op_type == "SpaceToDepth" {
        ensure!(h % b == 0 && w % b == 0, "{h}x{w} pixels do not split into {b}x{b} blocks");
        let x = cx.push(name, Op::Reshape { shape: vec![n * h / b, b, w / b, b * c] }, vec![x], None)?;
        let x = cx.push(name, swap, vec![x], None)?;
        cx.push(name, Op::Reshape { shape: vec![n, h / b, w / b, b * b * c] }, vec![x], Some(out))?;
        return Ok(());
    }
    ensure!(c % (b * b) == 0, "{c} channels do not fill {b}x{b} blocks");
    let mode: String = node.get_attr_opt("mode")?.unwrap_or_else(|| "DCR".into());
    match mode.as_str() {
        "DCR" => {}
        "CRD" => {
            let flat = cx.push(name, Op::Reshape { shape: vec![n * h * w, c / (b * b), b * b] }, vec![x], None)?;
            x = cx.push(name, Op::Transpose { perm: vec![0, 2, 1] }, vec![flat], None)?;
        }
        other => bail!("DepthToSpace mode `{other}` (DCR or CRD expected)"),
    }
    let x = cx.push(name, Op::Reshape { shape: vec![n * h, w, b, c / b] }, vec![x], None)?;
    let x = cx.push(name, swap, vec![x], None)?;
    cx.push(name, Op::Reshape { shape: vec![n, h * b, w * b, c / (b * b)] }, vec![x], Some(out))?;
    Ok(())
}

pub(super) fn transpose(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let rank = cx.shape(x).len();
    let perm = node.get_attr_opt_vec::<usize>("perm")?.unwrap_or_else(|| (0..rank).rev().collect());
    ensure!(perm.len() == rank, "perm {perm:?} for rank {rank}");
    let perm = if rank == 4 { (0..4).map(|j| NHWC_TO_NCHW[perm[NCHW_TO_NHWC[j]]]).collect() } else { perm };
    cx.unary(node, Op::Transpose { perm })
}

pub(super) fn concat(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let inputs = node.input.iter().map(|i| cx.activation(i)).collect::<Result<Vec<_>>>()?;
    let axis = ir_axis(node.get_attr::<i64>("axis")?, cx.shape(inputs[0]).len())?;
    cx.push(&node.name, Op::Concat { axis }, inputs, Some(&node.output[0]))?;
    Ok(())
}

pub(super) fn pad(cx: &mut Lowering, node: &NodeProto, opset: i64) -> Result<()> {
    let mode: String = node.get_attr_opt("mode")?.unwrap_or_else(|| "constant".into());
    ensure!(mode == "constant", "Pad mode `{mode}` is not supported (only constant)");
    let x = cx.activation(&node.input[0])?;
    let rank = cx.shape(x).len();
    let (pads, value) = if opset < 11 {
        (node.get_attr_vec::<i64>("pads")?, node.get_attr_opt::<f32>("value")?.unwrap_or(0.0))
    } else {
        let Some(pads) = cx.constant_ints(node, 1)? else { bail!("Pad needs pads") };
        let value = match node.input.get(2).filter(|v| !v.is_empty()) {
            Some(v) => cx.constant(v)?.values[0],
            None => 0.0,
        };
        (pads, value)
    };
    ensure!(pads.len() == 2 * rank && pads.iter().all(|&p| p >= 0), "pads {pads:?} (negative or wrong rank)");
    let onnx_axis = |j: usize| if rank == 4 { NCHW_TO_NHWC[j] } else { j };
    let pads = (0..rank).map(|j| (pads[onnx_axis(j)] as usize, pads[onnx_axis(j) + rank] as usize)).collect();
    cx.unary(node, Op::Pad { pads, value })
}

/// Resize (opset 10+) and Upsample: spatial scaling of an NCHW tensor.
pub(super) fn resize(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let input = onnx_shape(cx.shape(x));
    ensure!(input.len() == 4, "Resize of a rank-{} tensor is not supported", input.len());
    let legacy = node.op_type == "Upsample" || node.input.len() == 2;
    let (scales_ix, sizes_ix) = if legacy { (1, 3) } else { (2, 3) };
    let (size, scales): (Vec<usize>, Vec<f32>) =
        if let Some(sizes) = cx.constant_ints(node, sizes_ix)?.filter(|s| !s.is_empty()) {
            let size: Vec<usize> = sizes.iter().map(|&s| s as usize).collect();
            let scales = size.iter().zip(&input).map(|(&o, &i)| o as f32 / i as f32).collect();
            (size, scales)
        } else {
            let name = node.input.get(scales_ix).filter(|s| !s.is_empty());
            let Some(name) = name else { bail!("Resize needs scales or sizes") };
            let scales = cx.constant(name)?.values;
            let size = input.iter().zip(&scales).map(|(&d, &s)| (d as f32 * s).floor() as usize).collect();
            (size, scales)
        };
    ensure!(size.len() == 4 && size[..2] == input[..2], "Resize may scale H and W only, not {input:?} to {size:?}");
    let mode: String = node.get_attr_opt("mode")?.unwrap_or_else(|| "nearest".into());
    let linear = match mode.as_str() {
        "nearest" => false,
        "linear" | "bilinear" => true,
        other => bail!("Resize mode `{other}` is not supported"),
    };
    let default_coordinates = if legacy { "asymmetric" } else { "half_pixel" };
    let coordinate_mode =
        node.get_attr_opt::<String>("coordinate_transformation_mode")?.unwrap_or_else(|| default_coordinates.into());
    let nearest_mode = if legacy {
        "floor".into()
    } else {
        node.get_attr_opt::<String>("nearest_mode")?.unwrap_or_else(|| "round_prefer_floor".into())
    };
    let op =
        Op::Resize { size: [size[2], size[3]], scales: [scales[2], scales[3]], linear, coordinate_mode, nearest_mode };
    cx.unary(node, op)
}

pub(super) fn softmax(cx: &mut Lowering, node: &NodeProto, opset: i64) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let rank = cx.shape(x).len();
    let axis = node.get_attr_opt::<i64>("axis")?.unwrap_or(if opset < 13 { 1 } else { -1 });
    let last = axis == -1 || axis == rank as i64 - 1;
    ensure!(
        opset >= 13 || last,
        "Softmax (opset {opset}) over ONNX axis {axis} of a rank-{rank} tensor flattens the axes from {axis} on; \
         kiln supports it over the last axis only"
    );
    let axis = ir_axis(axis, rank)?;
    if axis + 1 == rank {
        return cx.unary(node, Op::Softmax { axis });
    }
    // The int8 kernel works along the last axis: move the axis there and
    // back (the passes cancel the transposes against their neighbours').
    let mut to_last: Vec<usize> = (0..rank).filter(|&a| a != axis).collect();
    to_last.push(axis);
    let mut back = vec![0; rank];
    for (i, &a) in to_last.iter().enumerate() {
        back[a] = i;
    }
    let moved = cx.push(&format!("{}.to_last", node.name), Op::Transpose { perm: to_last }, vec![x], None)?;
    let soft = cx.push(&node.name, Op::Softmax { axis: rank - 1 }, vec![moved], None)?;
    cx.push(&format!("{}.back", node.name), Op::Transpose { perm: back }, vec![soft], Some(&node.output[0]))?;
    Ok(())
}
