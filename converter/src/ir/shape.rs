//! Output shapes of IR ops, checked against their inputs: lowering uses it to
//! shape each new tensor, and [`infer_shapes`] re-checks a whole graph after
//! the passes rewrote it.

use anyhow::{bail, ensure, Result};

use super::{Graph, Op, Window};

/// Output shape of `op` applied to inputs of `shapes`.
pub fn output_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let first = shapes.first().copied().unwrap_or_default();
    Ok(match op {
        Op::Conv2d { weight_shape, stride, dilation, pads, groups, bias, .. } => {
            let [n, h, w, c] = nhwc(first)?;
            let [o, kh, kw, ci] = *weight_shape;
            ensure!(ci * groups == c, "conv expects {} input channels, got {c}", ci * groups);
            ensure!(o % groups == 0 && bias.len() == o, "conv bias or groups do not fit {o} outputs");
            vec![
                n,
                window_out(h, kh, stride[0], dilation[0], pads[0] + pads[2])?,
                window_out(w, kw, stride[1], dilation[1], pads[1] + pads[3])?,
                o,
            ]
        }
        Op::FullyConnected { weights, out_features, bias, .. } => {
            let (&k, outer) = first.split_last().unwrap_or((&0, &[]));
            ensure!(weights.len() == k * out_features, "fully connected: {} weights for {k} inputs", weights.len());
            ensure!(bias.len() == *out_features, "fully connected: {} biases", bias.len());
            [outer, &[*out_features]].concat()
        }
        Op::ScaleShift { scale, shift } => {
            channelwise(first, scale)?;
            channelwise(first, shift)?;
            first.to_vec()
        }
        Op::PRelu { slope } => {
            channelwise(first, slope)?;
            first.to_vec()
        }
        Op::Add | Op::Sub | Op::Mul | Op::Max | Op::Min | Op::Div => broadcast(shapes)?,
        Op::MatMul => {
            let (a, b) = (first, shapes.get(1).copied().unwrap_or_default());
            let rank = a.len();
            ensure!(
                (2..=4).contains(&rank) && b.len() == rank && a[..rank - 2] == b[..rank - 2],
                "matrix product of {a:?} and {b:?}: ranks 2 to 4, equal, with equal leading dimensions expected"
            );
            ensure!(a[rank - 1] == b[rank - 2], "matrix product of {a:?} and {b:?}: inner sizes differ");
            [&a[..rank - 1], &[b[rank - 1]]].concat()
        }
        Op::Math(_) => first.to_vec(),
        Op::Concat { axis } => {
            let mut out = first.to_vec();
            ensure!(*axis < out.len(), "concat axis {axis} out of rank {}", out.len());
            for s in &shapes[1..] {
                ensure!(s.len() == out.len(), "concat of ranks {} and {}", out.len(), s.len());
                for (d, (&a, &b)) in out.iter().zip(s.iter()).enumerate() {
                    ensure!(d == *axis || a == b, "concat shapes {first:?} and {s:?} differ off axis {axis}");
                }
                out[*axis] += s[*axis];
            }
            out
        }
        Op::MaxPool(window) | Op::AvgPool { window, .. } => pooled(first, window)?,
        Op::GlobalAvgPool => {
            let [n, _, _, c] = nhwc(first)?;
            vec![n, 1, 1, c]
        }
        Op::Clamp { .. } | Op::Sigmoid | Op::Tanh | Op::Abs | Op::Neg | Op::HardSwish | Op::HardSigmoid { .. } => {
            first.to_vec()
        }
        Op::Slice { start, step, size } => {
            let rank = first.len();
            ensure!(
                start.len() == rank && step.len() == rank && size.len() == rank,
                "slice parameters for ranks {}, {} and {} on rank {rank}",
                start.len(),
                step.len(),
                size.len()
            );
            for a in 0..rank {
                let last = start[a] as i64 + (size[a] as i64 - 1) * step[a];
                ensure!(
                    size[a] > 0 && step[a] != 0 && start[a] < first[a] && (0..first[a] as i64).contains(&last),
                    "slice of {} elements from {} by step {} does not fit axis {a} of {first:?}",
                    size[a],
                    start[a],
                    step[a]
                );
            }
            size.clone()
        }
        Op::Reduce { .. } => {
            let mut out = first.to_vec();
            match out.last_mut() {
                Some(last) => *last = 1,
                None => bail!("reduce of a scalar"),
            }
            out
        }
        Op::Softmax { axis } => {
            ensure!(*axis < first.len(), "softmax axis {axis} out of rank {}", first.len());
            first.to_vec()
        }
        Op::Reshape { shape } => {
            ensure!(
                shape.iter().product::<usize>() == first.iter().product::<usize>(),
                "cannot reshape {first:?} to {shape:?}"
            );
            shape.clone()
        }
        Op::Transpose { perm } => {
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            ensure!(sorted == (0..first.len()).collect::<Vec<_>>(), "bad permutation {perm:?} of rank {}", first.len());
            perm.iter().map(|&p| first[p]).collect()
        }
        Op::Pad { pads, .. } => {
            ensure!(pads.len() == first.len(), "pad of rank {} on rank {}", pads.len(), first.len());
            first.iter().zip(pads).map(|(d, (b, a))| d + b + a).collect()
        }
        Op::Resize { size, .. } => {
            let [n, _, _, c] = nhwc(first)?;
            vec![n, size[0], size[1], c]
        }
        Op::ZeroInsert { stride } => {
            let [n, h, w, c] = nhwc(first)?;
            ensure!(h > 0 && w > 0 && stride.iter().all(|&s| s > 0), "zero insertion of {h}x{w} at stride {stride:?}");
            vec![n, (h - 1) * stride[0] + 1, (w - 1) * stride[1] + 1, c]
        }
    })
}

/// Recomputes every node's output shape and checks it against the stored one.
pub fn infer_shapes(graph: &Graph) -> Result<()> {
    for node in &graph.nodes {
        let inputs: Vec<&[usize]> = node.inputs.iter().map(|&t| &graph.tensors[t].shape[..]).collect();
        let out = output_shape(&node.op, &inputs)?;
        ensure!(
            out == graph.tensors[node.output].shape,
            "node `{}` ({}) computes {out:?} but its output is {:?}",
            node.name,
            node.op.name(),
            graph.tensors[node.output].shape
        );
    }
    Ok(())
}

fn nhwc(shape: &[usize]) -> Result<[usize; 4]> {
    match shape {
        &[n, h, w, c] => Ok([n, h, w, c]),
        _ => bail!("expects a rank-4 NHWC tensor, got {shape:?}"),
    }
}

fn window_out(size: usize, kernel: usize, stride: usize, dilation: usize, pad: usize) -> Result<usize> {
    let span = dilation * (kernel - 1) + 1;
    ensure!(
        stride > 0 && size + pad >= span,
        "window {kernel} (dilation {dilation}) larger than {size} + padding {pad}"
    );
    Ok((size + pad - span) / stride + 1)
}

fn pooled(shape: &[usize], w: &Window) -> Result<Vec<usize>> {
    let [n, h, wd, c] = nhwc(shape)?;
    Ok(vec![
        n,
        window_out(h, w.kernel[0], w.stride[0], 1, w.pads[0] + w.pads[2])?,
        window_out(wd, w.kernel[1], w.stride[1], 1, w.pads[1] + w.pads[3])?,
        c,
    ])
}

fn channelwise(shape: &[usize], params: &[f32]) -> Result<()> {
    let c = shape.last().copied().unwrap_or(1);
    ensure!(params.len() == 1 || params.len() == c, "{} per-channel values for {c} channels", params.len());
    Ok(())
}

/// Numpy broadcasting of equal-rank shapes.
pub(crate) fn broadcast(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let mut out = shapes[0].to_vec();
    for s in &shapes[1..] {
        ensure!(s.len() == out.len(), "broadcast of ranks {} and {}", out.len(), s.len());
        for (o, &d) in out.iter_mut().zip(s.iter()) {
            ensure!(*o == d || *o == 1 || d == 1, "cannot broadcast {:?} with {s:?}", shapes[0]);
            *o = (*o).max(d);
        }
    }
    Ok(out)
}
