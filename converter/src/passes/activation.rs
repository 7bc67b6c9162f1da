//! Fuses PRelu/LeakyRelu and Relu/Relu6/Clip into the Conv or FullyConnected
//! before them: the int8 kernels apply them in the requantisation step.

use super::{per_channel, sole_consumer};
use crate::ir::{Graph, Op};

pub(super) fn fuse(graph: &mut Graph) {
    while let Some((conv, act)) = graph.find_pair(|g, n| {
        let next = sole_consumer(g, n)?;
        let (Op::Conv2d { activation, .. } | Op::FullyConnected { activation, .. }) = &g.nodes[n].op else {
            return None;
        };
        let fits = match g.nodes[next].op {
            // A slope after a clamp would not be `clamp(prelu(x))`.
            Op::PRelu { .. } => activation.alpha.is_none() && activation.clamp.is_none(),
            Op::Clamp { .. } => true,
            _ => false,
        };
        fits.then_some(next)
    }) {
        let fused = graph.nodes[act].op.clone();
        let (Op::Conv2d { activation, bias, .. } | Op::FullyConnected { activation, bias, .. }) =
            &mut graph.nodes[conv].op
        else {
            unreachable!()
        };
        match fused {
            Op::PRelu { slope } => activation.alpha = Some(per_channel(&slope, bias.len())),
            Op::Clamp { lo, hi } => {
                let (l0, h0) = activation.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
                activation.clamp = Some((lo.max(l0), hi.min(h0)));
            }
            _ => unreachable!(),
        }
        graph.absorb(conv, act);
    }
}
