//! Decoding YuNet's (2023mar) twelve output heads into faces.
//!
//! At each stride s in 8, 16, 32 the detector predicts, for every cell
//! (row r, column c) of an (H/s) × (W/s) grid: a class score `cls` and an
//! objectness `obj`, both already through a sigmoid in the graph; a box
//! (dx, dy, log w, log h) with centre ((c + dx)·s, (r + dy)·s) and size
//! (e^log w · s, e^log h · s); and five landmarks ((c + kx)·s, (r + ky)·s).
//! A cell's score is √(cls · obj), each clamped to 0..1 (the decoding of
//! OpenCV's `FaceDetectorYN`).

use alloc::vec::Vec;

use crate::face::Face;

/// The grid strides, in the order of the heads.
pub const STRIDES: [usize; 3] = [8, 16, 32];

/// The heads' names, in the order [`Heads`] holds them: `cls_8`, `cls_16`,
/// `cls_32`, then `obj_*`, `bbox_*`, `kps_*`.
pub const HEAD_NAMES: [&str; 12] = [
    "cls_8", "cls_16", "cls_32", "obj_8", "obj_16", "obj_32", "bbox_8", "bbox_16", "bbox_32", "kps_8", "kps_16",
    "kps_32",
];

/// Values per cell of each kind of head: cls, obj, bbox, kps.
pub const HEAD_WIDTHS: [usize; 4] = [1, 1, 4, 10];

/// The twelve outputs of one run, in [`HEAD_NAMES`] order, each as the
/// flat row-major values of its `[1, cells, width]` tensor.
pub struct Heads<'a> {
    /// The outputs, in [`HEAD_NAMES`] order.
    pub values: [&'a [f32]; 12],
}

/// Cells of the grid at `stride` for an input of `width` × `height`.
pub fn cells(width: usize, height: usize, stride: usize) -> usize {
    width.div_ceil(stride) * height.div_ceil(stride)
}

/// Appends to `faces` every cell whose score reaches `threshold`, in input
/// coordinates, for an input `width` wide. Allocates nothing when `faces`
/// has room for every cell (see [`cells`]).
pub fn decode(heads: &Heads<'_>, width: usize, threshold: f32, faces: &mut Vec<Face>) {
    for (i, &stride) in STRIDES.iter().enumerate() {
        let columns = width.div_ceil(stride);
        let [cls, obj, bbox, kps] = [0, 1, 2, 3].map(|k| heads.values[k * 3 + i]);
        let s = stride as f32;
        for (cell, (&c, &o)) in cls.iter().zip(obj).enumerate() {
            let score = libm::sqrtf(c.clamp(0.0, 1.0) * o.clamp(0.0, 1.0));
            if score < threshold {
                continue;
            }
            let (row, col) = ((cell / columns) as f32, (cell % columns) as f32);
            let b = &bbox[cell * 4..cell * 4 + 4];
            let (w, h) = (libm::expf(b[2]) * s, libm::expf(b[3]) * s);
            let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
            let k = &kps[cell * 10..cell * 10 + 10];
            let landmarks = core::array::from_fn(|n| [(col + k[2 * n]) * s, (row + k[2 * n + 1]) * s]);
            faces.push(Face { x: cx - w / 2.0, y: cy - h / 2.0, width: w, height: h, landmarks, score });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_confident_cell() {
        // A 32x32 input: grids of 4x4, 2x2 and 1x1 cells.
        let n = STRIDES.map(|s| cells(32, 32, s));
        assert_eq!(n, [16, 4, 1]);
        let mut owned: Vec<Vec<f32>> =
            HEAD_NAMES.iter().enumerate().map(|(i, _)| vec![0.0; n[i % 3] * HEAD_WIDTHS[i / 3]]).collect();
        // Stride 16, cell (row 1, column 0): cls 0.81 and obj 1.0 (score 0.9).
        owned[1][2] = 0.81;
        owned[4][2] = 1.0;
        owned[7][8..12].copy_from_slice(&[0.5, 0.25, 0.0, 0.0]);
        owned[10][20..22].copy_from_slice(&[0.25, 0.5]);
        // A cell with obj above 1 and cls 0.64 clamps to a score of 0.8.
        owned[2][0] = 0.64;
        owned[5][0] = 1.5;
        let values = core::array::from_fn(|i| owned[i].as_slice());
        let mut faces = Vec::new();
        decode(&Heads { values }, 32, 0.85, &mut faces);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        // Centre (8, 20), size 16 x 16.
        assert_eq!((f.x, f.y, f.width, f.height), (0.0, 12.0, 16.0, 16.0));
        assert_eq!(f.landmarks[0], [4.0, 24.0]);
        faces.clear();
        decode(&Heads { values }, 32, 0.75, &mut faces);
        assert_eq!(faces.len(), 2);
        assert!((faces[1].score - 0.8).abs() < 1e-6);
    }
}
