//! What a graph costs: multiply-accumulates per inference and weight count,
//! for pruning's budget and its before/after report.

use super::{Graph, Node, Op, TensorId};

/// Multiply-accumulates of one inference: convolutions and fully connected
/// layers (everything else is a small fraction and not counted).
pub fn macs(graph: &Graph) -> u64 {
    macs_with(graph, |t| graph.tensors[t].shape.last().copied().unwrap_or(1))
}

/// [`macs`] if each tensor's last axis (its channels) had `width(t)` entries.
pub fn macs_with(graph: &Graph, width: impl Fn(TensorId) -> usize) -> u64 {
    graph.nodes.iter().map(|node| node_macs_with(graph, node, &width)).sum()
}

/// The multiply-accumulates of one node (0 for all but convolutions and
/// fully connected layers).
pub fn node_macs(graph: &Graph, node: &Node) -> u64 {
    node_macs_with(graph, node, &|t| graph.tensors[t].shape.last().copied().unwrap_or(1))
}

fn node_macs_with(graph: &Graph, node: &Node, width: &impl Fn(TensorId) -> usize) -> u64 {
    let shape = &graph.tensors[node.output].shape;
    let rows: usize = shape[..shape.len().saturating_sub(1)].iter().product();
    let (cin, cout) = (width(node.inputs[0]), width(node.output));
    let per_row = match &node.op {
        Op::Conv2d { weight_shape: [out, kh, kw, 1], groups, .. } if groups == out => kh * kw * cout,
        Op::Conv2d { weight_shape: [_, kh, kw, _], groups, .. } => kh * kw * cin / groups * cout,
        Op::FullyConnected { .. } => cin * cout,
        _ => 0,
    };
    (rows * per_row) as u64
}

/// Learned parameters: weights, biases and per-channel vectors.
pub fn parameters(graph: &Graph) -> u64 {
    let count = |op: &Op| match op {
        Op::Conv2d { weights, bias, activation, .. } | Op::FullyConnected { weights, bias, activation, .. } => {
            weights.len() + bias.len() + activation.alpha.as_ref().map_or(0, Vec::len)
        }
        Op::ScaleShift { scale, shift } => scale.len() + shift.len(),
        Op::PRelu { slope } => slope.len(),
        _ => 0,
    };
    graph.nodes.iter().map(|n| count(&n.op) as u64).sum()
}
