//! Latency of face detection and of the whole pipeline (detect, refine,
//! align, embed) on one photo, on one thread: kiln int8 against tract f32 running
//! the same ONNX models on the same inputs, with the same pre- and
//! post-processing (kiln-face's). Until `kiln bench` covers the face
//! pipeline, this is how its speed is measured:
//!
//! ```sh
//! cargo run --release --example face_latency -- models/cache/photos/obama.jpg
//! ```
//!
//! Prints the median and minimum of 20 timed runs after 3 warm-up runs.
#![allow(clippy::std_instead_of_core)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kiln_converter::import::OnnxModel;
use kiln_converter::input::ImageOptions;
use kiln_converter::ir::layout::nhwc_to_nchw;
use kiln_converter::reference::{FloatYunet, Reference};
use kiln_face::letterbox::letterbox;
use kiln_face::{align, ChannelOrder, DetectOptions, Detector, Embedder, ImageView, CROP};
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Model, Session};

const MODELS: &str = "models/cache";
const YUNET: &str = "face_detection_yunet_2023mar.onnx";
const SFACE: &str = "face_recognition_sface_2021dec.onnx";

fn main() -> Result<()> {
    let photo = std::env::args().nth(1).unwrap_or_else(|| format!("{MODELS}/photos/obama.jpg"));
    let img = image::open(&photo).with_context(|| format!("cannot read {photo}"))?.to_rgb8();
    let view = ImageView::new(img.width() as usize, img.height() as usize, ChannelOrder::Rgb, img.as_raw())?;
    let models = Path::new(MODELS);
    let boxed = ImageOptions { bgr: true, letterbox: true, ..ImageOptions::default() };
    let yunet_path = models.join(YUNET);
    let sface_path = models.join(SFACE);
    let yunet = convert(&yunet_path, "tests/data/detector-calibration", &boxed)?;
    let sface = convert(&sface_path, "tests/data/calibration", &ImageOptions::default())?;
    let (yunet, sface) = (Model::from_bytes(&yunet)?, Model::from_bytes(&sface)?);
    let options = DetectOptions::default();

    // kiln int8.
    let mut detector = Detector::new(Session::new(&yunet)?)?;
    let mut embedder = Embedder::new(Session::new(&sface)?)?;
    let mut session = Session::new(&yunet)?;
    let mut input = vec![0.0; 640 * 640 * 3];
    letterbox(&view, &mut input, 640, 640, ChannelOrder::Bgr, &mut Vec::new());
    session.set_input_f32(0, &input)?;
    let mut crop = [0u8; CROP * CROP * 3];
    let mut embedding = vec![0.0; embedder.dims()];
    report("kiln int8 YuNet, run only", time(|| session.run()));
    report(
        "kiln int8 detect (letterbox, run, decode, NMS)",
        time(|| {
            detector.detect(&view, &options).expect("detects");
        }),
    );
    report(
        "kiln int8 pipeline (detect, align, embed)",
        time(|| {
            let face = detector.detect(&view, &options).expect("detects")[0];
            align(&view, &face.landmarks, &mut crop).expect("aligns");
            embedder.embed(&crop, &mut embedding).expect("embeds");
        }),
    );

    // tract f32.
    let float_yunet = FloatYunet::new(&OnnxModel::load(&yunet_path)?)?;
    report(
        "tract f32 YuNet, run only",
        time(|| {
            float_yunet.heads(&input).expect("runs");
        }),
    );
    let mut float_detector = Detector::with_network(float_yunet, 640, 640);
    report(
        "tract f32 detect (letterbox, run, decode, NMS)",
        time(|| {
            float_detector.detect(&view, &options).expect("detects");
        }),
    );
    let sface_onnx = OnnxModel::load(&sface_path)?;
    let output = sface_onnx.graph().output[0].name.clone();
    let float_sface = Reference::new(&sface_onnx, &[output])?;
    report(
        "tract f32 pipeline (detect, align, embed)",
        time(|| {
            let face = float_detector.detect(&view, &options).expect("detects")[0];
            align(&view, &face.landmarks, &mut crop).expect("aligns");
            let pixels: Vec<f32> = crop.iter().map(|&p| f32::from(p)).collect();
            float_sface.run(&nhwc_to_nchw(&pixels, &[1, CROP, CROP, 3])).expect("runs");
        }),
    );
    Ok(())
}

fn convert(onnx: &Path, calib: &str, options: &ImageOptions) -> Result<AlignedBytes> {
    let (bytes, _) =
        kiln_converter::convert(onnx, Path::new(calib), options, kiln_converter::calibrate::Method::Mse, |_, _| {})?;
    Ok(AlignedBytes::copy_of(&bytes))
}

/// Sorted durations of 20 runs after 3 warm-up runs.
fn time(mut f: impl FnMut()) -> Vec<Duration> {
    (0..3).for_each(|_| f());
    let mut runs: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    runs.sort();
    runs
}

fn report(what: &str, runs: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{what}: median {:.2} ms, min {:.2} ms", ms(runs[runs.len() / 2]), ms(runs[0]));
}
