//! `kiln`: the command line. Glue over `kiln-converter` and `kiln-runtime`;
//! the work lives in those crates.
#![forbid(unsafe_code)]

mod inspect;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Convert ONNX models to compact int8 .kiln files and run them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a .kiln file's layers, shapes, sizes and memory plan.
    Inspect {
        /// The .kiln file.
        model: PathBuf,
        /// The ONNX file it came from, to compare sizes.
        #[arg(long)]
        onnx: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model, onnx } => inspect::run(&model, onnx.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
