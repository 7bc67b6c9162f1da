//! A borrowed 8-bit colour image: the one picture type the pipeline reads.

use crate::error::FaceError;

/// The order of the three channels of each pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue (image decoders, SFace).
    Rgb,
    /// Blue, green, red (OpenCV, YuNet).
    Bgr,
}

/// Interleaved 3-channel pixels, row by row without padding.
#[derive(Clone, Copy, Debug)]
pub struct ImageView<'a> {
    width: usize,
    height: usize,
    order: ChannelOrder,
    pixels: &'a [u8],
}

impl<'a> ImageView<'a> {
    /// Wraps `pixels` (`width * height * 3` bytes); fails on an empty
    /// image or a length that does not match.
    pub fn new(width: usize, height: usize, order: ChannelOrder, pixels: &'a [u8]) -> Result<Self, FaceError> {
        let expected = width.checked_mul(height).and_then(|n| n.checked_mul(3));
        if width == 0 || height == 0 || expected != Some(pixels.len()) {
            return Err(FaceError::ImageSize { width, height, bytes: pixels.len() });
        }
        Ok(ImageView { width, height, order, pixels })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Channel `c` (0 = red, 1 = green, 2 = blue, whatever the storage
    /// order) of pixel (`x`, `y`).
    #[inline]
    pub fn rgb(&self, x: usize, y: usize, c: usize) -> u8 {
        let stored = match self.order {
            ChannelOrder::Rgb => c,
            ChannelOrder::Bgr => 2 - c,
        };
        self.pixels[(y * self.width + x) * 3 + stored]
    }

    /// The three bytes of row `y`.
    pub(crate) fn row(&self, y: usize) -> &'a [u8] {
        &self.pixels[y * self.width * 3..(y + 1) * self.width * 3]
    }

    /// The channel order of the stored bytes.
    pub fn order(&self) -> ChannelOrder {
        self.order
    }
}
