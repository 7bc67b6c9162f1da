//! Lowering of element-wise ops: arithmetic (between activations, or with a
//! scalar or per-channel constant on either side), Max and Min, and
//! activation functions.

use anyhow::{bail, ensure, Context, Result};
use tract_onnx::pb::NodeProto;

use super::{Const, Lowering, Value};
use crate::ir::{Math, Op, TensorId};

/// The values of `c` as one per channel of an activation of `shape`, or a
/// single value; kiln's ScaleShift and PRelu cannot broadcast otherwise.
fn per_channel(c: &Const, shape: &[usize]) -> Result<Vec<f32>> {
    let values = c.values.clone();
    if values.len() == 1 {
        return Ok(values);
    }
    let channels = shape.last().copied().unwrap_or(1);
    // ONNX dims of the constant, without leading 1s, must address the
    // channel axis: [C, 1, 1] against NCHW, [C] against other ranks.
    let dims: Vec<usize> = c.shape.iter().copied().skip_while(|&d| d == 1).collect();
    let fits = if shape.len() == 4 { dims.len() == 3 && dims[1..] == [1, 1] } else { dims.len() == 1 };
    if !fits || values.len() != channels {
        bail!("constant of shape {:?} does not broadcast per channel over {shape:?}", c.shape);
    }
    Ok(values)
}

/// Add, Sub, Mul, Div with at least one activation input: between two
/// activations, or with a scalar or per-channel constant on either side.
pub(super) fn arithmetic(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let op = node.op_type.as_str();
    let (a, b) = (cx.value(&node.input[0])?.clone(), cx.value(&node.input[1])?.clone());
    let (x, constant_first) = match (a, b) {
        (Value::Activation(x), Value::Activation(y)) => {
            let op = match op {
                "Add" => Op::Add,
                "Sub" => Op::Sub,
                "Mul" => Op::Mul,
                _ => Op::Div,
            };
            cx.push(&node.name, op, vec![x, y], Some(&node.output[0]))?;
            return Ok(());
        }
        (Value::Activation(x), Value::Constant(_)) => (x, false),
        (Value::Constant(_), Value::Activation(x)) => (x, true),
        (Value::Constant(_), Value::Constant(_)) => unreachable!("nodes of constants are folded at import"),
    };
    let constant = cx.constant(&node.input[usize::from(!constant_first)])?;
    let c = per_channel(&constant, cx.shape(x)).with_context(|| format!("{op} by a constant"))?;
    let ir_op = match (op, constant_first) {
        ("Add", _) => Op::ScaleShift { scale: vec![1.0], shift: c },
        ("Sub", false) => Op::ScaleShift { scale: vec![1.0], shift: c.iter().map(|v| -v).collect() },
        ("Sub", true) => Op::ScaleShift { scale: vec![-1.0], shift: c },
        ("Mul", _) => Op::ScaleShift { scale: c, shift: vec![0.0] },
        ("Div", false) => Op::ScaleShift { scale: c.iter().map(|v| 1.0 / v).collect(), shift: vec![0.0] },
        _ => bail!("a constant divided by an activation has no int8 form: kiln cannot convert this model"),
    };
    cx.push(&node.name, ir_op, vec![x], Some(&node.output[0]))?;
    Ok(())
}

/// Max and Min of any number of inputs: of the activations pairwise, and
/// with scalar constants as a clamp at the largest (Max) or smallest (Min)
/// of them; one activation alone is itself.
pub(super) fn extremum(cx: &mut Lowering, node: &NodeProto) -> Result<()> {
    let max = node.op_type == "Max";
    let mut activations = Vec::new();
    let mut bound: Option<f32> = None;
    for name in node.input.iter().filter(|i| !i.is_empty()) {
        match cx.value(name)? {
            Value::Activation(t) => activations.push(*t),
            Value::Constant(_) => {
                let c = cx.constant(name)?;
                ensure!(
                    c.values.len() == 1,
                    "{} with a constant of shape {:?}: kiln takes activations and scalar constants",
                    node.op_type,
                    c.shape
                );
                let v = c.values[0];
                bound = Some(bound.map_or(v, |b| if max { b.max(v) } else { b.min(v) }));
            }
        }
    }
    let Some((&first, rest)) = activations.split_first() else { unreachable!("nodes of constants are folded") };
    let pairwise = if max { Op::Max } else { Op::Min };
    let mut steps: Vec<(Op, Vec<TensorId>)> = rest.iter().map(|&t| (pairwise.clone(), vec![t])).collect();
    if let Some(c) = bound {
        let clamp =
            if max { Op::Clamp { lo: c, hi: f32::INFINITY } } else { Op::Clamp { lo: f32::NEG_INFINITY, hi: c } };
        steps.push((clamp, vec![]));
    }
    let mut x = first;
    let last = steps.len();
    for (i, (op, more)) in steps.into_iter().enumerate() {
        let out = (i + 1 == last).then_some(node.output[0].as_str());
        x = cx.push(&node.name, op, [vec![x], more].concat(), out)?;
    }
    if last == 0 {
        cx.values.insert(node.output[0].clone(), Value::Activation(first));
    }
    Ok(())
}

/// Activation functions, each on one activation input.
pub(super) fn activation(cx: &mut Lowering, node: &NodeProto, opset: i64) -> Result<()> {
    let op = match node.op_type.as_str() {
        "Relu" => Op::Clamp { lo: 0.0, hi: f32::INFINITY },
        "Clip" if opset < 11 => Op::Clamp {
            lo: node.get_attr_opt("min")?.unwrap_or(f32::NEG_INFINITY),
            hi: node.get_attr_opt("max")?.unwrap_or(f32::INFINITY),
        },
        "Clip" => {
            let bound = |i: usize, default: f32| -> Result<f32> {
                match node.input.get(i).filter(|n| !n.is_empty()) {
                    Some(n) => Ok(cx.constant(n)?.values[0]),
                    None => Ok(default),
                }
            };
            Op::Clamp { lo: bound(1, f32::NEG_INFINITY)?, hi: bound(2, f32::INFINITY)? }
        }
        "LeakyRelu" => Op::PRelu { slope: vec![node.get_attr_opt("alpha")?.unwrap_or(0.01)] },
        "PRelu" => {
            let x = cx.activation(&node.input[0])?;
            let slope = per_channel(&cx.constant(&node.input[1])?, cx.shape(x)).context("PRelu slope")?;
            Op::PRelu { slope }
        }
        "Sigmoid" => Op::Sigmoid,
        "Tanh" => Op::Tanh,
        "Abs" => Op::Abs,
        "Neg" => Op::Neg,
        "HardSwish" => Op::HardSwish,
        "HardSigmoid" => Op::HardSigmoid {
            alpha: node.get_attr_opt("alpha")?.unwrap_or(0.2),
            beta: node.get_attr_opt("beta")?.unwrap_or(0.5),
        },
        other => unreachable!("{other} is not an activation"),
    };
    cx.unary(node, op)
}

/// Element-wise functions with no int8 form (they run in float): Sqrt,
/// Exp, Log, Erf, Reciprocal, and Pow by a scalar constant.
pub(super) fn math(cx: &mut Lowering, node: &NodeProto, _opset: i64) -> Result<()> {
    let f = match node.op_type.as_str() {
        "Sqrt" => Math::Sqrt,
        "Exp" => Math::Exp,
        "Log" => Math::Log,
        "Erf" => Math::Erf,
        "Reciprocal" => Math::Reciprocal,
        _ => {
            let Value::Constant(_) = cx.value(&node.input[1])? else {
                bail!("Pow to the power of an activation: kiln takes a constant exponent");
            };
            let e = cx.constant(&node.input[1])?;
            ensure!(e.values.len() == 1, "Pow by an exponent of shape {:?}: kiln takes a scalar", e.shape);
            Math::Pow(e.values[0])
        }
    };
    cx.unary(node, Op::Math(f))
}
