//! The one input `kiln bench` feeds every contender, in kiln's layout and
//! in the ONNX model's.

use std::path::{Path, PathBuf};

use anyhow::Result;
use kiln_converter::import::OnnxModel;
use kiln_converter::input::ImageOptions;
use kiln_converter::ir::layout;
use kiln_runtime::Model;

use crate::inputs::load_for_kiln;

/// The input in both layouts, and where it came from.
pub struct BenchInput {
    /// Kiln's layout (NHWC for images).
    pub kiln: Vec<f32>,
    /// The ONNX model's layout (NCHW for images).
    pub onnx: Vec<f32>,
    /// A file name, or a description of the synthetic input.
    pub origin: String,
}

/// The face crop used for 112x112 models when no input is given.
fn default_face() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/faces112/obama_00.png")
}

/// `path` if given; else a face crop for models of 112x112 images (when the
/// repository's crops are at hand); else a deterministic synthetic input.
pub fn choose(
    model: &Model<'_>,
    onnx: Option<&OnnxModel>,
    path: Option<&Path>,
    options: &ImageOptions,
) -> Result<BenchInput> {
    let info = model.inputs().next().ok_or_else(|| anyhow::anyhow!("the model has no input"))?;
    let dims = info.shape.dims().to_vec();
    if let Some(onnx) = onnx {
        let kiln_order = to_kiln_dims(&onnx.input_shape);
        anyhow::ensure!(
            kiln_order == dims,
            "the ONNX model takes {:?} and the .kiln model {dims:?} (NHWC): was one converted from the other?",
            onnx.input_shape
        );
    }
    let face = default_face();
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None if matches!(dims[..], [1, 112, 112, 3]) && face.exists() => Some(face),
        None => None,
    };
    let (kiln, origin) = match path {
        Some(p) => (load_for_kiln(model, &p, options)?, p.display().to_string()),
        None => (synthetic(&dims, options), format!("synthetic (deterministic pseudo-random pixels), shape {dims:?}")),
    };
    let onnx = match dims[..] {
        [n, h, w, c] => layout::nhwc_to_nchw(&kiln, &[n, h, w, c]),
        _ => kiln.clone(),
    };
    Ok(BenchInput { kiln, onnx, origin })
}

/// ONNX NCHW dimensions in kiln's NHWC order.
fn to_kiln_dims(onnx: &[usize]) -> Vec<usize> {
    match *onnx {
        [n, c, h, w] => vec![n, h, w, c],
        _ => onnx.to_vec(),
    }
}

/// Pixels 0..=255 from a fixed xorshift sequence, preprocessed as images are.
fn synthetic(dims: &[usize], options: &ImageOptions) -> Vec<f32> {
    let channels = dims.last().copied().unwrap_or(1).max(1);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..dims.iter().product::<usize>())
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let c = (i % channels).min(2);
            ((s % 256) as f32 - options.mean[c]) * options.scale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_input_is_deterministic_and_preprocessed() {
        let options = ImageOptions { bgr: false, mean: [127.5; 3], scale: 1.0 / 128.0, letterbox: false };
        let a = synthetic(&[1, 4, 4, 3], &options);
        assert_eq!(a, synthetic(&[1, 4, 4, 3], &options));
        assert_eq!(a.len(), 48);
        assert!(a.iter().all(|v| (-1.0..=1.0).contains(v)), "{a:?}");
        assert!(a.iter().any(|&v| v != a[0]));
    }

    #[test]
    fn onnx_dims_become_nhwc() {
        assert_eq!(to_kiln_dims(&[1, 3, 112, 112]), vec![1, 112, 112, 3]);
        assert_eq!(to_kiln_dims(&[1, 512]), vec![1, 512]);
    }
}
