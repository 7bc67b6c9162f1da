//! `kiln inspect`: what is in a .kiln file.

use std::path::Path;

use anyhow::Context;
use kiln_runtime::{DType, OpKind, TensorInfo};

fn dims(t: &TensorInfo<'_>) -> String {
    let d: Vec<String> = t.shape.dims().iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(","))
}

/// The precision an operator computes in: `f32` for the float operators
/// (with `f16` weights where it has them), else its output's type (`i8`;
/// `Quantize` and `Dequantize` convert between the two).
pub fn precision(kind: OpKind, inputs: &[TensorInfo<'_>], output: &TensorInfo<'_>) -> &'static str {
    match kind {
        k if k.is_float() && inputs.iter().any(|t| t.dtype == DType::F16) => "f32/f16w",
        k if k.is_float() => "f32",
        _ if output.dtype == DType::F32 => "f32",
        _ => "i8",
    }
}

/// Prints one row per operator, then the totals.
pub fn run(path: &Path, onnx: Option<&Path>) -> anyhow::Result<()> {
    let model = crate::run::open_model(path)?;
    println!("{:>4}  {:<19} {:<9} {:<28} {:<16} {:>10}", "#", "op", "precision", "output", "shape", "const B");
    for (i, (kind, inputs, output)) in model.ops().enumerate() {
        let constant_bytes: usize =
            inputs.iter().filter(|t| t.constant).map(|t| t.shape.elements() * t.dtype.size()).sum();
        let name: String = output.name.chars().take(28).collect();
        let precision = precision(kind, &inputs, &output);
        println!(
            "{i:>4}  {:<19} {precision:<9} {name:<28} {:<16} {constant_bytes:>10}",
            format!("{kind:?}"),
            dims(&output)
        );
    }
    for (role, list) in [("input", model.inputs().collect::<Vec<_>>()), ("output", model.outputs().collect())] {
        for t in list {
            println!(
                "{role}: {} {} {:?} scale {} zero point {}",
                t.name,
                dims(&t),
                t.dtype,
                t.quant.scale,
                t.quant.zero_point
            );
        }
    }
    let info = model.info();
    println!(
        "format {}.{}, {} ops, {} tensors; weights {} B; arena {} B (all activations without reuse: {} B); file {} B",
        info.version.0,
        info.version.1,
        info.ops,
        info.tensors,
        info.weight_bytes,
        info.arena_bytes,
        info.activation_bytes,
        info.file_bytes
    );
    if let Some(onnx) = onnx {
        let onnx_bytes = std::fs::metadata(onnx).with_context(|| format!("cannot read {}", onnx.display()))?.len();
        let percent = match onnx_bytes {
            0 => "the ONNX file is empty".to_string(),
            n => format!("{:.1}%", 100.0 * info.file_bytes as f64 / n as f64),
        };
        println!("size against {}: {} B of {} B = {percent}", onnx.display(), info.file_bytes, onnx_bytes);
    }
    Ok(())
}
