//! How the CLI reads images and tensors: the preprocessing flags shared by
//! `convert`, `run` and `eval`.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use kiln_converter::import::InputShape;
use kiln_converter::input::{self, ImageOptions, Sample};
use kiln_runtime::Model;

/// Image preprocessing: `(pixel - mean) * scale` per channel. The defaults
/// (raw RGB 0..255) suit models that normalise inside the graph, like SFace.
#[derive(Args, Clone, Debug)]
pub struct InputArgs {
    /// Feed channels in BGR order (OpenCV-trained models such as YuNet).
    #[arg(long)]
    bgr: bool,
    /// Per-channel mean subtracted from pixels, in the model's channel order:
    /// one value or three, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0", allow_negative_numbers = true)]
    mean: Vec<f32>,
    /// Multiplier applied after the mean.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    scale: f32,
    /// Scale images to fit the input keeping their aspect ratio, padding
    /// right and bottom with zeros (detectors such as YuNet), instead of
    /// stretching them.
    #[arg(long)]
    letterbox: bool,
}

impl InputArgs {
    /// The converter's image options.
    pub fn image_options(&self) -> Result<ImageOptions> {
        let mean = match self.mean[..] {
            [m] => [m; 3],
            [r, g, b] => [r, g, b],
            _ => anyhow::bail!("--mean takes one value or three, not {}", self.mean.len()),
        };
        let options = ImageOptions { bgr: self.bgr, mean, scale: self.scale, letterbox: self.letterbox };
        options.check()?;
        Ok(options)
    }
}

/// `--input-shape`: the ONNX model's input shape, fixing its symbolic
/// dimensions.
#[derive(Args, Clone, Debug, Default)]
pub struct ShapeArgs {
    /// The input's shape in ONNX order, for models exported with symbolic
    /// sizes (e.g. `1,3,480,640`, or `NAME=1,3,480,640`); a symbolic batch
    /// alone needs none (it is 1).
    #[arg(long, value_name = "[NAME=]DIMS")]
    pub input_shape: Option<InputShape>,
}

impl ShapeArgs {
    /// The shape given, else the ONNX form of `model`'s input (so that a
    /// `.kiln` file converted with `--input-shape` is compared with its
    /// ONNX model at the same size).
    pub fn or_from(&self, model: &Model<'_>) -> Option<InputShape> {
        self.input_shape.clone().or_else(|| {
            let dims = model.inputs().next()?.shape.dims().to_vec();
            let dims = match dims[..] {
                [n, h, w, c] => vec![n, c, h, w],
                _ => dims,
            };
            Some(InputShape { name: None, dims })
        })
    }
}

/// Reads `path` for `model`'s first input (NHWC images are read as the
/// NCHW tensor the ONNX model took, then laid out NHWC).
pub fn load_for_kiln(model: &Model<'_>, path: &Path, options: &ImageOptions) -> Result<Vec<f32>> {
    let input = model.inputs().next().ok_or_else(|| anyhow::anyhow!("the model has no input"))?;
    let dims = input.shape.dims();
    let sample = match *dims {
        [n, h, w, c] => {
            let nchw = [n, c, h, w];
            let s = input::load_file(path, &nchw, options)?;
            kiln_converter::ir::layout::nchw_to_nhwc(&s.values, &nchw)
        }
        _ => input::load_file(path, dims, options)?.values,
    };
    Ok(sample)
}

/// A sample's file name, for tables.
pub fn label(sample: &Sample) -> String {
    sample.path.file_name().map_or_else(|| sample.path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
