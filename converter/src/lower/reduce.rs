//! Lowering of reductions: ReduceMean, ReduceMax and GlobalMaxPool.

use anyhow::{bail, Result};
use tract_onnx::pb::NodeProto;

use super::shape::{onnx_shape, reshape_to};
use super::{ir_axis, onnx_axis, Lowering, Value};
use crate::ir::{Op, Window};

/// Max pooling with a window of the whole `h`×`w` image.
fn whole_image(h: usize, w: usize) -> Op {
    Op::MaxPool(Window { kernel: [h, w], stride: [1, 1], pads: [0; 4] })
}

/// GlobalMaxPool: a max pooling whose window is the whole image.
pub(super) fn global_max_pool(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let &[_, h, w, _] = cx.shape(x) else {
        bail!("GlobalMaxPool of a rank-{} tensor: kiln pools 2-D images only", cx.shape(x).len())
    };
    cx.unary(node, whole_image(h, w))
}

/// ReduceMean and ReduceMax over `axes` (an attribute before opset 18, an
/// input from 18 on; every axis when there are none, unless
/// `noop_with_empty_axes`). Over H and W of an image they are a global
/// average pooling or a whole-image max pooling; over the last IR axis, the
/// IR's Reduce; over any other set, the reduced axes are moved last and
/// merged into one for the Reduce. Without `keepdims`, a reshape drops the
/// reduced axes in ONNX's order.
pub(super) fn reduce(cx: &mut Lowering, node: &NodeProto, opset: i64) -> Result<()> {
    let max = node.op_type == "ReduceMax";
    let x = cx.activation(&node.input[0])?;
    let shape = cx.shape(x).to_vec();
    let rank = shape.len();
    let axes = if opset < 18 { node.get_attr_opt_vec::<i64>("axes")? } else { cx.constant_ints(node, 1)? };
    let onnx_axes: Vec<i64> = match axes.filter(|a| !a.is_empty()) {
        Some(axes) => axes,
        None if node.get_attr_opt::<i64>("noop_with_empty_axes")? == Some(1) => {
            cx.values.insert(node.output[0].clone(), Value::Activation(x));
            return Ok(());
        }
        None => (0..rank as i64).collect(),
    };
    let mut axes = onnx_axes.iter().map(|&a| ir_axis(a, rank)).collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    let keep = node.get_attr_opt::<i64>("keepdims")?.unwrap_or(1) == 1;
    let mut kept_shape = shape.clone();
    axes.iter().for_each(|&a| kept_shape[a] = 1);
    let (name, out) = (node.name.as_str(), node.output[0].as_str());
    let keep_out = keep.then_some(out);
    let y = if rank == 4 && axes == [1, 2] {
        let op = if max { whole_image(shape[1], shape[2]) } else { Op::GlobalAvgPool };
        cx.push(name, op, vec![x], keep_out)?
    } else if axes == [rank - 1] {
        cx.push(name, Op::Reduce { max }, vec![x], keep_out)?
    } else {
        let kept: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
        let perm: Vec<usize> = kept.iter().chain(&axes).copied().collect();
        let moved = if perm.iter().enumerate().all(|(i, &p)| i == p) {
            x
        } else {
            cx.push(name, Op::Transpose { perm }, vec![x], None)?
        };
        let rows = kept.iter().map(|&a| shape[a]).product();
        let merged = axes.iter().map(|&a| shape[a]).product();
        let flat = cx.push(name, Op::Reshape { shape: vec![rows, merged] }, vec![moved], None)?;
        let reduced = cx.push(name, Op::Reduce { max }, vec![flat], None)?;
        cx.push(name, Op::Reshape { shape: kept_shape.clone() }, vec![reduced], keep_out)?
    };
    if !keep {
        let dropped = onnx_axes.iter().map(|&a| onnx_axis(a, rank)).collect::<Result<Vec<_>>>()?;
        let onnx = onnx_shape(&kept_shape);
        let target = (0..rank).filter(|a| !dropped.contains(a)).map(|a| onnx[a]).collect();
        reshape_to(cx, name, y, target, out)?;
    }
    Ok(())
}
