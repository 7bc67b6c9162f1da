//! Builds `.kiln` files. The converter writes models with it; tests build
//! small models with it. It lays out bytes and nothing more: whether the
//! model makes sense is for [`Model::from_bytes`](crate::Model::from_bytes)
//! to say, and [`ModelWriter::finish`] runs that check on what it wrote.

use alloc::vec::Vec;

use super::{section, Quant, ALIGN, HEADER_LEN, MAGIC, SECTION_ENTRY_LEN, VERSION_MAJOR};
use crate::{DType, Error, Model, OpKind};

/// A tensor of the model being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub u32);

impl TensorId {
    /// An absent optional operator input.
    pub const ABSENT: TensorId = TensorId(super::ABSENT);
}

struct Tensor {
    name: (u32, u32),
    dtype: DType,
    dims: Vec<usize>,
    quant: Quant,
    /// Weights offset for constants; arena offset for placed activations.
    offset: Option<usize>,
    constant: bool,
    len: usize,
}

/// Accumulates tensors and operators, then writes the file.
///
/// Activations are placed in the arena by [`ModelWriter::place`] (the
/// converter's memory planner does this); any left unplaced are laid out one
/// after another past the placed ones, which suits small test models.
#[derive(Default)]
pub struct ModelWriter {
    strings: Vec<u8>,
    weights: Vec<u8>,
    tensors: Vec<Tensor>,
    ops: Vec<u32>,
    op_count: u32,
    /// The lowest format minor version that holds every operator so far.
    minor: u16,
    inputs: Vec<TensorId>,
    outputs: Vec<TensorId>,
}

impl ModelWriter {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, name: &str, dtype: DType, dims: &[usize], quant: Quant, constant: bool) -> TensorId {
        let name_at = (self.strings.len() as u32, name.len() as u32);
        self.strings.extend_from_slice(name.as_bytes());
        let len = dims.iter().product::<usize>() * dtype.size();
        self.tensors.push(Tensor { name: name_at, dtype, dims: dims.to_vec(), quant, offset: None, constant, len });
        TensorId(self.tensors.len() as u32 - 1)
    }

    /// Declares an activation (a tensor in the arena).
    pub fn activation(&mut self, name: &str, dtype: DType, dims: &[usize], quant: Quant) -> TensorId {
        self.push(name, dtype, dims, quant, false)
    }

    /// Places an activation at a byte offset in the arena.
    pub fn place(&mut self, tensor: TensorId, arena_offset: usize) {
        self.tensors[tensor.0 as usize].offset = Some(arena_offset);
    }

    /// Adds a constant tensor from its little-endian bytes.
    pub fn constant(&mut self, name: &str, dtype: DType, dims: &[usize], quant: Quant, bytes: &[u8]) -> TensorId {
        let id = self.push(name, dtype, dims, quant, true);
        self.weights.resize(self.weights.len().next_multiple_of(ALIGN), 0);
        let t = &mut self.tensors[id.0 as usize];
        t.offset = Some(self.weights.len());
        t.len = bytes.len();
        self.weights.extend_from_slice(bytes);
        id
    }

    /// Adds an int8 constant (weights: symmetric, so `scale` with zero point 0).
    pub fn constant_i8(&mut self, name: &str, dims: &[usize], scale: f32, values: &[i8]) -> TensorId {
        let quant = Quant { scale, zero_point: 0 };
        self.constant(name, DType::I8, dims, quant, bytemuck::cast_slice(values))
    }

    /// Adds convolution weights, given in logical OHWI order
    /// (`[O, KH, KW, C/groups]`, symmetric with `scale`), packed for the
    /// kernels of a convolution with `groups` groups ([`super::pack`]).
    pub fn conv_weights(&mut self, name: &str, dims: [usize; 4], groups: usize, scale: f32, ohwi: &[i8]) -> TensorId {
        let packed = super::pack::Layout::conv(dims, groups).pack(ohwi);
        self.constant(name, DType::Packed, &dims, Quant { scale, zero_point: 0 }, &packed)
    }

    /// Adds fully connected weights `[O, K]` (row-major, symmetric with
    /// `scale`), packed for the kernels ([`super::pack`]).
    pub fn fc_weights(&mut self, name: &str, dims: [usize; 2], scale: f32, values: &[i8]) -> TensorId {
        let packed = super::pack::Layout::fully_connected(dims[0], dims[1]).pack(values);
        self.constant(name, DType::Packed, &dims, Quant { scale, zero_point: 0 }, &packed)
    }

    /// Adds an i32 constant (biases).
    pub fn constant_i32(&mut self, name: &str, values: &[i32]) -> TensorId {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, DType::I32, &[values.len()], Quant::IDENTITY, &bytes)
    }

    /// Adds an f32 constant (multipliers, slopes, tables).
    pub fn constant_f32(&mut self, name: &str, values: &[f32]) -> TensorId {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, DType::F32, &[values.len()], Quant::IDENTITY, &bytes)
    }

    /// Adds float weights (or any float constant of shape `dims`) as f16,
    /// rounded to nearest, or as f32.
    pub fn float_constant(&mut self, name: &str, dtype: DType, dims: &[usize], values: &[f32]) -> TensorId {
        let bytes: Vec<u8> = match dtype {
            DType::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        self.constant(name, dtype, dims, Quant::IDENTITY, &bytes)
    }

    /// Appends an operator; operators run in the order they are added.
    /// `params` are its parameter words, e.g. from [`crate::ops::Conv2d::words`].
    pub fn op(&mut self, kind: OpKind, inputs: &[TensorId], outputs: &[TensorId], params: &[i32]) {
        let head = u32::from(kind as u16) | (inputs.len() as u32) << 16 | (outputs.len() as u32) << 24;
        self.ops.push(head);
        self.ops.push(params.len() as u32);
        self.ops.extend(inputs.iter().chain(outputs).map(|t| t.0));
        self.ops.extend(params.iter().map(|&p| p as u32));
        self.op_count += 1;
        self.minor = self.minor.max(kind.since_minor());
    }

    /// Declares the graph inputs.
    pub fn inputs(&mut self, inputs: &[TensorId]) {
        self.inputs = inputs.to_vec();
    }

    /// Declares the graph outputs.
    pub fn outputs(&mut self, outputs: &[TensorId]) {
        self.outputs = outputs.to_vec();
    }

    /// Writes the file and checks it with the runtime's own loader.
    pub fn finish(&self) -> Result<Vec<u8>, Error> {
        let bytes = self.to_bytes();
        Model::from_bytes(&super::AlignedBytes::copy_of(&bytes))?;
        Ok(bytes)
    }

    /// Writes the file without checking it: for tests that build invalid files.
    pub fn to_bytes(&self) -> Vec<u8> {
        let placed_end = self.tensors.iter().filter(|t| !t.constant).filter_map(|t| t.offset.map(|o| o + t.len));
        let mut arena = placed_end.max().unwrap_or(0).next_multiple_of(ALIGN);
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            offsets.push(t.offset.unwrap_or_else(|| {
                let at = arena;
                arena = (arena + t.len).next_multiple_of(ALIGN);
                at
            }));
        }

        let mut tens = Vec::new();
        put32(&mut tens, self.tensors.len() as u32);
        put32(&mut tens, 0);
        for (t, &offset) in self.tensors.iter().zip(&offsets) {
            tens.extend_from_slice(&[t.dtype.code(), t.dims.len() as u8, t.constant as u8, 0]);
            put32(&mut tens, t.name.0);
            put32(&mut tens, t.name.1);
            put32(&mut tens, 0);
            for i in 0..4 {
                put32(&mut tens, t.dims.get(i).map_or(1, |&d| d as u32));
            }
            tens.extend_from_slice(&t.quant.scale.to_le_bytes());
            tens.extend_from_slice(&t.quant.zero_point.to_le_bytes());
            tens.extend_from_slice(&(offset as u64).to_le_bytes());
            tens.extend_from_slice(&(t.len as u64).to_le_bytes());
            tens.extend_from_slice(&[0; 8]);
        }

        let mut graph = Vec::new();
        put32(&mut graph, self.inputs.len() as u32);
        put32(&mut graph, self.outputs.len() as u32);
        for t in self.inputs.iter().chain(&self.outputs) {
            put32(&mut graph, t.0);
        }

        let mut ops = Vec::new();
        put32(&mut ops, self.op_count);
        put32(&mut ops, 0);
        for &w in &self.ops {
            put32(&mut ops, w);
        }

        let sections: [(&[u8; 4], &[u8]); 5] = [
            (&section::STRINGS, &self.strings),
            (&section::TENSORS, &tens),
            (&section::GRAPH, &graph),
            (&section::OPS, &ops),
            (&section::WEIGHTS, &self.weights),
        ];
        let mut file = Vec::new();
        file.extend_from_slice(&MAGIC);
        file.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
        file.extend_from_slice(&self.minor.to_le_bytes());
        put32(&mut file, 0); // flags
        file.extend_from_slice(&[0; 8]); // file length, filled in below
        put32(&mut file, 0); // checksum, filled in below
        put32(&mut file, sections.len() as u32);
        file.extend_from_slice(&(arena as u64).to_le_bytes());
        file.resize(HEADER_LEN, 0);

        let table_at = file.len();
        file.resize(table_at + SECTION_ENTRY_LEN * sections.len(), 0);
        for (i, (kind, body)) in sections.iter().enumerate() {
            file.resize(file.len().next_multiple_of(ALIGN), 0);
            let (entry, offset) = (table_at + i * SECTION_ENTRY_LEN, file.len() as u64);
            file[entry..entry + 4].copy_from_slice(*kind);
            file[entry + 8..entry + 16].copy_from_slice(&offset.to_le_bytes());
            file[entry + 16..entry + 24].copy_from_slice(&(body.len() as u64).to_le_bytes());
            file.extend_from_slice(body);
        }
        let len = file.len() as u64;
        file[16..24].copy_from_slice(&len.to_le_bytes());
        super::reseal(&mut file);
        file
    }
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
