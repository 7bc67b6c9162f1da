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

/// Converts the ONNX model at `path` to the bytes of an int8 `.kiln` file,
/// calibrated on every input in the folder `calib` (read with `options`),
/// with activation ranges chosen by `method`. Returns the bytes and how many inputs calibration used; `progress` is
/// called after each input with (done, total).
pub fn convert(
    path: &Path,
    calib: &Path,
    options: &input::ImageOptions,
    method: calibrate::Method,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<(Vec<u8>, usize)> {
    use anyhow::Context;
    let (onnx, graph) = load_ir(path)?;
    log::info!("{}: {} operators after folding", path.display(), graph.nodes.len());
    let samples = input::load_dir(calib, &onnx.input_shape, options)
        .with_context(|| format!("reading calibration inputs from {}", calib.display()))?;
    let ranges = calibrate::calibrate(&onnx, &graph, &samples, method, progress)?;
    // Images have a known domain (every pixel value), which quantizes the
    // input exactly; .npy tensors use their calibrated range.
    let images = samples.iter().all(|s| !s.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")));
    let bytes = quantize::quantize(&graph, &ranges, images.then(|| options.value_range()))?;
    Ok((bytes, samples.len()))
}
