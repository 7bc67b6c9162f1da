//! Five-point alignment: the similarity transform (rotation, uniform scale,
//! translation) that best maps a face's landmarks onto the ArcFace template,
//! by least squares, and a bilinear warp of the photo through it into a
//! 112 × 112 crop, as SFace was trained on.

use crate::image::ImageView;

/// Side of the aligned crop.
pub const CROP: usize = 112;

/// The standard ArcFace landmark positions in a 112 × 112 crop: right eye,
/// left eye, nose tip, right and left mouth corner.
pub const ARCFACE_112: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// `(u, v) = (a·x − b·y + tx, b·x + a·y + ty)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    a: f64,
    b: f64,
    tx: f64,
    ty: f64,
}

impl Similarity {
    /// The similarity that maps `from` onto `to` with the least squared
    /// error (Umeyama's solution; in 2-D it is closed form and never a
    /// reflection). `None` when every point of `from` coincides.
    pub fn fit(from: &[[f32; 2]], to: &[[f32; 2]]) -> Option<Self> {
        let n = from.len().min(to.len()) as f64;
        let mean = |p: &[[f32; 2]]| {
            let (sx, sy) = p.iter().fold((0.0, 0.0), |(x, y), q| (x + f64::from(q[0]), y + f64::from(q[1])));
            (sx / n, sy / n)
        };
        let ((fx, fy), (tx, ty)) = (mean(from), mean(to));
        let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
        for (p, q) in from.iter().zip(to) {
            let (x, y) = (f64::from(p[0]) - fx, f64::from(p[1]) - fy);
            let (u, v) = (f64::from(q[0]) - tx, f64::from(q[1]) - ty);
            dot += x * u + y * v;
            cross += x * v - y * u;
            norm += x * x + y * y;
        }
        if norm <= f64::EPSILON {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        Some(Similarity { a, b, tx: tx - (a * fx - b * fy), ty: ty - (b * fx + a * fy) })
    }

    /// Where `p` goes.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [self.a * p[0] - self.b * p[1] + self.tx, self.b * p[0] + self.a * p[1] + self.ty]
    }

    /// The transform that undoes this one (`fit` never returns a
    /// degenerate one).
    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }
}

/// The aligned 112 × 112 RGB crop of the face with `landmarks` in `image`:
/// each crop pixel samples the photo bilinearly at the pixel's preimage
/// (outside the photo counts as black, as OpenCV's `warpAffine` does).
/// `None` when the landmarks are degenerate.
pub fn align(image: &ImageView<'_>, landmarks: &[[f32; 2]; 5], crop: &mut [u8; CROP * CROP * 3]) -> Option<()> {
    let back = Similarity::fit(landmarks, &ARCFACE_112)?.inverse();
    for v in 0..CROP {
        for u in 0..CROP {
            let [x, y] = back.apply([u as f64, v as f64]);
            let rgb = bilinear(image, x, y);
            crop[(v * CROP + u) * 3..][..3].copy_from_slice(&rgb);
        }
    }
    Some(())
}

/// The photo at real coordinates (`x`, `y`) (pixel centres at integers),
/// black outside.
fn bilinear(image: &ImageView<'_>, x: f64, y: f64) -> [u8; 3] {
    let (x0, y0) = (libm::floor(x), libm::floor(y));
    let (fx, fy) = (x - x0, y - y0);
    let mut sum = [0.0f64; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (px, py) = (x0 + f64::from(dx), y0 + f64::from(dy));
            if px < 0.0 || py < 0.0 || px >= image.width() as f64 || py >= image.height() as f64 {
                continue;
            }
            for (c, s) in sum.iter_mut().enumerate() {
                *s += wx * wy * f64::from(image.rgb(px as usize, py as usize, c));
            }
        }
    }
    sum.map(|s| libm::round(s).clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ChannelOrder;

    #[test]
    fn fit_recovers_an_exact_similarity_and_inverts_it() {
        let truth = Similarity { a: 0.8, b: -0.3, tx: 12.0, ty: -4.0 };
        let from = ARCFACE_112;
        let to = from.map(|p| truth.apply([f64::from(p[0]), f64::from(p[1])]).map(|c| c as f32));
        let fitted = Similarity::fit(&from, &to).unwrap();
        for (got, want) in [(fitted.a, 0.8), (fitted.b, -0.3), (fitted.tx, 12.0), (fitted.ty, -4.0)] {
            assert!((got - want).abs() < 1e-4, "{fitted:?}");
        }
        let [x, y] = fitted.inverse().apply(fitted.apply([3.0, 7.0]));
        assert!((x - 3.0).abs() < 1e-9 && (y - 7.0).abs() < 1e-9);
        assert_eq!(Similarity::fit(&[[1.0, 1.0]; 5], &ARCFACE_112), None);
    }

    #[test]
    fn aligning_the_template_itself_copies_the_photo() {
        // A 112x112 photo whose landmarks already sit on the template:
        // the crop is the photo, pixel for pixel.
        let px: Vec<u8> = (0..CROP * CROP * 3).map(|i| (i * 7 % 251) as u8).collect();
        let img = ImageView::new(CROP, CROP, ChannelOrder::Rgb, &px).unwrap();
        let mut crop = [0u8; CROP * CROP * 3];
        align(&img, &ARCFACE_112, &mut crop).unwrap();
        assert_eq!(crop.as_slice(), px.as_slice());
    }

    #[test]
    fn samples_between_pixels_and_black_outside() {
        let px = [0, 0, 0, 100, 100, 100];
        let img = ImageView::new(2, 1, ChannelOrder::Rgb, &px).unwrap();
        assert_eq!(bilinear(&img, 0.25, 0.0), [25; 3]);
        assert_eq!(bilinear(&img, 1.0, 0.5), [50; 3]);
        assert_eq!(bilinear(&img, -3.0, 0.0), [0; 3]);
    }
}
