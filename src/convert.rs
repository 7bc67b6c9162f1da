//! `kiln convert`: ONNX to int8 .kiln.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use kiln_converter::calibrate::Method;
use kiln_converter::input::ImageOptions;
use kiln_converter::{Conversion, Recipe};
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::Model;

use crate::inputs::{InputArgs, ShapeArgs};
use crate::precision::PrecisionArgs;
use crate::prune::PruneArgs;

/// A progress bar for `len` steps of `what`.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style =
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed}").map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// Parses `--ranges`: `minmax`, `mse` or `pN` (a percentile, 50 < N ≤ 100).
pub fn parse_method(text: &str) -> Result<Method, String> {
    match text {
        "minmax" => Ok(Method::MinMax),
        "mse" => Ok(Method::Mse),
        _ => text
            .strip_prefix('p')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| *n > 50.0 && *n <= 100.0)
            .map(|n| Method::Percentile((100.0 - n) / 100.0))
            .ok_or_else(|| format!("`{text}` is not `minmax`, `mse` or a percentile like `p99.99`")),
    }
}

/// The command line's conversion choices beyond the model and its inputs.
pub struct RecipeArgs<'a> {
    pub shape: &'a ShapeArgs,
    pub method: Method,
    pub prune: &'a PruneArgs,
    pub precision: &'a PrecisionArgs,
}

/// Converts `model` with calibration inputs from `calib` as `recipe` says,
/// and writes `output`.
pub fn run(model: &Path, output: &Path, calib: &Path, args: &InputArgs, recipe: &RecipeArgs<'_>) -> Result<()> {
    let start = Instant::now();
    refuse_overwriting_inputs(output, model, calib)?;
    let (prune, precision) = (recipe.prune.options()?, recipe.precision.options()?);
    let plan = Recipe {
        shape: recipe.shape.input_shape.as_ref(),
        method: recipe.method,
        prune: prune.as_ref(),
        precision: precision.as_ref(),
    };
    let done = convert_with(model, calib, &args.image_options()?, &plan)?;
    let (bytes, calibrated_on) = (&done.bytes, done.samples);
    crate::output::write(output, bytes)?;

    let aligned = AlignedBytes::copy_of(bytes);
    let info = Model::from_bytes(&aligned)?.info();
    let onnx_bytes = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} in {:.1} s, calibrated on {calibrated_on} inputs",
        output.display(),
        start.elapsed().as_secs_f64(),
    );
    println!(
        "  {} ops; file {} B = {:.1}% of the ONNX file ({} B); arena {} B (sum of all activations {} B)",
        info.ops,
        info.file_bytes,
        100.0 * info.file_bytes as f64 / onnx_bytes.max(1) as f64,
        onnx_bytes,
        info.arena_bytes,
        info.activation_bytes
    );
    if let Some(report) = &done.pruning {
        crate::prune::print_report(report, bytes.len(), done.unpruned_bytes);
    }
    if let Some(report) = &done.precision {
        crate::precision::print_report(report);
    }
    Ok(())
}

/// Fails when `output` would overwrite the model or a calibration input.
fn refuse_overwriting_inputs(output: &Path, model: &Path, calib: &Path) -> Result<()> {
    let calibration: Vec<_> = std::fs::read_dir(calib)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    crate::output::ensure_not_an_input(output, std::iter::once(model).chain(calibration.iter().map(|p| p.as_path())))
}

/// The `.kiln` bytes of `model` calibrated on the inputs in `calib` with
/// ranges chosen by `method`, with a progress bar, and how many inputs that was.
pub fn convert(model: &Path, calib: &Path, options: &ImageOptions, method: Method) -> Result<(Vec<u8>, usize)> {
    let recipe = Recipe { shape: None, method, prune: None, precision: None };
    let done = convert_with(model, calib, options, &recipe)?;
    Ok((done.bytes, done.samples))
}

/// [`convert`] as `recipe` says.
fn convert_with(model: &Path, calib: &Path, options: &ImageOptions, recipe: &Recipe<'_>) -> Result<Conversion> {
    let bar = progress(0, "calibrating");
    let converted = kiln_converter::convert_with(model, calib, options, recipe, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    converted
}
