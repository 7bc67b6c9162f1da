//! `kiln sweep`: pruning ratios (or MAC budgets) against accuracy, cost and
//! speed, with and without recovery, as a table and an SVG plot. Every pruned model is
//! converted, run on real inputs against the unpruned float model (tract),
//! and timed side by side with the unpruned int8 model in the same process.

mod plot;

use std::path::PathBuf;

use anyhow::{ensure, Result};
use clap::Args;
use kiln_converter::calibrate::Method;
use kiln_converter::import::OnnxModel;
use kiln_converter::input;
use kiln_converter::ir::layout;
use kiln_converter::metrics::disagreeing_pairs;
use kiln_converter::prune::{self, Amount};
use kiln_converter::reference::Reference;
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Model, Session};

use crate::bench::{stats::Stats, time, Contender};
use crate::convert::{parse_method, progress};
use crate::inputs::{InputArgs, ShapeArgs};
use crate::run::cosine;

/// The options of `kiln sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The float ONNX model.
    onnx: PathBuf,
    /// Calibration inputs (also what pruning scores and refits on).
    #[arg(long)]
    calib: PathBuf,
    /// Held-out inputs that accuracy is measured on.
    #[arg(long)]
    data: PathBuf,
    /// Pruning ratios, comma-separated: the same ratio in every layer.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3,0.4,0.5")]
    ratios: Vec<f64>,
    /// MAC budgets instead, comma-separated (as `kiln convert --prune-macs`:
    /// each layer pruned as much as the output cost per MAC saved allows).
    #[arg(long, value_delimiter = ',', conflicts_with = "ratios")]
    macs: Vec<f64>,
    /// Same/different threshold on the outputs' cosine similarity (SFace:
    /// 0.363): also counts the pairs of inputs whose decision agrees with
    /// the float model's.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::eval::cosine_threshold)]
    pairs: Option<f64>,
    /// Activation ranges (as `kiln convert --ranges`).
    #[arg(long, default_value = "mse", value_parser = parse_method)]
    ranges: Method,
    /// Timed runs per model and ratio.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Where to write the plot.
    #[arg(long, default_value = "prune-sweep.svg")]
    plot: PathBuf,
    #[command(flatten)]
    inputs: InputArgs,
    #[command(flatten)]
    shape: ShapeArgs,
}

/// One converted model and its measurements.
pub struct Point {
    /// Pruning ratio or MAC budget asked for.
    pub asked: f64,
    /// Whether recovery ran.
    pub recovery: bool,
    /// MACs kept, as a fraction of the unpruned model's.
    pub macs: f64,
    /// Parameters kept, as a fraction.
    pub parameters: f64,
    /// File size in bytes.
    pub file_bytes: usize,
    /// Mean and min cosine of the outputs to the unpruned float model's.
    pub cosine: (f64, f64),
    /// Pairs whose decision agrees with the float model's, and all pairs.
    pub pairs: Option<(usize, usize)>,
    /// Median ms per inference, and the unpruned int8 model's in the same run.
    pub ms: (f64, f64),
}

/// Runs the sweep and prints the table.
pub fn run(args: &SweepArgs) -> Result<()> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    crate::output::ensure_not_an_input(&args.plot, [args.onnx.as_path()])?;
    for &r in &args.ratios {
        ensure!((0.0..1.0).contains(&r), "--ratios take fractions from 0 to below 1, not {r}");
    }
    for &m in &args.macs {
        ensure!(m > 0.0 && m <= 1.0, "--macs take fractions above 0 and up to 1, not {m}");
    }
    let (by, amounts): (&str, Vec<(f64, Amount)>) = if args.macs.is_empty() {
        ("ratio", args.ratios.iter().map(|&r| (r, Amount::Ratio(r))).collect())
    } else {
        ("budget", args.macs.iter().map(|&m| (m, Amount::Macs(m))).collect())
    };
    let options = args.inputs.image_options()?;
    let onnx = OnnxModel::load_shaped(&args.onnx, args.shape.input_shape.as_ref())?;
    let samples = input::load_dir(&args.data, &onnx.input_shape, &options)?;
    let names: Vec<String> = onnx.graph().output.iter().map(|o| o.name.clone()).collect();
    ensure!(names.len() == 1, "kiln sweep compares models with one output; this one has {}", names.len());
    let reference = Reference::new(&onnx, &names)?;
    let float: Vec<Vec<f32>> =
        samples.iter().map(|s| Ok(reference.run(&s.values)?.remove(0))).collect::<Result<_>>()?;
    let inputs: Vec<Vec<f32>> = samples.iter().map(|s| layout::nchw_to_nhwc(&s.values, &onnx.input_shape)).collect();

    let convert = |prune: Option<&prune::Options>| {
        kiln_converter::convert_pruned(
            &args.onnx,
            args.shape.input_shape.as_ref(),
            &args.calib,
            &options,
            args.ranges,
            prune,
            |_, _| {},
        )
    };
    let unpruned = AlignedBytes::copy_of(&convert(None)?.bytes);
    let unpruned = Model::from_bytes(&unpruned)?;
    let bar = progress(amounts.len() * 2, "pruning");
    let mut points = Vec::new();
    for (asked, amount) in &amounts {
        for recovery in [true, false] {
            let options = prune::Options { amount: amount.clone(), recover: recovery, ..Default::default() };
            let done = convert(Some(&options))?;
            let report = done.pruning.as_ref().expect("pruning was asked for");
            let bytes = AlignedBytes::copy_of(&done.bytes);
            let model = Model::from_bytes(&bytes)?;
            let outputs = outputs(&model, &inputs)?;
            let cosines: Vec<f64> = outputs.iter().zip(&float).map(|(a, b)| cosine(a, b)).collect();
            let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
            let min = cosines.iter().copied().fold(f64::INFINITY, f64::min);
            points.push(Point {
                asked: *asked,
                recovery,
                macs: report.after.macs as f64 / report.before.macs as f64,
                parameters: report.after.parameters as f64 / report.before.parameters as f64,
                file_bytes: done.bytes.len(),
                cosine: (mean, min),
                pairs: args.pairs.map(|threshold| agreement(&float, &outputs, threshold)),
                ms: latency(&model, &unpruned, &inputs[0], args.runs)?,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    print_table(&points, by, args.runs);
    plot::write(&args.plot, &points, by, &args.onnx)?;
    println!("plot: {}", args.plot.display());
    Ok(())
}

/// `model`'s first output on each input.
fn outputs(model: &Model<'_>, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let mut session = Session::new(model)?;
    let len = model.outputs().next().map_or(0, |o| o.shape.elements());
    inputs
        .iter()
        .map(|x| {
            let mut out = vec![0f32; len];
            session.run_f32(&[x], &mut [&mut out])?;
            Ok(out)
        })
        .collect()
}

/// Of all pairs of inputs, how many get the same same/different decision
/// at `threshold` from `test` as from `reference`; and how many pairs.
fn agreement(reference: &[Vec<f32>], test: &[Vec<f32>], threshold: f64) -> (usize, usize) {
    let (disagree, pairs) = disagreeing_pairs(reference, test, threshold);
    (pairs - disagree.len(), pairs)
}

/// Median ms of `model` and of `unpruned`, interleaved on one input.
fn latency(model: &Model<'_>, unpruned: &Model<'_>, input: &[f32], runs: usize) -> Result<(f64, f64)> {
    let (mut a, mut b) = (Session::new(model)?, Session::new(unpruned)?);
    let mut out_a: Vec<Vec<f32>> = model.outputs().map(|o| vec![0f32; o.shape.elements()]).collect();
    let mut out_b: Vec<Vec<f32>> = unpruned.outputs().map(|o| vec![0f32; o.shape.elements()]).collect();
    let mut contenders = [
        Contender::kiln("pruned".into(), &mut a, input, &mut out_a),
        Contender::kiln("unpruned".into(), &mut b, input, &mut out_b),
    ];
    time(&mut contenders, 3, runs)?;
    Ok((Stats::of(&contenders[0].samples).median, Stats::of(&contenders[1].samples).median))
}

/// The table; `by` names what was asked for (`ratio` or `budget`).
fn print_table(points: &[Point], by: &str, runs: usize) {
    println!("pruning sweep: accuracy against the unpruned float model (tract); latency int8, one thread,");
    println!("median of {runs} runs interleaved with the unpruned int8 model");
    println!(
        "{:>6} {:>9} {:>7} {:>7} {:>10} {:>11} {:>10} {:>9} {:>9} {:>12} {:>8}",
        by, "recovery", "MACs", "params", "file B", "cos mean", "cos min", "pairs", "ms", "unpruned ms", "speedup"
    );
    for p in points {
        let pairs = p.pairs.map_or("-".into(), |(a, n)| format!("{a}/{n}"));
        println!(
            "{:>6.2} {:>9} {:>6.1}% {:>6.1}% {:>10} {:>11.5} {:>10.5} {:>9} {:>9.3} {:>12.3} {:>7.2}x",
            p.asked,
            if p.recovery { "yes" } else { "no" },
            100.0 * p.macs,
            100.0 * p.parameters,
            p.file_bytes,
            p.cosine.0,
            p.cosine.1,
            pairs,
            p.ms.0,
            p.ms.1,
            p.ms.1 / p.ms.0
        );
    }
}
