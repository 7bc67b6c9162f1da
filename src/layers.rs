//! `kiln eval --layers`: where the model loses accuracy. For every
//! operator whose output is also a tensor of the ONNX model, the SQNR of
//! kiln's output (dequantized if int8; float islands' f32 as is) against
//! the float value there, accumulated over all inputs, with the precision
//! the operator ran in. The error is cumulative, as the next layer sees it.

use std::collections::HashSet;

use kiln_converter::import::OnnxModel;
use kiln_converter::ir::layout;
use kiln_runtime::{DType, Model, OpKind, Quant, Session};

/// One compared layer: its ONNX tensor and the error seen so far.
struct Layer {
    op: usize,
    kind: OpKind,
    precision: &'static str,
    name: String,
    dims: Vec<usize>,
    quant: Quant,
    /// Sum of squares of the float values.
    signal: f64,
    /// Sum of squares of kiln's error.
    noise: f64,
}

/// The layers of a .kiln model that can be compared with its ONNX model.
pub struct LayerProbe {
    layers: Vec<Layer>,
}

impl LayerProbe {
    /// Picks the operator outputs named after an ONNX node output of the
    /// same size (fused ops carry the name of the last fused tensor).
    pub fn new(onnx: &OnnxModel, kiln: &Model<'_>) -> Self {
        let graph = onnx.proto.graph.as_ref();
        let onnx_names: HashSet<&str> =
            graph.iter().flat_map(|g| &g.node).flat_map(|n| &n.output).map(String::as_str).collect();
        let layers = kiln
            .ops()
            .enumerate()
            .filter(|(_, (_, _, y))| matches!(y.dtype, DType::I8 | DType::F32) && onnx_names.contains(y.name))
            .map(|(op, (kind, x, y))| Layer {
                op,
                kind,
                precision: crate::inspect::precision(kind, &x, &y),
                name: y.name.to_owned(),
                dims: y.shape.dims().to_vec(),
                quant: y.quant,
                signal: 0.0,
                noise: 0.0,
            })
            .collect();
        LayerProbe { layers }
    }

    /// The ONNX tensors to ask the float reference for, in [`LayerProbe::run`]'s order.
    pub fn names(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name.clone()).collect()
    }

    /// Runs `session` on the input set before, adding each layer's error
    /// against `expected` (the reference's values of [`LayerProbe::names`]).
    pub fn run(&mut self, session: &mut Session<'_>, expected: &[Vec<f32>]) {
        let mut next = self.layers.iter_mut().zip(expected).peekable();
        session.run_observed(|op, bytes| {
            if let Some((layer, want)) = next.next_if(|(l, _)| l.op == op) {
                let want = to_kiln_layout(want, &layer.dims);
                let q = layer.quant;
                let float = bytes.len() == 4 * want.len();
                let value = |i: usize| match float {
                    true => f64::from(f32::from_le_bytes([
                        bytes[4 * i],
                        bytes[4 * i + 1],
                        bytes[4 * i + 2],
                        bytes[4 * i + 3],
                    ])),
                    false => (f64::from(bytes[i] as i8) - f64::from(q.zero_point)) * f64::from(q.scale),
                };
                for (i, &w) in want.iter().enumerate() {
                    let got = value(i);
                    layer.signal += f64::from(w).powi(2);
                    layer.noise += (got - f64::from(w)).powi(2);
                }
            }
        });
    }

    /// Prints a table: op, kind, tensor, shape, SQNR in dB.
    pub fn print(&self) {
        println!("per-layer SQNR of kiln's outputs against the float model (cumulative error):");
        println!("  {:>4}  {:<19} {:<9} {:>7}  {:<18} tensor", "op", "kind", "precision", "SQNR dB", "shape (NHWC)");
        for l in &self.layers {
            let sqnr = 10.0 * (l.signal / l.noise).log10();
            let kind = format!("{:?}", l.kind);
            let dims = format!("{:?}", l.dims);
            println!("  {:>4}  {kind:<19} {:<9} {sqnr:>7.2}  {dims:<18} {}", l.op, l.precision, l.name);
        }
    }
}

/// A float tensor in ONNX layout, laid out like the kiln tensor of `dims`
/// (NCHW to NHWC for 4-d tensors).
pub fn to_kiln_layout(values: &[f32], dims: &[usize]) -> Vec<f32> {
    match *dims {
        [n, h, w, c] => layout::nchw_to_nhwc(values, &[n, c, h, w]),
        _ => values.to_vec(),
    }
}
