//! `kiln`: the command line. Glue over `kiln-converter` and `kiln-runtime`;
//! the work lives in those crates.
#![forbid(unsafe_code)]
// A std host tool: the workspace lint is for the no_std runtime.
#![allow(clippy::std_instead_of_core)]

mod bench;
mod check;
mod convert;
mod eval;
mod face;
mod inputs;
mod inspect;
mod layers;
mod output;
mod precision;
mod prune;
mod run;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln_converter::calibrate::Method;

use crate::inputs::{InputArgs, ShapeArgs};

/// Convert ONNX models to compact int8 .kiln files and run them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert an ONNX model to an int8 .kiln file, calibrated on real inputs.
    Convert {
        /// The ONNX model.
        model: PathBuf,
        /// Where to write the .kiln file.
        #[arg(short, long)]
        output: PathBuf,
        /// A folder of calibration inputs: images (PNG, JPEG) or .npy tensors.
        #[arg(long)]
        calib: PathBuf,
        /// How activation ranges are chosen: `minmax` (every value seen),
        /// `mse` (least int8 error, clips rare outliers) or `pN` (the Nth
        /// percentile on each side, e.g. `p99.99`).
        #[arg(long, default_value = "mse", value_parser = convert::parse_method)]
        ranges: Method,
        #[command(flatten)]
        inputs: InputArgs,
        #[command(flatten)]
        shape: ShapeArgs,
        #[command(flatten)]
        prune: prune::PruneArgs,
        #[command(flatten)]
        precision: precision::PrecisionArgs,
    },
    /// Say, in seconds and without calibration data, whether kiln converts
    /// an ONNX model: every op type with its count and what kiln does with
    /// it (folded, int8, unsupported), and each unsupported node with why.
    Check {
        /// The ONNX model.
        model: PathBuf,
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// Run a .kiln model on images or .npy tensors and print its outputs.
    Run {
        /// The .kiln file.
        model: PathBuf,
        /// Inputs: images or .npy files. With two or more, their outputs'
        /// cosine similarities are printed too.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        options: InputArgs,
    },
    /// Print a .kiln file's layers, shapes, sizes and memory plan.
    Inspect {
        /// The .kiln file.
        model: PathBuf,
        /// The ONNX file it came from, to compare sizes.
        #[arg(long)]
        onnx: Option<PathBuf>,
    },
    /// Compare a .kiln model with the float ONNX model (run by tract) on real inputs.
    Eval {
        /// The float ONNX model: the reference.
        onnx: PathBuf,
        /// The .kiln file converted from it.
        model: PathBuf,
        /// A folder of inputs: images or .npy tensors.
        #[arg(long)]
        data: PathBuf,
        /// Also report the SQNR of every layer's output.
        #[arg(long)]
        layers: bool,
        /// Also count the pairs of inputs whose same/different decision
        /// (cosine of the outputs at least this, e.g. 0.363 for SFace's
        /// same person) agrees with the float model's, and name the others.
        #[arg(long, value_name = "THRESHOLD", allow_negative_numbers = true, value_parser = eval::cosine_threshold)]
        pairs: Option<f64>,
        #[command(flatten)]
        inputs: InputArgs,
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// Time a .kiln model at every kernel level against tract fp32 on the
    /// same ONNX model, in one run and on one thread.
    Bench(bench::BenchArgs),
    /// Prune at several ratios and print accuracy, cost and speed of each,
    /// with and without recovery; also draws them (SVG).
    Sweep(sweep::SweepArgs),
    /// Face recognition from photos: detect (YuNet), embed (SFace), verify.
    Face {
        #[command(subcommand)]
        command: face::FaceCommand,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = match Cli::parse().command {
        Command::Convert { model, output, calib, ranges, inputs, shape, prune, precision } => {
            let recipe = convert::RecipeArgs { shape: &shape, method: ranges, prune: &prune, precision: &precision };
            convert::run(&model, &output, &calib, &inputs, &recipe)
        }
        Command::Check { model, shape } => check::run(&model, shape.input_shape.as_ref()),
        Command::Run { model, inputs, options } => run::run(&model, &inputs, &options),
        Command::Inspect { model, onnx } => inspect::run(&model, onnx.as_deref()),
        Command::Eval { onnx, model, data, layers, pairs, inputs, shape } => {
            eval::run(&onnx, &model, &data, eval::Checks { layers, pairs }, &inputs, &shape)
        }
        Command::Bench(args) => bench::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Face { command } => face::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
