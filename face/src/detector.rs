//! The detector: a YuNet `.kiln` session plus the buffers that turn a photo
//! into its input and its outputs into faces, allocated once.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kiln_runtime::{Model, Session};

use crate::error::FaceError;
use crate::face::Face;
use crate::image::{ChannelOrder, ImageView};
use crate::letterbox::{resample, Letterbox};
use crate::nms::suppress;
use crate::yunet::{cells, decode, Heads, HEAD_NAMES, HEAD_WIDTHS, STRIDES};

/// How faces are searched for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectOptions {
    /// Smallest score (√(cls · obj), 0..1) a face needs. 0.8, not OpenCV
    /// Zoo's 0.9: at full resolution 8 of the 29 faces of the Solvay photo
    /// score 0.8–0.9 (in OpenCV's FaceDetectorYN too, whose crops of them
    /// are in the reference set), and every test photo shows the same faces
    /// at any threshold from 0.6 to 0.8.
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped.
    pub nms_threshold: f32,
    /// A photo larger than the input is first searched shrunk to fit it.
    /// When that finds no face, or a face smaller than this many input
    /// pixels (a crowd, whose other faces may be too small to find when
    /// shrunk), the photo is also searched at full resolution in tiles.
    /// 0 never tiles.
    pub tile_below: f32,
    /// At most this many faces, the best: each costs a detector run to
    /// refine, so a photo of anchors that all pass a low threshold must not
    /// cost one run per anchor.
    pub max_faces: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions { score_threshold: 0.8, nms_threshold: 0.3, tile_below: 48.0, max_faces: 256 }
    }
}

impl DetectOptions {
    /// Checks every value's range: a score threshold of 0 makes every
    /// anchor a face.
    pub fn check(&self) -> Result<(), FaceError> {
        let bad = |why: String| Err(FaceError::Options(why));
        let (score, nms, tile) = (self.score_threshold, self.nms_threshold, self.tile_below);
        if !(score > 0.0 && score <= 1.0) {
            return bad(format!("score threshold {score} must be above 0 and at most 1 (0.8 is the default)"));
        }
        if !(0.0..=1.0).contains(&nms) {
            return bad(format!("NMS IoU threshold {nms} must be between 0 and 1 (0.3 is the default)"));
        }
        if !(tile.is_finite() && tile >= 0.0) {
            return bad(format!("tile_below {tile} must be a size in pixels, 0 or more"));
        }
        if self.max_faces == 0 {
            return bad("max_faces must be at least 1".into());
        }
        Ok(())
    }
}

/// Candidates kept from one detector run, the best, before non-maximum
/// suppression (OpenCV's `FaceDetectorYN` keeps 5000): suppression
/// compares every candidate with every face kept, so their number is bounded.
const CANDIDATES: usize = 5000;

/// Keeps the `n` best-scoring of `faces[from..]` (in any order).
fn keep_best(faces: &mut Vec<Face>, from: usize, n: usize) {
    if faces.len() - from > n {
        faces[from..].select_nth_unstable_by(n - 1, |a, b| b.score.total_cmp(&a.score));
        faces.truncate(from + n);
    }
}

/// What runs YuNet: kiln's int8 session ([`KilnYunet`]), or another
/// runtime, such as the float model that tests compare with.
pub trait Network {
    /// Runs on `input` (`[1, H, W, 3]`, NHWC, BGR, 0..255) and writes the
    /// twelve heads into `heads`, in [`HEAD_NAMES`] order.
    fn run(&mut self, input: &[f32], heads: &mut [Vec<f32>; 12]) -> Result<(), FaceError>;
}

/// YuNet as a kiln session, with the output index of each head.
pub struct KilnYunet<'m> {
    session: Session<'m>,
    outputs: [usize; 12],
}

impl Network for KilnYunet<'_> {
    fn run(&mut self, input: &[f32], heads: &mut [Vec<f32>; 12]) -> Result<(), FaceError> {
        self.session.set_input_f32(0, input)?;
        self.session.run();
        for (head, &index) in heads.iter_mut().zip(&self.outputs) {
            self.session.output_f32(index, head)?;
        }
        Ok(())
    }
}

/// A YuNet face detector. After it is made, [`Detector::detect`] allocates
/// nothing, except to grow its buffers the first time a photo is wider, or
/// holds more candidate faces, than any before.
pub struct Detector<N> {
    network: N,
    width: usize,
    height: usize,
    input: Vec<f32>,
    row: Vec<f32>,
    heads: [Vec<f32>; 12],
    faces: Vec<Face>,
    runs: usize,
}

impl<'m> Detector<KilnYunet<'m>> {
    /// Wraps a session of a YuNet model: one `[1, H, W, 3]` input (H and W
    /// multiples of 32) and outputs named `cls_8` … `kps_32` of the sizes
    /// that input implies. Anything else is [`FaceError::NotADetector`].
    pub fn new(session: Session<'m>) -> Result<Self, FaceError> {
        let model = session.model();
        let (width, height) = detector_input(model)?;
        let mut outputs = [0; 12];
        for (k, name) in HEAD_NAMES.iter().enumerate() {
            let (index, info) = model.outputs().enumerate().find(|(_, o)| o.name == *name).ok_or_else(|| {
                let names: Vec<&str> = model.outputs().map(|o| o.name).collect();
                FaceError::NotADetector(format!("it has no output named `{name}`; its outputs are {names:?}"))
            })?;
            let expected = cells(width, height, STRIDES[k % 3]) * HEAD_WIDTHS[k / 3];
            if info.shape.elements() != expected {
                return Err(FaceError::NotADetector(format!(
                    "output `{name}` holds {} values, a {width}x{height} YuNet gives {expected}",
                    info.shape.elements()
                )));
            }
            outputs[k] = index;
        }
        Ok(Detector::with_network(KilnYunet { session, outputs }, width, height))
    }
}

impl<N: Network> Detector<N> {
    /// A detector over any runtime of YuNet with a `width` × `height` input.
    pub fn with_network(network: N, width: usize, height: usize) -> Self {
        let anchors: usize = STRIDES.iter().map(|&s| cells(width, height, s)).sum();
        Detector {
            network,
            width,
            height,
            input: vec![0.0; width * height * 3],
            row: Vec::new(),
            heads: core::array::from_fn(|k| vec![0.0; cells(width, height, STRIDES[k % 3]) * HEAD_WIDTHS[k / 3]]),
            faces: Vec::with_capacity(anchors),
            runs: 0,
        }
    }

    /// The detector input's width and height.
    pub fn input_size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// How many times the last [`Detector::detect`] ran the network: what
    /// detection cost on that photo, in detector inferences.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// The faces in `image`, best first, in the photo's coordinates, as
    /// OpenCV's `FaceDetectorYN` finds them when run on the whole photo at
    /// its own size (the reference: its landmarks make the crops SFace
    /// expects). The input is smaller than most photos, so: the photo is
    /// searched shrunk to fit the input; then, if it looks like a crowd
    /// (see [`DetectOptions::tile_below`]), in full-resolution tiles; and
    /// each face found is found again in a full-resolution tile centred on
    /// it, whose landmarks are the ones a whole-photo run gives.
    pub fn detect(&mut self, image: &ImageView<'_>, options: &DetectOptions) -> Result<&[Face], FaceError> {
        options.check()?;
        self.faces.clear();
        self.runs = 0;
        let (width, height) = (image.width(), image.height());
        if width <= self.width && height <= self.height {
            let native = Letterbox::tile(width, height, [0.0; 2], 1.0, (self.width, self.height));
            self.search(image, &native, options, None)?;
            self.suppress(options);
            self.faces.truncate(options.max_faces);
            return Ok(&self.faces);
        }
        let whole = Letterbox::fit(width, height, self.width, self.height);
        self.search(image, &whole, options, None)?;
        let smallest = self.faces.iter().map(|f| f.width.min(f.height) * whole.scale_x).reduce(f32::min);
        if options.tile_below > 0.0 && smallest.is_none_or(|s| s < options.tile_below) {
            self.search_tiles(image, options)?;
        }
        self.suppress(options);
        self.faces.truncate(options.max_faces);
        for i in 0..self.faces.len() {
            let face = self.faces[i];
            self.faces[i] = self.refine(image, &face, options)?;
        }
        self.suppress(options);
        Ok(&self.faces)
    }

    /// `face` (found in `image`) found again in a tile centred on it, on
    /// the grid of a whole-photo run (origin a multiple of the largest
    /// stride, within the photo padded to that stride, as OpenCV pads it):
    /// YuNet sees about ±320 pixels around a face, so such a tile gives
    /// the landmarks of a whole-photo run. A face too large for a
    /// full-resolution tile is found in one shrunk until it spans three
    /// quarters of the input. The face of the tile (after non-maximum
    /// suppression) that overlaps `face` most, or `face` itself when none
    /// overlaps it.
    fn refine(&mut self, image: &ImageView<'_>, face: &Face, options: &DetectOptions) -> Result<Face, FaceError> {
        let input = [self.width as f32, self.height as f32];
        let scale = (input[0].min(input[1]) * 0.75 / face.width.max(face.height)).min(1.0);
        let grid = (STRIDES[2] as f32) / scale;
        let centre = [face.x + face.width / 2.0, face.y + face.height / 2.0];
        let size = [image.width(), image.height()].map(|n| libm::ceilf(n as f32 / grid) * grid);
        let origin = [0, 1].map(|a| {
            let start = libm::roundf((centre[a] - input[a] / scale / 2.0) / grid) * grid;
            start.min(size[a] - input[a] / scale).max(0.0)
        });
        let tile = Letterbox::tile(image.width(), image.height(), origin, scale, (self.width, self.height));
        let start = self.faces.len();
        self.search(image, &tile, options, None)?;
        let kept = suppress(&mut self.faces[start..], options.nms_threshold);
        let best = self.faces[start..start + kept].iter().copied().max_by(|a, b| a.iou(face).total_cmp(&b.iou(face)));
        self.faces.truncate(start);
        Ok(best.filter(|b| b.iou(face) > 0.0).unwrap_or(*face))
    }

    /// Searches full-resolution tiles of `image` that overlap by a quarter
    /// of the input (a multiple of the largest stride, so that every tile
    /// lies on one grid). A tile keeps only faces no larger than the
    /// overlap whose centre lies in its share of the photo (the tile less
    /// half the overlap on sides it shares with another tile): those lie
    /// wholly inside it and no other tile keeps them; larger faces are the
    /// shrunk photo's.
    fn search_tiles(&mut self, image: &ImageView<'_>, options: &DetectOptions) -> Result<(), FaceError> {
        let overlap = self.width.min(self.height) / 4 / STRIDES[2] * STRIDES[2];
        let step = [self.width - overlap, self.height - overlap];
        let size = [image.width(), image.height()];
        let count = [0, 1].map(|a| size[a].saturating_sub(overlap).div_ceil(step[a]).max(1));
        let margin = (overlap / 2) as f32;
        for ty in 0..count[1] {
            for tx in 0..count[0] {
                let origin = [tx * step[0], ty * step[1]].map(|o| o as f32);
                let tile = Letterbox::tile(image.width(), image.height(), origin, 1.0, (self.width, self.height));
                let share = [0, 1].map(|a| {
                    let (t, n) = ([tx, ty][a], count[a]);
                    let lo = if t == 0 { f32::NEG_INFINITY } else { origin[a] + margin };
                    let hi = if t + 1 == n { f32::INFINITY } else { origin[a] + step[a] as f32 + margin };
                    (lo, hi)
                });
                self.search(image, &tile, options, Some((share, overlap as f32)))?;
                keep_best(&mut self.faces, 0, CANDIDATES);
            }
        }
        Ok(())
    }

    /// Non-maximum suppression of the faces found.
    fn suppress(&mut self, options: &DetectOptions) {
        let kept = suppress(&mut self.faces, options.nms_threshold);
        self.faces.truncate(kept);
    }

    /// Runs the detector on the part of `image` that `placement` says and
    /// appends the faces found, in photo coordinates; with `keep` =
    /// (share, largest), only faces no larger than `largest` whose centre
    /// lies in `share` ([x range, y range]).
    fn search(
        &mut self,
        image: &ImageView<'_>,
        placement: &Letterbox,
        options: &DetectOptions,
        keep: Option<([(f32, f32); 2], f32)>,
    ) -> Result<(), FaceError> {
        resample(image, placement, &mut self.input, (self.width, self.height), ChannelOrder::Bgr, &mut self.row);
        self.network.run(&self.input, &mut self.heads)?;
        self.runs += 1;
        let start = self.faces.len();
        let heads = Heads { values: core::array::from_fn(|k| self.heads[k].as_slice()) };
        decode(&heads, self.width, options.score_threshold, &mut self.faces);
        for face in &mut self.faces[start..] {
            *face = face.to_photo(placement);
        }
        if let Some(([(x0, x1), (y0, y1)], largest)) = keep {
            let mut kept = start;
            for i in start..self.faces.len() {
                let f = self.faces[i];
                let (cx, cy) = (f.x + f.width / 2.0, f.y + f.height / 2.0);
                if f.width.max(f.height) <= largest && (x0..x1).contains(&cx) && (y0..y1).contains(&cy) {
                    self.faces[kept] = f;
                    kept += 1;
                }
            }
            self.faces.truncate(kept);
        }
        keep_best(&mut self.faces, start, CANDIDATES);
        Ok(())
    }
}

/// Width and height of a detector's `[1, H, W, 3]` input.
fn detector_input(model: &Model<'_>) -> Result<(usize, usize), FaceError> {
    let not = |why: String| FaceError::NotADetector(why);
    let mut inputs = model.inputs();
    let (Some(input), None) = (inputs.next(), inputs.next()) else {
        return Err(not(format!("it has {} inputs, YuNet has one", model.inputs().len())));
    };
    match *input.shape.dims() {
        [1, h, w, 3] if h % 32 == 0 && w % 32 == 0 && h > 0 && w > 0 => Ok((w, h)),
        ref dims => {
            Err(not(format!("its input has shape {dims:?}, YuNet takes [1, H, W, 3] with H, W multiples of 32")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A YuNet stand-in that counts its runs and, when `face` is set, sees
    /// one face of that many input pixels centred in every input.
    struct OneFace {
        face: Option<f32>,
        runs: usize,
    }

    impl Network for OneFace {
        fn run(&mut self, _: &[f32], heads: &mut [Vec<f32>; 12]) -> Result<(), FaceError> {
            self.runs += 1;
            heads.iter_mut().for_each(|h| h.fill(0.0));
            if let Some(size) = self.face {
                // Stride 32, row 10, column 10 of a 20 x 20 grid: centre (320, 320).
                let cell = 10 * 20 + 10;
                heads[2][cell] = 1.0;
                heads[5][cell] = 1.0;
                let log = libm::logf(size / 32.0);
                heads[8][cell * 4..cell * 4 + 4].copy_from_slice(&[0.0, 0.0, log, log]);
                heads[11][cell * 10..cell * 10 + 10]
                    .copy_from_slice(&[-0.3, -0.2, 0.3, -0.2, 0.0, 0.0, -0.2, 0.3, 0.2, 0.3]);
            }
            Ok(())
        }
    }

    fn runs(face: Option<f32>, width: usize, height: usize) -> (usize, usize) {
        runs_with(face, width, height, &DetectOptions::default())
    }

    /// Faces found and network runs made in a blank `width` × `height` photo.
    fn runs_with(face: Option<f32>, width: usize, height: usize, options: &DetectOptions) -> (usize, usize) {
        let mut detector = Detector::with_network(OneFace { face, runs: 0 }, 640, 640);
        let px = vec![0u8; width * height * 3];
        let img = ImageView::new(width, height, ChannelOrder::Rgb, &px).unwrap();
        let found = detector.detect(&img, options).unwrap().len();
        assert_eq!(detector.runs(), detector.network.runs);
        (found, detector.runs())
    }

    #[test]
    fn tiles_only_when_the_shrunk_photo_shows_no_face_or_a_small_one() {
        // A photo that fits the input: one run at full resolution.
        assert_eq!(runs(Some(200.0), 640, 480), (1, 1));
        // Larger, with a large face: the shrunk photo, then one tile
        // centred on the face.
        assert_eq!(runs(Some(200.0), 1280, 960), (1, 2));
        // No face in the shrunk photo: 3 x 2 full-resolution tiles
        // (overlapping by 160 pixels) as well.
        assert_eq!(runs(None, 1280, 960), (0, 7));
        let never = DetectOptions { tile_below: 0.0, ..DetectOptions::default() };
        assert_eq!(runs_with(None, 1280, 960, &never), (0, 1));
        // A face under 48 input pixels: tiles too, then each face found
        // (every tile sees one) found again in a tile centred on it.
        let (found, n) = runs(Some(40.0), 1280, 960);
        assert!(found > 1 && n == 1 + 6 + found, "{found} faces, {n} runs");
    }

    /// A YuNet stand-in that sees a small face, scoring 1, at every anchor:
    /// what a score threshold near 0 makes of any photo.
    struct EveryAnchor;

    impl Network for EveryAnchor {
        fn run(&mut self, _: &[f32], heads: &mut [Vec<f32>; 12]) -> Result<(), FaceError> {
            heads[..6].iter_mut().for_each(|h| h.fill(1.0));
            // Boxes half a stride wide: no two anchors' boxes overlap.
            let half = libm::logf(0.5);
            heads[6..9]
                .iter_mut()
                .for_each(|h| h.chunks_mut(4).for_each(|b| b.copy_from_slice(&[0.0, 0.0, half, half])));
            heads[9..].iter_mut().for_each(|h| h.fill(0.0));
            Ok(())
        }
    }

    #[test]
    fn faces_and_their_detector_runs_are_bounded() {
        let mut detector = Detector::with_network(EveryAnchor, 640, 640);
        let px = vec![0u8; 1280 * 960 * 3];
        let img = ImageView::new(1280, 960, ChannelOrder::Rgb, &px).unwrap();
        let options = DetectOptions { score_threshold: 0.01, max_faces: 16, ..DetectOptions::default() };
        // 8400 anchors a run, none overlapping: the best 16 faces, found
        // in the shrunk photo and 6 tiles, each refined in one more run.
        let found = detector.detect(&img, &options).unwrap().len();
        assert_eq!((found, detector.runs()), (16, 1 + 6 + 16));

        for score_threshold in [0.0, -1.0, 1.5, f32::NAN] {
            let options = DetectOptions { score_threshold, ..DetectOptions::default() };
            let err = detector.detect(&img, &options).unwrap_err().to_string();
            assert!(err.contains(&format!("score threshold {score_threshold} must be above 0 and at most 1")), "{err}");
        }
        let options = DetectOptions { max_faces: 0, ..DetectOptions::default() };
        assert!(detector.detect(&img, &options).unwrap_err().to_string().contains("max_faces must be at least 1"));
    }
}
