//! Running a model: one arena, allocated once (or borrowed), and a loop over
//! the operators that allocates nothing.

use core::ops::Range;

use crate::format::pack::Layout;
use crate::format::{AlignedBytes, DType, Storage, TensorDesc, ALIGN};
use crate::kernels::scalar::{self, float, ConcatElement};
use crate::kernels::{FIn, FOut, FloatAffine, FloatWeights, In, Isa, Kernels, Out, QIn, QOut, Requant, Weights};
use crate::model::{Model, ABSENT};
use crate::ops::{Node, Op};
use crate::Error;

enum Arena<'a> {
    Owned(AlignedBytes),
    Borrowed(&'a mut [u8]),
}

/// How a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionOptions {
    /// The kernel level: [`Isa::Auto`] (the default) for the best the CPU
    /// supports, or a level to force (for debugging and A/B runs).
    pub isa: Isa,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { isa: Isa::Auto }
    }
}

impl SessionOptions {
    /// Options for a kernel level.
    pub fn isa(isa: Isa) -> Self {
        SessionOptions { isa }
    }

    /// The defaults, with the level from the environment variable
    /// `KILN_ISA` (`auto`, `scalar`, `avx2`, `avxvnni`, `avx512vnni`, `neon`,
    /// `dotprod`) when it is set.
    #[cfg(feature = "std")]
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var("KILN_ISA") {
            Ok(name) => Isa::parse(&name).map(Self::isa).ok_or(Error::UnknownIsa(name)),
            Err(_) => Ok(Self::default()),
        }
    }
}

/// An inference context for one model: its arena holds every activation,
/// and its kernels were chosen once, when it was made. Make one per thread;
/// [`Session::run`] allocates nothing.
pub struct Session<'m> {
    model: &'m Model<'m>,
    arena: Arena<'m>,
    kernels: Kernels,
}

impl<'m> Session<'m> {
    /// A session with an arena of [`Model::arena_size`] bytes on the heap.
    /// With `std`, the kernel level comes from `KILN_ISA`
    /// ([`SessionOptions::from_env`]); otherwise it is [`Isa::Auto`].
    pub fn new(model: &'m Model<'m>) -> Result<Self, Error> {
        #[cfg(feature = "std")]
        let options = SessionOptions::from_env()?;
        #[cfg(not(feature = "std"))]
        let options = SessionOptions::default();
        Self::with_options(model, options)
    }

    /// A session with an arena on the heap and the given options.
    pub fn with_options(model: &'m Model<'m>, options: SessionOptions) -> Result<Self, Error> {
        let kernels = Kernels::new(options.isa)?;
        let bytes = model.arena_size();
        let arena = AlignedBytes::try_zeroed(bytes).ok_or(Error::OutOfMemory { bytes })?;
        Ok(Session { model, arena: Arena::Owned(arena), kernels })
    }

    /// A session over a caller's buffer, which must start on a 64-byte
    /// boundary and hold at least [`Model::arena_size`] bytes: no heap at
    /// all. The buffer is zeroed here. The kernels are the best the CPU
    /// supports.
    pub fn with_arena(model: &'m Model<'m>, arena: &'m mut [u8]) -> Result<Self, Error> {
        Self::with_arena_options(model, arena, SessionOptions::default())
    }

    /// As [`Session::with_arena`], with the given options.
    pub fn with_arena_options(
        model: &'m Model<'m>,
        arena: &'m mut [u8],
        options: SessionOptions,
    ) -> Result<Self, Error> {
        let aligned = (arena.as_ptr() as usize).is_multiple_of(ALIGN);
        if !aligned || arena.len() < model.arena_size() {
            return Err(Error::Arena { needed: model.arena_size(), given: arena.len(), aligned });
        }
        // Every read of a run is then defined, even of inputs never set
        // (uninitialised bytes would index lookup tables).
        arena[..model.arena_size()].fill(0);
        Ok(Session { model, arena: Arena::Borrowed(arena), kernels: Kernels::new(options.isa)? })
    }

    /// The model this session runs.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// The kernels this session chose.
    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    fn arena(&mut self) -> &mut [u8] {
        match &mut self.arena {
            Arena::Owned(bytes) => bytes,
            Arena::Borrowed(bytes) => bytes,
        }
    }

    fn io(&self, role: &'static str, index: usize) -> Result<&'m TensorDesc, Error> {
        let ids = if role == "input" { self.model.input_ids() } else { self.model.output_ids() };
        match ids.get(index) {
            Some(&t) => Ok(self.model.tensor(t)),
            None => Err(Error::NoSuchTensor { role, index, count: ids.len() }),
        }
    }

    /// The bytes of graph input or output `index`, checked against the
    /// caller's element count and type.
    fn io_bytes(
        &mut self,
        role: &'static str,
        index: usize,
        len: usize,
        dtype: Option<DType>,
    ) -> Result<(&'m TensorDesc, &mut [u8]), Error> {
        let t = self.io(role, index)?;
        let expected = t.shape.elements();
        if len != expected {
            return Err(Error::Length { role, index, expected, given: len });
        }
        if let Some(asked) = dtype.filter(|&d| d != t.dtype) {
            return Err(Error::Type { role, index, holds: t.dtype, asked });
        }
        Ok((t, &mut self.arena()[t.range()]))
    }

    /// Sets input `index` from real values, quantizing them if the input is
    /// int8 (with the input's own scale and zero point). The values are in
    /// the tensor's layout: NHWC for images. A NaN or infinite value is an
    /// [`Error::NotFinite`]: quantization would silently make NaN the zero
    /// point and infinities the ends of the int8 range. Callers that
    /// quantize themselves use [`Session::set_input_i8`].
    pub fn set_input_f32(&mut self, index: usize, values: &[f32]) -> Result<(), Error> {
        // After the length check: a C caller's count is only trusted then.
        let (t, bytes) = self.io_bytes("input", index, values.len(), None)?;
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NotFinite { index, at, value: values[at] });
        }
        match t.dtype {
            DType::F32 => bytes.copy_from_slice(bytemuck::cast_slice(values)),
            _ => {
                let q = QOut { data: bytemuck::cast_slice_mut(bytes), shape: t.shape, quant: t.quant };
                scalar::quantize_f32(values, q);
            }
        }
        Ok(())
    }

    /// Sets int8 input `index` from already-quantized values.
    pub fn set_input_i8(&mut self, index: usize, values: &[i8]) -> Result<(), Error> {
        let (_, bytes) = self.io_bytes("input", index, values.len(), Some(DType::I8))?;
        bytes.copy_from_slice(bytemuck::cast_slice(values));
        Ok(())
    }

    /// Reads output `index` as real values, dequantizing an int8 output.
    pub fn output_f32(&mut self, index: usize, values: &mut [f32]) -> Result<(), Error> {
        let (t, bytes) = self.io_bytes("output", index, values.len(), None)?;
        match t.dtype {
            DType::F32 => values.copy_from_slice(bytemuck::cast_slice(bytes)),
            _ => scalar::dequantize(QIn { data: bytemuck::cast_slice(bytes), shape: t.shape, quant: t.quant }, values),
        }
        Ok(())
    }

    /// The raw int8 values of output `index`.
    pub fn output_i8(&mut self, index: usize) -> Result<&[i8], Error> {
        let len = self.io("output", index)?.shape.elements();
        let (_, bytes) = self.io_bytes("output", index, len, Some(DType::I8))?;
        Ok(bytemuck::cast_slice(bytes))
    }

    /// Runs the model on the inputs set before. Performs no heap allocation
    /// and cannot fail: the model was validated when it was loaded.
    pub fn run(&mut self) {
        self.run_observed(|_, _| {});
    }

    /// As [`Session::run`], calling `after(i, output)` as soon as operator
    /// `i` (in [`Model::ops`] order) has run, with the bytes of its output
    /// tensor while they are live: profilers time the gaps between calls,
    /// `kiln eval --layers` reads every layer's output. Allocates nothing
    /// itself; with an empty `after` it is `run`.
    #[inline]
    pub fn run_observed(&mut self, mut after: impl FnMut(usize, &[u8])) {
        let (model, kernels) = (self.model, self.kernels);
        let arena = self.arena();
        for (i, node) in model.nodes().iter().enumerate() {
            execute(model, &kernels, node, arena);
            after(i, &arena[model.tensor(node.output).range()]);
        }
    }

    /// Sets every input from real values, runs, and reads every output as
    /// real values.
    pub fn run_f32(&mut self, inputs: &[&[f32]], outputs: &mut [&mut [f32]]) -> Result<(), Error> {
        let count = self.model.input_ids().len();
        if inputs.len() != count {
            return Err(Error::NoSuchTensor { role: "input", index: inputs.len(), count });
        }
        let count = self.model.output_ids().len();
        if outputs.len() != count {
            return Err(Error::NoSuchTensor { role: "output", index: outputs.len(), count });
        }
        for (i, values) in inputs.iter().enumerate() {
            self.set_input_f32(i, values)?;
        }
        self.run();
        for (i, values) in outputs.iter_mut().enumerate() {
            self.output_f32(i, values)?;
        }
        Ok(())
    }
}

/// The operands of one operator: the arena around its output, and the file.
struct Operands<'s> {
    model: &'s Model<'s>,
    before: &'s [u8],
    after: &'s [u8],
    after_start: usize,
}

impl<'s> Operands<'s> {
    /// The bytes of an input. The plan guarantees that arena inputs lie
    /// wholly before or wholly after the output.
    fn bytes(&self, t: &TensorDesc) -> &'s [u8] {
        match t.storage {
            Storage::Constant => self.model.constant(t),
            Storage::Arena if t.offset >= self.after_start => &self.after[t.offset - self.after_start..][..t.len],
            Storage::Arena => &self.before[t.range()],
        }
    }

    fn q(&self, t: &TensorDesc) -> QIn<'s> {
        QIn { data: bytemuck::cast_slice(self.bytes(t)), shape: t.shape, quant: t.quant }
    }

    fn f32s(&self, t: &TensorDesc) -> &'s [f32] {
        bytemuck::cast_slice(self.bytes(t))
    }

    fn f(&self, t: &TensorDesc) -> FIn<'s> {
        FIn::new(self.f32s(t), t.shape)
    }
}

fn split(arena: &mut [u8], out: Range<usize>) -> (&[u8], &mut [u8], &[u8]) {
    let (before, rest) = arena.split_at_mut(out.start);
    let (out, after) = rest.split_at_mut(out.len());
    (before, out, after)
}

/// An int8 view of an output tensor's bytes.
fn q_out<'a>(bytes: &'a mut [u8], t: &TensorDesc) -> QOut<'a> {
    QOut { data: bytemuck::cast_slice_mut(bytes), shape: t.shape, quant: t.quant }
}

/// An f32 view of an output tensor's bytes.
fn f_out<'a>(bytes: &'a mut [u8], t: &TensorDesc) -> FOut<'a> {
    FOut::new(bytemuck::cast_slice_mut(bytes), t.shape)
}

fn execute(model: &Model<'_>, kernels: &Kernels, node: &Node, arena: &mut [u8]) {
    let y_desc = model.tensor(node.output);
    let (before, y_bytes, after) = split(arena, y_desc.range());
    let ops = Operands { model, before, after, after_start: y_desc.offset + y_desc.len };
    let inputs = model.node_inputs(node);
    let t = |i: usize| model.tensor(inputs[i]);
    let optional = |i: usize| inputs.get(i).filter(|&&i| i != ABSENT).map(|&i| model.tensor(i));
    let x = ops.q(t(0));
    let fx = || ops.f(t(0));
    let affine = |act| {
        let multiplier = ops.f32s(t(3));
        let negative = optional(4).map_or(multiplier, |n| ops.f32s(n));
        let requant = Requant { multiplier, negative, zero_point: y_desc.quant.zero_point, act };
        (bytemuck::cast_slice(ops.bytes(t(2))), requant)
    };
    let float_affine = |bounds| {
        let w = t(1);
        let weights = match w.dtype {
            DType::F16 => FloatWeights::F16(bytemuck::cast_slice(ops.bytes(w))),
            _ => FloatWeights::F32(ops.f32s(w)),
        };
        FloatAffine { weights, shape: w.shape, bias: ops.f32s(t(2)), alpha: optional(3).map(|a| ops.f32s(a)), bounds }
    };
    let weights = |layout| Weights { data: ops.bytes(t(1)), shape: t(1).shape, layout };
    let float = y_desc.dtype == DType::F32;
    match node.op {
        Op::Conv2d(p) => {
            let (bias, requant) = affine(p.act);
            let w = weights(Layout::conv(t(1).shape.nhwc(), p.groups));
            kernels.conv2d(&p, x, w, bias, &requant, q_out(y_bytes, y_desc))
        }
        Op::FullyConnected(act) => {
            let (bias, requant) = affine(act);
            let [o, k, ..] = t(1).shape.nhwc();
            let w = weights(Layout::fully_connected(o, k));
            kernels.fully_connected(x, w, bias, &requant, q_out(y_bytes, y_desc))
        }
        Op::FloatConv2d(p) => kernels.float_conv2d(&p.conv, fx(), &float_affine(p.bounds), f_out(y_bytes, y_desc)),
        Op::FloatFullyConnected(b) => kernels.float_fully_connected(fx(), &float_affine(b), f_out(y_bytes, y_desc)),
        Op::FloatBinary(f) => float::binary(f, fx(), ops.f(t(1)), f_out(y_bytes, y_desc)),
        Op::FloatUnary { f, a, b } => float::unary(f, a, b, fx().data, f_out(y_bytes, y_desc).data),
        Op::FloatSoftmax => float::softmax(fx(), f_out(y_bytes, y_desc)),
        Op::FloatReduce { max } => float::reduce(max, fx(), f_out(y_bytes, y_desc)),
        Op::FloatMatMul => float::matmul(fx(), ops.f(t(1)), f_out(y_bytes, y_desc)),
        Op::Add(act) => kernels.add(x, ops.q(t(1)), act, q_out(y_bytes, y_desc)),
        Op::Sub(act) => scalar::sub(x, ops.q(t(1)), act, q_out(y_bytes, y_desc)),
        Op::Mul(act) => scalar::mul(x, ops.q(t(1)), act, q_out(y_bytes, y_desc)),
        Op::Concat { axis } if float => {
            let y = f_out(y_bytes, y_desc);
            concat(inputs.iter().map(|&i| ops.f(model.tensor(i))), axis, y)
        }
        Op::Concat { axis } => concat(inputs.iter().map(|&i| ops.q(model.tensor(i))), axis, q_out(y_bytes, y_desc)),
        Op::MaxPool(p) => scalar::max_pool(&p, x, q_out(y_bytes, y_desc)),
        Op::AvgPool(p) => scalar::avg_pool(&p, x, q_out(y_bytes, y_desc)),
        Op::GlobalAvgPool => scalar::global_avg_pool(x, q_out(y_bytes, y_desc)),
        Op::PRelu => scalar::prelu(x, ops.f32s(t(1)), q_out(y_bytes, y_desc)),
        Op::Lut => scalar::lut(x.data, ops.q(t(1)).data, q_out(y_bytes, y_desc).data),
        Op::Reshape => y_bytes.copy_from_slice(ops.bytes(t(0))),
        Op::Transpose { perm, axes } if float => scalar::transpose(fx(), &perm[..axes], f_out(y_bytes, y_desc)),
        Op::Transpose { perm, axes } => scalar::transpose(x, &perm[..axes], q_out(y_bytes, y_desc)),
        Op::Pad { before, axes, value, .. } => scalar::pad(x, &before[..axes], value, q_out(y_bytes, y_desc)),
        Op::ZeroInsert { stride } => scalar::zero_insert(x, stride, q_out(y_bytes, y_desc)),
        Op::Resize(p) => scalar::resize(&p, x, q_out(y_bytes, y_desc)),
        Op::Softmax => scalar::softmax(x, ops.f32s(t(1)), q_out(y_bytes, y_desc)),
        Op::L2Norm => scalar::l2_norm(x, q_out(y_bytes, y_desc)),
        Op::Quantize if t(0).dtype == DType::F32 => scalar::quantize_f32(ops.f32s(t(0)), q_out(y_bytes, y_desc)),
        Op::Quantize => scalar::requantize(x, q_out(y_bytes, y_desc)),
        Op::Dequantize => scalar::dequantize(x, bytemuck::cast_slice_mut(y_bytes)),
        Op::Clamp(act) => scalar::clamp(x.data, act, q_out(y_bytes, y_desc).data),
        Op::Slice { start, step, axes } if float => {
            scalar::slice(fx(), &start[..axes], &step[..axes], f_out(y_bytes, y_desc))
        }
        Op::Slice { start, step, axes } => scalar::slice(x, &start[..axes], &step[..axes], q_out(y_bytes, y_desc)),
        Op::Max(act) => scalar::max(x, ops.q(t(1)), act, q_out(y_bytes, y_desc)),
        Op::Min(act) => scalar::min(x, ops.q(t(1)), act, q_out(y_bytes, y_desc)),
        Op::Reduce { max } => scalar::reduce(max, x, q_out(y_bytes, y_desc)),
    }
}

/// Concatenates `parts` along `axis` into `y`.
fn concat<'a, T: ConcatElement + 'a>(parts: impl Iterator<Item = In<'a, T>>, axis: usize, y: Out<'_, T>) {
    let mut offset = 0;
    for part in parts {
        scalar::concat_part(part, axis, offset, Out { data: &mut *y.data, ..y });
        offset += part.shape.dims()[axis];
    }
}
