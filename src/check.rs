//! `kiln check`: what kiln will do with each op of an ONNX model, in
//! seconds and without calibration data.

use std::path::Path;

use anyhow::{bail, Result};
use kiln_converter::check::check;
use kiln_converter::import::{InputShape, OnnxModel};
use kiln_converter::lower::Outcome;

/// Prints the input and output shapes, every op type with its count and
/// what kiln does with it (folded, int8, float for ops with no int8 form,
/// unsupported), and each node it cannot convert with why; fails when the
/// model will not convert.
pub fn run(model: &Path, shape: Option<&InputShape>) -> Result<()> {
    let onnx = OnnxModel::load_shaped(model, shape)?;
    let report = check(&onnx)?;
    println!("model: {}", model.display());
    println!("input `{}` {:?}", onnx.input_name, onnx.input_shape);
    for (name, shape) in &report.outputs {
        match shape {
            Some(shape) => println!("output `{name}` {shape:?}"),
            None => println!("output `{name}` (shape unknown)"),
        }
    }
    println!("{:<24} {:>6} {:>7} {:>6} {:>6} {:>12}", "ONNX op", "nodes", "folded", "int8", "float", "unsupported");
    for (op, n) in &report.ops {
        println!("{op:<24} {:>6} {:>7} {:>6} {:>6} {:>12}", n.total(), n.folded, n.int8, n.float, n.unsupported);
    }
    if report.converts() {
        println!("kiln converts this model");
        return Ok(());
    }
    println!("unsupported:");
    for node in &report.unsupported {
        match &node.outcome {
            Outcome::Unsupported(why) => println!("  {why}"),
            _ => println!("  ONNX node `{}` ({}): reads the output of an unsupported node", node.name, node.op_type),
        }
    }
    let blocking = report.unsupported.len();
    bail!(
        "{}: kiln cannot convert {} node{} (listed above)",
        model.display(),
        blocking,
        if blocking == 1 { "" } else { "s" }
    )
}
