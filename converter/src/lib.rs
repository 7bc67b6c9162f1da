//! kiln's converter: turns an ONNX model into an int8 `.kiln` file.
//!
//! The pipeline, one module per stage:
//! [`import`] (ONNX through tract-onnx, which fixes the input shape and folds
//! everything that does not depend on the input) → [`lower`] (kiln's NHWC
//! [`ir`]; [`check`] reports what it makes of each op) →
//! [`passes`] (folding and fusion) → [`calibrate`] (activation ranges from the
//! float model run by tract in [`reference`](mod@reference), on inputs read by [`input`]) →
//! [`quantize`] (int8, with the arena laid out by [`plan`]) → `.kiln` bytes.
//!
//! **Why lowering reads ONNX nodes, with tract's folding applied, rather
//! than tract's decluttered typed model.** tract does what only it does
//! well here: with the input shape fixed, its inference gives every value's
//! shape and computes every value that does not depend on the input (shape
//! subgraphs, `Constant` nodes, arithmetic on weights), and [`import`] turns
//! all of those into constants, so no ONNX op is folded by hand. What is
//! left is lowered from the ONNX nodes themselves, because three things
//! need the ONNX graph as the user knows it: messages name ONNX nodes and
//! ONNX axes (a decluttered model has renamed, fused and re-axised nodes);
//! calibration and `kiln eval --layers` read tract's value of each IR
//! tensor by its ONNX name, and decluttering leaves most intermediate
//! values without one; and the passes after lowering (BatchNorm folding,
//! activation fusion, transpose cancelling) are kiln's own, on its NHWC IR,
//! so tract's would be undone and redone.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The workspace lint guards the no_std runtime; this is a std host tool.
#![allow(clippy::std_instead_of_core)]

pub mod bias_correction;
pub mod calibrate;
pub mod check;
pub mod import;
pub mod input;
pub mod ir;
pub mod lower;
pub mod memory;
pub mod metrics;
pub mod passes;
pub mod plan;
pub mod precision;
pub mod prune;
pub mod quantize;
pub mod reference;

use std::path::Path;

/// Loads an ONNX model whose input shape is fixed and lowers it to kiln's
/// optimised IR: the imported model (kept because it is the float
/// reference) and the IR graph.
pub fn load_ir(path: &Path) -> anyhow::Result<(import::OnnxModel, ir::Graph)> {
    load_ir_shaped(path, None)
}

/// [`load_ir`] with the input's symbolic dimensions fixed by `shape`.
pub fn load_ir_shaped(
    path: &Path,
    shape: Option<&import::InputShape>,
) -> anyhow::Result<(import::OnnxModel, ir::Graph)> {
    let model = import::OnnxModel::load_shaped(path, shape)?;
    let mut graph = lower::lower(&model)?;
    passes::optimize(&mut graph)?;
    Ok((model, graph))
}

/// Converts the ONNX model at `path` to the bytes of an int8 `.kiln` file,
/// calibrated on every input in the folder `calib` (read with `options`),
/// with activation ranges chosen by `method`. Returns the bytes and how many
/// inputs calibration used; `progress` is called after each input with
/// (done, total).
pub fn convert(
    path: &Path,
    calib: &Path,
    options: &input::ImageOptions,
    method: calibrate::Method,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<(Vec<u8>, usize)> {
    let done = convert_pruned(path, None, calib, options, method, None, progress)?;
    Ok((done.bytes, done.samples))
}

/// What [`convert_pruned`] made.
pub struct Conversion {
    /// The `.kiln` file.
    pub bytes: Vec<u8>,
    /// How many calibration inputs it used.
    pub samples: usize,
    /// What pruning did, if it was asked for.
    pub pruning: Option<prune::Report>,
    /// The size of the file without pruning (ranges do not change it).
    pub unpruned_bytes: usize,
    /// What mixed precision measured and chose, if it was asked for.
    pub precision: Option<precision::Report>,
}

/// [`convert`], with the input's symbolic dimensions fixed by `shape`, and
/// pruning the model first when `prune` is given: [`convert_with`] with
/// every layer in int8.
pub fn convert_pruned(
    path: &Path,
    shape: Option<&import::InputShape>,
    calib: &Path,
    options: &input::ImageOptions,
    method: calibrate::Method,
    prune: Option<&prune::Options>,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<Conversion> {
    convert_with(path, calib, options, &Recipe { shape, method, prune, precision: None }, progress)
}

/// What a conversion does beyond reading the model and its calibration
/// inputs.
#[derive(Clone, Copy, Debug)]
pub struct Recipe<'a> {
    /// Fixes the input's symbolic dimensions.
    pub shape: Option<&'a import::InputShape>,
    /// How activation ranges are chosen.
    pub method: calibrate::Method,
    /// Prunes the model first (scored and recovered on the calibration
    /// inputs). A pruned model no longer computes the ONNX model's
    /// tensors, so its ranges come from the IR interpreter instead of tract.
    pub prune: Option<&'a prune::Options>,
    /// Runs layers in float (named, or chosen on the calibration inputs).
    pub precision: Option<&'a precision::Options>,
}

/// Converts the ONNX model at `path` as `recipe` says, calibrated on every
/// input in the folder `calib` (read with `options`); `progress` is called
/// after each calibration input with (done, total).
pub fn convert_with(
    path: &Path,
    calib: &Path,
    options: &input::ImageOptions,
    recipe: &Recipe<'_>,
    progress: impl FnMut(usize, usize),
) -> anyhow::Result<Conversion> {
    use anyhow::Context;
    let (onnx, mut graph) = load_ir_shaped(path, recipe.shape)?;
    log::info!("{}: {} operators after folding", path.display(), graph.nodes.len());
    options.check()?;
    let context = || format!("reading calibration inputs from {}", calib.display());
    let files = input::list_dir(calib).with_context(context)?;
    memory::check_fits(&graph, &onnx.input_shape, files.len())?;
    let samples: Vec<input::Sample> = files
        .iter()
        .map(|p| input::load_file(p, &onnx.input_shape, options))
        .collect::<anyhow::Result<_>>()
        .with_context(context)?;
    let unpruned = graph.clone();
    let inputs: Vec<Vec<f32>> = match (recipe.prune, recipe.precision) {
        (None, None) => Vec::new(),
        _ => samples.iter().map(|s| ir::layout::nchw_to_nhwc(&s.values, &onnx.input_shape)).collect(),
    };
    let pruning = recipe.prune.map(|options| prune::prune(&mut graph, &inputs, options)).transpose()?;
    let pruned = pruning.as_ref().is_some_and(prune::Report::pruned_any);
    let method = recipe.method;
    let ranges = if pruned {
        calibrate::calibrate_ir(&graph, &samples, &onnx.input_shape, method, progress)?
    } else {
        calibrate::calibrate(&onnx, &graph, &samples, method, progress)?
    };
    // Images have a known domain (every pixel value), which quantizes the
    // input exactly; .npy tensors use their calibrated range.
    let images = samples.iter().all(|s| !s.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")));
    let input_range = images.then(|| options.value_range());
    let mut bytes = quantize::quantize(&graph, &ranges, input_range)?;
    if pruned && recipe.prune.is_some_and(|p| p.bias_correction) {
        let layers = bias_correction::correct(&mut graph, &bytes, &inputs)?;
        log::info!("bias correction: {layers} layers");
        bytes = quantize::quantize(&graph, &ranges, input_range)?;
    }
    // Pruning keeps tensor ids, so the ranges fit the unpruned graph too.
    let unpruned_bytes = match &pruning {
        Some(_) => quantize::quantize(&unpruned, &ranges, input_range)?.len(),
        None => bytes.len(),
    };
    let mixed = match recipe.precision {
        Some(p) => {
            let judge = precision::Judge::new(&graph, &ranges, input_range, &inputs)?;
            let (mixed, report) = precision::plan(&judge, p)?;
            bytes = mixed;
            Some(report)
        }
        None => None,
    };
    Ok(Conversion { bytes, samples: samples.len(), pruning, unpruned_bytes, precision: mixed })
}
