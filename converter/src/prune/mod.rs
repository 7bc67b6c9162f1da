//! Structured channel pruning with training-free recovery.
//!
//! [`channels`] finds the groups of channels that must go together,
//! [`select`] scores them and picks the least important within the width
//! limits, [`shrink`] removes them physically, and [`recover`] refits the
//! layers that lost inputs against the original float model.

pub mod channels;
pub mod reconstruction;
pub mod recover;
pub mod select;
pub mod shrink;

use anyhow::Result;

pub use recover::Refit;
pub use select::{Amount, Criterion, Limits};

use crate::ir::{cost, eval, Graph};

/// What to prune and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// How much.
    pub amount: Amount,
    /// Which channels first.
    pub criterion: Criterion,
    /// Width floor and rounding.
    pub limits: Limits,
    /// Whether to refit the layers that lost inputs (see [`recover`]).
    pub recover: bool,
    /// Whether to correct biases after quantization (see
    /// [`crate::bias_correction`]).
    pub bias_correction: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            amount: Amount::Ratio(0.0),
            criterion: Criterion::Reconstruction,
            limits: Limits {
                min_width: kiln_runtime::format::pack::BLOCK,
                multiple: kiln_runtime::format::pack::BLOCK,
            },
            recover: true,
            bias_correction: true,
        }
    }
}

/// A graph's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Learned parameters.
    pub parameters: u64,
}

impl Cost {
    /// The cost of `graph`.
    pub fn of(graph: &Graph) -> Self {
        Cost { macs: cost::macs(graph), parameters: cost::parameters(graph) }
    }
}

/// What pruning did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Before pruning.
    pub before: Cost,
    /// After.
    pub after: Cost,
    /// Each prunable group: name, width before and after.
    pub widths: Vec<(String, usize, usize)>,
    /// The layers recovery refit.
    pub refits: Vec<Refit>,
}

impl Report {
    /// Whether any channel went.
    pub fn pruned_any(&self) -> bool {
        self.widths.iter().any(|(_, before, after)| after < before)
    }
}

/// Prunes `graph` as `options` say, scoring and refitting on `inputs` (IR
/// layout, e.g. the calibration images).
pub fn prune(graph: &mut Graph, inputs: &[Vec<f32>], options: &Options) -> Result<Report> {
    let original = graph.clone();
    let before = Cost::of(graph);
    let mirrored: Vec<Vec<f32>> = inputs.iter().map(|x| mirror(x, &graph.tensors[graph.input].shape)).collect();
    // A MAC budget is spent by output cost, measured on two folds, a face
    // and its mirror image in the same one.
    let folds: Vec<usize> = (0..2 * inputs.len()).map(|s| s % inputs.len().max(1) % 2).collect();
    let folds = matches!(options.amount, Amount::Macs(_)).then_some(&folds[..]);
    let inputs = &[inputs, &mirrored[..]].concat();
    let groups = channels::groups(graph);
    let mean_abs = match options.criterion {
        Criterion::Activation => eval::channel_means(graph, inputs, |x| f64::from(x.abs()))?,
        _ => Vec::new(),
    };
    let mut scores: Vec<Vec<f64>> =
        groups.iter().map(|g| select::scores(graph, g, options.criterion, &mean_abs)).collect();
    let mut losses = vec![None; groups.len()];
    if options.criterion == Criterion::Reconstruction {
        for ((s, loss), ranking) in
            scores.iter_mut().zip(&mut losses).zip(reconstruction::rankings(graph, &groups, inputs, folds)?)
        {
            if let Some(ranking) = ranking {
                *s = ranking.step.iter().map(|&step| step as f64).collect();
                *loss = Some(ranking.loss);
            }
        }
    }
    let removed = select::select(graph, &groups, &scores, &losses, &options.amount, options.limits)?;
    let widths = groups.iter().zip(&removed).map(|(g, r)| (g.name.clone(), g.width(), g.width() - r.len())).collect();
    let channels: Vec<_> =
        groups.iter().zip(&removed).flat_map(|(g, r)| r.iter().flat_map(|&u| g.units[u].iter().copied())).collect();
    let keep = shrink::shrink(graph, &channels)?;
    let refits = if options.recover { recover::recover(&original, graph, &keep, inputs)? } else { Vec::new() };
    Ok(Report { before, after: Cost::of(graph), widths, refits })
}

/// `x` (NHWC) mirrored left to right: a face seen in a mirror is still a
/// face, and twice the rows make the scores and the refit generalise
/// better.
fn mirror(x: &[f32], shape: &[usize]) -> Vec<f32> {
    let [_, _, w, c] = shape[..] else { return x.to_vec() };
    x.chunks(w * c).flat_map(|row| row.chunks(c).rev().flatten().copied()).collect()
}
