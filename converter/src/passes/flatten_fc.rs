//! Flatten→Gemm with NCHW semantics on NHWC data.
//!
//! Lowering turns ONNX's Flatten of an NCHW tensor into Transpose(NHWC→NCHW)
//! then Reshape. When a FullyConnected reads the result, the transpose can go:
//! permuting the FC's weight columns from C·H·W order to H·W·C order makes it
//! read the NHWC data directly, for free at run time.

use super::sole_consumer;
use crate::ir::{layout::transpose, Graph, Op, NHWC_TO_NCHW};

pub(super) fn fold_layout_transpose(graph: &mut Graph) {
    while let Some((tr, reshape)) = graph.find_pair(|g, n| {
        let Op::Transpose { perm } = &g.nodes[n].op else {
            return None;
        };
        let reshape = sole_consumer(g, n)?;
        let fc = sole_consumer(g, reshape)?;
        let shape = &g.tensors[g.nodes[reshape].output].shape;
        let fits = perm[..] == NHWC_TO_NCHW
            && matches!(g.nodes[reshape].op, Op::Reshape { .. })
            && shape.len() == 2
            && shape[0] == 1
            && matches!(g.nodes[fc].op, Op::FullyConnected { .. });
        fits.then_some(reshape)
    }) {
        let nhwc = graph.tensors[graph.nodes[tr].inputs[0]].shape.clone();
        let (h, w, c) = (nhwc[1], nhwc[2], nhwc[3]);
        let fc = graph.consumers(graph.nodes[reshape].output)[0];
        let Op::FullyConnected { weights, out_features, .. } = &mut graph.nodes[fc].op else { unreachable!() };
        // Each weight row is a [C, H, W] block; make it [H, W, C].
        *weights = transpose(weights, &[*out_features, c, h, w], &[0, 2, 3, 1]);
        // The flattened tensor is now in H·W·C order: no longer ONNX's value.
        let flat = graph.nodes[reshape].output;
        graph.tensors[flat].onnx_name = None;
        let input = graph.nodes[tr].inputs[0];
        let transposed = graph.nodes[tr].output;
        graph.remove_node_replacing_output(tr, input);
        log::debug!("removed a layout transpose before FC (tensor {transposed})");
    }
}
