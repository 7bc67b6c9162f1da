//! Lowers an imported ONNX graph to kiln's IR, node by node.
//!
//! Each ONNX value becomes either an IR activation tensor or a constant
//! (initializers, `Constant` nodes, and arithmetic on constants, folded here).
//! Rank-4 activations switch from NCHW to NHWC; ops whose meaning depends on
//! the axis order (Reshape, Flatten) get explicit layout transposes, which
//! [`crate::passes`] later removes where it can (e.g. Flatten→Gemm).
//! The result is one IR op per ONNX op: fusion is the passes' job.

mod nn;
mod pointwise;
mod shape;

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::Tensor as Constant;

use crate::import::OnnxModel;
use crate::ir::{self, Graph, Node, Op, TensorId};

/// Lowers `model` to an IR graph whose input is the model's input.
pub fn lower(model: &OnnxModel) -> Result<Graph> {
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
    for node in &model.graph().node {
        // Names are optional in ONNX; messages and IR nodes then use the
        // node's first output, as tract does.
        let mut node = node.clone();
        if node.name.is_empty() {
            node.name = node.output.first().cloned().unwrap_or_default();
        }
        cx.lower_node(&node, opset)
            .with_context(|| format!("lowering ONNX node `{}` ({})", node.name, node.op_type))?;
    }
    for output in &model.graph().output {
        match cx.values.get(&output.name) {
            Some(Value::Activation(t)) => cx.graph.outputs.push(*t),
            _ => bail!("graph output `{}` is not computed from the input", output.name),
        }
    }
    ir::infer_shapes(&cx.graph)?;
    log::info!("lowered to {} IR nodes", cx.graph.nodes.len());
    Ok(cx.graph)
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

/// The IR axis of ONNX axis `axis` (negative counts from the end) of a
/// tensor of rank `rank`.
fn ir_axis(axis: i64, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    anyhow::ensure!((0..rank as i64).contains(&a), "axis {axis} out of rank {rank}");
    Ok(if rank == 4 { ir::NHWC_TO_NCHW[a as usize] } else { a as usize })
}

impl Lowering {
    fn lower_node(&mut self, node: &NodeProto, opset: i64) -> Result<()> {
        let op = node.op_type.as_str();
        if !matches!(op, "Shape" | "Constant") && self.all_inputs_constant(node) {
            return pointwise::fold_constants(self, node);
        }
        match op {
            "Conv" => nn::conv(self, node),
            "Gemm" => nn::gemm(self, node),
            "MatMul" => nn::matmul(self, node),
            "BatchNormalization" => nn::batch_norm(self, node),
            "MaxPool" | "AveragePool" => nn::pool(self, node),
            "GlobalAveragePool" => self.unary(node, Op::GlobalAvgPool),
            "Add" | "Sub" | "Mul" | "Div" => pointwise::arithmetic(self, node),
            "Relu" | "Clip" | "LeakyRelu" | "PRelu" | "Sigmoid" | "Tanh" | "HardSwish" | "HardSigmoid" => {
                pointwise::activation(self, node, opset)
            }
            "Dropout" | "Identity" => {
                let v = self.value(&node.input[0])?.clone();
                self.values.insert(node.output[0].clone(), v);
                Ok(())
            }
            "Constant" => {
                let t: &tract_onnx::pb::TensorProto = node.get_attr("value")?;
                let c = tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::MmapDataResolver, t, None)?;
                self.values.insert(node.output[0].clone(), Value::Constant(c));
                Ok(())
            }
            "Reshape" | "Flatten" => shape::reshape(self, node),
            "Transpose" => shape::transpose(self, node),
            "Concat" => shape::concat(self, node),
            "Pad" => shape::pad(self, node, opset),
            "Resize" | "Upsample" => shape::resize(self, node),
            "Softmax" => shape::softmax(self, node, opset),
            _ => {
                bail!("unsupported ONNX op `{}` in node `{}`: kiln cannot convert this model", node.op_type, node.name)
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
