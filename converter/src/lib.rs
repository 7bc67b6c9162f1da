//! kiln's converter: turns an ONNX model into an int8 `.kiln` file.
#![forbid(unsafe_code)]

pub mod plan;
