//! `kiln run`: a .kiln model on images or tensors.

use std::path::Path;

use anyhow::{Context, Result};
use kiln_runtime::{Limits, Model, Session};

use crate::inputs::{load_for_kiln, InputArgs};

/// Opens a .kiln file to run it: a model whose arena is larger than the
/// memory this machine has available is refused here, with a message,
/// rather than by the operating system's out-of-memory killer. Errors name
/// the file.
pub fn open_model(path: &Path) -> Result<Model<'static>> {
    let limits = Limits { arena_bytes: kiln_converter::memory::available().unwrap_or(usize::MAX), ..Limits::NONE };
    Model::open_with_limits(path, limits).with_context(|| format!("cannot load the .kiln model {}", path.display()))
}

pub use kiln_converter::metrics::cosine;

/// Runs `model` on each input and prints the first output: its norm, its
/// first values and its largest element; then the pairwise cosine
/// similarities of the outputs.
pub fn run(model: &Path, inputs: &[std::path::PathBuf], args: &InputArgs) -> Result<()> {
    let options = args.image_options()?;
    let model = open_model(model)?;
    let mut session = Session::new(&model)?;
    let len = model.outputs().next().map_or(0, |o| o.shape.elements());
    let mut outputs = Vec::new();
    for path in inputs {
        let values = load_for_kiln(&model, path, &options)?;
        session.set_input_f32(0, &values)?;
        session.run();
        let mut out = vec![0f32; len];
        session.output_f32(0, &mut out)?;
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
        let (top, max) = out.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        let first: Vec<String> = out.iter().take(8).map(|v| format!("{v:.4}")).collect();
        println!(
            "{}: {} values, norm {norm:.4}, first [{}], max {max:.4} at {top}",
            path.display(),
            out.len(),
            first.join(", ")
        );
        outputs.push(out);
    }
    for i in 0..outputs.len() {
        for j in i + 1..outputs.len() {
            println!(
                "cosine similarity {} ~ {}: {:.4}",
                inputs[i].display(),
                inputs[j].display(),
                cosine(&outputs[i], &outputs[j])
            );
        }
    }
    Ok(())
}
