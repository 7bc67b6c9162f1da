//! The float reference: the original ONNX model run by tract.
//!
//! Every ONNX tensor that the IR also holds is made an output of tract's
//! model before optimisation, so one run yields all of them (tract keeps
//! model outputs intact through its own fusions).

use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use tract_onnx::prelude::*;

use crate::import::OnnxModel;
use crate::ir::Graph;

type Plan = Arc<TypedRunnableModel>;

/// tract's optimised plan of the model, with the chosen tensors as outputs.
pub struct Reference {
    plan: Plan,
    /// ONNX names of the plan's outputs, in order.
    names: Vec<String>,
    input_shape: Vec<usize>,
}

impl Reference {
    /// Plans `model` so that each run returns the ONNX tensors named in
    /// `names` (each must exist in the graph).
    pub fn new(model: &OnnxModel, names: &[String]) -> Result<Self> {
        let dir = model.path.parent().and_then(Path::to_str);
        let parsed = tract_onnx::onnx()
            .parse(&model.proto, dir)
            .with_context(|| format!("tract cannot parse {}", model.path.display()))?;
        let mut tract = parsed.model;
        tract.set_input_fact(0, f32::fact(&model.input_shape).into())?;
        let outlets = names
            .iter()
            .map(|n| parsed.outlets_by_name.get(n).copied().with_context(|| format!("no ONNX tensor named `{n}`")))
            .collect::<Result<Vec<_>>>()?;
        tract.select_output_outlets(&outlets)?;
        let plan = tract
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .with_context(|| format!("tract cannot plan {}", model.path.display()))?;
        Ok(Reference { plan, names: names.to_vec(), input_shape: model.input_shape.clone() })
    }

    /// Plans `model` to return every ONNX tensor that an IR tensor of
    /// `graph` holds, except the input.
    pub fn for_graph(model: &OnnxModel, graph: &Graph) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        let names: Vec<String> = graph
            .live_tensors()
            .into_iter()
            .filter(|&t| t != graph.input)
            .filter_map(|t| graph.tensors[t].onnx_name.clone())
            .filter(|n| seen.insert(n.clone()))
            .collect();
        Self::new(model, &names)
    }

    /// The ONNX names of what [`Reference::run`] returns, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Runs the model on `input` (ONNX layout, NCHW for images) and returns
    /// the value of each tensor of [`Reference::names`], in ONNX layout.
    pub fn run(&self, input: &[f32]) -> Result<Vec<Vec<f32>>> {
        let expected: usize = self.input_shape.iter().product();
        ensure!(
            input.len() == expected,
            "input has {} values, the model takes {:?} = {expected}",
            input.len(),
            self.input_shape
        );
        let tensor = Tensor::from_shape(&self.input_shape, input)?;
        let outputs = self.plan.run(tvec!(tensor.into()))?;
        outputs.iter().map(|t| Ok(t.to_plain_array_view::<f32>()?.iter().copied().collect())).collect()
    }
}

/// YuNet's float model, run by tract, as a [`kiln_face::Network`]: the
/// reference the int8 detector is measured against, with the same pre- and
/// post-processing.
pub struct FloatYunet {
    reference: Reference,
    nhwc: [usize; 4],
}

impl FloatYunet {
    /// Plans `model` (YuNet) to return its twelve heads.
    pub fn new(model: &OnnxModel) -> Result<Self> {
        let names: Vec<String> = kiln_face::yunet::HEAD_NAMES.iter().map(|n| n.to_string()).collect();
        let &[1, 3, h, w] = model.input_shape.as_slice() else {
            anyhow::bail!("YuNet takes [1, 3, H, W], this model {:?}", model.input_shape)
        };
        Ok(FloatYunet { reference: Reference::new(model, &names)?, nhwc: [1, h, w, 3] })
    }

    /// The twelve heads for `input` (NHWC, BGR, 0..255).
    pub fn heads(&self, input: &[f32]) -> Result<Vec<Vec<f32>>> {
        self.reference.run(&crate::ir::layout::nhwc_to_nchw(input, &self.nhwc))
    }
}

impl kiln_face::Network for FloatYunet {
    fn run(&mut self, input: &[f32], heads: &mut [Vec<f32>; 12]) -> Result<(), kiln_face::FaceError> {
        let values = self.heads(input).map_err(|e| kiln_face::FaceError::Network(format!("{e:#}")))?;
        for (head, v) in heads.iter_mut().zip(values) {
            head.copy_from_slice(&v);
        }
        Ok(())
    }
}
