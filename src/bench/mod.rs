//! `kiln bench`: kiln int8 at every kernel level this CPU supports against
//! tract fp32 on the same ONNX model, in one process and on one thread. The
//! contenders take turns run by run (each round in a rotated order), so
//! that machine noise hits all of them alike; the table gives medians and
//! ratios, not absolute claims.

mod input;
mod profile;
pub(crate) mod stats;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use kiln_converter::import::OnnxModel;
use kiln_converter::reference::Reference;
use kiln_runtime::{Isa, Model, Session, SessionOptions};

use crate::inputs::{InputArgs, ShapeArgs};
use crate::run::{cosine, open_model};
use stats::Stats;

/// The options of `kiln bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// The .kiln file.
    model: PathBuf,
    /// The float ONNX model it came from: adds tract fp32 to the table.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Another .kiln file with the same input (e.g. the unpruned model):
    /// adds it, at the best kernel level, to the table.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The input: an image or a .npy tensor. Default: a face crop from
    /// tests/data/faces112 for 112x112 models, else a deterministic
    /// synthetic input.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Timed runs per contender.
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Untimed runs per contender first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Kernel levels to time, comma-separated (default: scalar and every
    /// level this CPU supports).
    #[arg(long, value_delimiter = ',')]
    isa: Vec<String>,
    /// Also time every operator at each level and print where the time goes.
    #[arg(long)]
    profile: bool,
    /// Also write every timing to this file (JSON), for `benches/peers`.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    options: InputArgs,
    #[command(flatten)]
    shape: ShapeArgs,
}

/// One contender: a name and one inference (input set, run, output read).
pub(crate) struct Contender<'a> {
    pub name: String,
    pub infer: Box<dyn FnMut() -> Result<()> + 'a>,
    pub samples: Vec<f64>,
}

impl<'a> Contender<'a> {
    /// `session` run on `input` (kiln layout), its outputs read into `outputs`.
    pub fn kiln(name: String, session: &'a mut Session<'_>, input: &'a [f32], outputs: &'a mut [Vec<f32>]) -> Self {
        Contender {
            name,
            infer: Box::new(move || {
                session.set_input_f32(0, input)?;
                session.run();
                for (i, out) in outputs.iter_mut().enumerate() {
                    session.output_f32(i, out)?;
                }
                Ok(())
            }),
            samples: Vec::new(),
        }
    }
}

/// Runs the benchmark and prints the table.
pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    if let Some(json) = &args.json {
        let inputs = [Some(&args.model), args.onnx.as_ref(), args.baseline.as_ref(), args.input.as_ref()];
        crate::output::ensure_not_an_input(json, inputs.into_iter().flatten().map(PathBuf::as_path))?;
    }
    let levels = levels(&args.isa)?;
    let model = open_model(&args.model)?;
    ensure!(
        model.inputs().len() == 1,
        "{} has {} inputs; kiln bench times models with one input",
        args.model.display(),
        model.inputs().len()
    );
    let shape = args.shape.or_from(&model);
    let onnx = args.onnx.as_deref().map(|p| OnnxModel::load_shaped(p, shape.as_ref())).transpose()?;
    let sample = input::choose(&model, onnx.as_ref(), args.input.as_deref(), &args.options.image_options()?)?;
    println!("model: {}", args.model.display());
    println!("input: {}", sample.origin);
    let macs = profile::macs(&model);

    let mut sessions = levels
        .iter()
        .map(|&isa| Ok((isa, Session::with_options(&model, SessionOptions::isa(isa))?)))
        .collect::<Result<Vec<_>>>()?;
    let output_lens: Vec<usize> = model.outputs().map(|o| o.shape.elements()).collect();
    let mut outputs = vec![output_lens.iter().map(|&n| vec![0f32; n]).collect::<Vec<_>>(); sessions.len()];
    let reference = match &onnx {
        Some(onnx) => {
            let names: Vec<String> = onnx.graph().output.iter().map(|o| o.name.clone()).collect();
            Some(Reference::new(onnx, &names)?)
        }
        None => None,
    };
    let mut float_out = Vec::new();

    let baseline = args.baseline.as_deref().map(open_model).transpose()?;
    let mut baseline_session = baseline.as_ref().map(Session::new).transpose()?;
    let mut baseline_out: Vec<Vec<f32>> = output_lens.iter().map(|&n| vec![0f32; n]).collect();
    let mut contenders: Vec<Contender<'_>> = Vec::new();
    for ((isa, session), outs) in sessions.iter_mut().zip(&mut outputs) {
        contenders.push(Contender::kiln(format!("kiln int8 {isa}"), session, &sample.kiln, outs));
    }
    if let Some(session) = &mut baseline_session {
        ensure!(
            baseline
                .as_ref()
                .is_some_and(|b| b.inputs().next().map(|i| i.shape) == model.inputs().next().map(|i| i.shape)),
            "the baseline {} takes a different input than {}",
            args.baseline.as_deref().unwrap_or(Path::new("")).display(),
            args.model.display()
        );
        println!("baseline: {}", args.baseline.as_deref().unwrap_or(Path::new("")).display());
        contenders.push(Contender::kiln(BASELINE.into(), session, &sample.kiln, &mut baseline_out));
    }
    if let Some(reference) = &reference {
        let (nchw, out) = (&sample.onnx, &mut float_out);
        contenders.push(Contender {
            name: "tract fp32".into(),
            infer: Box::new(move || {
                *out = reference.run(nchw)?;
                Ok(())
            }),
            samples: Vec::new(),
        });
    }
    time(&mut contenders, args.warmup, args.runs)?;
    let timings: Vec<(String, Vec<f64>)> = contenders.into_iter().map(|c| (c.name, c.samples)).collect();

    print_table(&timings, macs, baseline.as_ref().map(profile::macs));
    print_agreement(&levels, &outputs, &float_out, &model);
    if let Some(threads) = threads() {
        println!("threads in this process: {threads}");
    }
    if let Some(path) = &args.json {
        write_json(path, &args.model, &sample.origin, macs, &timings)?;
    }
    if args.profile {
        let mut sessions: Vec<(Isa, Session<'_>)> = sessions;
        profile::run(&model, &mut sessions, &sample.kiln, args.runs, macs)?;
    }
    Ok(())
}

/// The levels to time: those asked for, or scalar and every supported one.
fn levels(asked: &[String]) -> Result<Vec<Isa>> {
    if asked.is_empty() {
        return Ok(Isa::ALL.into_iter().filter(|isa| isa.is_supported()).collect());
    }
    asked
        .iter()
        .map(|name| {
            let Some(isa) = Isa::parse(name).filter(|&i| i != Isa::Auto) else {
                let names: Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
                bail!("unknown kernel level `{name}`: use one of {}", names.join(", "));
            };
            ensure!(isa.is_supported(), "this CPU does not support {isa}: leave it out of --isa");
            Ok(isa)
        })
        .collect()
}

/// The name of the `--baseline` model's row.
const BASELINE: &str = "baseline int8 auto";

/// Warms every contender up, then times `runs` rounds; each round runs
/// every contender once, starting one further along each time.
pub(crate) fn time(contenders: &mut [Contender<'_>], warmup: usize, runs: usize) -> Result<()> {
    for c in contenders.iter_mut() {
        for _ in 0..warmup {
            (c.infer)().with_context(|| format!("{} failed", c.name))?;
        }
    }
    let n = contenders.len();
    for round in 0..runs {
        for i in 0..n {
            let c = &mut contenders[(round + i) % n];
            let start = Instant::now();
            (c.infer)().with_context(|| format!("{} failed", c.name))?;
            c.samples.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(())
}

/// Medians, spread, throughput and ratios, one row per contender.
/// `baseline_macs` is the `--baseline` model's count, `macs` everyone else's.
fn print_table(timings: &[(String, Vec<f64>)], macs: u64, baseline_macs: Option<u64>) {
    let stats: Vec<Stats> = timings.iter().map(|(_, s)| Stats::of(s)).collect();
    let median = |name: &str| timings.iter().position(|(n, _)| n == name).map(|i| stats[i].median);
    let peers: Vec<(&str, f64)> = [("tract / this", "tract fp32"), ("baseline / this", BASELINE)]
        .into_iter()
        .filter_map(|(column, row)| Some((column, median(row)?)))
        .collect();
    let best = timings
        .iter()
        .zip(&stats)
        .filter(|((n, _), _)| n.starts_with("kiln"))
        .map(|(_, s)| s.median)
        .fold(f64::INFINITY, f64::min);
    let runs = timings.first().map_or(0, |(_, s)| s.len());
    println!("{runs} timed runs each, one thread, interleaved; ms per inference (f32 input set, run, f32 output read)");
    print!("{:<22} {:>10} {:>9} {:>9} {:>8}", "contender", "median ms", "min ms", "p90 ms", "GMAC/s");
    peers.iter().for_each(|(column, _)| print!(" {column:>17}"));
    println!(" {:>14}", "this / best");
    for ((name, _), s) in timings.iter().zip(&stats) {
        let macs = if name == BASELINE { baseline_macs.unwrap_or(macs) } else { macs };
        let gmacs = macs as f64 / (s.median * 1e6);
        print!("{name:<22} {:>10.3} {:>9.3} {:>9.3} {gmacs:>8.1}", s.median, s.min, s.p90);
        peers.iter().for_each(|(_, peer)| print!(" {:>17}", format!("{:.2}x", peer / s.median)));
        println!(" {:>13.2}x", s.median / best);
    }
    println!(
        "({:.1} M multiply-accumulates per inference in convolutions and fully connected layers)",
        macs as f64 / 1e6
    );
}

/// Whether every level gave the same bytes, and how close kiln is to tract.
fn print_agreement(levels: &[Isa], outputs: &[Vec<Vec<f32>>], float_out: &[Vec<f32>], model: &Model<'_>) {
    let bits = |o: &Vec<Vec<f32>>| -> Vec<u32> { o.iter().flatten().map(|v| v.to_bits()).collect() };
    if let Some(first) = outputs.first() {
        let same = outputs.iter().all(|o| bits(o) == bits(first));
        let names: Vec<&str> = levels.iter().map(|l| l.name()).collect();
        println!("outputs identical to the bit across {}: {}", names.join(", "), if same { "yes" } else { "NO" });
    }
    if let (Some(kiln), false) = (outputs.first(), float_out.is_empty()) {
        for (i, (got, info)) in kiln.iter().zip(model.outputs()).enumerate() {
            let want = match info.shape.dims() {
                &[n, h, w, c] => kiln_converter::ir::layout::nchw_to_nhwc(&float_out[i], &[n, c, h, w]),
                _ => float_out[i].clone(),
            };
            println!("output {i}: cosine of kiln int8 to tract fp32 on this input: {:.5}", cosine(got, &want));
        }
    }
}

/// The number of threads of this process (Linux), to show that no
/// contender ran a thread pool.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok())
}

/// Every timing, for scripts that merge tables (`benches/peers`).
fn write_json(path: &Path, model: &Path, input: &str, macs: u64, timings: &[(String, Vec<f64>)]) -> Result<()> {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let rows: Vec<String> = timings
        .iter()
        .map(|(name, samples)| {
            let ms: Vec<String> = samples.iter().map(|v| format!("{v:.6}")).collect();
            format!("    {}: [{}]", quote(name), ms.join(", "))
        })
        .collect();
    let text = format!(
        "{{\n  \"model\": {},\n  \"input\": {},\n  \"macs\": {macs},\n  \"samples_ms\": {{\n{}\n  }}\n}}\n",
        quote(&model.display().to_string()),
        quote(input),
        rows.join(",\n")
    );
    crate::output::write(path, text.as_bytes())
}
