//! Annotation for `kiln face detect -o`: boxes and landmarks drawn on the photo.

use image::{Rgb, RgbImage};
use kiln_face::Face;

/// Box outline colour.
const BOX: Rgb<u8> = Rgb([0, 255, 0]);
/// Landmark colours: right eye, left eye, nose, right and left mouth corner.
const MARKS: [Rgb<u8>; 5] =
    [Rgb([255, 0, 0]), Rgb([0, 0, 255]), Rgb([0, 255, 0]), Rgb([255, 0, 255]), Rgb([0, 255, 255])];

/// Draws each face's box and five landmarks on `img`, with strokes that
/// scale with the photo.
pub fn annotate(img: &mut RgbImage, faces: &[Face]) {
    let stroke = (img.width().max(img.height()) / 500).max(1) as i64;
    for face in faces {
        let (x0, y0) = (face.x.round() as i64, face.y.round() as i64);
        let (x1, y1) = ((face.x + face.width).round() as i64, (face.y + face.height).round() as i64);
        fill(img, x0, y0, x1, y0 + stroke, BOX);
        fill(img, x0, y1 - stroke, x1, y1, BOX);
        fill(img, x0, y0, x0 + stroke, y1, BOX);
        fill(img, x1 - stroke, y0, x1, y1, BOX);
        for (&[x, y], &colour) in face.landmarks.iter().zip(&MARKS) {
            let (x, y) = (x.round() as i64, y.round() as i64);
            fill(img, x - stroke, y - stroke, x + stroke + 1, y + stroke + 1, colour);
        }
    }
}

/// Paints the rectangle [x0, x1) × [y0, y1), clipped to the image.
fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, colour: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for y in y0.clamp(0, h)..y1.clamp(0, h) {
        for x in x0.clamp(0, w)..x1.clamp(0, w) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}
