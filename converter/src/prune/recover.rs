//! Recovery without training: each layer that lost input channels, or
//! reads values that pruning above it changed, is refit so that, on the
//! calibration inputs, the pruned model reproduces the original model's
//! output of that layer (He et al. 2017, "Channel Pruning
//! for Accelerating Very Deep Neural Networks"), with the original float
//! model as the teacher.
//!
//! Layers are refit in execution order, each on the pruned model's own
//! input to it (which already carries the refits before it), against the
//! original model's pre-activation output. The fit is ridge-regularised
//! towards the layer's remaining original weights: where the calibration
//! data does not determine a direction, the weights keep their values.

use anyhow::{Context, Result};
use nalgebra::DMatrix;
use rayon::prelude::*;

use super::channels::is_source;
use crate::ir::{eval, Graph, Op};

/// At most this many rows (output positions × inputs) go into one fit;
/// more are sampled evenly.
const MAX_ROWS: usize = 50_000;
/// Above this many input features a layer gets only a scale and a bias
/// per output refit (the normal equations would be too large to solve
/// here).
const MAX_FEATURES: usize = 4096;
/// Ridge strength relative to the mean feature energy (trace / features),
/// at least: layers with few rows per feature get `features / rows`, so
/// that the prior counts like one row per feature.
const RIDGE: f64 = 1e-3;

/// How one layer was refit.
#[derive(Clone, Debug)]
pub struct Refit {
    /// The layer's output tensor.
    pub name: String,
    /// Rows (output positions × calibration inputs) the fit used.
    pub rows: usize,
    /// Input features per row (kernel taps × remaining input channels).
    pub features: usize,
    /// Whether weights and bias were refit (`false`: one scale of the
    /// weights and the bias per output, matching the original output's
    /// spread and mean).
    pub least_squares: bool,
    /// Relative squared error of the layer's pre-activation output against
    /// the original model's, on the fit rows, before and after the refit.
    pub error_before: f64,
    /// See `error_before`.
    pub error_after: f64,
}

/// Refits every layer of `pruned` whose input lost channels or changed, on `inputs`
/// (IR layout); `keep[t]` lists the original channels tensor `t` kept.
pub fn recover(original: &Graph, pruned: &mut Graph, keep: &[Vec<usize>], inputs: &[Vec<f32>]) -> Result<Vec<Refit>> {
    let mut last_use = vec![0usize; pruned.tensors.len()];
    for (n, node) in pruned.nodes.iter().enumerate() {
        node.inputs.iter().for_each(|&t| last_use[t] = n);
    }
    let blank = || vec![None; pruned.tensors.len()];
    let mut now: Vec<Vec<Option<Vec<f32>>>> = inputs.iter().map(|_| blank()).collect();
    let mut teacher: Vec<Vec<Option<Vec<f32>>>> = inputs.iter().map(|_| blank()).collect();
    for (s, x) in inputs.iter().enumerate() {
        now[s][pruned.input] = Some(x.clone());
        teacher[s][original.input] = Some(x.clone());
    }
    let mut refits = Vec::new();
    // Tensors whose values differ from the teacher's: a layer reading one
    // is refit even if it lost no channel, to make up for the error above.
    let mut drifted: Vec<bool> = (0..pruned.tensors.len())
        .map(|t| keep[t].len() < original.tensors[t].shape.last().copied().unwrap_or(1))
        .collect();
    for n in 0..pruned.nodes.len() {
        let input = pruned.nodes[n].inputs[0];
        let drift = pruned.nodes[n].inputs.iter().any(|&t| drifted[t]);
        drifted[pruned.nodes[n].output] |= drift;
        if is_source(&pruned.nodes[n].op) && drift {
            let rows = |graph: &Graph, values: &[Vec<Option<Vec<f32>>>]| -> Result<Vec<f32>> {
                let mut rows = Vec::new();
                for v in values {
                    rows.extend(eval::patches(graph, n, v[input].as_deref().context("input not computed")?));
                }
                Ok(rows)
            };
            let (x, x0) = (rows(pruned, &now)?, rows(original, &teacher)?);
            let out = pruned.nodes[n].output;
            let name = pruned.tensors[out].onnx_name.clone().unwrap_or_else(|| format!("t{out}"));
            refits.push(refit(name, &original.nodes[n].op, &mut pruned.nodes[n].op, &keep[out], &x, &x0)?);
        }
        now.par_iter_mut().zip(&mut teacher).try_for_each(|(p, t)| -> Result<()> {
            eval::step(pruned, n, p)?;
            eval::step(original, n, t)
        })?;
        for (t, &last) in last_use.iter().enumerate() {
            if last == n && !pruned.outputs.contains(&t) {
                now.iter_mut().chain(&mut teacher).for_each(|v| v[t] = None);
            }
        }
    }
    Ok(refits)
}

/// Refits `op` (the pruned layer, rows of `x` as input) to reproduce
/// `teacher` (the original layer, rows of `x0`) on its kept outputs `outputs`.
fn refit(name: String, teacher: &Op, op: &mut Op, outputs: &[usize], x: &[f32], x0: &[f32]) -> Result<Refit> {
    let (w0, b0) = teacher.weights_and_bias().context("the teacher layer has no weights")?;
    let (w, b) = op.weights_and_bias_mut().context("the refit layer has no weights")?;
    let (outs, d, d0) = (b.len(), w.len() / b.len(), w0.len() / b0.len());
    let all_rows = x.len() / d;
    let step = all_rows.div_ceil(MAX_ROWS);
    let pick = |m: &[f32], width: usize| -> DMatrix<f64> {
        let rows: Vec<&[f32]> = m.chunks(width).step_by(step).collect();
        DMatrix::from_fn(rows.len(), width + 1, |r, c| if c < width { rows[r][c] as f64 } else { 1.0 })
    };
    let (a, a0) = (pick(x, d), pick(x0, d0));
    // Θ₀: the teacher's weights of the kept outputs, as columns with the
    // bias last; Θ: the pruned layer's, in the same form.
    let theta0 = DMatrix::from_fn(d0 + 1, outs, |r, c| {
        let o = outputs[c];
        if r < d0 {
            w0[o * d0 + r] as f64
        } else {
            b0[o] as f64
        }
    });
    let prior = DMatrix::from_fn(d + 1, outs, |r, c| if r < d { w[c * d + r] as f64 } else { b[c] as f64 });
    let target = &a0 * &theta0;
    let error =
        |theta: &DMatrix<f64>| (&a * theta - &target).norm_squared() / target.norm_squared().max(f64::MIN_POSITIVE);
    let error_before = error(&prior);
    let least_squares = d < MAX_FEATURES;
    let theta = if least_squares {
        // `transpose() *` runs a blocked matrix product (`tr_mul` a dot
        // product per entry, several times slower).
        let at = a.transpose();
        let mut gram = &at * &a;
        let strength = RIDGE.max((d + 1) as f64 / a.nrows() as f64);
        let lambda = strength * gram.trace() / (d + 1) as f64;
        let rhs = &at * &target + &prior * lambda;
        for i in 0..=d {
            gram[(i, i)] += lambda;
        }
        gram.cholesky().context("the refit's normal equations are not positive definite")?.solve(&rhs)
    } else {
        spread_matched(&a, &prior, &target)
    };
    let error_after = error(&theta);
    for c in 0..outs {
        for r in 0..d {
            w[c * d + r] = theta[(r, c)] as f32;
        }
        b[c] = theta[(d, c)] as f32;
    }
    Ok(Refit { name, rows: a.nrows(), features: d, least_squares, error_before, error_after })
}

/// `prior` (columns of weights with the bias last) with each column's
/// weights scaled so that its output on the rows of `a` has the spread of
/// `target`'s column, and its bias set so that it has the same mean.
///
/// Matching the spread, not the least error, matters at the last layer: a
/// least-squares fit shrinks every face's embedding towards the mean face,
/// and different people come out more alike (on Solvay faces no test
/// used, pair cosines rose by 0.0300 over the unpruned model's with the
/// bias alone refit, by 0.0195 with this).
fn spread_matched(a: &DMatrix<f64>, prior: &DMatrix<f64>, target: &DMatrix<f64>) -> DMatrix<f64> {
    let bias = prior.nrows() - 1;
    let output = a * prior;
    let mut theta = prior.clone();
    for c in 0..prior.ncols() {
        let (mean, spread) = (output.column(c).mean(), output.column(c).variance().sqrt());
        let (target_mean, target_spread) = (target.column(c).mean(), target.column(c).variance().sqrt());
        let scale = if spread > 0.0 { target_spread / spread } else { 1.0 };
        let mut column = theta.column_mut(c);
        column.rows_mut(0, bias).scale_mut(scale);
        column[bias] = target_mean - scale * (mean - prior[(bias, c)]);
    }
    theta
}
