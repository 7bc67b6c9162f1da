//! `kiln face bench`: how long finding the faces of a photo takes, and
//! recognising them (detect, align and embed every face): kiln int8
//! against tract fp32 running the same ONNX models through the same pre-
//! and post-processing (kiln-face's), on one thread, the contenders taking
//! turns run by run as in `kiln bench`.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use kiln_converter::import::OnnxModel;
use kiln_converter::ir::layout::nhwc_to_nchw;
use kiln_converter::reference::{FloatYunet, Reference};
use kiln_face::letterbox::letterbox;
use kiln_face::{align, ChannelOrder, DetectOptions, Detector, Embedder, ImageView, Network, CROP};
use kiln_runtime::{Model, Session};

use super::{read_photo, view, FaceArgs};
use crate::bench::stats::Stats;
use crate::bench::{time, Contender};
use crate::run::open_model;

/// What is timed, each by kiln int8 then tract fp32.
const TASKS: [&str; 3] = ["YuNet, one inference", "detect", "detect, align and embed"];

/// Times the face pipeline on `photo` and prints the table.
pub fn run(photo: &Path, runs: usize, warmup: usize, args: &FaceArgs) -> Result<()> {
    ensure!(runs > 0, "--runs must be at least 1");
    let img = read_photo(photo)?;
    let view = view(&img);
    let options = args.detect_options()?;
    let (yunet, sface) = (open_model(&args.models.detector()?)?, open_model(&args.models.embedder()?)?);
    let yunet_onnx = OnnxModel::load(&args.models.detector_onnx()?)?;
    let sface_onnx = OnnxModel::load(&args.models.embedder_onnx()?)?;
    let float_sface = Reference::new(&sface_onnx, &[sface_onnx.graph().output[0].name.clone()])?;

    let mut session = Session::new(&yunet)?;
    println!("photo: {} ({}x{})", photo.display(), img.width(), img.height());
    println!("kiln kernels: {}", session.kernels().isa());
    let (w, h) = Detector::new(Session::new(&yunet)?)?.input_size();
    let mut input = vec![0.0; w * h * 3];
    letterbox(&view, &mut input, w, h, ChannelOrder::Bgr, &mut Vec::new());
    session.set_input_f32(0, &input)?;
    let float_yunet = FloatYunet::new(&yunet_onnx)?;
    let float = || -> Result<_> { Ok(Detector::with_network(FloatYunet::new(&yunet_onnx)?, w, h)) };
    let (mut kiln_detect, mut float_detect) = (Detector::new(Session::new(&yunet)?)?, float()?);
    let (mut kiln_pipeline, mut float_pipeline) = (Pipeline::kiln(&yunet, &sface)?, float()?);
    for (name, found, runs) in [found(&mut kiln_detect, &view, &options)?, found(&mut float_detect, &view, &options)?]
        .into_iter()
        .zip(["kiln int8", "tract fp32"])
        .map(|((f, r), n)| (n, f, r))
    {
        println!("{name}: {found} face{} in {runs} YuNet inferences", if found == 1 { "" } else { "s" });
    }

    let (mut crop, mut float_crop) = ([0u8; CROP * CROP * 3], [0u8; CROP * CROP * 3]);
    let mut contenders = vec![
        contender(TASKS[0], "kiln int8", move || {
            session.run();
            Ok(())
        }),
        contender(TASKS[0], "tract fp32", || float_yunet.heads(&input).map(drop)),
        contender(TASKS[1], "kiln int8", || kiln_detect.detect(&view, &options).map(drop).map_err(Into::into)),
        contender(TASKS[1], "tract fp32", || float_detect.detect(&view, &options).map(drop).map_err(Into::into)),
        contender(TASKS[2], "kiln int8", || kiln_pipeline.recognise(&view, &options, &mut crop)),
        contender(TASKS[2], "tract fp32", || {
            for face in float_pipeline.detect(&view, &options)? {
                align(&view, &face.landmarks, &mut float_crop).context("degenerate landmarks")?;
                let pixels: Vec<f32> = float_crop.iter().map(|&p| f32::from(p)).collect();
                float_sface.run(&nhwc_to_nchw(&pixels, &[1, CROP, CROP, 3]))?;
            }
            Ok(())
        }),
    ];
    time(&mut contenders, warmup, runs)?;
    print_table(&contenders, runs);
    Ok(())
}

/// The faces a detector finds in `image`, and the inferences it took.
fn found<N: Network>(
    detector: &mut Detector<N>,
    image: &ImageView<'_>,
    options: &DetectOptions,
) -> Result<(usize, usize)> {
    let faces = detector.detect(image, options)?.len();
    Ok((faces, detector.runs()))
}

fn contender<'a>(task: &str, who: &str, infer: impl FnMut() -> Result<()> + 'a) -> Contender<'a> {
    Contender { name: format!("{who} {task}"), infer: Box::new(infer), samples: Vec::new() }
}

/// kiln's detector and embedder, for the whole pipeline.
struct Pipeline<'m> {
    detector: Detector<kiln_face::KilnYunet<'m>>,
    embedder: Embedder<'m>,
    embedding: Vec<f32>,
}

impl<'m> Pipeline<'m> {
    fn kiln(yunet: &'m Model<'m>, sface: &'m Model<'m>) -> Result<Self> {
        let embedder = Embedder::new(Session::new(sface)?)?;
        let embedding = vec![0.0; embedder.dims()];
        Ok(Pipeline { detector: Detector::new(Session::new(yunet)?)?, embedder, embedding })
    }

    /// Detects, aligns and embeds every face of `image`.
    fn recognise(
        &mut self,
        image: &ImageView<'_>,
        options: &DetectOptions,
        crop: &mut [u8; CROP * CROP * 3],
    ) -> Result<()> {
        for face in self.detector.detect(image, options)? {
            align(image, &face.landmarks, crop).context("degenerate landmarks")?;
            self.embedder.embed(crop, &mut self.embedding)?;
        }
        Ok(())
    }
}

/// One row per task: kiln's and tract's median and minimum, and the ratio.
fn print_table(contenders: &[Contender<'_>], runs: usize) {
    println!("{runs} timed runs each, one thread, interleaved; milliseconds");
    println!(
        "{:<26} {:>17} {:>14} {:>18} {:>15} {:>13}",
        "task", "kiln int8 median", "kiln int8 min", "tract fp32 median", "tract fp32 min", "tract / kiln"
    );
    for (task, pair) in TASKS.iter().zip(contenders.chunks(2)) {
        let [kiln, tract] = [&pair[0], &pair[1]].map(|c| Stats::of(&c.samples));
        println!(
            "{task:<26} {:>17.3} {:>14.3} {:>18.3} {:>15.3} {:>12.2}x",
            kiln.median,
            kiln.min,
            tract.median,
            tract.min,
            tract.median / kiln.median
        );
    }
}
