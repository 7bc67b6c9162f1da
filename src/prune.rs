//! `kiln convert --prune…`: the pruning options and the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, ValueEnum};
use kiln_converter::prune::{self, Amount, Criterion, Limits, Report};

/// Structured channel pruning, before quantization.
#[derive(Args, Clone, Debug, Default)]
pub struct PruneArgs {
    /// Remove this fraction of every prunable layer's channels (0 to 1).
    #[arg(long, value_name = "RATIO", group = "amount", allow_negative_numbers = true)]
    prune: Option<f64>,
    /// Prune just enough to keep at most this fraction of the model's
    /// multiply-accumulates (0 to 1). With `--prune-by reconstruction`,
    /// channels go where they cost the least refit error per MAC saved;
    /// with the other criteria, by the same fraction in every layer.
    #[arg(long, value_name = "FRACTION", group = "amount", allow_negative_numbers = true)]
    prune_macs: Option<f64>,
    /// Per-layer ratios: a text file of `LAYER RATIO` lines (`#` starts a
    /// comment); layers are named as `kiln convert --prune 0` lists them.
    #[arg(long, value_name = "FILE", group = "amount")]
    prune_layers: Option<PathBuf>,
    /// Which channels go first: the smallest filters (`l1`, `l2`), the
    /// smallest mean activation on the calibration inputs, or those whose
    /// loss the next layer best makes up for once refit (`reconstruction`).
    #[arg(long, value_enum, default_value = "reconstruction")]
    prune_by: PruneBy,
    /// No layer gets narrower than this many channels.
    #[arg(long, default_value_t = kiln_runtime::format::pack::BLOCK)]
    prune_min_width: usize,
    /// Kept widths are multiples of this (the int8 kernels' channel block).
    #[arg(long, default_value_t = kiln_runtime::format::pack::BLOCK)]
    prune_multiple: usize,
    /// Skip the least-squares recovery of the layers after pruned channels.
    #[arg(long)]
    no_recovery: bool,
    /// Skip the bias correction after quantizing (each layer's bias shifted
    /// by the mean error its int8 weights cause on the calibration inputs).
    #[arg(long)]
    no_bias_correction: bool,
}

/// Values of `--prune-by`.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
enum PruneBy {
    L1,
    L2,
    Activation,
    #[default]
    Reconstruction,
}

impl PruneArgs {
    /// The converter's pruning options, or `None` when no pruning was asked.
    pub fn options(&self) -> Result<Option<prune::Options>> {
        let amount = match (self.prune, self.prune_macs, &self.prune_layers) {
            (Some(r), _, _) => Amount::Ratio(fraction("--prune", r)?),
            (_, Some(m), _) => Amount::Macs(fraction("--prune-macs", m)?),
            (_, _, Some(file)) => Amount::PerGroup(read_layer_ratios(file)?),
            _ => return Ok(None),
        };
        ensure!(self.prune_multiple >= 1, "--prune-multiple must be at least 1");
        let criterion = match self.prune_by {
            PruneBy::L1 => Criterion::L1,
            PruneBy::L2 => Criterion::L2,
            PruneBy::Activation => Criterion::Activation,
            PruneBy::Reconstruction => Criterion::Reconstruction,
        };
        let limits = Limits { min_width: self.prune_min_width, multiple: self.prune_multiple };
        let (recover, bias_correction) = (!self.no_recovery, !self.no_bias_correction);
        Ok(Some(prune::Options { amount, criterion, limits, recover, bias_correction }))
    }
}

fn fraction(flag: &str, v: f64) -> Result<f64> {
    ensure!((0.0..=1.0).contains(&v), "{flag} takes a fraction from 0 to 1, not {v}");
    Ok(v)
}

fn read_layer_ratios(path: &Path) -> Result<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut ratios = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(ratio), None) = (words.next(), words.next(), words.next()) else {
            bail!("{}:{}: expected `LAYER RATIO`, found `{line}`", path.display(), i + 1);
        };
        let ratio: f64 =
            ratio.parse().with_context(|| format!("{}:{}: `{ratio}` is not a number", path.display(), i + 1))?;
        ratios.insert(name.to_owned(), fraction(&format!("{}:{}", path.display(), i + 1), ratio)?);
    }
    Ok(ratios)
}

/// Prints what pruning did.
pub fn print_report(report: &Report, file_bytes: usize, unpruned_file_bytes: usize) {
    let percent = |after: u64, before: u64| 100.0 * after as f64 / before.max(1) as f64;
    println!(
        "pruned: MACs {} → {} ({:.1}%), parameters {} → {} ({:.1}%), file {} B → {} B ({:.1}%)",
        report.before.macs,
        report.after.macs,
        percent(report.after.macs, report.before.macs),
        report.before.parameters,
        report.after.parameters,
        percent(report.after.parameters, report.before.parameters),
        unpruned_file_bytes,
        file_bytes,
        percent(file_bytes as u64, unpruned_file_bytes as u64),
    );
    println!("  layer widths:");
    for (name, before, after) in &report.widths {
        println!("    {name:<24} {before:>5} → {after:>5}");
    }
    if !report.refits.is_empty() {
        println!("  recovery (relative error of each refit layer's output against the float model, before → after):");
        for r in &report.refits {
            let how = if r.least_squares { "least squares" } else { "scale and bias" };
            println!(
                "    {:<24} {:>6} rows × {:>5} features, {how}: {:.5} → {:.5}",
                r.name, r.rows, r.features, r.error_before, r.error_after
            );
        }
    }
}
