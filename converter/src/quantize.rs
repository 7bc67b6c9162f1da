//! The quantizer: turns the float IR and its calibrated activation ranges
//! into an int8 `.kiln` file, following the TFLite int8 scheme (DESIGN.md):
//! weights symmetric per output channel, activations asymmetric per tensor,
//! bias int32 at scale `s_x * s_w[c]`, requantization multipliers in f32.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use kiln_runtime::format::{ModelWriter, TensorId as KTensor, ALIGN};
use kiln_runtime::ops::{self as kops, Act, Binary, Bounds, CoordTransform, NearestMode, ResizeMode, Unary};
use kiln_runtime::quant::{lut, softmax_table};
use kiln_runtime::{DType, OpKind, Quant};

use crate::calibrate::Range;
use crate::ir::{FusedActivation, Graph, Math, Op, TensorId, Window};
use crate::plan::{plan, Lifetime};

/// Asymmetric int8 quantization covering `range` and real zero exactly.
pub fn activation_quant(range: Range) -> Quant {
    let (lo, hi) = (range.min.min(0.0), range.max.max(0.0));
    let scale = ((hi - lo) / 255.0).max(f32::MIN_POSITIVE * 1e6);
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    Quant { scale, zero_point }
}

/// Symmetric int8 quantization of each output channel's weights (`rows`
/// consecutive chunks): the values and one scale per channel.
pub fn weight_quant(weights: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let per = weights.len() / channels;
    let mut scales = Vec::with_capacity(channels);
    let mut q = Vec::with_capacity(weights.len());
    for row in weights.chunks(per) {
        let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        q.extend(row.iter().map(|w| (w / scale).round_ties_even().clamp(-127.0, 127.0) as i8));
    }
    (q, scales)
}

fn quantize_value(v: f32, q: Quant) -> i32 {
    ((v / q.scale).round_ties_even() as i64 + q.zero_point as i64).clamp(-128, 127) as i32
}

/// The fused clamp in output units: the real interval `clamp` intersected
/// with int8's range.
fn act_range(clamp: Option<(f32, f32)>, q: Quant) -> Act {
    match clamp {
        None => Act::NONE,
        Some((lo, hi)) => Act {
            min: if lo.is_finite() { quantize_value(lo, q) } else { -128 },
            max: if hi.is_finite() { quantize_value(hi, q) } else { 127 },
        },
    }
}

/// Converts a calibrated IR graph into the bytes of a `.kiln` file.
///
/// `ranges` holds the calibrated real range of every IR tensor that the
/// graph computes (indexed by tensor id). `input_range`, when given, is the
/// domain of the graph input instead of its calibrated range: for images,
/// the range every pixel can take, so that 0..255 quantizes exactly.
pub fn quantize(graph: &Graph, ranges: &[Option<Range>], input_range: Option<Range>) -> Result<Vec<u8>> {
    quantize_mixed(graph, ranges, input_range, &Precision::least_float(graph))
}

/// Which nodes of a graph run in float, and how float weights are stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Precision {
    /// Per node, in graph order: whether it runs in float.
    pub float: Vec<bool>,
    /// [`DType::F16`] or [`DType::F32`].
    pub weights: DType,
}

impl Precision {
    /// Every node in int8 that has an int8 form; the others (and the cheap
    /// ops they feed, see [`crate::precision`]) in float.
    pub fn least_float(graph: &Graph) -> Self {
        crate::precision::resolve(graph, &vec![false; graph.nodes.len()], DType::F16)
    }
}

/// [`quantize`], with the nodes `precision` names running in float: the
/// int8 tensors they read are dequantized, and the float tensors that int8
/// nodes read are quantized with their calibrated ranges. A graph output
/// computed in float stays f32.
pub fn quantize_mixed(
    graph: &Graph,
    ranges: &[Option<Range>],
    input_range: Option<Range>,
    precision: &Precision,
) -> Result<Vec<u8>> {
    Emitter::new(graph, ranges, input_range, precision).run()
}

struct Emitter<'g> {
    graph: &'g Graph,
    ranges: &'g [Option<Range>],
    writer: ModelWriter,
    /// The kiln tensor and quantization of each IR tensor emitted so far
    /// in int8.
    emitted: Vec<Option<(KTensor, Quant)>>,
    /// The kiln tensor of each IR tensor emitted so far in f32.
    floats: Vec<Option<KTensor>>,
    precision: &'g Precision,
    /// Per emitted operator: its activation inputs and output, for the planner.
    steps: Vec<(Vec<KTensor>, KTensor)>,
    /// Every activation and its size in bytes.
    activations: Vec<(KTensor, usize)>,
    input_range: Option<Range>,
}

impl<'g> Emitter<'g> {
    fn new(
        graph: &'g Graph,
        ranges: &'g [Option<Range>],
        input_range: Option<Range>,
        precision: &'g Precision,
    ) -> Self {
        Emitter {
            graph,
            ranges,
            writer: ModelWriter::new(),
            emitted: vec![None; graph.tensors.len()],
            floats: vec![None; graph.tensors.len()],
            precision,
            steps: Vec::new(),
            activations: Vec::new(),
            input_range,
        }
    }

    fn name(&self, t: TensorId) -> String {
        self.graph.tensors[t].onnx_name.clone().unwrap_or_else(|| format!("t{t}"))
    }

    fn range(&self, t: TensorId) -> Result<Range> {
        self.ranges
            .get(t)
            .copied()
            .flatten()
            .with_context(|| format!("no calibrated range for tensor `{}`", self.name(t)))
    }

    fn activation(&mut self, name: &str, dtype: DType, dims: &[usize], quant: Quant) -> KTensor {
        let t = self.writer.activation(name, dtype, dims, quant);
        self.activations.push((t, dims.iter().product::<usize>() * dtype.size()));
        t
    }

    /// Declares IR tensor `t` in int8 with quantization `quant`.
    fn declare(&mut self, t: TensorId, quant: Quant) -> KTensor {
        let dims = self.graph.tensors[t].shape.clone();
        let k = self.activation(&self.name(t), DType::I8, &dims, quant);
        self.emitted[t] = Some((k, quant));
        k
    }

    /// Declares IR tensor `t` in f32.
    fn declare_float(&mut self, t: TensorId) -> KTensor {
        let dims = self.graph.tensors[t].shape.clone();
        let k = self.activation(&self.name(t), DType::F32, &dims, Quant::IDENTITY);
        self.floats[t] = Some(k);
        k
    }

    /// Declares IR tensor `t` as `dtype`: int8 with `quant`, or f32.
    fn declare_as(&mut self, t: TensorId, dtype: DType, quant: Quant) -> KTensor {
        if dtype == DType::F32 {
            self.declare_float(t)
        } else {
            self.declare(t, quant)
        }
    }

    /// The int8 form of IR tensor `t`, quantizing its float form with its
    /// calibrated range the first time it is asked for.
    fn input(&mut self, t: TensorId) -> Result<(KTensor, Quant)> {
        if let Some(done) = self.emitted[t] {
            return Ok(done);
        }
        let f = self.floats[t].with_context(|| format!("tensor `{}` is read before it is computed", self.name(t)))?;
        let quant = activation_quant(self.range(t)?);
        let dims = self.graph.tensors[t].shape.clone();
        let q = self.activation(&format!("{}.q", self.name(t)), DType::I8, &dims, quant);
        self.op(OpKind::Quantize, &[f], &[f], q, &[]);
        self.emitted[t] = Some((q, quant));
        Ok((q, quant))
    }

    /// The f32 form of IR tensor `t`, dequantizing its int8 form the first
    /// time it is asked for.
    fn float_input(&mut self, t: TensorId) -> Result<KTensor> {
        if let Some(done) = self.floats[t] {
            return Ok(done);
        }
        let (q, _) = self.input(t)?;
        let dims = self.graph.tensors[t].shape.clone();
        let f = self.activation(&format!("{}.f32", self.name(t)), DType::F32, &dims, Quant::IDENTITY);
        self.op(OpKind::Dequantize, &[q], &[q], f, &[]);
        self.floats[t] = Some(f);
        Ok(f)
    }

    /// The form a graph output is read in: f32 if it was computed in float.
    fn output(&mut self, t: TensorId) -> Result<KTensor> {
        match self.floats[t] {
            Some(f) => Ok(f),
            None => Ok(self.input(t)?.0),
        }
    }

    fn op(&mut self, kind: OpKind, inputs: &[KTensor], activations: &[KTensor], out: KTensor, params: &[i32]) {
        self.writer.op(kind, inputs, &[out], params);
        self.steps.push((activations.to_vec(), out));
    }

    fn run(mut self) -> Result<Vec<u8>> {
        let g = self.graph;
        let input_quant = activation_quant(match self.input_range {
            Some(range) => range,
            None => self.range(g.input)?,
        });
        let input = self.declare(g.input, input_quant);
        for (node, &float) in g.nodes.iter().zip(&self.precision.float) {
            let done = if float { self.float_node(node) } else { self.node(node) };
            done.with_context(|| format!("quantizing node `{}` ({})", node.name, node.op.name()))?;
        }
        let outputs = g.outputs.iter().map(|&t| self.output(t)).collect::<Result<Vec<_>>>()?;
        self.writer.inputs(&[input]);
        self.writer.outputs(&outputs);
        self.place(input, &outputs);
        Ok(self.writer.finish()?)
    }

    /// Plans the arena from the emitted operators and places every activation.
    fn place(&mut self, input: KTensor, outputs: &[KTensor]) {
        let mut lifetimes: BTreeMap<KTensor, Lifetime> =
            self.activations.iter().map(|&(t, size)| (t, Lifetime { size, first: usize::MAX, last: 0 })).collect();
        if let Some(l) = lifetimes.get_mut(&input) {
            l.first = 0;
        }
        for (step, (reads, out)) in self.steps.iter().enumerate() {
            for r in reads {
                if let Some(l) = lifetimes.get_mut(r) {
                    l.last = l.last.max(step + 1);
                }
            }
            if let Some(l) = lifetimes.get_mut(out) {
                l.first = step + 1;
            }
        }
        for o in outputs {
            if let Some(l) = lifetimes.get_mut(o) {
                l.last = usize::MAX;
            }
        }
        let (tensors, buffers): (Vec<KTensor>, Vec<Lifetime>) =
            lifetimes.into_iter().map(|(t, l)| (t, Lifetime { last: l.last.max(l.first), ..l })).unzip();
        let p = plan(&buffers, ALIGN);
        for (t, offset) in tensors.into_iter().zip(p.offsets) {
            self.writer.place(t, offset);
        }
    }

    fn node(&mut self, node: &crate::ir::Node) -> Result<()> {
        let (x, xq) = self.input(node.inputs[0])?;
        let out = node.output;
        let out_dims = self.graph.tensors[out].shape.clone();
        let fresh = |e: &Self| e.range(out).map(activation_quant);
        match &node.op {
            Op::Conv2d { weights, weight_shape, bias, stride, dilation, pads, groups, pad_value, activation } => {
                let yq = fresh(self)?;
                let (mut x, mut pads) = (x, *pads);
                if *pad_value != 0.0 && pads.iter().any(|&p| p > 0) {
                    // Border cells stand for `pad_value`, not real zero: pad explicitly.
                    x = self.pad_input(node.inputs[0], x, xq, pads, *pad_value);
                    pads = [0; 4];
                }
                let y = self.declare(out, yq);
                let [o, ..] = *weight_shape;
                let (wq, consts) = self.affine(&node.name, weights, bias, activation, xq, yq, o)?;
                let w = self.writer.conv_weights(&format!("{}.weight", node.name), *weight_shape, *groups, 1.0, &wq);
                let p = kops::Conv2d {
                    stride: *stride,
                    dilation: *dilation,
                    pad: pads,
                    groups: *groups,
                    act: act_range(activation.clamp, yq),
                };
                self.op(OpKind::Conv2d, &[x, w, consts[0], consts[1], consts[2]], &[x], y, &p.words());
            }
            Op::FullyConnected { weights, out_features, bias, activation } => {
                let yq = fresh(self)?;
                let k = weights.len() / out_features;
                let (wq, consts) = self.affine(&node.name, weights, bias, activation, xq, yq, *out_features)?;
                let w = self.writer.fc_weights(&format!("{}.weight", node.name), [*out_features, k], 1.0, &wq);
                let act = act_range(activation.clamp, yq);
                self.in_rows(node, x, DType::I8, (xq, yq), |e, x, y| {
                    e.op(OpKind::FullyConnected, &[x, w, consts[0], consts[1], consts[2]], &[x], y, &act.words())
                });
            }
            Op::ScaleShift { scale, shift } => {
                // A scale-and-shift no pass could fold: a 1x1 depthwise conv.
                let c = *out_dims.last().unwrap_or(&1);
                let per = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
                let w: Vec<f32> = (0..c).map(|i| per(scale, i)).collect();
                let b: Vec<f32> = (0..c).map(|i| per(shift, i)).collect();
                if out_dims.len() != 4 {
                    bail!("a per-channel scale and shift on a rank-{} tensor is not supported", out_dims.len());
                }
                let yq = fresh(self)?;
                let y = self.declare(out, yq);
                let none = FusedActivation::default();
                let (wq, consts) = self.affine(&node.name, &w, &b, &none, xq, yq, c)?;
                let wt = self.writer.conv_weights(&format!("{}.weight", node.name), [c, 1, 1, 1], c, 1.0, &wq);
                let p = kops::Conv2d { stride: [1, 1], dilation: [1, 1], pad: [0; 4], groups: c, act: Act::NONE };
                self.op(OpKind::Conv2d, &[x, wt, consts[0], consts[1], consts[2]], &[x], y, &p.words());
            }
            Op::Add | Op::Sub | Op::Mul | Op::Max | Op::Min => {
                let (b, _) = self.input(node.inputs[1])?;
                let y = self.declare(out, fresh(self)?);
                let kind = match node.op {
                    Op::Add => OpKind::Add,
                    Op::Sub => OpKind::Sub,
                    Op::Max => OpKind::Max,
                    Op::Min => OpKind::Min,
                    _ => OpKind::Mul,
                };
                self.op(kind, &[x, b], &[x, b], y, &Act::NONE.words());
            }
            Op::Concat { axis } => {
                let parts = node.inputs.iter().map(|&t| Ok(self.input(t)?.0)).collect::<Result<Vec<_>>>()?;
                let y = self.declare(out, fresh(self)?);
                self.op(OpKind::Concat, &parts, &parts, y, &[*axis as i32]);
            }
            Op::MaxPool(window) => {
                let y = self.declare(out, xq);
                self.op(OpKind::MaxPool, &[x], &[x], y, &pool(window, false).words());
            }
            Op::AvgPool { window, count_include_pad } => {
                let y = self.declare(out, fresh(self)?);
                self.op(OpKind::AvgPool, &[x], &[x], y, &pool(window, *count_include_pad).words());
            }
            Op::GlobalAvgPool => {
                let y = self.declare(out, fresh(self)?);
                self.op(OpKind::GlobalAvgPool, &[x], &[x], y, &[]);
            }
            Op::PRelu { slope } => {
                let c = *out_dims.last().unwrap_or(&1);
                let slopes: Vec<f32> = (0..c).map(|i| if slope.len() == 1 { slope[0] } else { slope[i] }).collect();
                let a = self.writer.constant_f32(&format!("{}.slope", node.name), &slopes);
                let y = self.declare(out, fresh(self)?);
                self.op(OpKind::PRelu, &[x, a], &[x], y, &[]);
            }
            Op::Clamp { lo, hi } => {
                let y = self.declare(out, xq);
                self.op(OpKind::Clamp, &[x], &[x], y, &act_range(Some((*lo, *hi)), xq).words());
            }
            Op::Sigmoid => self.lut(node, 0, |v| 1.0 / (1.0 + (-v).exp()))?,
            Op::Tanh => self.lut(node, 1, f64::tanh)?,
            Op::Abs => self.lut(node, 4, f64::abs)?,
            Op::Neg => self.lut(node, 5, |v| -v)?,
            Op::HardSwish => self.lut(node, 2, |v| v * (v + 3.0).clamp(0.0, 6.0) / 6.0)?,
            Op::HardSigmoid { alpha, beta } => {
                let (alpha, beta) = (f64::from(*alpha), f64::from(*beta));
                self.lut(node, 3, move |v| (alpha * v + beta).clamp(0.0, 1.0))?
            }
            Op::Reshape { .. } => {
                let y = self.declare(out, xq);
                self.op(OpKind::Reshape, &[x], &[x], y, &[]);
            }
            Op::Transpose { perm } => {
                let y = self.declare(out, xq);
                let words: Vec<i32> = perm.iter().map(|&p| p as i32).collect();
                self.op(OpKind::Transpose, &[x], &[x], y, &words);
            }
            Op::Pad { pads, value } => {
                let y = self.declare(out, xq);
                let mut words: Vec<i32> = pads.iter().map(|p| p.0 as i32).collect();
                words.extend(pads.iter().map(|p| p.1 as i32));
                words.push(quantize_value(*value, xq));
                self.op(OpKind::Pad, &[x], &[x], y, &words);
            }
            Op::ZeroInsert { stride } => {
                let y = self.declare(out, xq);
                self.op(OpKind::ZeroInsert, &[x], &[x], y, &[stride[0] as i32, stride[1] as i32]);
            }
            Op::Resize { scales, linear, coordinate_mode, nearest_mode, .. } => {
                let p = kops::Resize {
                    mode: if *linear { ResizeMode::Bilinear } else { ResizeMode::Nearest(nearest(nearest_mode)?) },
                    coord: coord(coordinate_mode)?,
                    scale: *scales,
                };
                let y = self.declare(out, xq);
                self.op(OpKind::Resize, &[x], &[x], y, &p.words());
            }
            Op::Slice { start, step, .. } => {
                let y = self.declare(out, xq);
                let mut words: Vec<i32> = start.iter().map(|&s| s as i32).collect();
                words.extend(step.iter().map(|&s| s as i32));
                self.op(OpKind::Slice, &[x], &[x], y, &words);
            }
            Op::Reduce { max } => {
                let y = self.declare(out, fresh(self)?);
                self.op(OpKind::Reduce, &[x], &[x], y, &[i32::from(*max)]);
            }
            Op::Div | Op::MatMul | Op::Math(_) => bail!("{} has no int8 form: it runs in float", node.op.name()),
            Op::Softmax { axis } => {
                if *axis + 1 != out_dims.len() {
                    bail!(
                        "softmax over axis {axis} of a rank-{} tensor: only the last axis is supported",
                        out_dims.len()
                    );
                }
                let table = self.writer.constant_f32(&format!("{}.exp", node.name), &softmax_table(1.0, xq));
                let y = self.declare(out, Quant { scale: 1.0 / 256.0, zero_point: -128 });
                self.op(OpKind::Softmax, &[x, table], &[x], y, &[]);
            }
        }
        Ok(())
    }

    /// Emits `node` in float; [`float_capable`] said it can be.
    fn float_node(&mut self, node: &crate::ir::Node) -> Result<()> {
        let out = node.output;
        let x = self.float_input(node.inputs[0])?;
        let dims = self.graph.tensors[out].shape.clone();
        let wtype = self.precision.weights;
        match &node.op {
            Op::Conv2d { weights, weight_shape, bias, stride, dilation, pads, groups, activation, .. } => {
                let [o, kh, kw, cg] = *weight_shape;
                let hwio = output_channel_last(weights, o);
                let w = self.writer.float_constant(&format!("{}.weight", node.name), wtype, &[kh, kw, cg, o], &hwio);
                let conv =
                    kops::Conv2d { stride: *stride, dilation: *dilation, pad: *pads, groups: *groups, act: Act::NONE };
                let p = kops::FloatConv2d { conv, bounds: bounds(activation.clamp) };
                let inputs = self.float_affine(&node.name, x, w, bias, activation, o);
                let y = self.declare_float(out);
                self.op(OpKind::FloatConv2d, &inputs, &[x], y, &p.words());
            }
            Op::FullyConnected { weights, out_features, bias, activation } => {
                let o = *out_features;
                let io = output_channel_last(weights, o);
                let w = self.writer.float_constant(&format!("{}.weight", node.name), wtype, &[io.len() / o, o], &io);
                let f = Quant::IDENTITY;
                self.in_rows(node, x, DType::F32, (f, f), |e, x, y| {
                    let inputs = e.float_affine(&node.name, x, w, bias, activation, o);
                    e.op(OpKind::FloatFullyConnected, &inputs, &[x], y, &bounds(activation.clamp).words())
                });
            }
            Op::ScaleShift { scale, shift } if dims.len() != 4 => {
                // A LayerNorm's affine part: a product, then a sum, by
                // constants broadcast along the last axis.
                let name = &node.name;
                let s = self.writer.float_constant(&format!("{name}.scale"), DType::F32, &[scale.len()], scale);
                let b = self.writer.float_constant(&format!("{name}.shift"), DType::F32, &[shift.len()], shift);
                let scaled = self.activation(&format!("{name}.scaled"), DType::F32, &dims, Quant::IDENTITY);
                self.op(OpKind::FloatBinary, &[x, s], &[x], scaled, &[Binary::Mul as i32]);
                let y = self.declare_float(out);
                self.op(OpKind::FloatBinary, &[scaled, b], &[scaled], y, &[Binary::Add as i32]);
            }
            Op::ScaleShift { scale, shift } => {
                // A 1x1 depthwise convolution, as in int8.
                let c = *dims.last().unwrap_or(&1);
                let per = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
                let w: Vec<f32> = (0..c).map(|i| per(scale, i)).collect();
                let b: Vec<f32> = (0..c).map(|i| per(shift, i)).collect();
                let wt = self.writer.float_constant(&format!("{}.weight", node.name), wtype, &[1, 1, 1, c], &w);
                let conv = kops::Conv2d { stride: [1, 1], dilation: [1, 1], pad: [0; 4], groups: c, act: Act::NONE };
                let p = kops::FloatConv2d { conv, bounds: Bounds::NONE };
                let inputs = self.float_affine(&node.name, x, wt, &b, &FusedActivation::default(), c);
                let y = self.declare_float(out);
                self.op(OpKind::FloatConv2d, &inputs, &[x], y, &p.words());
            }
            Op::Add | Op::Sub | Op::Mul | Op::Max | Op::Min | Op::Div => {
                let b = self.float_input(node.inputs[1])?;
                let f = match node.op {
                    Op::Add => Binary::Add,
                    Op::Sub => Binary::Sub,
                    Op::Max => Binary::Max,
                    Op::Min => Binary::Min,
                    Op::Div => Binary::Div,
                    _ => Binary::Mul,
                };
                let y = self.declare_float(out);
                self.op(OpKind::FloatBinary, &[x, b], &[x, b], y, &[f as i32]);
            }
            Op::MatMul => {
                let b = self.float_input(node.inputs[1])?;
                let y = self.declare_float(out);
                self.op(OpKind::FloatMatMul, &[x, b], &[x, b], y, &[]);
            }
            Op::Concat { axis } => {
                let parts = node.inputs.iter().map(|&t| self.float_input(t)).collect::<Result<Vec<_>>>()?;
                let y = self.declare_float(out);
                self.op(OpKind::Concat, &parts, &parts, y, &[*axis as i32]);
            }
            Op::Reshape { .. } => {
                let y = self.declare_float(out);
                self.op(OpKind::Reshape, &[x], &[x], y, &[]);
            }
            Op::Transpose { perm } => {
                let y = self.declare_float(out);
                let words: Vec<i32> = perm.iter().map(|&p| p as i32).collect();
                self.op(OpKind::Transpose, &[x], &[x], y, &words);
            }
            Op::Slice { start, step, .. } => {
                let y = self.declare_float(out);
                let mut words: Vec<i32> = start.iter().map(|&s| s as i32).collect();
                words.extend(step.iter().map(|&s| s as i32));
                self.op(OpKind::Slice, &[x], &[x], y, &words);
            }
            Op::Softmax { .. } => {
                let y = self.declare_float(out);
                self.op(OpKind::FloatSoftmax, &[x], &[x], y, &[]);
            }
            Op::Reduce { max } => {
                let y = self.declare_float(out);
                self.op(OpKind::FloatReduce, &[x], &[x], y, &[i32::from(*max)]);
            }
            op => {
                let Some((f, a, b)) = unary(op) else {
                    bail!("{} has no float kernel", op.name());
                };
                let y = self.declare_float(out);
                self.op(OpKind::FloatUnary, &[x], &[x], y, &[f as i32, a.to_bits() as i32, b.to_bits() as i32]);
            }
        }
        Ok(())
    }

    /// Emits a fully connected `node` by `emit(x, y)` on tensors as the
    /// runtime takes them, `[rows, features]`: an IR input or output of
    /// another rank is reshaped (a view) before and back after.
    fn in_rows(
        &mut self,
        node: &crate::ir::Node,
        x: KTensor,
        dtype: DType,
        (xq, yq): (Quant, Quant),
        emit: impl FnOnce(&mut Self, KTensor, KTensor),
    ) {
        let (xs, ys) =
            (self.graph.tensors[node.inputs[0]].shape.clone(), self.graph.tensors[node.output].shape.clone());
        if xs.len() == 2 && ys.len() == 2 {
            let y = self.declare_as(node.output, dtype, yq);
            return emit(self, x, y);
        }
        let (k, o) = (*xs.last().unwrap_or(&1), *ys.last().unwrap_or(&1));
        let rows = xs.iter().product::<usize>() / k.max(1);
        let flat = self.activation(&format!("{}.rows", node.name), dtype, &[rows, k], xq);
        self.op(OpKind::Reshape, &[x], &[x], flat, &[]);
        let y = self.activation(&format!("{}.out_rows", node.name), dtype, &[rows, o], yq);
        emit(self, flat, y);
        let out = self.declare_as(node.output, dtype, yq);
        self.op(OpKind::Reshape, &[y], &[y], out, &[]);
    }

    /// The inputs of a float convolution or fully connected layer with `o`
    /// outputs: `x`, the weights `w`, the bias and the optional slope.
    fn float_affine(
        &mut self,
        name: &str,
        x: KTensor,
        w: KTensor,
        bias: &[f32],
        activation: &FusedActivation,
        o: usize,
    ) -> [KTensor; 4] {
        let b = self.writer.constant_f32(&format!("{name}.bias"), bias);
        let alpha = match &activation.alpha {
            Some(a) => {
                let slopes: Vec<f32> = (0..o).map(|c| if a.len() == 1 { a[0] } else { a[c] }).collect();
                self.writer.constant_f32(&format!("{name}.slope"), &slopes)
            }
            None => KTensor::ABSENT,
        };
        [x, w, b, alpha]
    }

    /// Emits an elementwise function as a 256-entry table; `code` names it
    /// for listings.
    fn lut(&mut self, node: &crate::ir::Node, code: i32, f: impl Fn(f64) -> f64) -> Result<()> {
        let (x, xq) = self.input(node.inputs[0])?;
        let yq = activation_quant(self.range(node.output)?);
        let table = self.writer.constant_i8(&format!("{}.table", node.name), &[256], 1.0, &lut(f, xq, yq));
        let y = self.declare(node.output, yq);
        self.op(OpKind::Lut, &[x, table], &[x], y, &[code]);
        Ok(())
    }

    /// Pads `x` explicitly with the real value `value`.
    fn pad_input(&mut self, t: TensorId, x: KTensor, xq: Quant, pads: [usize; 4], value: f32) -> KTensor {
        let dims = &self.graph.tensors[t].shape;
        let [top, left, bottom, right] = pads;
        let padded = [dims[0], dims[1] + top + bottom, dims[2] + left + right, dims[3]];
        let y = self.activation(&format!("{}.padded", self.name(t)), DType::I8, &padded, xq);
        let words = [0, top as i32, left as i32, 0, 0, bottom as i32, right as i32, 0, quantize_value(value, xq)];
        self.op(OpKind::Pad, &[x], &[x], y, &words);
        y
    }

    /// Quantizes the weights, bias and multipliers of a Conv2d or
    /// FullyConnected with `o` output channels: returns the int8 weights and
    /// the bias, multiplier and negative-multiplier constants.
    #[allow(clippy::too_many_arguments)]
    fn affine(
        &mut self,
        name: &str,
        weights: &[f32],
        bias: &[f32],
        activation: &FusedActivation,
        xq: Quant,
        yq: Quant,
        o: usize,
    ) -> Result<(Vec<i8>, [KTensor; 3])> {
        let (wq, ws) = weight_quant(weights, o);
        let bias_q: Vec<i32> = (0..o)
            .map(|c| {
                let b = bias[c] as f64 / (xq.scale as f64 * ws[c] as f64);
                b.round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64) as i32
            })
            .collect();
        let mult: Vec<f32> = (0..o).map(|c| xq.scale * ws[c] / yq.scale).collect();
        let b = self.writer.constant_i32(&format!("{name}.bias"), &bias_q);
        let m = self.writer.constant_f32(&format!("{name}.multiplier"), &mult);
        let neg = match &activation.alpha {
            Some(alpha) => {
                let a = |c: usize| if alpha.len() == 1 { alpha[0] } else { alpha[c] };
                let neg: Vec<f32> = (0..o).map(|c| mult[c] * a(c)).collect();
                self.writer.constant_f32(&format!("{name}.negative_multiplier"), &neg)
            }
            None => KTensor::ABSENT,
        };
        Ok((wq, [b, m, neg]))
    }
}

/// Whether `node` of `graph` has an int8 kernel.
pub fn int8_capable(graph: &Graph, node: &crate::ir::Node) -> bool {
    let rank = graph.tensors[node.output].shape.len();
    match &node.op {
        Op::ScaleShift { .. } => rank == 4,
        Op::Softmax { axis } => axis + 1 == rank,
        op => !op.float_only(),
    }
}

/// Whether `node` of `graph` has a float kernel.
pub fn float_capable(graph: &Graph, node: &crate::ir::Node) -> bool {
    let rank = graph.tensors[node.output].shape.len();
    match &node.op {
        // The float kernel pads with zeros only.
        Op::Conv2d { pad_value, pads, .. } => *pad_value == 0.0 || pads.iter().all(|&p| p == 0),
        Op::ScaleShift { .. } => true,
        Op::Softmax { axis } => axis + 1 == rank,
        Op::FullyConnected { .. }
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Max
        | Op::Min
        | Op::Div
        | Op::MatMul
        | Op::Concat { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Reduce { .. } => true,
        op => unary(op).is_some(),
    }
}

/// The float function of an elementwise IR op, with its two parameters.
fn unary(op: &Op) -> Option<(Unary, f32, f32)> {
    Some(match op {
        Op::Clamp { lo, hi } => (Unary::Clamp, *lo, *hi),
        Op::Sigmoid => (Unary::Sigmoid, 0.0, 0.0),
        Op::Tanh => (Unary::Tanh, 0.0, 0.0),
        Op::Abs => (Unary::Abs, 0.0, 0.0),
        Op::Neg => (Unary::Neg, 0.0, 0.0),
        Op::HardSwish => (Unary::HardSwish, 0.0, 0.0),
        Op::HardSigmoid { alpha, beta } => (Unary::HardSigmoid, *alpha, *beta),
        Op::Math(Math::Sqrt) => (Unary::Sqrt, 0.0, 0.0),
        Op::Math(Math::Exp) => (Unary::Exp, 0.0, 0.0),
        Op::Math(Math::Log) => (Unary::Log, 0.0, 0.0),
        Op::Math(Math::Erf) => (Unary::Erf, 0.0, 0.0),
        Op::Math(Math::Reciprocal) => (Unary::Reciprocal, 0.0, 0.0),
        Op::Math(Math::Pow(e)) => (Unary::Pow, *e, 0.0),
        _ => return None,
    })
}

/// Float output bounds from a fused clamp.
fn bounds(clamp: Option<(f32, f32)>) -> Bounds {
    clamp.map_or(Bounds::NONE, |(lo, hi)| Bounds { lo, hi })
}

/// Weights `[o][rest]` (one row per output channel) as `[rest][o]`, the
/// float kernels' layout.
fn output_channel_last(weights: &[f32], o: usize) -> Vec<f32> {
    let rest = weights.len() / o;
    (0..rest).flat_map(|r| (0..o).map(move |c| weights[c * rest + r])).collect()
}

fn pool(w: &Window, count_include_pad: bool) -> kops::Pool {
    kops::Pool { kernel: w.kernel, stride: w.stride, pad: w.pads, count_include_pad }
}

fn nearest(mode: &str) -> Result<NearestMode> {
    Ok(match mode {
        "round_prefer_floor" | "" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        other => bail!("unknown Resize nearest_mode `{other}`"),
    })
}

fn coord(mode: &str) -> Result<CoordTransform> {
    Ok(match mode {
        "half_pixel" | "" => CoordTransform::HalfPixel,
        "asymmetric" => CoordTransform::Asymmetric,
        "align_corners" => CoordTransform::AlignCorners,
        "pytorch_half_pixel" => CoordTransform::PytorchHalfPixel,
        other => bail!("Resize coordinate_transformation_mode `{other}` is not supported"),
    })
}
