//! Which channels go: a score per unit (the criterion) and how many units
//! each group loses (the amount, within the width limits).

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::channels::{Channel, Group};
use crate::ir::{cost, Graph, Op};

/// How a unit's importance is measured; the least important units go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Sum of |w| over the filters that make the channel.
    L1,
    /// Euclidean norm of those filters.
    L2,
    /// Mean |activation| of the channel on the calibration inputs.
    Activation,
    /// The least error in the next layer's output once it is refit (see
    /// [`super::reconstruction`]); L1 where no 1×1 convolution reads the
    /// group.
    Reconstruction,
}

/// How much to prune.
#[derive(Clone, Debug, PartialEq)]
pub enum Amount {
    /// The same fraction of every group's channels.
    Ratio(f64),
    /// Keep at most this fraction of the model's multiply-accumulates:
    /// where the criterion measures each group's loss (reconstruction),
    /// channels go where they cost the least loss per MAC saved;
    /// otherwise every group loses the same, least sufficient, ratio.
    Macs(f64),
    /// A ratio per group, by group name; groups not named keep all channels.
    PerGroup(BTreeMap<String, f64>),
}

/// Widths that pruning must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// No group becomes narrower than this (or its width, if smaller).
    pub min_width: usize,
    /// Kept widths are rounded up to a multiple of this (the int8 kernels'
    /// block of output channels), unless the group is narrower.
    pub multiple: usize,
}

/// The score of each unit of `group` by `criterion` (higher is more
/// important). `mean_abs[t][c]`, needed by [`Criterion::Activation`], is the
/// mean |value| of channel `c` of tensor `t` on the calibration inputs.
pub fn scores(graph: &Graph, group: &Group, criterion: Criterion, mean_abs: &[Vec<f64>]) -> Vec<f64> {
    let row_of = |unit: &[Channel], n: usize| {
        let out = graph.nodes[n].output;
        unit.iter().find(|c| c.tensor == out).map(|c| c.index)
    };
    group
        .units
        .iter()
        .map(|unit| {
            group
                .sources
                .iter()
                .filter_map(|&n| Some((n, row_of(unit, n)?)))
                .map(|(n, row)| match criterion {
                    Criterion::Activation => mean_abs[graph.nodes[n].output][row],
                    Criterion::L1 | Criterion::Reconstruction => {
                        filter(&graph.nodes[n].op, row).iter().map(|w| w.abs() as f64).sum()
                    }
                    Criterion::L2 => {
                        filter(&graph.nodes[n].op, row).iter().map(|&w| (w as f64).powi(2)).sum::<f64>().sqrt()
                    }
                })
                .sum()
        })
        .collect()
}

/// The weights that compute output channel `row` of a source op.
fn filter(op: &Op, row: usize) -> &[f32] {
    op.weights_and_bias().map_or(&[], |(weights, bias)| {
        let per = weights.len() / bias.len();
        &weights[row * per..][..per]
    })
}

/// How many units a group of `width` keeps when it loses `ratio` of them.
pub fn kept_width(width: usize, ratio: f64, limits: Limits) -> usize {
    let mut kept = width - ((width as f64 * ratio.clamp(0.0, 1.0)).round() as usize).min(width);
    kept = kept.max(limits.min_width.min(width));
    if width >= limits.multiple && limits.multiple > 1 {
        kept = kept.div_ceil(limits.multiple) * limits.multiple;
    }
    kept.min(width)
}

/// The units each group loses (indices into its units, least important
/// first) for `amount`, given each group's unit scores and, where known,
/// its loss after each removal in score order (see
/// [`super::reconstruction::Ranking::loss`]).
pub fn select(
    graph: &Graph,
    groups: &[Group],
    scores: &[Vec<f64>],
    losses: &[Option<Vec<f64>>],
    amount: &Amount,
    limits: Limits,
) -> Result<Vec<Vec<usize>>> {
    let lowest = |kept: &dyn Fn(usize, &Group) -> usize| -> Vec<Vec<usize>> {
        groups
            .iter()
            .zip(scores)
            .enumerate()
            .map(|(i, (g, s))| {
                let drop = g.width() - kept(i, g);
                let mut order: Vec<usize> = (0..g.width()).collect();
                order.sort_by(|&a, &b| s[a].total_cmp(&s[b]).then(a.cmp(&b)));
                order.truncate(drop);
                order.sort_unstable();
                order
            })
            .collect()
    };
    let removal = |ratio_of: &dyn Fn(&Group) -> f64| lowest(&|_, g| kept_width(g.width(), ratio_of(g), limits));
    Ok(match amount {
        Amount::Ratio(r) => removal(&|_| *r),
        Amount::PerGroup(ratios) => {
            for name in ratios.keys() {
                if !groups.iter().any(|g| &g.name == name) {
                    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
                    bail!("no prunable layer named `{name}`; the prunable layers are: {}", names.join(", "));
                }
            }
            removal(&|g| ratios.get(&g.name).copied().unwrap_or(0.0))
        }
        Amount::Macs(budget) if losses.iter().any(Option::is_some) => {
            let kept = allocate(graph, groups, losses, *budget, limits)?;
            lowest(&|i, _| kept[i])
        }
        Amount::Macs(budget) => {
            let full = cost::macs(graph) as f64;
            // The kept widths only change at a few ratios: a fine scan finds
            // the least pruning within the budget.
            let within = (0..=1000).map(|i| i as f64 / 1000.0).find_map(|r| {
                let removed = removal(&|_| r);
                let widths = remaining_widths(graph, groups, &removed);
                let macs = cost::macs_with(graph, |t| widths[t]);
                (macs as f64 <= budget * full).then_some(removed)
            });
            match within {
                Some(removed) => removed,
                None => return Err(out_of_reach(*budget, limits)),
            }
        }
    })
}

fn out_of_reach(budget: f64, limits: Limits) -> anyhow::Error {
    anyhow::anyhow!(
        "pruning cannot bring the model to {:.1}% of its multiply-accumulates: the narrowest widths allowed (at \
         least {} channels, multiples of {}) do not; ask for a larger fraction",
        budget * 100.0,
        limits.min_width,
        limits.multiple
    )
}

/// Kept widths within `budget` (a fraction of the MACs): starting from the
/// full model, the group whose next step down (to the next multiple
/// allowed) adds the least loss per MAC saved narrows, until the budget is
/// met. Groups without a loss keep their width.
fn allocate(
    graph: &Graph,
    groups: &[Group],
    losses: &[Option<Vec<f64>>],
    budget: f64,
    limits: Limits,
) -> Result<Vec<usize>> {
    let target = budget * cost::macs(graph) as f64;
    let mut kept: Vec<usize> = groups.iter().map(Group::width).collect();
    let macs = |kept: &[usize]| {
        let removed: Vec<Vec<usize>> = groups.iter().zip(kept).map(|(g, &k)| (k..g.width()).collect()).collect();
        let widths = remaining_widths(graph, groups, &removed);
        cost::macs_with(graph, |t| widths[t]) as f64
    };
    let mut now = macs(&kept);
    while now > target {
        let step = groups
            .iter()
            .zip(losses)
            .enumerate()
            .filter_map(|(i, (g, loss))| {
                let loss = loss.as_ref()?;
                let multiple = if g.width() >= limits.multiple { limits.multiple.max(1) } else { 1 };
                let next = (kept[i] - 1) / multiple * multiple;
                if next == 0 || next < limits.min_width.min(g.width()) {
                    return None;
                }
                let mut narrower = kept.clone();
                narrower[i] = next;
                let after = macs(&narrower);
                let (before_loss, after_loss) = (loss[g.width() - kept[i]], loss[g.width() - next]);
                Some(((after_loss - before_loss) / (now - after), i, next, after))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((_, i, next, after)) = step else { return Err(out_of_reach(budget, limits)) };
        kept[i] = next;
        now = after;
    }
    Ok(kept)
}

/// Channels of each tensor left after removing `removed` units of `groups`.
fn remaining_widths(graph: &Graph, groups: &[Group], removed: &[Vec<usize>]) -> Vec<usize> {
    let mut widths: Vec<usize> = graph.tensors.iter().map(|t| t.shape.last().copied().unwrap_or(1)).collect();
    for (g, r) in groups.iter().zip(removed) {
        for c in r.iter().flat_map(|&u| &g.units[u]) {
            widths[c.tensor] -= 1;
        }
    }
    widths
}
