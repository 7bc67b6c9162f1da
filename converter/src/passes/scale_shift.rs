//! Folds per-channel affine ops (`ScaleShift`: BatchNorm, arithmetic with a
//! constant) into each other and into the Conv/FullyConnected before them.

use super::{per_channel, sole_consumer};
use crate::ir::{Graph, Op};

/// `(x * s1 + t1) * s2 + t2` becomes `x * (s1 s2) + (t1 s2 + t2)`.
pub(super) fn merge_chains(graph: &mut Graph) {
    while let Some((first, second)) = graph.find_pair(|g, n| {
        let next = sole_consumer(g, n)?;
        let both = matches!(g.nodes[n].op, Op::ScaleShift { .. }) && matches!(g.nodes[next].op, Op::ScaleShift { .. });
        both.then_some(next)
    }) {
        let Op::ScaleShift { scale: s2, shift: t2 } = graph.nodes[second].op.clone() else { unreachable!() };
        let Op::ScaleShift { scale: s1, shift: t1 } = &mut graph.nodes[first].op else { unreachable!() };
        let n = s1.len().max(t1.len()).max(s2.len()).max(t2.len());
        let (a1, b1, a2, b2) = (per_channel(s1, n), per_channel(t1, n), per_channel(&s2, n), per_channel(&t2, n));
        *s1 = (0..n).map(|c| a1[c] * a2[c]).collect();
        *t1 = (0..n).map(|c| b1[c] * a2[c] + b2[c]).collect();
        graph.absorb(first, second);
    }
}

/// `conv(x) * s + t`, with no fused activation yet, becomes a conv with
/// weights of output channel `c` times `s[c]` and bias `b[c] s[c] + t[c]`:
/// BatchNorm folding.
pub(super) fn fold_into_producer(graph: &mut Graph) {
    while let Some((conv, affine)) = graph.find_pair(|g, n| {
        let next = sole_consumer(g, n)?;
        let fits = match &g.nodes[n].op {
            Op::Conv2d { activation, .. } | Op::FullyConnected { activation, .. } => *activation == Default::default(),
            _ => false,
        };
        (fits && matches!(g.nodes[next].op, Op::ScaleShift { .. })).then_some(next)
    }) {
        let Op::ScaleShift { scale, shift } = graph.nodes[affine].op.clone() else { unreachable!() };
        let (Op::Conv2d { weights, bias, .. } | Op::FullyConnected { weights, bias, .. }) = &mut graph.nodes[conv].op
        else {
            unreachable!()
        };
        let outputs = bias.len();
        let (scale, shift) = (per_channel(&scale, outputs), per_channel(&shift, outputs));
        let filter_len = weights.len() / outputs;
        for (c, filter) in weights.chunks_mut(filter_len).enumerate() {
            filter.iter_mut().for_each(|w| *w *= scale[c]);
            bias[c] = bias[c] * scale[c] + shift[c];
        }
        graph.absorb(conv, affine);
    }
}

/// `fc(flatten(x * s + t))` (a BatchNorm after the last activation, before
/// the embedding layer) becomes an FC whose column `j`, which reads channel
/// `j % C` of the NHWC data, is scaled by `s[j % C]`, with the shifts moved
/// into its bias. Runs after the Flatten→Gemm pass, when the flatten is a
/// plain reshape of NHWC data.
pub(super) fn fold_into_flatten_fc(graph: &mut Graph) {
    while let Some((affine, reshape)) = graph.find_pair(|g, n| {
        let reshape = sole_consumer(g, n)?;
        let fc = sole_consumer(g, reshape)?;
        let fits = matches!(g.nodes[n].op, Op::ScaleShift { .. })
            && matches!(g.nodes[reshape].op, Op::Reshape { .. })
            && matches!(g.nodes[fc].op, Op::FullyConnected { .. })
            && g.tensors[g.nodes[reshape].output].shape.first() == Some(&1);
        fits.then_some(reshape)
    }) {
        let Op::ScaleShift { scale, shift } = graph.nodes[affine].op.clone() else { unreachable!() };
        let channels = *graph.tensors[graph.nodes[affine].output].shape.last().unwrap_or(&1);
        let (scale, shift) = (per_channel(&scale, channels), per_channel(&shift, channels));
        let fc = graph.consumers(graph.nodes[reshape].output)[0];
        let Op::FullyConnected { weights, bias, .. } = &mut graph.nodes[fc].op else { unreachable!() };
        let inputs = weights.len() / bias.len();
        for (o, row) in weights.chunks_mut(inputs).enumerate() {
            for (j, w) in row.iter_mut().enumerate() {
                bias[o] += *w * shift[j % channels];
                *w *= scale[j % channels];
            }
        }
        let input = graph.nodes[affine].inputs[0];
        graph.remove_node_replacing_output(affine, input);
    }
}
