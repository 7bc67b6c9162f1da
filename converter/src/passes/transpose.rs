//! Composes back-to-back transposes and drops those that cancel out.
//!
//! Detection heads often transpose NCHW to NHWC and then reshape. In the IR
//! the data is NHWC already, so lowering's transpose back to ONNX order
//! before the reshape undoes the head's transpose: neither needs to run.

use super::sole_consumer;
use crate::ir::{Graph, Op};

pub(super) fn compose(graph: &mut Graph) {
    while let Some((first, second)) = graph.find_pair(|g, n| {
        let next = sole_consumer(g, n)?;
        let both = matches!(g.nodes[n].op, Op::Transpose { .. }) && matches!(g.nodes[next].op, Op::Transpose { .. });
        both.then_some(next)
    }) {
        let Op::Transpose { perm: p2 } = graph.nodes[second].op.clone() else { unreachable!() };
        let Op::Transpose { perm: p1 } = &mut graph.nodes[first].op else { unreachable!() };
        // Output axis i of the second is its input axis p2[i], which is the
        // first's input axis p1[p2[i]].
        *p1 = p2.iter().map(|&a| p1[a]).collect();
        let identity = p1.iter().enumerate().all(|(i, &a)| i == a);
        graph.absorb(first, second);
        if identity {
            let input = graph.nodes[first].inputs[0];
            graph.remove_node_replacing_output(first, input);
        }
    }
}
