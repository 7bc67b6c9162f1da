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
use crate::ir::{eval, layout, Graph, Op, TensorId};
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
/// input always keeps its min/max), with the float values of the original
/// model run by tract. `progress` is called after each float run with
/// (done, total), for a progress bar.
pub fn calibrate(
    model: &OnnxModel,
    graph: &Graph,
    samples: &[Sample],
    method: Method,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<Option<Range>>> {
    let reference = Reference::for_graph(model, graph)?;
    let ids: Vec<Vec<TensorId>> = reference
        .names()
        .iter()
        .map(|name| (0..graph.tensors.len()).filter(|&t| graph.tensors[t].onnx_name.as_ref() == Some(name)).collect())
        .collect();
    let run = |sample: &Sample| -> Result<Vec<Option<Vec<f32>>>> {
        let mut values = vec![None; graph.tensors.len()];
        for (v, ids) in reference.run(&sample.values)?.into_iter().zip(&ids) {
            for &t in ids {
                values[t] = Some(v.clone());
            }
        }
        Ok(values)
    };
    ranges(graph, samples, method, run, progress)
}

/// [`calibrate`] with the values of `graph` itself, run by the IR
/// interpreter: for a graph that no longer computes the ONNX model's
/// tensors (a pruned one). `samples` are in ONNX layout `onnx_shape`.
pub fn calibrate_ir(
    graph: &Graph,
    samples: &[Sample],
    onnx_shape: &[usize],
    method: Method,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<Option<Range>>> {
    let run = |sample: &Sample| eval::evaluate(graph, &layout::nchw_to_nhwc(&sample.values, onnx_shape));
    ranges(graph, samples, method, run, progress)
}

/// The ranges of [`calibrate`] from `run`, which gives the float value of
/// every tensor it can (indexed by tensor id) for one sample.
fn ranges(
    graph: &Graph,
    samples: &[Sample],
    method: Method,
    run: impl Fn(&Sample) -> Result<Vec<Option<Vec<f32>>>>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Option<Range>>> {
    ensure!(!samples.is_empty(), "calibration needs at least one input");
    let passes = if method == Method::MinMax { 1 } else { 2 };
    let total = passes * samples.len();
    let mut seen: Vec<Option<Range>> = vec![None; graph.tensors.len()];
    for (done, sample) in samples.iter().enumerate() {
        for (range, v) in seen.iter_mut().zip(run(sample)?) {
            if let Some(v) = v {
                *range = Some(range.map_or(Range::of(&v), |r| r.union(Range::of(&v))));
            }
        }
        progress(done + 1, total);
    }
    if passes == 2 {
        let mut histograms: Vec<Option<Histogram>> = seen.iter().map(|r| r.map(Histogram::new)).collect();
        for (done, sample) in samples.iter().enumerate() {
            for (h, v) in histograms.iter_mut().zip(run(sample)?) {
                if let (Some(h), Some(v)) = (h, v) {
                    h.add(&v);
                }
            }
            progress(samples.len() + done + 1, total);
        }
        for (range, h) in seen.iter_mut().zip(&histograms) {
            *range = h.as_ref().map(|h| match method {
                Method::Percentile(tail) => h.percentile(tail),
                _ => h.mse_optimal(),
            });
        }
    }
    let mut ranges: Vec<Option<Range>> = vec![None; graph.tensors.len()];
    let input = samples.iter().map(|s| Range::of(&s.values)).reduce(Range::union);
    if let Some(r) = input.filter(|r| !(r.max - r.min).is_finite()) {
        bail!("the calibration inputs span {} to {}: too wide for any quantization", r.min, r.max);
    }
    ranges[graph.input] = input;
    for node in &graph.nodes {
        let t: TensorId = node.output;
        // A squashing function's int8 table maps every input code into the
        // image of the input's range; a narrower output range (what `mse`
        // picks for a score map of mostly background, whose faces are rare
        // outliers) would clip the values the model exists for.
        if let Some(f) = node.op.squashing() {
            ranges[t] = ranges[node.inputs[0]].map(|r| image(f, r));
            continue;
        }
        ranges[t] = match seen[t] {
            Some(range) if !(range.max - range.min).is_finite() => bail!(
                "`{}` ({}) took values from {} to {} on the calibration inputs: too wide a span for any \
                 quantization (check the inputs' scale)",
                node.name,
                node.op.name(),
                range.min,
                range.max
            ),
            Some(range) if range.min == range.max => {
                log::warn!(
                    "`{}` ({}) took only the value {} on every calibration input: its int8 range is degenerate; \
                     calibrate on more varied inputs",
                    node.name,
                    node.op.name(),
                    range.min
                );
                Some(range)
            }
            Some(range) => Some(range),
            // Layout ops that lowering added keep their input's values.
            None if node.op.moves_data_only() => ranges[node.inputs[0]],
            // Means and maxima that lowering added (a reduction over merged
            // axes, the pairs of a Max or Min of several inputs) stay within
            // their inputs' ranges.
            None if matches!(node.op, Op::Reduce { .. } | Op::Max | Op::Min) => {
                node.inputs.iter().map(|&i| ranges[i]).reduce(|a, b| a.zip(b).map(|(a, b)| a.union(b))).flatten()
            }
            // Float-only ops that lowering added (a matrix product in ONNX
            // order, moved back to NHWC after) need no int8 range: their
            // consumers run in float.
            None if node.op.float_only() => None,
            // A softmax lowering moved to the last axis gives probabilities.
            None if matches!(node.op, Op::Softmax { .. }) => Some(Range { min: 0.0, max: 1.0 }),
            None => bail!(
                "tensor {t} (output of `{}`, {}) has no ONNX counterpart to calibrate on",
                node.name,
                node.op.name()
            ),
        };
    }
    Ok(ranges)
}

/// The range a monotonic `f` maps `input` to.
fn image(f: impl Fn(f32) -> f32, input: Range) -> Range {
    let (a, b) = (f(input.min), f(input.max));
    Range { min: a.min(b), max: a.max(b) }
}
