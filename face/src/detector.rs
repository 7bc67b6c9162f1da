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

/// How faces are searched for. The thresholds are OpenCV Zoo's for YuNet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectOptions {
    /// Smallest score (√(cls · obj), 0..1) a face needs.
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped.
    pub nms_threshold: f32,
    /// A photo larger than the detector input is shrunk to fit it, which
    /// makes the faces of a group photo too small to find. Such a photo is
    /// also searched in overlapping tiles of the photo scaled so that its
    /// longer side is at most this many pixels (never enlarged); 0 turns
    /// tiling off.
    pub tile_side: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions { score_threshold: 0.9, nms_threshold: 0.3, tile_side: 1280 }
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
        }
    }

    /// The detector input's width and height.
    pub fn input_size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The faces in `image`, best first, in the photo's coordinates: those
    /// found in the whole photo letterboxed into the input and, for a photo
    /// larger than the input, in tiles of it (see
    /// [`DetectOptions::tile_side`]), merged by non-maximum suppression.
    pub fn detect(&mut self, image: &ImageView<'_>, options: &DetectOptions) -> Result<&[Face], FaceError> {
        self.faces.clear();
        let whole = Letterbox::fit(image.width(), image.height(), self.width, self.height);
        self.search(image, &whole, options, None)?;
        let longer = image.width().max(image.height());
        let scale = (options.tile_side as f32 / longer as f32).min(1.0);
        if scale > whole.scale_x.max(whole.scale_y) {
            self.search_tiles(image, scale, options)?;
        }
        suppress(&mut self.faces, options.nms_threshold);
        Ok(&self.faces)
    }

    /// `face` (found in `image`) found again in a tile of the photo around
    /// it, at full resolution or shrunk just enough that the face spans at
    /// most 40% of the input, for landmarks as precise as the photo allows:
    /// a face found in a photo shrunk to fit the input has landmarks only
    /// as precise as the shrunk photo. The face of the tile that overlaps
    /// `face` most, or `face` itself when no face of the tile overlaps it.
    /// Leaves [`Detector::detect`]'s faces as they were.
    pub fn refine(&mut self, image: &ImageView<'_>, face: &Face, options: &DetectOptions) -> Result<Face, FaceError> {
        let size = [image.width() as f32, image.height() as f32];
        let input = [self.width as f32, self.height as f32];
        let centre = [face.x + face.width / 2.0, face.y + face.height / 2.0];
        let scale = (input[0].min(input[1]) * 0.4 / face.width.max(face.height)).min(1.0);
        let span = input.map(|i| i / scale);
        let origin = [0, 1].map(|a| (centre[a] - span[a] / 2.0).min(size[a] - span[a]).max(0.0));
        let tile = Letterbox::tile(image.width(), image.height(), origin, scale, (self.width, self.height));
        let start = self.faces.len();
        self.search(image, &tile, options, None)?;
        let best = self.faces[start..].iter().copied().max_by(|a, b| a.iou(face).total_cmp(&b.iou(face)));
        self.faces.truncate(start);
        Ok(best.filter(|b| b.iou(face) > 0.0).unwrap_or(*face))
    }

    /// Searches tiles of `image` scaled by `scale` that overlap by a quarter
    /// of the input. A tile keeps only faces no larger than the overlap
    /// whose centre lies in its share of the photo (the tile less half the
    /// overlap on sides it shares with another tile): those lie wholly
    /// inside it and no other tile keeps them; larger faces are the whole
    /// photo's.
    fn search_tiles(&mut self, image: &ImageView<'_>, scale: f32, options: &DetectOptions) -> Result<(), FaceError> {
        let overlap = (self.width.min(self.height) / 4) as f32;
        let step = [self.width as f32 - overlap, self.height as f32 - overlap].map(|s| s / scale);
        let size = [image.width() as f32, image.height() as f32];
        let count = [0, 1].map(|a| libm::ceilf(((size[a] * scale - overlap) / (step[a] * scale)).max(1.0)) as usize);
        for ty in 0..count[1] {
            for tx in 0..count[0] {
                let origin = [tx as f32 * step[0], ty as f32 * step[1]];
                let tile = Letterbox::tile(image.width(), image.height(), origin, scale, (self.width, self.height));
                let margin = overlap / 2.0 / scale;
                let share = [0, 1].map(|a| {
                    let (t, n) = ([tx, ty][a], count[a]);
                    let lo = if t == 0 { f32::NEG_INFINITY } else { origin[a] + margin };
                    let hi = if t + 1 == n { f32::INFINITY } else { origin[a] + step[a] + margin };
                    (lo, hi)
                });
                self.search(image, &tile, options, Some((share, overlap / scale)))?;
            }
        }
        Ok(())
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
