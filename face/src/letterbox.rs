//! Letterboxing: a photo of any size scaled, aspect ratio kept, into the
//! top-left corner of the detector's fixed input, the rest zero (as OpenCV's
//! FaceDetectorYN pads on the right and bottom); or a tile of the photo,
//! scaled, filling the input. Scaling uses a triangle
//! filter: bilinear interpolation when enlarging, and when shrinking a
//! triangle as wide as the scale factor, so that small faces in a large
//! photo are averaged rather than aliased.

use alloc::vec::Vec;

use crate::image::{ChannelOrder, ImageView};

/// Where a photo (or part of it) landed in the detector input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Input pixels per photo pixel, horizontally.
    pub scale_x: f32,
    /// Input pixels per photo pixel, vertically.
    pub scale_y: f32,
    /// The photo point at the input's top-left corner.
    pub origin: [f32; 2],
    /// Width the photo occupies in the input.
    pub width: usize,
    /// Height the photo occupies in the input.
    pub height: usize,
}

impl Letterbox {
    /// The largest placement of a `width` × `height` photo inside an
    /// `input_width` × `input_height` input that keeps the aspect ratio.
    pub fn fit(width: usize, height: usize, input_width: usize, input_height: usize) -> Self {
        let scale = f64::min(input_width as f64 / width as f64, input_height as f64 / height as f64);
        let fitted = |n: usize, max: usize| (libm::round(n as f64 * scale) as usize).clamp(1, max);
        let (w, h) = (fitted(width, input_width), fitted(height, input_height));
        Letterbox {
            scale_x: w as f32 / width as f32,
            scale_y: h as f32 / height as f32,
            origin: [0.0; 2],
            width: w,
            height: h,
        }
    }

    /// The part of a `width` × `height` photo, scaled by `scale`, that fills
    /// an `input_width` × `input_height` input from photo point `origin`
    /// (or less of it, at the photo's right and bottom edges).
    pub fn tile(width: usize, height: usize, origin: [f32; 2], scale: f32, input: (usize, usize)) -> Self {
        let extent = |len: usize, from: f32, max: usize| (libm::roundf((len as f32 - from) * scale) as usize).min(max);
        Letterbox {
            scale_x: scale,
            scale_y: scale,
            origin,
            width: extent(width, origin[0], input.0),
            height: extent(height, origin[1], input.1),
        }
    }

    /// The origin as whole pixels, when the placement copies pixels one
    /// for one (scale 1 from a whole pixel).
    fn unscaled_origin(&self) -> Option<[usize; 2]> {
        let whole = |o: f32| (o >= 0.0 && libm::floorf(o) == o).then_some(o as usize);
        if self.scale_x != 1.0 || self.scale_y != 1.0 {
            return None;
        }
        Some([whole(self.origin[0])?, whole(self.origin[1])?])
    }

    /// A point of the detector input in photo coordinates.
    pub fn to_photo(&self, x: f32, y: f32) -> [f32; 2] {
        [x / self.scale_x + self.origin[0], y / self.scale_y + self.origin[1]]
    }
}

/// The source span and filter of one output coordinate along one axis.
struct Taps {
    first: usize,
    last: usize,
    /// Continuous source coordinate of the output pixel's centre.
    centre: f32,
    /// Half-width of the triangle, in source pixels (at least 1).
    support: f32,
}

impl Taps {
    fn new(out: usize, origin: f32, scale: f32, len: usize) -> Self {
        let centre = origin + (out as f32 + 0.5) / scale;
        let support = (1.0 / scale).max(1.0);
        let first = (libm::floorf(centre - support).max(0.0) as usize).min(len - 1);
        let last = (libm::ceilf(centre + support).max(0.0) as usize).clamp(first + 1, len);
        Taps { first, last, centre, support }
    }

    fn weight(&self, i: usize) -> f32 {
        (1.0 - (i as f32 + 0.5 - self.centre).abs() / self.support).max(0.0)
    }

    fn len(&self) -> usize {
        self.last - self.first
    }

    fn total(&self) -> f32 {
        (self.first..self.last).map(|i| self.weight(i)).sum()
    }
}

/// Scales `image` into `input` (`input_height` × `input_width` × 3 values,
/// NHWC, channels in `order`, pixel values 0..255) and returns where it
/// landed. `row` is scratch (see [`resample`]).
pub fn letterbox(
    image: &ImageView<'_>,
    input: &mut [f32],
    input_width: usize,
    input_height: usize,
    order: ChannelOrder,
    row: &mut Vec<f32>,
) -> Letterbox {
    let fit = Letterbox::fit(image.width(), image.height(), input_width, input_height);
    resample(image, &fit, input, (input_width, input_height), order, row);
    fit
}

/// Fills `input` (`input.1` rows of `input.0` pixels, NHWC, channels in
/// `order`) with the part of `image` that `placement` says, zero elsewhere.
/// `row` is scratch for one source row and the filter's weights; it grows
/// only for a photo wider, or shrunk more, than any before.
pub fn resample(
    image: &ImageView<'_>,
    placement: &Letterbox,
    input: &mut [f32],
    (input_width, input_height): (usize, usize),
    order: ChannelOrder,
    row: &mut Vec<f32>,
) {
    assert_eq!(input.len(), input_width * input_height * 3, "input buffer does not match its size");
    let p = placement;
    let (width, height) = (p.width.min(input_width), p.height.min(input_height));
    input.fill(0.0);
    if width == 0 || height == 0 {
        return;
    }
    if let Some([x0, y0]) = p.unscaled_origin() {
        copy(image, [x0, y0], [width, height], input, input_width, order);
        return;
    }
    // Scratch: one source row, filtered vertically, then each output
    // column's normalised horizontal weights (`taps` of them).
    let column = |ox: usize| Taps::new(ox, p.origin[0], p.scale_x, image.width());
    let taps = (0..width).map(|ox| column(ox).len()).max().unwrap_or(0);
    let stride = image.width() * 3;
    row.resize(stride + width * taps, 0.0);
    let (row, weights) = row.split_at_mut(stride);
    for (ox, w) in weights.chunks_exact_mut(taps).enumerate() {
        let h = column(ox);
        let total = h.total();
        w.fill(0.0);
        for (w, sx) in w.iter_mut().zip(h.first..h.last) {
            *w = h.weight(sx) / total;
        }
    }
    let (first, last) = (column(0).first, column(width - 1).last);
    for oy in 0..height {
        let v = Taps::new(oy, p.origin[1], p.scale_y, image.height());
        let v_total = v.total();
        let span = &mut row[first * 3..last * 3];
        span.fill(0.0);
        for sy in v.first..v.last {
            let w = v.weight(sy) / v_total;
            if w == 0.0 {
                continue;
            }
            for (acc, &px) in span.iter_mut().zip(&image.row(sy)[first * 3..last * 3]) {
                *acc += w * f32::from(px);
            }
        }
        for (ox, w) in weights.chunks_exact(taps).enumerate() {
            let h = column(ox);
            let mut sum = [0f32; 3];
            for (&w, px) in w.iter().zip(row[h.first * 3..h.last * 3].chunks_exact(3)) {
                for (s, &px) in sum.iter_mut().zip(px) {
                    *s += w * px;
                }
            }
            if image.order() != order {
                sum.reverse();
            }
            input[(oy * input_width + ox) * 3..][..3].copy_from_slice(&sum);
        }
    }
}

/// The pixels of `image` from `origin` on, `size` of them, into `input`:
/// what the triangle filter gives at scale 1 from a whole pixel (weight 1
/// on one pixel, 0 on its neighbours), without computing it.
fn copy(
    image: &ImageView<'_>,
    [x0, y0]: [usize; 2],
    [width, height]: [usize; 2],
    input: &mut [f32],
    input_width: usize,
    order: ChannelOrder,
) {
    let swap = image.order() != order;
    for oy in 0..height {
        let src = &image.row(y0 + oy)[x0 * 3..(x0 + width) * 3];
        let dst = &mut input[oy * input_width * 3..][..width * 3];
        for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
            let px = if swap { [s[2], s[1], s[0]] } else { [s[0], s[1], s[2]] };
            for (d, &v) in d.iter_mut().zip(&px) {
                *d = f32::from(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_ratio_and_maps_back() {
        let fit = Letterbox::fit(3000, 2171, 640, 640);
        assert_eq!((fit.width, fit.height), (640, 463));
        let [x, y] = fit.to_photo(320.0, 231.5);
        assert!((x - 1500.0).abs() < 0.01 && (y - 1085.5).abs() < 3.0, "{x} {y}");
        let tile = Letterbox::tile(3000, 2171, [2500.0, 0.0], 0.5, (640, 640));
        assert_eq!((tile.width, tile.height), (250, 640));
        assert_eq!(tile.to_photo(10.0, 20.0), [2520.0, 40.0]);
    }

    #[test]
    fn a_tile_is_the_same_pixels_as_the_whole() {
        // A tile from (2, 1) at scale 1 copies the photo's pixels from there.
        let px: Vec<u8> = (0..6 * 4 * 3).map(|i| i as u8).collect();
        let img = ImageView::new(6, 4, ChannelOrder::Rgb, &px).unwrap();
        let tile = Letterbox::tile(6, 4, [2.0, 1.0], 1.0, (3, 3));
        let mut input = vec![0.0; 3 * 3 * 3];
        resample(&img, &tile, &mut input, (3, 3), ChannelOrder::Rgb, &mut Vec::new());
        for (oy, ox) in [(0, 0), (1, 2), (2, 1)] {
            let want = f32::from(img.rgb(2 + ox, 1 + oy, 1));
            assert_eq!(input[(oy * 3 + ox) * 3 + 1], want);
        }
        // At the photo's corner, in BGR: what lies past the photo is zero.
        let tile = Letterbox::tile(6, 4, [4.0, 2.0], 1.0, (3, 3));
        resample(&img, &tile, &mut input, (3, 3), ChannelOrder::Bgr, &mut Vec::new());
        assert_eq!(input[..3], [f32::from(img.rgb(4, 2, 2)), f32::from(img.rgb(4, 2, 1)), f32::from(img.rgb(4, 2, 0))]);
        assert!(input[2 * 3..3 * 3].iter().chain(&input[2 * 9..]).all(|&v| v == 0.0), "{input:?}");
    }

    #[test]
    fn enlarging_is_bilinear_and_shrinking_averages() {
        // 2x1 image, black then white, enlarged to 4x2: half-pixel-centred
        // bilinear gives 0, 63.75, 191.25, 255 along x.
        let px = [0, 0, 0, 255, 255, 255];
        let img = ImageView::new(2, 1, ChannelOrder::Rgb, &px).unwrap();
        let mut input = vec![0.0; 4 * 4 * 3];
        let fit = letterbox(&img, &mut input, 4, 4, ChannelOrder::Rgb, &mut Vec::new());
        assert_eq!((fit.width, fit.height), (4, 2));
        let first_row: Vec<f32> = (0..4).map(|x| input[x * 3]).collect();
        assert_eq!(first_row, [0.0, 63.75, 191.25, 255.0]);
        assert!(input[2 * 4 * 3..].iter().all(|&v| v == 0.0), "rows below the photo stay zero");

        // A 1-pixel checkerboard shrunk by 4 averages to grey, not to
        // whichever pixel a point sample would hit.
        let px: Vec<u8> = (0..8 * 8).flat_map(|i| [if (i % 8 + i / 8) % 2 == 0 { 0 } else { 255 }; 3]).collect();
        let img = ImageView::new(8, 8, ChannelOrder::Bgr, &px).unwrap();
        let mut input = vec![0.0; 2 * 2 * 3];
        letterbox(&img, &mut input, 2, 2, ChannelOrder::Bgr, &mut Vec::new());
        assert!(input.iter().all(|&v| (v - 127.5).abs() < 20.0), "{input:?}");
    }

    #[test]
    fn swaps_channel_order() {
        let px = [10, 20, 30];
        let img = ImageView::new(1, 1, ChannelOrder::Rgb, &px).unwrap();
        let mut input = vec![0.0; 3];
        letterbox(&img, &mut input, 1, 1, ChannelOrder::Bgr, &mut Vec::new());
        assert_eq!(input, [30.0, 20.0, 10.0]);
    }
}
