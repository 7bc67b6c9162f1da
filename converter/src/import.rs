//! Reads an ONNX file: the protobuf, its constant tensors and its one input.
//!
//! Old exporters list every initializer as a graph input too (SFace does).
//! Such an input is a constant, not something the user feeds: only the inputs
//! without an initializer count as model inputs, and kiln wants exactly one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    /// Every initializer by name, as f32 or as whatever type the file holds.
    pub constants: HashMap<String, Tensor>,
    /// Name of the one real (non-initializer) graph input.
    pub input_name: String,
    /// Its shape in ONNX order (NCHW for images), every dimension fixed.
    pub input_shape: Vec<usize>,
}

impl OnnxModel {
    /// Parses `path`; fails with a message naming the file when it is missing,
    /// not ONNX, or has other than one input of fixed shape.
    pub fn load(path: &Path) -> Result<Self> {
        ensure!(path.exists(), "model file {} does not exist", path.display());
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
        let input_shape = fixed_shape(input).with_context(|| format!("{}: input `{}`", path.display(), input.name))?;
        log::info!(
            "{}: {} nodes, {} initializers, input `{}` {:?}",
            path.display(),
            graph.node.len(),
            constants.len(),
            input.name,
            input_shape
        );
        Ok(OnnxModel { path: path.to_owned(), input_name: input.name.clone(), input_shape, constants, proto })
    }

    /// The graph; [`OnnxModel::load`] checked that there is one.
    pub fn graph(&self) -> &pb::GraphProto {
        self.proto.graph.as_ref().expect("checked at load")
    }
}

/// The declared shape of a graph input. A symbolic batch dimension is fixed
/// to 1 (kiln runs one image at a time); any other symbolic one is an error.
fn fixed_shape(input: &pb::ValueInfoProto) -> Result<Vec<usize>> {
    let Some(pb::type_proto::Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        bail!("is not a tensor");
    };
    ensure!(
        tensor.elem_type == pb::tensor_proto::DataType::Float as i32,
        "is not f32 (ONNX element type {})",
        tensor.elem_type
    );
    let dims = &tensor.shape.as_ref().context("has no declared shape")?.dim;
    dims.iter()
        .enumerate()
        .map(|(axis, dim)| match dim.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Ok(v as usize),
            _ if axis == 0 => Ok(1),
            _ => bail!("dimension {axis} is not fixed ({dim:?})"),
        })
        .collect()
}
