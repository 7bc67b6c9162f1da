//! Physical removal: every op and tensor loses the pruned channels, so the
//! file gets smaller and the kernels do less work.

use anyhow::{Context, Result};

use super::channels::{is_depthwise, Channel};
use crate::ir::{self, Graph, Op};

/// Removes `channels` from `graph` and returns, for every tensor, the
/// original indices of the channels it keeps (all of them if none went).
/// The caller guarantees that `channels` is a union of whole units.
pub fn shrink(graph: &mut Graph, channels: &[Channel]) -> Result<Vec<Vec<usize>>> {
    let mut gone: Vec<Vec<bool>> =
        graph.tensors.iter().map(|t| vec![false; t.shape.last().copied().unwrap_or(1)]).collect();
    for c in channels {
        gone[c.tensor][c.index] = true;
    }
    let keep: Vec<Vec<usize>> = gone.iter().map(|g| (0..g.len()).filter(|&i| !g[i]).collect()).collect();
    for node in &mut graph.nodes {
        let (input, output) = (&keep[node.inputs[0]], &keep[node.output]);
        let out_width = gone[node.output].len();
        let depthwise = is_depthwise(&node.op);
        match &mut node.op {
            Op::Conv2d { weights, weight_shape, bias, groups, activation, .. } => {
                let [o, kh, kw, ci] = *weight_shape;
                let columns: Vec<usize> = if depthwise { vec![0] } else { input.clone() };
                *weights = select_2d(weights, o, kh * kw, ci, output, &columns);
                *bias = select(bias, output);
                if let Some(alpha) = &mut activation.alpha {
                    *alpha = select_channels(alpha, output, out_width);
                }
                *weight_shape = [output.len(), kh, kw, columns.len()];
                if depthwise {
                    *groups = output.len();
                }
            }
            Op::FullyConnected { weights, out_features, bias, activation } => {
                let k = weights.len() / *out_features;
                *weights = select_2d(weights, *out_features, 1, k, output, input);
                *bias = select(bias, output);
                if let Some(alpha) = &mut activation.alpha {
                    *alpha = select_channels(alpha, output, out_width);
                }
                *out_features = output.len();
            }
            Op::ScaleShift { scale, shift } => {
                *scale = select_channels(scale, output, out_width);
                *shift = select_channels(shift, output, out_width);
            }
            Op::PRelu { slope } => *slope = select_channels(slope, output, out_width),
            _ => {}
        }
    }
    for (t, kept) in keep.iter().enumerate() {
        if let Some(last) = graph.tensors[t].shape.last_mut() {
            *last = kept.len();
        }
    }
    for node in &mut graph.nodes {
        if let Op::Reshape { shape } = &mut node.op {
            shape.clone_from(&graph.tensors[node.output].shape);
        }
    }
    ir::infer_shapes(graph).context("the pruned graph is inconsistent (a bug in the channel analysis)")?;
    Ok(keep)
}

/// Rows `rows` of a `[R][taps][K]` array, each tap keeping columns `columns`.
fn select_2d(w: &[f32], r: usize, taps: usize, k: usize, rows: &[usize], columns: &[usize]) -> Vec<f32> {
    debug_assert_eq!(w.len(), r * taps * k);
    let mut out = Vec::with_capacity(rows.len() * taps * columns.len());
    for &row in rows {
        for tap in 0..taps {
            let base = (row * taps + tap) * k;
            out.extend(columns.iter().map(|&c| w[base + c]));
        }
    }
    out
}

fn select(v: &[f32], indices: &[usize]) -> Vec<f32> {
    indices.iter().map(|&i| v[i]).collect()
}

/// A per-channel vector (or a single shared value, kept as is).
fn select_channels(v: &[f32], indices: &[usize], width: usize) -> Vec<f32> {
    if v.len() == width && width > 1 {
        select(v, indices)
    } else {
        v.to_vec()
    }
}
