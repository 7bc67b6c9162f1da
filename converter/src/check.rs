//! What kiln will do with each op of an ONNX model, without calibrating:
//! the table `kiln check` prints, and whether the model converts.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::import::OnnxModel;
use crate::lower::{self, NodeReport, Outcome};

/// How many nodes of one ONNX op type went each way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpCount {
    /// Folded into constants at import (shape computations and the like).
    pub folded: usize,
    /// Lowered to kiln's int8 ops.
    pub int8: usize,
    /// Lowered to ops without an int8 form, which run in float.
    pub float: usize,
    /// Not convertible, or behind a node that is not.
    pub unsupported: usize,
}

impl OpCount {
    /// All nodes of this type.
    pub fn total(&self) -> usize {
        self.folded + self.int8 + self.float + self.unsupported
    }
}

/// The verdict on a model.
#[derive(Clone, Debug)]
pub struct Report {
    /// Per ONNX op type, in name order.
    pub ops: BTreeMap<String, OpCount>,
    /// The nodes kiln cannot convert, each with why.
    pub unsupported: Vec<NodeReport>,
    /// The graph outputs with their ONNX shapes, where tract inferred them.
    pub outputs: Vec<(String, Option<Vec<usize>>)>,
}

impl Report {
    /// Whether `kiln convert` will take the model.
    pub fn converts(&self) -> bool {
        self.unsupported.is_empty()
    }
}

/// Looks at every node of `model` (loaded with its input shape fixed).
pub fn check(model: &OnnxModel) -> Result<Report> {
    let (_, nodes) = lower::survey(model)?;
    let mut ops: BTreeMap<String, OpCount> = BTreeMap::new();
    let mut unsupported = Vec::new();
    for node in nodes {
        let count = ops.entry(node.op_type.clone()).or_default();
        match node.outcome {
            Outcome::Folded => count.folded += 1,
            Outcome::Int8 => count.int8 += 1,
            Outcome::Float => count.float += 1,
            Outcome::Unsupported(_) | Outcome::Unreached => {
                count.unsupported += 1;
                unsupported.push(node);
            }
        }
    }
    let outputs = model.graph().output.iter().map(|o| (o.name.clone(), model.shapes.get(&o.name).cloned())).collect();
    Ok(Report { ops, unsupported, outputs })
}
