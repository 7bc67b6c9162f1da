//! Graph rewrites from the lowered IR to what the quantizer consumes, one
//! module per rewrite. Each keeps the graph's f32 semantics exactly (up to
//! float rounding); the SFace test checks the whole chain against tract.

mod activation;
mod flatten_fc;
mod input_affine;
mod rank;
mod scale_shift;
mod transpose;

use anyhow::Result;

use crate::ir::{self, Graph};

/// Runs every pass, in an order where each one sees the patterns it folds:
/// affine chains merge before they fold into the first conv or the conv
/// before them (BatchNorm), activations fuse into convs afterwards, and a
/// BatchNorm left after an activation folds into a following flatten+FC.
pub fn optimize(graph: &mut Graph) -> Result<()> {
    let before = graph.nodes.len();
    scale_shift::merge_chains(graph);
    input_affine::fold_into_first_conv(graph)?;
    scale_shift::fold_into_producer(graph);
    activation::fuse(graph);
    flatten_fc::fold_layout_transpose(graph);
    scale_shift::fold_into_flatten_fc(graph);
    transpose::compose(graph);
    rank::fit(graph)?;
    graph.compact();
    ir::infer_shapes(graph)?;
    log::info!("passes: {before} → {} IR nodes", graph.nodes.len());
    Ok(())
}

/// The single node reading node `n`'s output, if `n`'s output has exactly one
/// reader and is not a graph output: the precondition of every fusion here.
fn sole_consumer(graph: &Graph, n: usize) -> Option<usize> {
    let out = graph.nodes[n].output;
    graph.has_single_use(out).then(|| graph.consumers(out)[0])
}

/// `values` (one value, or one per channel) as one per channel.
fn per_channel(values: &[f32], channels: usize) -> Vec<f32> {
    if values.len() == 1 {
        vec![values[0]; channels]
    } else {
        values.to_vec()
    }
}
