//! The reconstruction criterion: a group's channels are ranked by how much
//! their removal hurts the layer that reads them, once that layer is refit
//! (the quantity recovery minimises). For a consumer with inputs `X` and
//! weights `W` (exact for the original model), dropping input `j` and
//! refitting the rest by least squares raises the squared error by
//! `Σ_o W[j][o]² / (XᵀX)⁻¹[j][j]` (Hassibi & Stork's optimal brain
//! surgeon, applied to a layer's inputs); inputs are dropped greedily, the
//! inverse and the weights updated after each.

use anyhow::{Context, Result};
use nalgebra::DMatrix;

use super::channels::{is_source, Group};
use crate::ir::{eval, Graph, Op};

/// Ridge added to `XᵀX`, relative to its mean diagonal, so that it inverts;
/// layers with few rows per feature get `features / rows` (as in
/// recovery), so that a loss they would only make up for by overfitting
/// the calibration rows counts.
const RIDGE: f64 = 1e-3;

/// How a group's units go under the reconstruction criterion.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranking {
    /// Each unit's removal step (lower goes first).
    pub step: Vec<usize>,
    /// `loss[k]`: the consumer's squared output error once the first `k`
    /// units are gone and it is refit, relative to its output's energy.
    pub loss: Vec<f64>,
}

/// Per group, its ranking, or `None` where no consumer is a 1×1
/// convolution reading one channel per unit.
pub fn rankings(graph: &Graph, groups: &[Group], inputs: &[Vec<f32>]) -> Result<Vec<Option<Ranking>>> {
    let consumers: Vec<Option<(usize, Vec<usize>)>> = groups.iter().map(|g| consumer(graph, g)).collect();
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); groups.len()];
    for input in inputs {
        let values = eval::evaluate(graph, input)?;
        for (found, r) in consumers.iter().zip(&mut rows) {
            if let Some((n, _)) = found {
                let x = values[graph.nodes[*n].inputs[0]].as_deref().context("consumer input not computed")?;
                r.extend(eval::patches(graph, *n, x));
            }
        }
    }
    Ok(consumers
        .iter()
        .zip(&rows)
        .map(|(found, x)| {
            let (n, features) = found.as_ref()?;
            let (order, loss) = removal_order(&graph.nodes[*n].op, x)?;
            // The group's units in removal order map to the consumer's
            // inputs; their losses are cumulative in that order.
            Some(Ranking { step: features.iter().map(|&j| order[j]).collect(), loss })
        })
        .collect())
}

/// A 1×1 convolution (one group) reading the group, and the input channel
/// of each unit there.
fn consumer(graph: &Graph, group: &Group) -> Option<(usize, Vec<usize>)> {
    graph.nodes.iter().enumerate().find_map(|(n, node)| {
        let one_by_one = matches!(node.op, Op::Conv2d { weight_shape: [_, 1, 1, _], .. }) && is_source(&node.op);
        let input = node.inputs[0];
        let features: Option<Vec<usize>> = group
            .units
            .iter()
            .map(|unit| {
                let mut here = unit.iter().filter(|c| c.tensor == input);
                match (here.next(), here.next()) {
                    (Some(c), None) => Some(c.index),
                    _ => None,
                }
            })
            .collect();
        one_by_one.then_some(()).and(features).map(|f| (n, f))
    })
}

/// The step at which each input of `op` is dropped, greedily, with `x` its
/// rows of inputs, and the relative loss after each step (see
/// [`Ranking::loss`]).
fn removal_order(op: &Op, x: &[f32]) -> Option<(Vec<usize>, Vec<f64>)> {
    let Op::Conv2d { weights, bias, .. } = op else { return None };
    let (outs, d) = (bias.len(), weights.len() / bias.len());
    let n = x.len() / d;
    let xm = DMatrix::from_fn(n, d, |r, c| f64::from(x[r * d + c]));
    let mut gram = xm.tr_mul(&xm);
    let w0 = DMatrix::from_fn(d, outs, |j, o| f64::from(weights[o * d + j]));
    // ‖XW‖²: the output's energy, which the losses are relative to.
    let output_energy = (&gram * &w0).component_mul(&w0).sum().max(f64::MIN_POSITIVE);
    let lambda = RIDGE.max(d as f64 / n as f64) * gram.trace() / d as f64;
    for i in 0..d {
        gram[(i, i)] += lambda;
    }
    let inv = gram.cholesky()?.inverse();
    // Row-major copies, so that the updates below run along contiguous rows.
    let mut inv: Vec<f64> = (0..d * d).map(|i| inv[(i / d, i % d)]).collect();
    let mut w: Vec<f64> = (0..d * outs).map(|i| f64::from(weights[(i % outs) * d + i / outs])).collect();
    let sum_of_squares = |row: &[f64]| row.iter().map(|v| v * v).sum::<f64>();
    let mut norms: Vec<f64> = w.chunks(outs).map(sum_of_squares).collect();
    let mut active: Vec<bool> = vec![true; d];
    let mut order = vec![d - 1; d];
    let mut loss = vec![0.0; d + 1];
    for step in 0..d - 1 {
        let cost = |j: usize| norms[j] / inv[j * d + j];
        let j = (0..d).filter(|&j| active[j]).min_by(|&a, &b| cost(a).total_cmp(&cost(b)))?;
        order[j] = step;
        loss[step + 1] = loss[step] + cost(j) / output_energy;
        active[j] = false;
        let column = inv[j * d..][..d].to_vec();
        let row_j = w[j * outs..][..outs].to_vec();
        for a in (0..d).filter(|&a| active[a]) {
            let f = column[a] / column[j];
            let row = &mut w[a * outs..][..outs];
            row.iter_mut().zip(&row_j).for_each(|(v, r)| *v -= f * r);
            norms[a] = sum_of_squares(row);
            inv[a * d..][..d].iter_mut().zip(&column).for_each(|(v, c)| *v -= f * c);
        }
    }
    loss[d] = 1.0;
    Some((order, loss))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::FusedActivation;

    /// A 1×1 convolution with these `[out][in]` weights.
    fn pointwise(weights: Vec<f32>, outs: usize) -> Op {
        let ins = weights.len() / outs;
        Op::Conv2d {
            weights,
            weight_shape: [outs, 1, 1, ins],
            bias: vec![0.0; outs],
            stride: [1, 1],
            dilation: [1, 1],
            pads: [0; 4],
            groups: 1,
            pad_value: 0.0,
            activation: FusedActivation::default(),
        }
    }

    #[test]
    fn a_duplicated_input_goes_before_a_small_but_informative_one() {
        // Inputs a, b, d, e = a. d has the smallest weights (L1 would drop
        // it first) but carries a large signal; e is a copy of a, so once
        // one of the pair goes the other takes over its weights exactly.
        let mut x = Vec::new();
        for i in 0..64 {
            let (a, b, d) = ((i as f32 * 0.37).sin(), (i as f32 * 0.91).cos(), 10.0 * (i as f32 * 1.3).sin());
            x.extend([a, b, d, a]);
        }
        let weights = vec![1.0, 1.5, 0.2, 1.0, -1.0, 0.5, 0.2, 2.0];
        let (order, loss) = removal_order(&pointwise(weights, 2), &x).unwrap();
        assert!(order[0] == 0 || order[3] == 0, "a duplicate goes first: {order:?}");
        assert!(order[2] > order[0].min(order[3]), "{order:?}");
        // Losing a duplicate costs (almost) nothing; losing everything, all.
        assert!(loss[1] < 1e-3 && loss.windows(2).all(|w| w[0] <= w[1]) && loss[4] == 1.0, "{loss:?}");
    }
}
