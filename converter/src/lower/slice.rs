//! Lowering of Slice and Split to IR Slices (a Split becomes one Slice per
//! output, since an IR node has one output).

use anyhow::{bail, ensure, Context, Result};
use tract_onnx::pb::NodeProto;

use super::shape::onnx_shape;
use super::{onnx_axis, Lowering};
use crate::ir::{Op, TensorId, NCHW_TO_NHWC};

/// Along one axis: the first index, the step and the count.
#[derive(Clone, Copy, Debug)]
struct Range {
    start: usize,
    step: i64,
    size: usize,
}

/// The whole of every axis of an ONNX shape.
fn whole(dims: &[usize]) -> Vec<Range> {
    dims.iter().map(|&size| Range { start: 0, step: 1, size }).collect()
}

/// ONNX Slice's reading of `start`, `end` and `step` on an axis of `dim`
/// elements: negative bounds count from the end, then both are clamped
/// (to `0..=dim` going forwards, to `-1..=dim - 1` backwards).
fn clamped(start: i64, end: i64, step: i64, dim: usize) -> Result<Range> {
    ensure!(step != 0, "a Slice step is 0");
    let d = i128::from(dim as i64);
    let norm = |v: i64| if v < 0 { i128::from(v) + d } else { i128::from(v) };
    let (s, e, k) = (norm(start), norm(end), i128::from(step));
    let (s, e) = if k > 0 { (s.clamp(0, d), e.clamp(0, d)) } else { (s.clamp(0, d - 1), e.clamp(-1, d - 1)) };
    let span = if k > 0 { e - s } else { s - e };
    let size = if span > 0 { (span - 1) / k.abs() + 1 } else { 0 };
    ensure!(
        size > 0,
        "the slice from {start} to {end} by step {step} of {dim} elements is empty: kiln has no empty tensors"
    );
    // One element reads no step: keep the step small for the file.
    Ok(Range { start: s as usize, step: if size == 1 { 1 } else { step }, size: size as usize })
}

/// Appends an IR Slice of `x` over `ranges` (ONNX axis order) writing ONNX
/// value `out`.
fn push(cx: &mut Lowering, name: &str, x: TensorId, ranges: &[Range], out: &str) -> Result<()> {
    let ir: Vec<Range> =
        if ranges.len() == 4 { NCHW_TO_NHWC.iter().map(|&a| ranges[a]).collect() } else { ranges.to_vec() };
    let op = Op::Slice {
        start: ir.iter().map(|r| r.start).collect(),
        step: ir.iter().map(|r| r.step).collect(),
        size: ir.iter().map(|r| r.size).collect(),
    };
    cx.push(name, op, vec![x], Some(out))?;
    Ok(())
}

/// Slice: `starts`, `ends`, `axes` and `steps` as inputs (opset 10 on) or
/// `starts`, `ends` and `axes` as attributes (opsets 1 to 9).
pub(super) fn slice(cx: &mut Lowering, node: &NodeProto, opset: i64) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let dims = onnx_shape(cx.shape(x));
    let (starts, ends, axes, steps) = if opset < 10 {
        (node.get_attr_vec::<i64>("starts")?, node.get_attr_vec::<i64>("ends")?, node.get_attr_opt_vec("axes")?, None)
    } else {
        let needed = |i: usize, what: &str| cx.constant_ints(node, i)?.with_context(|| format!("Slice needs {what}"));
        (needed(1, "starts")?, needed(2, "ends")?, cx.constant_ints(node, 3)?, cx.constant_ints(node, 4)?)
    };
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    ensure!(
        ends.len() == n && axes.len() == n && steps.len() == n,
        "Slice has {n} starts, {} ends, {} axes and {} steps",
        ends.len(),
        axes.len(),
        steps.len()
    );
    let mut ranges = whole(&dims);
    for i in 0..n {
        let a = onnx_axis(axes[i], dims.len())?;
        ranges[a] = clamped(starts[i], ends[i], steps[i], dims[a]).with_context(|| format!("axis {}", axes[i]))?;
    }
    push(cx, &node.name, x, &ranges, &node.output[0])
}

/// Split along `axis` into the sizes of `split` (an attribute before opset
/// 13, an input from 13 on), or into `num_outputs` chunks of the rounded-up
/// equal size (opset 18), or into equal parts, one per output.
pub(super) fn split(cx: &mut Lowering, node: &NodeProto, opset: i64) -> Result<()> {
    let x = cx.activation(&node.input[0])?;
    let dims = onnx_shape(cx.shape(x));
    let axis = onnx_axis(node.get_attr_opt::<i64>("axis")?.unwrap_or(0), dims.len())?;
    let (d, parts) = (dims[axis], node.output.len());
    let split = if opset < 13 { node.get_attr_opt_vec::<i64>("split")? } else { cx.constant_ints(node, 1)? };
    let sizes: Vec<usize> = match (split, node.get_attr_opt::<usize>("num_outputs")?) {
        (Some(split), _) => split.iter().map(|&s| usize::try_from(s)).collect::<Result<_, _>>()?,
        (None, Some(k)) => {
            ensure!(k == parts && k > 0, "num_outputs is {k}, the node has {parts} outputs");
            let chunk = d.div_ceil(k);
            (0..k).map(|i| chunk.min(d.saturating_sub(i * chunk))).collect()
        }
        (None, None) => {
            ensure!(d % parts == 0, "{d} elements do not split into {parts} equal parts");
            vec![d / parts; parts]
        }
    };
    ensure!(
        sizes.len() == parts && sizes.iter().sum::<usize>() == d,
        "split sizes {sizes:?} do not cut {d} elements into {parts} outputs"
    );
    let mut ranges = whole(&dims);
    let mut offset = 0;
    for (i, (&size, out)) in sizes.iter().zip(&node.output).enumerate() {
        if size == 0 {
            bail!("output {i} of the split is empty: kiln has no empty tensors");
        }
        ranges[axis] = Range { start: offset, step: 1, size };
        push(cx, &format!("{}.{i}", node.name), x, &ranges, out)?;
        offset += size;
    }
    Ok(())
}
