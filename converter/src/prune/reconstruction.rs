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
use rayon::prelude::*;

use super::channels::{is_source, Group};
use crate::ir::{eval, Graph, Op};
use crate::metrics::cosine;

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
    /// `loss[k]`: what losing the first `k` units costs: the consumer's
    /// squared output error once it is refit, relative to its output's
    /// energy, or, scaled by what that error costs at the output out of
    /// sample when a quarter of the units go, the model's output (mean
    /// 1 − cosine to the original).
    pub loss: Vec<f64>,
}

/// Per group, its ranking, or `None` where no consumer is a 1×1
/// convolution reading one channel per unit. The losses are in output cost
/// (see [`Ranking::loss`]) when `folds` is given: input `s` is in fold
/// `folds[s]`, 0 or 1 (a face and its mirror image in the same), and what a
/// refit costs at the output is measured on the fold it was not fit on, so
/// that a layer whose refit only fits the calibration inputs does not look
/// cheap to prune. Without `folds`, they stay the consumer's relative error.
pub fn rankings(
    graph: &Graph,
    groups: &[Group],
    inputs: &[Vec<f32>],
    folds: Option<&[usize]>,
) -> Result<Vec<Option<Ranking>>> {
    let values: Vec<Vec<Option<Vec<f32>>>> =
        inputs.par_iter().map(|x| eval::evaluate(graph, x)).collect::<Result<_>>()?;
    // A copy whose consumers take the probes' weights in turn.
    let mut probed = graph.clone();
    let fold_of = |s: usize| folds.map_or(0, |f| f[s]);
    groups
        .iter()
        .map(|group| {
            let Some((n, features)) = consumer(graph, group) else { return Ok(None) };
            let op = &graph.nodes[n].op;
            let Op::Conv2d { weights, bias, .. } = op else { return Ok(None) };
            // Each fold's Gram matrix of the consumer's input rows.
            let d = weights.len() / bias.len();
            let mut grams = [Gram::new(d), Gram::new(d)];
            for (s, v) in values.iter().enumerate() {
                let input = v[graph.nodes[n].inputs[0]].as_deref().context("consumer input not computed")?;
                grams[fold_of(s)].add(&eval::patches(graph, n, input));
            }
            let probe = features.len().div_ceil(4);
            let all = grams[0].clone() + &grams[1];
            let Some(all) = surgery(op, &all, probe, usize::MAX) else { return Ok(None) };
            let step = features.iter().map(|&j| all.order[j]).collect();
            let Some(folds) = folds else { return Ok(Some(Ranking { step, loss: all.loss })) };
            let mut cost = 0.0;
            for fold in 0..2 {
                // Fit on the other fold, up to the probe, and score on this one.
                if let Some(mut fit) = surgery(op, &grams[1 - fold], probe, probe) {
                    let held_out: Vec<&[Option<Vec<f32>>]> =
                        values.iter().zip(folds).filter(|(_, &f)| f == fold).map(|(v, _)| &v[..]).collect();
                    cost += output_cost(&mut probed, n, &mut fit.probe_weights, &held_out)? / 2.0;
                }
            }
            let scale = cost / all.loss[probe].max(f64::MIN_POSITIVE);
            Ok(Some(Ranking { step, loss: all.loss.iter().map(|l| l * scale).collect() }))
        })
        .collect()
}

/// `XᵀX` of a layer's input rows `X`, summed over inputs.
#[derive(Clone, Debug)]
struct Gram {
    /// `XᵀX`, features × features.
    matrix: DMatrix<f64>,
    /// Rows summed.
    rows: usize,
}

impl Gram {
    /// No rows yet, of `features` values each.
    fn new(features: usize) -> Self {
        Gram { matrix: DMatrix::zeros(features, features), rows: 0 }
    }

    /// Adds `x`, rows of the Gram's features.
    fn add(&mut self, x: &[f32]) {
        let features = self.matrix.nrows();
        let xm = DMatrix::from_row_iterator(x.len() / features, features, x.iter().map(|&v| f64::from(v)));
        // `transpose() *` runs a blocked matrix product (`tr_mul` a dot
        // product per entry, several times slower).
        self.matrix += xm.transpose() * &xm;
        self.rows += xm.nrows();
    }
}

impl std::ops::Add<&Gram> for Gram {
    type Output = Gram;

    fn add(self, other: &Gram) -> Gram {
        Gram { matrix: self.matrix + &other.matrix, rows: self.rows + other.rows }
    }
}

/// Mean 1 − cosine of the graph's outputs to `values` (the original
/// model's, per input) when node `n` computes with `weights` (swapped in
/// for the run, then back).
fn output_cost(graph: &mut Graph, n: usize, weights: &mut [f32], values: &[&[Option<Vec<f32>>]]) -> Result<f64> {
    let swap = |graph: &mut Graph, weights: &mut [f32]| {
        if let Some((w, _)) = graph.nodes[n].op.weights_and_bias_mut() {
            w.swap_with_slice(weights);
        }
    };
    swap(graph, weights);
    let cost = mean_output_cost(graph, n, values);
    swap(graph, weights);
    cost
}

/// Mean 1 − cosine of the graph's outputs, computed from node `n` on, to
/// `values`.
fn mean_output_cost(graph: &Graph, n: usize, values: &[&[Option<Vec<f32>>]]) -> Result<f64> {
    let costs = values.par_iter().map(|original| -> Result<f64> {
        let mut now = original.to_vec();
        for m in n..graph.nodes.len() {
            eval::step(graph, m, &mut now)?;
        }
        let mut cost = 0.0;
        for &t in &graph.outputs {
            let (a, b) = (now[t].as_deref().context("output")?, original[t].as_deref().context("output")?);
            cost += 1.0 - cosine(a, b);
        }
        Ok(cost)
    });
    let costs: Vec<f64> = costs.collect::<Result<_>>()?;
    Ok(costs.iter().sum::<f64>() / (values.len() * graph.outputs.len()).max(1) as f64)
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

/// What optimal brain surgery on a layer's inputs found.
struct Surgery {
    /// The step at which each input is dropped.
    order: Vec<usize>,
    /// The layer's squared output error, refit, relative to its output's
    /// energy, after each step.
    loss: Vec<f64>,
    /// The refit weights (in the layer's layout) after `probe` steps.
    probe_weights: Vec<f32>,
}

/// Drops the inputs of `op`, whose input rows have the Gram matrix `gram`,
/// greedily, for at most `steps` steps.
fn surgery(op: &Op, gram: &Gram, probe: usize, steps: usize) -> Option<Surgery> {
    let Op::Conv2d { weights, bias, .. } = op else { return None };
    let (outs, d) = (bias.len(), weights.len() / bias.len());
    if gram.rows == 0 {
        return None;
    }
    let (n, mut gram) = (gram.rows, gram.matrix.clone());
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
    // The refit weights in the layer's layout, dropped inputs zero.
    let snapshot = |w: &[f64], active: &[bool]| -> Vec<f32> {
        (0..d * outs).map(|i| if active[i % d] { w[(i % d) * outs + i / d] as f32 } else { 0.0 }).collect()
    };
    let mut probe_weights = snapshot(&w, &active);
    for step in 0..(d - 1).min(steps) {
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
        if step + 1 == probe {
            probe_weights = snapshot(&w, &active);
        }
    }
    loss[d] = 1.0;
    Some(Surgery { order, loss, probe_weights })
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
        for i in 0..1024 {
            let (a, b, d) = ((i as f32 * 0.37).sin(), (i as f32 * 0.91).cos(), 2.0 * (i as f32 * 1.3).sin());
            x.extend([a, b, d, a]);
        }
        let weights = vec![1.0, 1.5, 0.2, 1.0, -1.0, 0.5, 0.2, 2.0];
        let mut gram = Gram::new(4);
        gram.add(&x);
        let Surgery { order, loss, probe_weights } =
            surgery(&pointwise(weights.clone(), 2), &gram, 1, usize::MAX).unwrap();
        assert!(order[0] == 0 || order[3] == 0, "a duplicate goes first: {order:?}");
        assert!(order[2] > order[0].min(order[3]), "{order:?}");
        // Its twin takes over its weights: the refit layer computes the same
        // (but for the ridge's pull towards zero).
        let output = |w: &[f32]| -> Vec<f32> {
            x.chunks(4)
                .flat_map(|row| w.chunks(4).map(move |f| f.iter().zip(row).map(|(a, b)| a * b).sum::<f32>()))
                .collect()
        };
        let (before, after) = (output(&weights), output(&probe_weights));
        let error: f32 = before.iter().zip(&after).map(|(a, b)| (a - b).powi(2)).sum();
        let energy: f32 = before.iter().map(|a| a * a).sum();
        assert!(error / energy < 1e-3, "relative error {}", error / energy);
        // Losing a duplicate costs (almost) nothing; losing everything, all.
        assert!(loss[1] < 1e-2 && loss.windows(2).all(|w| w[0] <= w[1]) && loss[4] == 1.0, "{loss:?}");
    }
}
