//! kiln's converter: turns an ONNX model into an int8 `.kiln` file.
//!
//! The pipeline, one module per stage:
//! [`import`] (ONNX through tract-onnx) → [`lower`] (kiln's NHWC [`ir`]) →
//! [`passes`] (folding and fusion) → [`calibrate`] (activation ranges from the
//! float model run by tract in [`reference`], on inputs read by [`input`]) →
//! [`quantize`] (int8, with the arena laid out by [`plan`]) → `.kiln` bytes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The workspace lint guards the no_std runtime; this is a std host tool.
#![allow(clippy::std_instead_of_core)]

pub mod calibrate;
pub mod import;
pub mod input;
pub mod ir;
pub mod lower;
pub mod passes;
pub mod plan;
pub mod quantize;
pub mod reference;

use std::path::Path;

/// Loads an ONNX model and lowers it to kiln's optimised IR: the imported
/// model (kept because it is the float reference) and the IR graph.
pub fn load_ir(path: &Path) -> anyhow::Result<(import::OnnxModel, ir::Graph)> {
    let model = import::OnnxModel::load(path)?;
    let mut graph = lower::lower(&model)?;
    passes::optimize(&mut graph)?;
    Ok((model, graph))
}
