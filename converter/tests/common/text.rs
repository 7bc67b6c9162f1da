//! Text rendered with a real font, DejaVu Sans (which `models/fetch` takes
//! from the `matplotlib` wheel), as the OCR models see it: printed lines on
//! paper or on photos.

use ab_glyph::{point, Font, FontVec, PxScale, ScaleFont};

/// DejaVu Sans, from `models/cache/dev/fonts`.
pub fn font() -> FontVec {
    let path = super::model("dev/fonts/DejaVuSans.ttf");
    FontVec::try_from_vec(std::fs::read(&path).unwrap()).unwrap()
}

/// An RGB image, 8 bits per channel, row-major.
#[derive(Clone)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: [u8; 3]) -> Self {
        Canvas { width, height, rgb: background.repeat(width * height) }
    }

    /// `photo` resized (bilinear) to `width` × `height`.
    pub fn from_photo(photo: &std::path::Path, width: usize, height: usize) -> Self {
        let img = image::open(photo).unwrap().to_rgb8();
        let img = image::imageops::resize(&img, width as u32, height as u32, image::imageops::FilterType::Triangle);
        Canvas { width, height, rgb: img.into_raw() }
    }

    /// The width `text` takes at `px` pixels per em.
    pub fn measure(font: &FontVec, text: &str, px: f32) -> f32 {
        let scaled = font.as_scaled(PxScale::from(px));
        let mut prev = None;
        let mut x = 0.0;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            x += prev.map_or(0.0, |p| scaled.kern(p, id)) + scaled.h_advance(id);
            prev = Some(id);
        }
        x
    }

    /// Draws `text` in `color` with the top of its line at `(x, y)`,
    /// antialiased over what is there.
    pub fn text(&mut self, font: &FontVec, text: &str, (x, y): (f32, f32), px: f32, color: [u8; 3]) {
        let scaled = font.as_scaled(PxScale::from(px));
        let (mut pen, baseline) = (x, y + scaled.ascent());
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            pen += prev.map_or(0.0, |p| scaled.kern(p, id));
            prev = Some(id);
            let glyph = id.with_scale_and_position(px, point(pen, baseline));
            pen += scaled.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64);
                if (0..self.width as i64).contains(&px) && (0..self.height as i64).contains(&py) {
                    let at = (py as usize * self.width + px as usize) * 3;
                    for (channel, &ink) in self.rgb[at..at + 3].iter_mut().zip(&color) {
                        let blended = f32::from(*channel) * (1.0 - coverage) + f32::from(ink) * coverage;
                        *channel = blended.round() as u8;
                    }
                }
            });
        }
    }

    /// The canvas upside down (a line read by the direction classifier as
    /// rotated by 180°).
    pub fn rotated_180(&self) -> Self {
        let rgb = self.rgb.chunks_exact(3).rev().flatten().copied().collect();
        Canvas { rgb, ..*self }
    }

    /// Resized (bilinear) to `width` × `height`.
    pub fn resized(&self, width: usize, height: usize) -> Self {
        let img = image::RgbImage::from_raw(self.width as u32, self.height as u32, self.rgb.clone()).unwrap();
        let img = image::imageops::resize(&img, width as u32, height as u32, image::imageops::FilterType::Triangle);
        Canvas { width, height, rgb: img.into_raw() }
    }

    /// PaddleOCR's input: an NCHW tensor of `width` columns (the canvas
    /// fills the left, zeros the rest), channels in BGR order, each pixel
    /// `(v / 255 - 0.5) / 0.5`, as RapidOCR prepares it.
    pub fn paddle_tensor(&self, width: usize) -> Vec<f32> {
        let (h, w) = (self.height, self.width.min(width));
        let mut values = vec![0.0; 3 * h * width];
        for y in 0..h {
            for x in 0..w {
                let pixel = &self.rgb[(y * self.width + x) * 3..][..3];
                for (c, &v) in pixel.iter().rev().enumerate() {
                    values[(c * h + y) * width + x] = (f32::from(v) / 255.0 - 0.5) / 0.5;
                }
            }
        }
        values
    }
}
