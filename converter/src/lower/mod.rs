//! Lowers an imported ONNX graph to kiln's IR, node by node.
//!
//! Each ONNX value becomes either an IR activation tensor or a constant
//! (initializers and everything tract folded at import: a node whose outputs
//! are all constant is skipped).
//! Rank-4 activations switch from NCHW to NHWC; ops whose meaning depends on
//! the axis order (Reshape, Flatten) get explicit layout transposes, which
//! [`crate::passes`] later removes where it can (e.g. Flatten→Gemm).
//! The result is one IR op per ONNX op: fusion is the passes' job.
//!
//! Lowering goes on past a node it cannot lower (its outputs become
//! placeholders of the shape tract inferred), so that one pass names every
//! unsupported node: [`survey`] is what `kiln check` prints, and [`lower`]
//! fails listing them all, before any calibration.

mod nn;
mod pointwise;
mod reduce;
mod shape;
mod slice;

use std::collections::HashMap;

use anyhow::{bail, ensure, Context, Result};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::Tensor as Constant;

use crate::import::OnnxModel;
use crate::ir::{self, Graph, Node, Op, TensorId};

/// What lowering did with one ONNX node.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Its outputs do not depend on the input: tract folded them at import.
    Folded,
    /// It became IR ops, which run in int8 (or in float, if asked).
    Int8,
    /// It became IR ops with no int8 form, which run in float.
    Float,
    /// kiln has no form for it; the message says why (and names the node).
    Unsupported(String),
    /// It reads the output of an unsupported node whose shape is unknown,
    /// so it could not be looked at.
    Unreached,
}

/// The ONNX ops of [`lowered_ops`] that have no int8 form in any use:
/// they always run in float. (Div and MatMul run in float only between two
/// activations.)
pub const FLOAT_ONLY: &[&str] = &["Pow", "Sqrt", "Exp", "Log", "Erf", "Reciprocal"];

/// Lowers one ONNX node (with the model's opset) into IR ops.
type LowerFn = fn(&mut Lowering, &NodeProto, i64) -> Result<()>;

/// Every ONNX op kiln lowers to IR ops, and how; the README's table of
/// supported operators is checked against it.
const LOWERED: &[(&str, LowerFn)] = &[
    ("Conv", |cx, node, _| nn::conv(cx, node)),
    ("ConvTranspose", |cx, node, _| nn::conv_transpose(cx, node)),
    ("Gemm", |cx, node, _| nn::gemm(cx, node)),
    ("MatMul", |cx, node, _| nn::matmul(cx, node)),
    ("BatchNormalization", |cx, node, _| nn::batch_norm(cx, node)),
    ("MaxPool", |cx, node, _| nn::pool(cx, node)),
    ("AveragePool", |cx, node, _| nn::pool(cx, node)),
    ("GlobalAveragePool", |cx, node, _| cx.unary(node, Op::GlobalAvgPool)),
    ("GlobalMaxPool", |cx, node, _| reduce::global_max_pool(cx, node)),
    ("ReduceMean", reduce::reduce),
    ("ReduceMax", reduce::reduce),
    ("Add", |cx, node, _| pointwise::arithmetic(cx, node)),
    ("Sub", |cx, node, _| pointwise::arithmetic(cx, node)),
    ("Mul", |cx, node, _| pointwise::arithmetic(cx, node)),
    ("Div", |cx, node, _| pointwise::arithmetic(cx, node)),
    ("Max", |cx, node, _| pointwise::extremum(cx, node)),
    ("Min", |cx, node, _| pointwise::extremum(cx, node)),
    ("Relu", pointwise::activation),
    ("Clip", pointwise::activation),
    ("LeakyRelu", pointwise::activation),
    ("PRelu", pointwise::activation),
    ("Sigmoid", pointwise::activation),
    ("Tanh", pointwise::activation),
    ("HardSigmoid", pointwise::activation),
    ("HardSwish", pointwise::activation),
    ("Abs", pointwise::activation),
    ("Neg", pointwise::activation),
    ("Dropout", |cx, node, _| cx.alias(node)),
    ("Identity", |cx, node, _| cx.alias(node)),
    ("Reshape", |cx, node, _| shape::reshape(cx, node)),
    ("Flatten", |cx, node, _| shape::reshape(cx, node)),
    ("Squeeze", shape::squeeze),
    ("Unsqueeze", shape::squeeze),
    ("Transpose", |cx, node, _| shape::transpose(cx, node)),
    ("Concat", |cx, node, _| shape::concat(cx, node)),
    ("Slice", slice::slice),
    ("Split", slice::split),
    ("Pad", shape::pad),
    ("Resize", |cx, node, _| shape::resize(cx, node)),
    ("Upsample", |cx, node, _| shape::resize(cx, node)),
    ("DepthToSpace", |cx, node, _| shape::depth_space(cx, node)),
    ("SpaceToDepth", |cx, node, _| shape::depth_space(cx, node)),
    ("Softmax", shape::softmax),
    ("Pow", pointwise::math),
    ("Sqrt", pointwise::math),
    ("Exp", pointwise::math),
    ("Log", pointwise::math),
    ("Erf", pointwise::math),
    ("Reciprocal", pointwise::math),
];

/// The ONNX ops kiln lowers to IR ops.
pub fn lowered_ops() -> impl Iterator<Item = &'static str> {
    LOWERED.iter().map(|(op, _)| *op)
}

/// One ONNX node and what lowering did with it.
#[derive(Clone, Debug)]
pub struct NodeReport {
    /// The node's name (its first output's when it has none).
    pub name: String,
    /// Its ONNX op type.
    pub op_type: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// Lowers `model` to an IR graph whose input is the model's input; fails
/// naming every node kiln cannot lower.
pub fn lower(model: &OnnxModel) -> Result<Graph> {
    let (graph, reports) = survey(model)?;
    let unsupported: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Unsupported(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    ensure!(
        unsupported.is_empty(),
        "{}: kiln cannot convert {} of its {} nodes (`kiln check` prints every op and what kiln does with it):\n  {}",
        model.path.display(),
        unsupported.len(),
        reports.len(),
        unsupported.join("\n  ")
    );
    ir::infer_shapes(&graph)?;
    for node in &graph.nodes {
        if let Some((what, i, v)) = node.op.non_finite_parameter() {
            bail!(
                "{}: ONNX node `{}`: {what} {i} is {v}; kiln needs finite weights: the model file is damaged or \
                 was exported wrong",
                model.path.display(),
                node.name
            );
        }
    }
    log::info!("lowered to {} IR nodes", graph.nodes.len());
    Ok(graph)
}

/// Lowers every node of `model` it can and reports what it did with each;
/// the graph is only meaningful when no node is unsupported.
pub fn survey(model: &OnnxModel) -> Result<(Graph, Vec<NodeReport>)> {
    let mut cx = Lowering { graph: Graph::default(), values: HashMap::new() };
    for (name, t) in &model.constants {
        cx.values.insert(name.clone(), Value::Constant(t.clone()));
    }
    let shape = to_ir_shape(&model.input_shape);
    cx.graph.input = cx.graph.add_tensor(shape, Some(model.input_name.clone()));
    cx.values.insert(model.input_name.clone(), Value::Activation(cx.graph.input));
    let opset = model
        .proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(11, |o| o.version);
    let mut reports = Vec::new();
    for node in &model.graph().node {
        // Names are optional in ONNX; messages and IR nodes then use the
        // node's first output, as tract does.
        let mut node = node.clone();
        if node.name.is_empty() {
            node.name = node.output.first().cloned().unwrap_or_default();
        }
        let outcome = if node.input.iter().any(|i| !i.is_empty() && !cx.values.contains_key(i)) {
            Outcome::Unreached
        } else if cx.outputs_constant(&node) {
            Outcome::Folded
        } else {
            let before = cx.graph.nodes.len();
            match cx.lower_node(&node, opset) {
                Ok(()) if cx.graph.nodes[before..].iter().any(|n| n.op.float_only()) => Outcome::Float,
                Ok(()) => Outcome::Int8,
                Err(e) => {
                    cx.stand_in(&node, model);
                    Outcome::Unsupported(format!(
                        "{:#}",
                        e.context(format!("ONNX node `{}` ({})", node.name, node.op_type))
                    ))
                }
            }
        };
        reports.push(NodeReport { name: node.name, op_type: node.op_type, outcome });
    }
    for output in &model.graph().output {
        match cx.values.get(&output.name) {
            Some(Value::Activation(t)) => cx.graph.outputs.push(*t),
            Some(Value::Constant(_)) => bail!("graph output `{}` does not depend on the input", output.name),
            None if reports.iter().any(|r| !matches!(r.outcome, Outcome::Int8 | Outcome::Folded)) => {}
            None => bail!("graph output `{}` is computed by no node", output.name),
        }
    }
    Ok((cx.graph, reports))
}

/// What an ONNX value name stands for during lowering.
#[derive(Clone)]
enum Value {
    Activation(TensorId),
    Constant(Constant),
}

/// A constant converted to f32, in ONNX order.
struct Const {
    shape: Vec<usize>,
    values: Vec<f32>,
}

struct Lowering {
    graph: Graph,
    values: HashMap<String, Value>,
}

/// The IR shape of an ONNX shape: NCHW becomes NHWC, other ranks stay.
fn to_ir_shape(onnx: &[usize]) -> Vec<usize> {
    match onnx {
        &[n, c, h, w] => vec![n, h, w, c],
        _ => onnx.to_vec(),
    }
}

/// ONNX axis `axis` (negative counts from the end) of a tensor of rank
/// `rank`, checked.
fn onnx_axis(axis: i64, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    ensure!((0..rank as i64).contains(&a), "axis {axis} out of rank {rank}");
    Ok(a as usize)
}

/// The IR axis of ONNX axis `axis` (negative counts from the end) of a
/// tensor of rank `rank`.
fn ir_axis(axis: i64, rank: usize) -> Result<usize> {
    let a = onnx_axis(axis, rank)?;
    Ok(if rank == 4 { ir::NHWC_TO_NCHW[a] } else { a })
}

impl Lowering {
    fn lower_node(&mut self, node: &NodeProto, opset: i64) -> Result<()> {
        let op = node.op_type.as_str();
        if self.all_inputs_constant(node) {
            bail!(
                "it computes a constant that shape inference did not fold (too large, or of unknown type): \
                 kiln cannot convert it"
            );
        }
        match LOWERED.iter().find(|(name, _)| *name == op) {
            Some((_, lower)) => lower(self, node, opset),
            None => bail!("unsupported ONNX op `{op}`: kiln has no kernel for it"),
        }
    }

    /// Dropout and Identity at inference: the output is the input.
    fn alias(&mut self, node: &NodeProto) -> Result<()> {
        let v = self.value(&node.input[0])?.clone();
        self.values.insert(node.output[0].clone(), v);
        Ok(())
    }

    /// Whether every output of `node` is a constant (folded at import).
    fn outputs_constant(&self, node: &NodeProto) -> bool {
        node.output.iter().all(|o| o.is_empty() || matches!(self.values.get(o), Some(Value::Constant(_))))
    }

    /// Stands in for the outputs of `node`, which could not be lowered:
    /// each becomes an activation of the shape tract inferred, so that the
    /// nodes after it can still be looked at. Outputs of unknown shape stay
    /// undefined (their readers are [`Outcome::Unreached`]).
    fn stand_in(&mut self, node: &NodeProto, model: &OnnxModel) {
        for name in &node.output {
            if name.is_empty() || self.values.contains_key(name) {
                continue;
            }
            if let Some(shape) = model.shapes.get(name) {
                let t = self.graph.add_tensor(to_ir_shape(shape), Some(name.clone()));
                self.values.insert(name.clone(), Value::Activation(t));
            }
        }
    }

    fn all_inputs_constant(&self, node: &NodeProto) -> bool {
        node.input.iter().filter(|i| !i.is_empty()).all(|i| matches!(self.values.get(i), Some(Value::Constant(_))))
    }

    fn value(&self, name: &str) -> Result<&Value> {
        self.values.get(name).with_context(|| format!("value `{name}` is not defined before use"))
    }

    /// The activation tensor named `name`.
    fn activation(&self, name: &str) -> Result<TensorId> {
        match self.value(name)? {
            Value::Activation(t) => Ok(*t),
            Value::Constant(_) => bail!("`{name}` is a constant where kiln expects an activation"),
        }
    }

    /// The constant named `name`, as f32.
    fn constant(&self, name: &str) -> Result<Const> {
        match self.value(name)? {
            Value::Constant(c) => {
                let view = c.cast_to::<f32>()?;
                let view = view.to_plain_array_view::<f32>()?;
                Ok(Const { shape: view.shape().to_vec(), values: view.iter().copied().collect() })
            }
            Value::Activation(_) => {
                bail!("`{name}` is computed at run time where kiln expects a constant")
            }
        }
    }

    /// The constant input `ix` of `node` as i64s, if present.
    fn constant_ints(&self, node: &NodeProto, ix: usize) -> Result<Option<Vec<i64>>> {
        match node.input.get(ix).filter(|i| !i.is_empty()) {
            None => Ok(None),
            Some(name) => match self.value(name)? {
                Value::Constant(c) => {
                    Ok(Some(c.cast_to::<i64>()?.to_plain_array_view::<i64>()?.iter().copied().collect()))
                }
                Value::Activation(_) => bail!("`{name}` must be a constant"),
            },
        }
    }

    fn shape(&self, t: TensorId) -> &[usize] {
        &self.graph.tensors[t].shape
    }

    /// Appends a node computing `op` from `inputs`; its output holds ONNX
    /// value `onnx_name` when given. Returns the output tensor.
    fn push(&mut self, name: &str, op: Op, inputs: Vec<TensorId>, onnx_name: Option<&str>) -> Result<TensorId> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|&t| self.shape(t)).collect();
        let shape = ir::shape_of(&op, &shapes)?;
        let output = self.graph.add_tensor(shape, onnx_name.map(str::to_owned));
        self.graph.nodes.push(Node { name: name.to_owned(), op, inputs, output });
        if let Some(n) = onnx_name {
            self.values.insert(n.to_owned(), Value::Activation(output));
        }
        Ok(output)
    }

    /// Lowers a node with one activation input and one output to `op`.
    fn unary(&mut self, node: &NodeProto, op: Op) -> Result<()> {
        let x = self.activation(&node.input[0])?;
        self.push(&node.name, op, vec![x], Some(&node.output[0]))?;
        Ok(())
    }
}
