//! A detected face: its box, five landmarks and score.

use crate::letterbox::Letterbox;

/// One face, in the coordinates of the image it was found in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Face {
    /// Left edge of the box.
    pub x: f32,
    /// Top edge of the box.
    pub y: f32,
    /// Box width.
    pub width: f32,
    /// Box height.
    pub height: f32,
    /// Right eye, left eye, nose tip, right and left mouth corner (the
    /// person's right and left: the right eye is on the image's left).
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence in 0..1.
    pub score: f32,
}

impl Face {
    /// Area of the box.
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Intersection over union of two boxes (0 when either is empty).
    pub fn iou(&self, other: &Face) -> f32 {
        let w = (self.x + self.width).min(other.x + other.width) - self.x.max(other.x);
        let h = (self.y + self.height).min(other.y + other.height) - self.y.max(other.y);
        let inter = w.max(0.0) * h.max(0.0);
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// This face, found in a letterboxed detector input, in the photo's
    /// coordinates.
    pub fn to_photo(&self, fit: &Letterbox) -> Face {
        let [x, y] = fit.to_photo(self.x, self.y);
        let (width, height) = (self.width / fit.scale_x, self.height / fit.scale_y);
        Face { x, y, width, height, landmarks: self.landmarks.map(|[u, v]| fit.to_photo(u, v)), score: self.score }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, w: f32, h: f32) -> Face {
        Face { x, y, width: w, height: h, landmarks: [[0.0; 2]; 5], score: 1.0 }
    }

    #[test]
    fn iou_of_overlapping_disjoint_and_empty_boxes() {
        assert_eq!(face(0.0, 0.0, 2.0, 2.0).iou(&face(1.0, 0.0, 2.0, 2.0)), 2.0 / 6.0);
        assert_eq!(face(0.0, 0.0, 1.0, 1.0).iou(&face(5.0, 5.0, 1.0, 1.0)), 0.0);
        assert_eq!(face(0.0, 0.0, 0.0, 0.0).iou(&face(0.0, 0.0, 0.0, 0.0)), 0.0);
    }
}
