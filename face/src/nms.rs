//! Non-maximum suppression: of boxes that overlap, keep the best scored.

use crate::face::Face;

/// Sorts `faces` by score, best first, and removes every face whose box
/// overlaps a better one's by more than `iou_threshold` (intersection over
/// union), in place and without allocating: the kept faces are moved to
/// the front, and their number returned.
pub fn suppress(faces: &mut [Face], iou_threshold: f32) -> usize {
    faces.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..faces.len() {
        let candidate = faces[i];
        if faces[..kept].iter().all(|k| k.iou(&candidate) <= iou_threshold) {
            faces[kept] = candidate;
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> Face {
        Face { x, y: 0.0, width: 10.0, height: 10.0, landmarks: [[0.0; 2]; 5], score }
    }

    #[test]
    fn keeps_the_best_of_each_cluster() {
        // Two clusters: around x=0 (best 0.9) and x=100 (best 0.95); x=6
        // overlaps x=0 by 4/16 = 0.25, under the threshold, and stays.
        let mut faces = vec![face(1.0, 0.8), face(100.0, 0.95), face(0.0, 0.9), face(102.0, 0.7), face(6.0, 0.85)];
        let n = suppress(&mut faces, 0.3);
        let kept: Vec<(f32, f32)> = faces[..n].iter().map(|f| (f.x, f.score)).collect();
        assert_eq!(kept, [(100.0, 0.95), (0.0, 0.9), (6.0, 0.85)]);
    }
}
