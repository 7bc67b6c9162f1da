//! Fits tensors of rank 5 and more into the runtime's rank 4 by dropping a
//! unit axis, where the ops around them only reshape, permute and slice
//! (attention as exported: `[1, seq, 3, heads, dim]` from one Reshape,
//! permuted to `[3, 1, heads, seq, dim]`, sliced into q, k and v, each
//! squeezed to rank 4). Dropping an axis of size 1 keeps every element's
//! place in row-major order, so values, ranges and names stay valid.

use anyhow::{bail, Result};

use crate::ir::{Graph, Op};

/// Drops one unit axis from every tensor of rank above 4.
pub fn fit(graph: &mut Graph) -> Result<()> {
    // The axis dropped from each tensor.
    let mut dropped: Vec<Option<usize>> = vec![None; graph.tensors.len()];
    for n in 0..graph.nodes.len() {
        let out = graph.nodes[n].output;
        let rank = graph.tensors[out].shape.len();
        if rank <= 4 {
            continue;
        }
        let input = graph.nodes[n].inputs[0];
        let name = graph.nodes[n].name.clone();
        let axis = match &mut graph.nodes[n].op {
            Op::Reshape { shape } => {
                let Some(axis) = shape.iter().position(|&d| d == 1) else {
                    bail!(
                        "`{name}` reshapes to {shape:?}: rank {rank} with no axis of size 1 to drop (kiln runs rank 4)"
                    );
                };
                shape.remove(axis);
                axis
            }
            Op::Transpose { perm } => {
                let Some(i) = dropped[input] else {
                    bail!("`{name}` permutes a rank-{rank} tensor that kiln could not fit into rank 4");
                };
                let j = perm.iter().position(|&p| p == i).unwrap_or(0);
                perm.remove(j);
                perm.iter_mut().filter(|p| **p > i).for_each(|p| *p -= 1);
                j
            }
            Op::Slice { start, step, size } => {
                let Some(i) = dropped[input] else {
                    bail!("`{name}` slices a rank-{rank} tensor that kiln could not fit into rank 4");
                };
                // Of an axis of size 1, a slice takes element 0.
                start.remove(i);
                size.remove(i);
                step.remove(i);
                i
            }
            op => bail!("`{name}` ({}) works on rank {rank}; kiln runs rank 4 at most", op.name()),
        };
        graph.tensors[out].shape.remove(axis);
        dropped[out] = Some(axis);
    }
    Ok(())
}
