//! `kiln check`: what kiln will do with each op of an ONNX model, in
//! seconds and without calibration data.

use std::path::Path;

use anyhow::{bail, Result};
use kiln_converter::check::check;
use kiln_converter::import::{InputShape, OnnxModel};
use kiln_converter::lower::Outcome;

/// Prints the input and output shapes, every op type with its count and
/// what kiln does with it, and each node it cannot run in int8 with why;
/// fails when the model will not convert.
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
    for (title, nodes) in [("needs float execution:", &report.float), ("unsupported:", &report.unsupported)] {
        if !nodes.is_empty() {
            println!("{title}");
        }
        for node in nodes {
            match &node.outcome {
                Outcome::Float(why) | Outcome::Unsupported(why) => println!("  {why}"),
                _ => {
                    println!("  ONNX node `{}` ({}): reads the output of an unsupported node", node.name, node.op_type)
                }
            }
        }
    }
    let blocking = report.float.len() + report.unsupported.len();
    bail!(
        "{}: kiln cannot convert {} node{} (listed above)",
        model.display(),
        blocking,
        if blocking == 1 { "" } else { "s" }
    )
}
