//! `kiln convert --precision…`: mixed-precision options and the report.

use anyhow::{ensure, Result};
use clap::{Args, ValueEnum};
use kiln_converter::precision::{error, worst, Auto, Options, Report};
use kiln_runtime::DType;

/// Which layers run in float.
#[derive(Args, Clone, Debug, Default)]
pub struct PrecisionArgs {
    /// `int8`: every layer int8 except those `--float-layers` names.
    /// `auto`: also keep in float the fewest layers that bring every
    /// output's mean cosine to the float model (on the calibration inputs)
    /// to `--target-cosine`, within `--float-macs`; each layer is measured,
    /// so calibrate on a few inputs.
    #[arg(long, value_enum, default_value = "int8")]
    precision: Mode,
    /// Layers to keep in float, by ONNX node name (comma-separated).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    float_layers: Vec<String>,
    /// The outputs' cosine to the float model `--precision auto` aims for.
    #[arg(long, default_value_t = 0.999, value_name = "COSINE", allow_negative_numbers = true)]
    target_cosine: f64,
    /// At most this fraction of the model's multiply-accumulates runs in
    /// float with `--precision auto`.
    #[arg(long, default_value_t = 0.1, value_name = "FRACTION", allow_negative_numbers = true)]
    float_macs: f64,
    /// How float layers' weights are stored.
    #[arg(long, value_enum, default_value = "f16")]
    float_weights: FloatWeights,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Mode {
    #[default]
    Int8,
    Auto,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
enum FloatWeights {
    #[default]
    F16,
    F32,
}

impl PrecisionArgs {
    /// The converter's options, or `None` for an all-int8 model.
    pub fn options(&self) -> Result<Option<Options>> {
        if self.precision == Mode::Int8 && self.float_layers.is_empty() {
            return Ok(None);
        }
        ensure!(
            self.target_cosine > 0.0 && self.target_cosine <= 1.0,
            "--target-cosine takes a cosine in (0, 1], not {}",
            self.target_cosine
        );
        ensure!(
            (0.0..=1.0).contains(&self.float_macs),
            "--float-macs takes a fraction from 0 to 1, not {}",
            self.float_macs
        );
        let auto = (self.precision == Mode::Auto)
            .then_some(Auto { target_cosine: self.target_cosine, float_macs: self.float_macs });
        let weights = match self.float_weights {
            FloatWeights::F16 => DType::F16,
            FloatWeights::F32 => DType::F32,
        };
        Ok(Some(Options { float_layers: self.float_layers.clone(), auto, weights }))
    }
}

/// Prints what mixed precision measured and chose.
pub fn print_report(report: &Report) {
    let m = |macs: u64| macs as f64 / 1e6;
    let line = |c: &[f64]| format!("lowest {:.5}, summed error {:.5}", worst(c), error(c));
    println!("  precision: outputs' cosines to float with no layer chosen: {}", line(&report.base));
    if !report.ranking.is_empty() {
        println!("    {:<32} {:>9} {:>15} {:>13}", "layer alone in float", "MMACs", "lowest cosine", "summed error");
        for c in &report.ranking {
            println!("    {:<32} {:>9.2} {:>15.5} {:>13.5}", c.name, m(c.macs), worst(&c.cosines), error(&c.cosines));
        }
    }
    let (float, total) = report.float_macs;
    println!(
        "    float: {} layers, {:.2} of {:.2} MMACs ({:.1}%); outputs' cosines {}",
        report.float_layers.len(),
        m(float),
        m(total),
        100.0 * float as f64 / total.max(1) as f64,
        line(&report.cosines)
    );
    if !report.float_layers.is_empty() {
        println!("    float layers: {}", report.float_layers.join(", "));
    }
    let (int8, floats) = report.weight_bytes;
    println!("    constants: {int8} B for int8 operators, {floats} B for float operators");
}
