//! Mixed precision: which nodes run in float.
//!
//! A node runs in float when it has no int8 kernel, or when it is asked to
//! (`--float-layers`, or chosen by [`choose`]) and has a float kernel; a node without weights also runs in
//! float when one of its inputs was computed in float, so that an island
//! grows through the cheap operators after a float layer (activations,
//! residual sums, concatenations, reshapes) until an int8 layer reads it,
//! and a graph output computed in float stays f32.
//!
//! **Choosing by measurement** ([`choose`]): each output's error is one
//! minus its mean cosine to the float model on the calibration inputs.
//! Every layer with weights is tried in float alone, the rest int8, and
//! ranked by how much that lowers the outputs' summed error (the sum, not
//! the worst output: a detector's heads each have their own layers, and a
//! ranking by the worst output sees only the layers of one head). Layers
//! then go to float in that order, each addition measured and kept only if
//! it lowers the summed error, until every output reaches the target
//! cosine or the next layer would pass the float MAC budget. Each
//! candidate costs one quantization and one run of the calibration
//! inputs, which is why the inputs should be few.

use anyhow::{bail, Result};
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{DType, Model, Session};

use crate::calibrate::Range;
use crate::ir::{cost, Graph, Op};
use crate::quantize::{float_capable, int8_capable, quantize_mixed, Precision};

/// What to run in float.
#[derive(Clone, Debug)]
pub struct Options {
    /// Layers kept in float, by ONNX node name.
    pub float_layers: Vec<String>,
    /// Choose more layers by measurement.
    pub auto: Option<Auto>,
    /// How float weights are stored: [`DType::F16`] or [`DType::F32`].
    pub weights: DType,
}

/// The goal and budget of [`choose`].
#[derive(Clone, Copy, Debug)]
pub struct Auto {
    /// Stop once every output's mean cosine to the float model reaches this.
    pub target_cosine: f64,
    /// At most this fraction of the model's MACs runs in float.
    pub float_macs: f64,
}

/// One layer's measurement.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its node in the graph.
    pub node: usize,
    /// The ONNX node name.
    pub name: String,
    /// Its multiply-accumulates.
    pub macs: u64,
    /// The outputs' cosines with this layer alone in float.
    pub cosines: Vec<f64>,
}

/// What [`choose`] measured and chose.
#[derive(Clone, Debug)]
pub struct Report {
    /// The outputs' cosines with only the named layers in float.
    pub base: Vec<f64>,
    /// Every layer tried, best first.
    pub ranking: Vec<Candidate>,
    /// The layers kept in float (named and chosen), in graph order.
    pub float_layers: Vec<String>,
    /// The outputs' cosines of the result.
    pub cosines: Vec<f64>,
    /// MACs in float layers, and in the whole model.
    pub float_macs: (u64, u64),
    /// Constant bytes (weights, biases, tables) of int8 and of float operators.
    pub weight_bytes: (usize, usize),
}

/// Whether `op` is a layer with weights: what `--float-layers` names and
/// [`choose`] ranks.
fn weighted(op: &Op) -> bool {
    matches!(op, Op::Conv2d { .. } | Op::FullyConnected { .. } | Op::ScaleShift { .. })
}

/// The precision of every node when the nodes in `seeds` are asked to run
/// in float (see the module doc).
pub fn resolve(graph: &Graph, seeds: &[bool], weights: DType) -> Precision {
    let mut float_tensor = vec![false; graph.tensors.len()];
    let mut float = vec![false; graph.nodes.len()];
    for (n, node) in graph.nodes.iter().enumerate() {
        let grows = !weighted(&node.op) && node.inputs.iter().any(|&t| float_tensor[t]);
        float[n] = !int8_capable(graph, node) || ((seeds[n] || grows) && float_capable(graph, node));
        float_tensor[node.output] = float[n];
    }
    Precision { float, weights }
}

/// The nodes `names` name, as seeds for [`resolve`].
fn named(graph: &Graph, names: &[String]) -> Result<Vec<bool>> {
    let mut seeds = vec![false; graph.nodes.len()];
    for name in names {
        let Some(n) = graph.nodes.iter().position(|node| &node.name == name) else {
            let layers: Vec<&str> =
                graph.nodes.iter().filter(|n| weighted(&n.op)).map(|n| n.name.as_str()).take(8).collect();
            bail!(
                "--float-layers: no layer is named `{name}` (layers are ONNX node names, e.g. {})",
                layers.join(", ")
            );
        };
        if !float_capable(graph, &graph.nodes[n]) {
            bail!("--float-layers: `{name}` ({}) has no float kernel", graph.nodes[n].op.name());
        }
        seeds[n] = true;
    }
    Ok(seeds)
}

/// Measures a quantized graph against the float model.
pub struct Judge<'a> {
    graph: &'a Graph,
    ranges: &'a [Option<Range>],
    input_range: Option<Range>,
    inputs: &'a [Vec<f32>],
    references: Vec<Vec<Vec<f32>>>,
}

impl<'a> Judge<'a> {
    /// A judge on `inputs` (IR layout), with the float outputs computed
    /// here by the IR interpreter.
    pub fn new(
        graph: &'a Graph,
        ranges: &'a [Option<Range>],
        input_range: Option<Range>,
        inputs: &'a [Vec<f32>],
    ) -> Result<Self> {
        let references = inputs.iter().map(|x| crate::ir::eval::run(graph, x)).collect::<Result<_>>()?;
        Ok(Judge { graph, ranges, input_range, inputs, references })
    }

    /// The `.kiln` bytes of the graph at `precision`.
    pub fn bytes(&self, precision: &Precision) -> Result<Vec<u8>> {
        quantize_mixed(self.graph, self.ranges, self.input_range, precision)
    }

    /// Per output, the cosine between kiln's output and the float model's,
    /// each the concatenation of its values on every input: so that an
    /// input on which a score map is all but zero (a photo without faces at
    /// one scale) weighs by its values, not as a whole input whose cosine
    /// is noise or undefined.
    pub fn cosines(&self, precision: &Precision) -> Result<Vec<f64>> {
        let aligned = AlignedBytes::copy_of(&self.bytes(precision)?);
        let model = Model::from_bytes(&aligned)?;
        let mut session = Session::new(&model)?;
        let mut sums = vec![Dot::default(); self.graph.outputs.len()];
        for (x, reference) in self.inputs.iter().zip(&self.references) {
            session.set_input_f32(0, x)?;
            session.run();
            for (o, (sum, want)) in sums.iter_mut().zip(reference).enumerate() {
                let mut got = vec![0.0; want.len()];
                session.output_f32(o, &mut got)?;
                sum.add(&got, want);
            }
        }
        Ok(sums.iter().map(Dot::cosine).collect())
    }
}

/// The running sums of a cosine.
#[derive(Clone, Copy, Debug, Default)]
struct Dot {
    ab: f64,
    aa: f64,
    bb: f64,
}

impl Dot {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (f64::from(x), f64::from(y));
            self.ab += x * y;
            self.aa += x * x;
            self.bb += y * y;
        }
    }

    /// The cosine, with two zero vectors agreeing fully and one zero
    /// vector not at all.
    fn cosine(&self) -> f64 {
        match (self.aa == 0.0, self.bb == 0.0) {
            (true, true) => 1.0,
            (true, false) | (false, true) => 0.0,
            _ => self.ab / (self.aa * self.bb).sqrt(),
        }
    }
}

/// The lowest of the outputs' cosines.
pub fn worst(cosines: &[f64]) -> f64 {
    cosines.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The outputs' summed error, `Σ (1 - cosine)`.
pub fn error(cosines: &[f64]) -> f64 {
    cosines.iter().map(|c| 1.0 - c).sum()
}

/// The `.kiln` bytes at the precision `options` ask for (the named layers
/// in float, and with [`Options::auto`] the layers [`choose`] picks), and
/// what was measured and chosen.
pub fn plan(judge: &Judge<'_>, options: &Options) -> Result<(Vec<u8>, Report)> {
    let graph = judge.graph;
    let mut seeds = named(graph, &options.float_layers)?;
    let base = judge.cosines(&resolve(graph, &seeds, options.weights))?;
    log::debug!("precision: outputs' cosines {base:.5?}");
    let mut ranking = Vec::new();
    let mut result = base.clone();
    if let Some(auto) = options.auto {
        ranking = rank(judge, &seeds, options.weights)?;
        result = choose(judge, &mut seeds, &ranking, auto, options.weights, &base)?;
    }
    let precision = resolve(graph, &seeds, options.weights);
    let float_layers: Vec<String> = (0..graph.nodes.len())
        .filter(|&n| precision.float[n] && weighted(&graph.nodes[n].op))
        .map(|n| graph.nodes[n].name.clone())
        .collect();
    let total = cost::macs(graph);
    let float: u64 =
        graph.nodes.iter().zip(&precision.float).filter(|(_, &f)| f).map(|(n, _)| cost::node_macs(graph, n)).sum();
    let bytes = judge.bytes(&precision)?;
    let aligned = AlignedBytes::copy_of(&bytes);
    let model = Model::from_bytes(&aligned)?;
    let mut weight_bytes = (0, 0);
    for (kind, inputs, _) in model.ops() {
        let bytes: usize = inputs.iter().filter(|t| t.constant).map(|t| t.shape.elements() * t.dtype.size()).sum();
        if kind.is_float() {
            weight_bytes.1 += bytes;
        } else {
            weight_bytes.0 += bytes;
        }
    }
    let report = Report { base, ranking, float_layers, cosines: result, float_macs: (float, total), weight_bytes };
    Ok((bytes, report))
}

/// Every layer with weights not yet in float, tried in float alone (with
/// `seeds`), best first.
fn rank(judge: &Judge<'_>, seeds: &[bool], weights: DType) -> Result<Vec<Candidate>> {
    let graph = judge.graph;
    let mut ranking = Vec::new();
    for (n, node) in graph.nodes.iter().enumerate() {
        if seeds[n] || !weighted(&node.op) || !float_capable(graph, node) {
            continue;
        }
        let mut trial = seeds.to_vec();
        trial[n] = true;
        let cosines = judge.cosines(&resolve(graph, &trial, weights))?;
        log::debug!("precision: `{}` alone in float: cosines {cosines:.5?}", node.name);
        ranking.push(Candidate { node: n, name: node.name.clone(), macs: cost::node_macs(graph, node), cosines });
    }
    ranking.sort_by(|a, b| error(&a.cosines).total_cmp(&error(&b.cosines)));
    Ok(ranking)
}

/// Adds layers from `ranking` to `seeds`, best first, until the target or
/// the budget is reached; returns the cosines reached.
fn choose(
    judge: &Judge<'_>,
    seeds: &mut [bool],
    ranking: &[Candidate],
    auto: Auto,
    weights: DType,
    base: &[f64],
) -> Result<Vec<f64>> {
    let graph = judge.graph;
    let budget = (auto.float_macs * cost::macs(graph) as f64) as u64;
    let mut spent: u64 =
        graph.nodes.iter().zip(seeds.iter()).filter(|(_, &s)| s).map(|(n, _)| cost::node_macs(graph, n)).sum();
    let mut reached = base.to_vec();
    for candidate in ranking {
        if worst(&reached) >= auto.target_cosine || error(&candidate.cosines) >= error(base) {
            break;
        }
        if spent + candidate.macs > budget {
            continue;
        }
        let mut trial = seeds.to_vec();
        trial[candidate.node] = true;
        let cosines = judge.cosines(&resolve(graph, &trial, weights))?;
        // A layer that helps alone may not help with the others in float.
        if error(&cosines) < error(&reached) {
            seeds.copy_from_slice(&trial);
            spent += candidate.macs;
            reached = cosines;
        }
    }
    Ok(reached)
}
