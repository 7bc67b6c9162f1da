//! Images to NCHW f32 tensors: resize, channel order, mean and scale.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use image::imageops::FilterType;
use image::RgbImage;
use kiln_face::letterbox::letterbox;
use kiln_face::{ChannelOrder, ImageView};

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
    /// Keep the aspect ratio: scale the image to fit the input and pad the
    /// right or bottom with zeros, as detectors see photos (YuNet),
    /// instead of stretching it to the input's shape.
    pub letterbox: bool,
}

/// The smallest `--scale` kiln takes: 0..255 pixels then span 2.55e-6,
/// about the resolution of f32 next to the weights and biases of a layer.
const MIN_SCALE: f32 = 1e-8;

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions { bgr: false, mean: [0.0; 3], scale: 1.0, letterbox: false }
    }
}

impl ImageOptions {
    /// Checks that the normalisation gives usable numbers: a NaN or
    /// infinite mean or scale, or a scale so small that every pixel maps to
    /// about the same value, would make a model that exits 0 and ignores
    /// its input.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            anyhow::bail!("--mean {m} is not a finite number");
        }
        let s = self.scale;
        anyhow::ensure!(
            s.is_finite() && s.abs() >= MIN_SCALE,
            "--scale {s} must be a finite number at least {MIN_SCALE:e} in size (pixels normalised by 1/255 or \
             1/128 are typical)"
        );
        Ok(())
    }

    /// The values a preprocessed pixel can take: the input's domain.
    pub fn value_range(&self) -> Range {
        let ends = self.mean.iter().flat_map(|m| [(0.0 - m) * self.scale, (255.0 - m) * self.scale]);
        ends.fold(Range { min: f32::INFINITY, max: f32::NEG_INFINITY }, |r, v| Range {
            min: r.min.min(v),
            max: r.max.max(v),
        })
    }
}

/// Decodes the image at `path`, warning when it is a JPEG without its
/// end-of-image marker: decoders fill a truncated JPEG's missing rows with
/// grey and report no error, so results on it look valid and are not.
pub fn decode(path: &Path) -> Result<image::DynamicImage> {
    let bytes = std::fs::read(path)?;
    let img = image::load_from_memory(&bytes)?;
    let jpeg = bytes.starts_with(&[0xff, 0xd8]);
    // The marker ends the file, up to a little trailing padding.
    let tail = &bytes[bytes.len().saturating_sub(256)..];
    if jpeg && !tail.windows(2).any(|w| w == [0xff, 0xd9]) {
        log::warn!("{} is a truncated JPEG (no end-of-image marker): its last rows are missing", path.display());
    }
    Ok(img)
}

pub(super) fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads `path` and resizes it (bilinear) to `shape`: `[1, 3, H, W]`, or
/// `[1, H, W, 3]` for a model whose input is channels-last (Keras and
/// TensorFlow exports).
pub(super) fn read(path: &Path, shape: &[usize], options: &ImageOptions) -> Result<Vec<f32>> {
    match *shape {
        [1, 3, h, w] => read_nchw(path, h, w, options),
        [1, h, w, 3] => Ok(crate::ir::layout::nchw_to_nhwc(&read_nchw(path, h, w, options)?, &[1, 3, h, w])),
        _ => anyhow::bail!(
            "images feed inputs of shape [1, 3, H, W] or [1, H, W, 3]; this model takes {shape:?}: use .npy files"
        ),
    }
}

/// Reads `path` and resizes it (bilinear) to a `[1, 3, h, w]` tensor.
fn read_nchw(path: &Path, h: usize, w: usize, options: &ImageOptions) -> Result<Vec<f32>> {
    let img = decode(path).with_context(|| format!("cannot read image {}", path.display()))?.to_rgb8();
    if options.letterbox {
        return Ok(letterboxed(&img, w, h, options));
    }
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

/// `img` letterboxed into an `h` × `w` NCHW tensor by kiln-face, exactly as
/// the face pipeline prepares the detector's input.
fn letterboxed(img: &RgbImage, w: usize, h: usize, options: &ImageOptions) -> Vec<f32> {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let view = ImageView::new(iw, ih, ChannelOrder::Rgb, img.as_raw()).expect("an RgbImage holds w*h*3 bytes");
    let order = if options.bgr { ChannelOrder::Bgr } else { ChannelOrder::Rgb };
    let mut nhwc = vec![0.0; h * w * 3];
    letterbox(&view, &mut nhwc, w, h, order, &mut Vec::new());
    let mut values = vec![0.0; 3 * h * w];
    for (i, px) in nhwc.chunks_exact(3).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            values[c * h * w + i] = (v - options.mean[c]) * options.scale;
        }
    }
    values
}
