//! Images to NCHW f32 tensors: resize, channel order, mean and scale.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use image::imageops::FilterType;

use crate::calibrate::Range;

/// How an image becomes the model's input: `(pixel - mean[c]) * scale` per
/// channel, in RGB or BGR order. The defaults feed raw RGB pixels 0..255,
/// which suits models whose normalisation is in the graph (SFace).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageOptions {
    /// Channel order BGR (OpenCV-trained models such as YuNet) instead of RGB.
    pub bgr: bool,
    /// Subtracted per channel, in the model's channel order.
    pub mean: [f32; 3],
    /// Multiplier applied after the mean.
    pub scale: f32,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions { bgr: false, mean: [0.0; 3], scale: 1.0 }
    }
}

impl ImageOptions {
    /// The values a preprocessed pixel can take: the input's domain.
    pub fn value_range(&self) -> Range {
        let ends = self.mean.iter().flat_map(|m| [(0.0 - m) * self.scale, (255.0 - m) * self.scale]);
        ends.fold(Range { min: f32::INFINITY, max: f32::NEG_INFINITY }, |r, v| Range {
            min: r.min.min(v),
            max: r.max.max(v),
        })
    }
}

pub(super) fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads `path` and resizes it (bilinear) to `shape` = `[1, 3, H, W]`.
pub(super) fn read(path: &Path, shape: &[usize], options: &ImageOptions) -> Result<Vec<f32>> {
    let &[1, 3, h, w] = shape else {
        anyhow::bail!("images feed inputs of shape [1, 3, H, W]; this model takes {shape:?}: use .npy files")
    };
    let img = image::open(path).with_context(|| format!("cannot read image {}", path.display()))?.to_rgb8();
    let img = if img.dimensions() == (w as u32, h as u32) {
        img
    } else {
        log::debug!("resizing {} from {:?} to {w}x{h}", path.display(), img.dimensions());
        image::imageops::resize(&img, w as u32, h as u32, FilterType::Triangle)
    };
    ensure!(img.dimensions() == (w as u32, h as u32), "resize of {} failed", path.display());
    let mut values = vec![0.0; 3 * h * w];
    for (x, y, pixel) in img.enumerate_pixels() {
        for (c, &v) in pixel.0.iter().enumerate() {
            let channel = if options.bgr { 2 - c } else { c };
            values[(channel * h + y as usize) * w + x as usize] =
                (f32::from(v) - options.mean[channel]) * options.scale;
        }
    }
    Ok(values)
}
