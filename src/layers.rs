//! `kiln eval --layers`: where the int8 model loses accuracy. For every
//! operator whose output is also a tensor of the ONNX model, the SQNR of
//! kiln's dequantized output against the float value there, accumulated
//! over all inputs. The error is cumulative, as the next layer sees it.

use std::collections::HashSet;

use kiln_converter::import::OnnxModel;
use kiln_converter::ir::layout;
use kiln_runtime::{DType, Model, OpKind, Quant, Session};

/// One compared layer: its ONNX tensor and the error seen so far.
struct Layer {
    op: usize,
    kind: OpKind,
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
    /// Picks the int8 operator outputs named after an ONNX node output of
    /// the same size (fused ops carry the name of the last fused tensor).
    pub fn new(onnx: &OnnxModel, kiln: &Model<'_>) -> Self {
        let graph = onnx.proto.graph.as_ref();
        let onnx_names: HashSet<&str> =
            graph.iter().flat_map(|g| &g.node).flat_map(|n| &n.output).map(String::as_str).collect();
        let layers = kiln
            .ops()
            .enumerate()
            .filter(|(_, (_, _, y))| y.dtype == DType::I8 && onnx_names.contains(y.name))
            .map(|(op, (kind, _, y))| Layer {
                op,
                kind,
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
                for (&b, &w) in bytes.iter().zip(&want) {
                    let got = (f64::from(b as i8) - f64::from(q.zero_point)) * f64::from(q.scale);
                    layer.signal += f64::from(w).powi(2);
                    layer.noise += (got - f64::from(w)).powi(2);
                }
            }
        });
    }

    /// Prints a table: op, kind, tensor, shape, SQNR in dB.
    pub fn print(&self) {
        println!("per-layer SQNR of kiln's int8 outputs against the float model (cumulative error):");
        println!("  {:>4}  {:<16} {:>7}  {:<18} tensor", "op", "kind", "SQNR dB", "shape (NHWC)");
        for l in &self.layers {
            let sqnr = 10.0 * (l.signal / l.noise).log10();
            let kind = format!("{:?}", l.kind);
            let dims = format!("{:?}", l.dims);
            println!("  {:>4}  {kind:<16} {sqnr:>7.2}  {dims:<18} {}", l.op, l.name);
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
