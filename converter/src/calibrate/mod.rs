//! Activation ranges for quantization: min/max of every live IR tensor over
//! the calibration inputs, taken from the float model run by tract (the
//! reference), in real units after folding — a conv that absorbed BatchNorm
//! and PRelu gets the PRelu output's range, and the graph input, with the
//! normalisation folded away, gets the range of the raw data.

mod clip;

use anyhow::{bail, ensure, Result};

use self::clip::Histogram;

use crate::import::OnnxModel;
use crate::input::Sample;
use crate::ir::{Graph, TensorId};
use crate::reference::Reference;

/// Observed `[min, max]` of one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Smallest value seen.
    pub min: f32,
    /// Largest value seen.
    pub max: f32,
}

impl Range {
    fn of(values: &[f32]) -> Range {
        let init = Range { min: f32::INFINITY, max: f32::NEG_INFINITY };
        values.iter().fold(init, |r, &v| Range { min: r.min.min(v), max: r.max.max(v) })
    }

    fn union(self, other: Range) -> Range {
        Range { min: self.min.min(other.min), max: self.max.max(other.max) }
    }
}

/// How a tensor's range is chosen from the values calibration saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Every value: the smallest and the largest seen.
    MinMax,
    /// All but this fraction of the values on each side (a second pass).
    Percentile(f64),
    /// The range with the least expected int8 quantization error (a
    /// second pass): clips rare outliers for a finer step.
    Mse,
}

/// Ranges of every tensor of `graph` (indexed by [`TensorId`]; `None` for
/// dead tensors) over `samples` (ONNX layout), chosen by `method` (the graph
/// input always keeps its min/max). `progress` is called after each run of
/// the float model with (done, total), for a progress bar.
pub fn calibrate(
    model: &OnnxModel,
    graph: &Graph,
    samples: &[Sample],
    method: Method,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Option<Range>>> {
    ensure!(!samples.is_empty(), "calibration needs at least one input");
    let reference = Reference::for_graph(model, graph)?;
    let passes = if method == Method::MinMax { 1 } else { 2 };
    let total = passes * samples.len();
    let mut by_name: Vec<Option<Range>> = vec![None; reference.names().len()];
    let mut input = None::<Range>;
    for (done, sample) in samples.iter().enumerate() {
        let values = reference.run(&sample.values)?;
        for (range, v) in by_name.iter_mut().zip(&values) {
            *range = Some(range.map_or(Range::of(v), |r| r.union(Range::of(v))));
        }
        let r = Range::of(&sample.values);
        input = Some(input.map_or(r, |i| i.union(r)));
        progress(done + 1, total);
    }
    if passes == 2 {
        let mut histograms: Vec<Histogram> = by_name.iter().flatten().map(|&r| Histogram::new(r)).collect();
        for (done, sample) in samples.iter().enumerate() {
            for (h, v) in histograms.iter_mut().zip(reference.run(&sample.values)?) {
                h.add(&v);
            }
            progress(samples.len() + done + 1, total);
        }
        for (range, h) in by_name.iter_mut().zip(&histograms) {
            *range = Some(match method {
                Method::Percentile(tail) => h.percentile(tail),
                _ => h.mse_optimal(),
            });
        }
    }
    let mut ranges: Vec<Option<Range>> = vec![None; graph.tensors.len()];
    ranges[graph.input] = input;
    for node in &graph.nodes {
        let t: TensorId = node.output;
        ranges[t] = match &graph.tensors[t].onnx_name {
            Some(name) => {
                let ix = reference.names().iter().position(|n| n == name);
                ix.and_then(|i| by_name[i])
            }
            // Layout ops that lowering added keep their input's values.
            None if node.op.moves_data_only() => ranges[node.inputs[0]],
            None => bail!(
                "tensor {t} (output of `{}`, {}) has no ONNX counterpart to calibrate on",
                node.name,
                node.op.name()
            ),
        };
    }
    Ok(ranges)
}
