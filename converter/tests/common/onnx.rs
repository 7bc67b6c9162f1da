//! Small ONNX graphs written from Rust (tract-onnx's protobuf types), for
//! tests of one front-end feature each.

use std::path::{Path, PathBuf};

use prost::Message;
use tract_onnx::pb::{self, tensor_shape_proto::dimension, type_proto};

/// A float tensor's declaration; a negative size is a symbolic dimension
/// (named `d0`, `d1`, ... by its axis).
pub fn tensor_info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .enumerate()
        .map(|(axis, &d)| pb::tensor_shape_proto::Dimension {
            value: Some(if d < 0 {
                dimension::Value::DimParam(format!("d{axis}"))
            } else {
                dimension::Value::DimValue(d)
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node named `name` computing `outputs` from `inputs`.
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|&i| i.into()).collect(),
        output: outputs.iter().map(|&o| o.into()).collect(),
        attribute,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// An integer attribute.
pub fn int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

/// A string attribute.
pub fn string(name: &str, value: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// An f32 initializer.
pub fn floats(name: &str, dims: &[i64], values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: values.to_vec(),
        ..Default::default()
    }
}

/// An i64 initializer.
pub fn int64s(name: &str, dims: &[i64], values: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// Writes a one-input model of `nodes` at `dir/name.onnx` (opset `opset`).
pub fn write(
    dir: &Path,
    name: &str,
    opset: i64,
    nodes: Vec<pb::NodeProto>,
    initializer: Vec<pb::TensorProto>,
    input: pb::ValueInfoProto,
    output: Vec<pb::ValueInfoProto>,
) -> PathBuf {
    let model = pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: opset }],
        graph: Some(pb::GraphProto {
            name: name.into(),
            node: nodes,
            initializer,
            input: vec![input],
            output,
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}
