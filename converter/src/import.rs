//! Reads an ONNX file: the protobuf, its constant tensors and its one input.
//!
//! Old exporters list every initializer as a graph input too (SFace does).
//! Such an input is a constant, not something the user feeds: only the inputs
//! without an initializer count as model inputs, and kiln wants exactly one.
//!
//! Once the input's shape is fixed (by the file, or by the user for symbolic
//! dimensions, see [`InputShape`]), tract's type and shape inference runs on
//! the whole graph, and every ONNX value it finds constant becomes a
//! constant here: `Constant` nodes, arithmetic on initializers, and the
//! shape-computing subgraphs of exported models (`Shape`, `Gather`, `Cast`,
//! `Concat`, `ConstantOfShape`, `Range`, ...). tract knows every ONNX op's
//! semantics, so lowering never folds an op by hand.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, ensure, Context, Result};
use tract_onnx::data_resolver::MmapDataResolver;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// An ONNX model as parsed from its file.
pub struct OnnxModel {
    /// Where it was read from (for messages and for tract's external data).
    pub path: PathBuf,
    /// The decoded protobuf.
    pub proto: pb::ModelProto,
    /// Every constant value by ONNX name, in the type the file or tract's
    /// folding gives it: the initializers and every value tract computes
    /// without the input once the input's shape is fixed.
    pub constants: HashMap<String, Tensor>,
    /// Name of the one real (non-initializer) graph input.
    pub input_name: String,
    /// Its shape in ONNX order (NCHW for images), every dimension fixed.
    pub input_shape: Vec<usize>,
    /// The ONNX shape of every value whose shape tract inferred from the
    /// input's.
    pub shapes: HashMap<String, Vec<usize>>,
}

impl OnnxModel {
    /// Parses `path`, whose input has fixed dimensions (a symbolic batch is
    /// taken as 1); see [`OnnxModel::load_shaped`].
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_shaped(path, None)
    }

    /// Parses `path` with its input's shape fixed to `shape` when given, and
    /// folds every value that does not depend on the input into a constant.
    /// Fails with a message naming the file when it is missing, not ONNX, or
    /// has other than one input, or a symbolic dimension `shape` does not fix.
    pub fn load_shaped(path: &Path, shape: Option<&InputShape>) -> Result<Self> {
        crate::input::regular_file(path, "model file")?;
        let proto = tract_onnx::onnx()
            .proto_model_for_path(path)
            .with_context(|| format!("{} is not a readable ONNX model", path.display()))?;
        let graph = proto
            .graph
            .as_ref()
            .with_context(|| format!("{} is not an ONNX model: it has no graph", path.display()))?;
        ensure!(!graph.node.is_empty(), "{} is not an ONNX model: its graph has no nodes", path.display());
        let dir = path.parent().and_then(Path::to_str);
        let constants = graph
            .initializer
            .iter()
            .map(|t| {
                let tensor = tract_onnx::tensor::load_tensor(&MmapDataResolver, t, dir)
                    .with_context(|| format!("loading initializer `{}`", t.name))?;
                Ok((t.name.clone(), tensor))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        let inputs: Vec<&pb::ValueInfoProto> =
            graph.input.iter().filter(|i| !constants.contains_key(&i.name)).collect();
        let [input] = inputs[..] else {
            bail!(
                "{}: kiln converts models with exactly one input, this one has {}: {:?}",
                path.display(),
                inputs.len(),
                inputs.iter().map(|i| &i.name).collect::<Vec<_>>()
            );
        };
        let input_shape =
            fixed_shape(input, shape).with_context(|| format!("{}: input `{}`", path.display(), input.name))?;
        let initializers = constants.len();
        let mut model = OnnxModel {
            path: path.to_owned(),
            input_name: input.name.clone(),
            input_shape,
            constants,
            proto,
            shapes: HashMap::new(),
        };
        model.fold_constants()?;
        log::info!(
            "{}: {} nodes, {} initializers, {} values folded, input `{}` {:?}",
            path.display(),
            model.graph().node.len(),
            initializers,
            model.constants.len() - initializers,
            model.input_name,
            model.input_shape
        );
        Ok(model)
    }

    /// Runs tract's inference on the graph with the input's shape fixed,
    /// adds every node output whose value it determines to the constants,
    /// and records every shape it determines.
    fn fold_constants(&mut self) -> Result<()> {
        let dir = self.path.parent().and_then(Path::to_str);
        let parsed = tract_onnx::onnx()
            .parse(&self.proto, dir)
            .with_context(|| format!("tract cannot parse {}", self.path.display()))?;
        let mut tract = parsed.model;
        tract.set_input_fact(0, f32::fact(&self.input_shape).into())?;
        // Inference stops at an op tract cannot type; what it found up to
        // there still holds, and lowering names the op.
        if let Err(e) = tract.analyse(false) {
            log::warn!("{}: shape inference stopped: {e:#}", self.path.display());
        }
        use tract_onnx::tract_hir::infer::Factoid;
        let graph = self.proto.graph.as_ref().expect("checked at load");
        for name in graph.node.iter().flat_map(|n| &n.output) {
            let Some(&outlet) = parsed.outlets_by_name.get(name) else { continue };
            let fact = tract.outlet_fact(outlet)?;
            if let Some(value) = fact.value.concretize() {
                self.constants.insert(name.clone(), value.into_tensor());
            }
            let shape = fact
                .shape
                .concretize()
                .and_then(|dims| dims.iter().map(|d| d.to_i64().ok()?.try_into().ok()).collect());
            if let Some(shape) = shape {
                self.shapes.insert(name.clone(), shape);
            }
        }
        Ok(())
    }

    /// The graph; [`OnnxModel::load`] checked that there is one.
    pub fn graph(&self) -> &pb::GraphProto {
        self.proto.graph.as_ref().expect("checked at load")
    }
}

/// The shape the user gives an input with symbolic dimensions:
/// `1,3,480,640`, or `NAME=1,3,480,640` to name the input it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputShape {
    /// The input it is for, if named.
    pub name: Option<String>,
    /// Every dimension, in ONNX order.
    pub dims: Vec<usize>,
}

impl FromStr for InputShape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, dims) = match text.rsplit_once('=') {
            Some((name, dims)) => (Some(name.to_owned()), dims),
            None => (None, text),
        };
        let dims = dims
            .split([',', 'x'])
            .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
            .collect::<Option<Vec<_>>>()
            .filter(|dims| !dims.is_empty())
            .ok_or_else(|| format!("`{text}` is not a shape: give positive sizes such as 1,3,480,640"))?;
        Ok(InputShape { name, dims })
    }
}

impl fmt::Display for InputShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.dims.iter().map(usize::to_string).collect();
        match &self.name {
            Some(name) => write!(f, "{name}={}", dims.join(",")),
            None => write!(f, "{}", dims.join(",")),
        }
    }
}

/// The shape of a graph input: its declared dimensions, with `given`'s
/// sizes for the symbolic ones (which must agree with the fixed ones). A
/// symbolic batch dimension is 1 when nothing is given (kiln runs one image
/// at a time); any other symbolic one is then an error that says how to fix it.
fn fixed_shape(input: &pb::ValueInfoProto, given: Option<&InputShape>) -> Result<Vec<usize>> {
    let Some(pb::type_proto::Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        bail!("is not a tensor");
    };
    ensure!(
        tensor.elem_type == pb::tensor_proto::DataType::Float as i32,
        "is not f32 (ONNX element type {})",
        tensor.elem_type
    );
    use pb::tensor_shape_proto::dimension::Value as Dim;
    let dims = &tensor.shape.as_ref().context("has no declared shape: give it with --input-shape")?.dim;
    let declared: Vec<String> = dims
        .iter()
        .map(|d| match &d.value {
            Some(Dim::DimValue(v)) => v.to_string(),
            Some(Dim::DimParam(p)) if !p.is_empty() => p.clone(),
            _ => "?".to_owned(),
        })
        .collect();
    let declared = format!("[{}]", declared.join(", "));
    if let Some(given) = given {
        if let Some(name) = given.name.as_ref().filter(|n| **n != input.name) {
            bail!("--input-shape names `{name}`, but the model's input is `{}`", input.name);
        }
        ensure!(
            given.dims.len() == dims.len(),
            "--input-shape {given} has {} dimensions, the input has {} ({declared})",
            given.dims.len(),
            dims.len()
        );
    }
    dims.iter()
        .enumerate()
        .map(|(axis, dim)| {
            let wanted = given.map(|g| g.dims[axis]);
            match (&dim.value, wanted) {
                (Some(Dim::DimValue(v)), Some(w)) if *v > 0 && *v as usize != w => {
                    bail!("--input-shape gives axis {axis} size {w}, but the model fixes it to {v} ({declared})")
                }
                (Some(Dim::DimValue(v)), _) if *v > 0 => Ok(*v as usize),
                (_, Some(w)) => Ok(w),
                _ if axis == 0 => Ok(1),
                _ => bail!(
                    "axis {axis} of {declared} is symbolic: fix every symbolic size with --input-shape, \
                     e.g. --input-shape {}",
                    example_shape(dims)
                ),
            }
        })
        .collect()
}

/// An `--input-shape` value for `dims`: fixed sizes kept, the batch 1, and
/// other symbolic sizes a typical image size (rank 4, NCHW) or 1.
fn example_shape(dims: &[pb::tensor_shape_proto::Dimension]) -> String {
    use pb::tensor_shape_proto::dimension::Value as Dim;
    // Channels-last when only the last axis is fixed small (Keras exports).
    let channels_last = matches!(dims.last().and_then(|d| d.value.clone()), Some(Dim::DimValue(1..=4)))
        && !matches!(dims.get(1).and_then(|d| d.value.clone()), Some(Dim::DimValue(v)) if v > 0);
    let image = if channels_last { [1, 480, 640, 3] } else { [1, 3, 480, 640] };
    let sizes: Vec<String> = dims
        .iter()
        .enumerate()
        .map(|(axis, d)| match d.value {
            Some(Dim::DimValue(v)) if v > 0 => v.to_string(),
            _ if dims.len() == 4 => image[axis].to_string(),
            _ => "1".to_owned(),
        })
        .collect();
    sizes.join(",")
}
