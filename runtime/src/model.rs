//! A loaded, validated model: the file's bytes (borrowed or memory-mapped)
//! and the small tables decoded from them.

use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{malformed, Error};
use crate::format::{self, section, tensor::to_usize, AlignedBytes, DType, Quant, Reader, Shape, Storage, TensorDesc};
use crate::ops::{self, check::Site, Node, Op, OpKind};

/// An absent optional operator input, in [`Model`]'s index pool.
pub(crate) const ABSENT: usize = usize::MAX;

enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Owned(AlignedBytes),
    #[cfg(feature = "std")]
    Mapped(memmap2::Mmap),
}

impl Bytes<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(b) => b,
            #[cfg(feature = "std")]
            Bytes::Mapped(m) => m,
        }
    }
}

/// What tensor records are checked against.
struct Bounds<'f> {
    arena: usize,
    weights: usize,
    names: &'f str,
}

/// A `.kiln` model, validated once when it is loaded.
pub struct Model<'a> {
    bytes: Bytes<'a>,
    weights: Range<usize>,
    strings: Range<usize>,
    tensors: Vec<TensorDesc>,
    nodes: Vec<Node>,
    /// Input tensor indices of all nodes, [`ABSENT`] for an absent optional one.
    node_inputs: Vec<usize>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    arena_size: usize,
}

/// Caps on what a model may ask of the machine, for software that loads
/// files it did not make: a file within them cannot make a session ask for
/// more memory than the caller chose to spare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest arena, in bytes, a session may need.
    pub arena_bytes: usize,
    /// The most elements any one activation may hold (constants are in
    /// the file, whose size the caller already knows).
    pub tensor_elements: usize,
    /// The most steps one run may take ([`Model::work`]): a small arena
    /// does not bound time (an average over a 2048 x 2048 window at every
    /// pixel of a 4096 x 4096 image fits in 32 MiB and runs for hours).
    pub work: u64,
}

impl Limits {
    /// No caps beyond what the format itself allows.
    pub const NONE: Limits = Limits { arena_bytes: usize::MAX, tensor_elements: usize::MAX, work: u64::MAX };
}

/// What [`Model::info`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Format version of the file.
    pub version: (u16, u16),
    /// Number of operators.
    pub ops: usize,
    /// Number of tensors (activations and constants).
    pub tensors: usize,
    /// Bytes of the one buffer all activations live in.
    pub arena_bytes: usize,
    /// Sum of all activation sizes: what the arena would be without reuse.
    pub activation_bytes: usize,
    /// Bytes of constant tensors (weights, biases, multipliers, tables).
    pub weight_bytes: usize,
    /// Size of the file.
    pub file_bytes: usize,
}

/// Shape, type and quantization of one tensor, as the caller sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorInfo<'m> {
    /// The tensor's name (from the source model).
    pub name: &'m str,
    /// Element type.
    pub dtype: DType,
    /// Shape (NHWC for images).
    pub shape: Shape,
    /// Quantization parameters.
    pub quant: Quant,
    /// Whether it is a constant stored in the file (else an activation).
    pub constant: bool,
}

impl Model<'static> {
    /// Memory-maps and validates a file. The weights stay in the map: they
    /// are never copied to the heap.
    #[cfg(feature = "std")]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let io = |source| Error::Io { path: path.display().to_string(), source };
        // Opening a FIFO would wait for a writer, and mapping a folder fails
        // as "no such device": say what the path is instead.
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "a folder" } else { "not a regular file (a FIFO, socket or device)" };
            let why = alloc::format!("it is {what}: give a .kiln file");
            return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, why)));
        }
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; kiln
        // validates the bytes once and then trusts them, so a file changed on
        // disk while mapped breaks that assumption — as it would for any
        // memory-mapped model (tract, TFLite). Users must not rewrite a model
        // file in place while it is loaded.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(Bytes::Mapped(map))
    }

    /// As [`Model::open`], refusing a model that needs more than `limits`.
    #[cfg(feature = "std")]
    pub fn open_with_limits(path: impl AsRef<std::path::Path>, limits: Limits) -> Result<Self, Error> {
        let model = Self::open(path)?;
        model.check_limits(limits)?;
        Ok(model)
    }

    /// Validates a model and keeps its bytes, for callers that cannot keep
    /// a borrowed buffer alive as long as the model (the C API copies the
    /// caller's buffer into one of these). [`AlignedBytes::copy_of`] makes
    /// the aligned copy.
    pub fn from_aligned_bytes(bytes: AlignedBytes) -> Result<Self, Error> {
        Self::parse(Bytes::Owned(bytes))
    }
}

impl<'a> Model<'a> {
    /// Validates a model held in memory, borrowing it. The bytes must start
    /// on a 64-byte boundary: see [`format::Aligned`] and
    /// [`format::AlignedBytes`].
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse(Bytes::Borrowed(bytes))
    }

    fn parse(bytes: Bytes<'a>) -> Result<Self, Error> {
        let file = bytes.as_slice();
        let remainder = file.as_ptr() as usize % format::ALIGN;
        if remainder != 0 {
            return Err(Error::Misaligned { required: format::ALIGN, remainder });
        }
        let (arena_size, [strings, tensors, graph, ops, weights]) = read_header(file)?;
        let Ok(names) = core::str::from_utf8(&file[strings.clone()]) else {
            malformed!("the strings section is not UTF-8");
        };
        let bounds = Bounds { arena: arena_size, weights: weights.len(), names };
        let tensors = read_tensors(&file[tensors], &bounds)?;
        // A session allocates the whole arena: a header that claims more than
        // the activations span would make a small file ask for any amount of
        // memory (and abort on allocation failure), and no buffer can hold
        // more than isize::MAX bytes.
        // Sizes are summed for reports ([`Model::info`]); each fits in the
        // file or the arena, but hostile files can make their sum wrap.
        if tensors.iter().try_fold(0usize, |sum, t| sum.checked_add(t.len)).is_none() {
            malformed!("the tensors' sizes add up to more bytes than the address space holds");
        }
        let extent = tensors.iter().filter(|t| t.storage == Storage::Arena).map(|t| t.offset + t.len).max();
        let needed = extent.unwrap_or(0).checked_next_multiple_of(format::ALIGN).unwrap_or(usize::MAX);
        if arena_size > needed {
            malformed!(
                "the header's arena of {arena_size} bytes is larger than the {needed} bytes the activations span"
            );
        }
        if arena_size > isize::MAX as usize {
            malformed!("the arena of {arena_size} bytes is larger than any buffer can be");
        }
        let (inputs, outputs) = read_graph(&file[graph], tensors.len())?;
        for (role, &t) in inputs.iter().map(|t| ("input", t)).chain(outputs.iter().map(|t| ("output", t))) {
            if !matches!(tensors[t].dtype, DType::I8 | DType::F32) {
                malformed!("graph {role} tensor {t} is {:?}; graph inputs and outputs are i8 or f32", tensors[t].dtype);
            }
        }
        for (i, t) in tensors.iter().enumerate().filter(|(_, t)| t.storage == Storage::Constant) {
            let bytes = &file[weights.clone()][t.range()];
            let bad = match t.dtype {
                DType::F32 => {
                    bytes.chunks_exact(4).position(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite())
                }
                // An f16 is NaN or infinite when its 5 exponent bits are all set.
                DType::F16 => bytes.chunks_exact(2).position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7c00 == 0x7c00),
                _ => None,
            };
            if let Some(k) = bad {
                let dtype = if t.dtype == DType::F16 { "f16" } else { "f32" };
                malformed!("tensor {i}: {dtype} constant value {k} is not a finite number");
            }
        }
        let (nodes, node_inputs) = read_ops(&file[ops], &tensors, &file[weights.clone()])?;
        let model = Model { bytes, weights, strings, tensors, nodes, node_inputs, inputs, outputs, arena_size };
        check_plan(&model)?;
        Ok(model)
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Bytes of the one buffer that a [`crate::Session`] needs.
    pub fn arena_size(&self) -> usize {
        self.arena_size
    }

    /// Refuses a model whose arena or largest activation is over `limits`
    /// (loading checked only that they are consistent, not that they are
    /// reasonable).
    pub fn check_limits(&self, limits: Limits) -> Result<(), Error> {
        if self.arena_size > limits.arena_bytes {
            let (size, limit) = (self.arena_size as u64, limits.arena_bytes as u64);
            return Err(Error::OverLimit { what: "arena bytes".into(), size, limit });
        }
        let over = (0..self.tensors.len()).find(|&t| {
            let desc = &self.tensors[t];
            desc.storage == Storage::Arena && desc.shape.elements() > limits.tensor_elements
        });
        if let Some(t) = over {
            let what = alloc::format!("elements in tensor `{}`", self.tensor_info(t).name);
            let (size, limit) = (self.tensors[t].shape.elements() as u64, limits.tensor_elements as u64);
            return Err(Error::OverLimit { what, size, limit });
        }
        let work = self.work();
        if work > limits.work {
            return Err(Error::OverLimit { what: "steps a run".into(), size: work, limit: limits.work });
        }
        Ok(())
    }

    /// An upper bound on the steps one run takes: multiply-adds for
    /// convolutions, fully connected layers and matrix products, the window's elements
    /// inside the image for pooling, and every input and output element of
    /// every operator (saturating at `u64::MAX`).
    pub fn work(&self) -> u64 {
        let elements = |t: usize| self.tensors[t].shape.elements() as u64;
        self.nodes.iter().fold(0u64, |total, node| {
            let inputs = self.node_inputs(node).iter().filter(|&&t| t != ABSENT);
            let outputs = elements(node.output);
            let per_output = match node.op {
                // Weights are [out, kh, kw, in / groups] or [out, in].
                Op::Conv2d(_) | Op::FullyConnected(_) => {
                    let weights = self.tensors[self.node_inputs(node)[1]].shape;
                    weights.elements() as u64 / weights.dims()[0].max(1) as u64
                }
                // Float weights are [kh, kw, in / groups, out] or [in, out].
                Op::FloatConv2d(_) | Op::FloatFullyConnected(_) => {
                    let weights = self.tensors[self.node_inputs(node)[1]].shape;
                    weights.elements() as u64 / weights.dims().last().map_or(1, |&o| o.max(1)) as u64
                }
                Op::FloatMatMul => {
                    let a = self.tensors[self.node_inputs(node)[0]].shape;
                    a.dims().last().map_or(1, |&k| k as u64)
                }
                // Only the window's part inside the image is read.
                Op::MaxPool(p) | Op::AvgPool(p) => {
                    let [_, h, w, _] = self.tensors[self.node_inputs(node)[0]].shape.nhwc();
                    (p.kernel[0].min(h) as u64).saturating_mul(p.kernel[1].min(w) as u64)
                }
                _ => 1,
            };
            let reads = inputs.fold(0u64, |sum, &t| sum.saturating_add(elements(t)));
            total.saturating_add(outputs.saturating_mul(per_output)).saturating_add(reads)
        })
    }

    /// Sizes and counts, for reports and `kiln inspect`.
    pub fn info(&self) -> ModelInfo {
        let sum = |storage| self.tensors.iter().filter(|t| t.storage == storage).map(|t| t.len).sum();
        let file = self.bytes();
        ModelInfo {
            version: (u16::from_le_bytes([file[8], file[9]]), u16::from_le_bytes([file[10], file[11]])),
            ops: self.nodes.len(),
            tensors: self.tensors.len(),
            arena_bytes: self.arena_size,
            activation_bytes: sum(Storage::Arena),
            weight_bytes: sum(Storage::Constant),
            file_bytes: file.len(),
        }
    }

    /// The graph inputs.
    pub fn inputs(&self) -> impl ExactSizeIterator<Item = TensorInfo<'_>> {
        self.inputs.iter().map(|&t| self.tensor_info(t))
    }

    /// The graph outputs.
    pub fn outputs(&self) -> impl ExactSizeIterator<Item = TensorInfo<'_>> {
        self.outputs.iter().map(|&t| self.tensor_info(t))
    }

    /// The operators in execution order: kind, input tensors (absent
    /// optional ones skipped) and output tensor, for listings.
    pub fn ops(&self) -> impl ExactSizeIterator<Item = (OpKind, Vec<TensorInfo<'_>>, TensorInfo<'_>)> {
        self.nodes.iter().map(|n| {
            let inputs = self.node_inputs(n).iter().filter(|&&t| t != ABSENT).map(|&t| self.tensor_info(t)).collect();
            (n.kind, inputs, self.tensor_info(n.output))
        })
    }

    fn tensor_info(&self, t: usize) -> TensorInfo<'_> {
        let desc = &self.tensors[t];
        let (at, len) = desc.name;
        // Checked at load: the strings are UTF-8 and every name lies on
        // character boundaries inside them.
        let name = core::str::from_utf8(&self.bytes()[self.strings.clone()]).map_or("", |s| &s[at..at + len]);
        TensorInfo {
            name,
            dtype: desc.dtype,
            shape: desc.shape,
            quant: desc.quant,
            constant: desc.storage == Storage::Constant,
        }
    }

    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub(crate) fn node_inputs(&self, node: &Node) -> &[usize] {
        &self.node_inputs[node.inputs.0..node.inputs.1]
    }

    pub(crate) fn tensor(&self, t: usize) -> &TensorDesc {
        &self.tensors[t]
    }

    pub(crate) fn input_ids(&self) -> &[usize] {
        &self.inputs
    }

    pub(crate) fn output_ids(&self) -> &[usize] {
        &self.outputs
    }

    /// The bytes of a constant tensor.
    pub(crate) fn constant(&self, t: &TensorDesc) -> &[u8] {
        &self.bytes()[self.weights.clone()][t.range()]
    }
}

impl core::fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Model").field("info", &self.info()).finish()
    }
}

/// Checks the header, the checksum and the section table; returns the arena
/// size and the byte ranges of the sections in [`section::ALL`] order.
fn read_header(file: &[u8]) -> Result<(usize, [Range<usize>; 5]), Error> {
    if file.len() < format::MAGIC.len() || file[..format::MAGIC.len()] != format::MAGIC {
        return Err(Error::NotKiln);
    }
    let mut r = Reader::new(file, "header");
    r.take(format::MAGIC.len())?;
    let version = (r.u16()?, r.u16()?);
    if version.0 != format::VERSION_MAJOR || version.1 > format::VERSION_MINOR {
        return Err(Error::Version { found: version, supported: (format::VERSION_MAJOR, format::VERSION_MINOR) });
    }
    let flags = r.u32()?;
    if flags != 0 {
        malformed!("unknown header flags {flags:#x}");
    }
    let declared = r.u64()?;
    if declared != file.len() as u64 {
        malformed!("the header says the file has {declared} bytes, it has {} (truncated or padded?)", file.len());
    }
    let stored = r.u32()?;
    let computed = format::checksum(file);
    if stored != computed {
        return Err(Error::Checksum { stored, computed });
    }
    let count = r.u32()?;
    let arena_size = to_usize(r.u64()?);
    r.reserved(24)?;
    if count as usize != section::ALL.len() {
        malformed!("{count} sections, version 1 has exactly {}", section::ALL.len());
    }
    let mut found: [Option<Range<usize>>; 5] = Default::default();
    let mut table = Reader::new(r.rest(), "section table");
    for _ in 0..count {
        let kind = table.fourcc()?;
        table.reserved(4)?;
        let (offset, len) = (to_usize(table.u64()?), to_usize(table.u64()?));
        let name = core::str::from_utf8(&kind).unwrap_or("????");
        let Some(slot) = section::ALL.iter().position(|k| *k == kind) else {
            malformed!("unknown section kind {kind:?}");
        };
        if found[slot].is_some() {
            malformed!("section {name} appears twice");
        }
        let end = offset.checked_add(len).filter(|&end| end <= file.len());
        let Some(end) = end else {
            malformed!("section {name} ({len} bytes at {offset}) runs past the end of the file ({} bytes)", file.len());
        };
        if offset % format::ALIGN != 0 || offset < format::HEADER_LEN {
            malformed!("section {name} starts at {offset}, not a multiple of {} past the header", format::ALIGN);
        }
        found[slot] = Some(offset..end);
    }
    let ranges = found.map(|r| r.unwrap_or(0..0));
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            if a.start < b.end && b.start < a.end {
                malformed!("sections overlap ({a:?} and {b:?})");
            }
        }
    }
    check_padding(file, format::HEADER_LEN + 24 * section::ALL.len(), &ranges)?;
    Ok((arena_size, ranges))
}

/// The bytes between the section table and the sections, between sections
/// and after the last one are alignment padding: shorter than
/// [`format::ALIGN`] and zero. Anything else is data the format does not
/// describe (trailing bytes, a hidden payload).
fn check_padding(file: &[u8], table_end: usize, sections: &[Range<usize>; 5]) -> Result<(), Error> {
    let mut sorted = sections.clone();
    sorted.sort_by_key(|r| r.start);
    let mut at = table_end;
    let ends = sorted.iter().filter(|r| !r.is_empty()).map(|r| (r.start, r.end));
    for (start, end) in ends.chain([(file.len(), file.len())]) {
        let gap = at..start.max(at);
        if gap.len() >= format::ALIGN {
            malformed!("{} bytes at {} belong to no section (trailing or hidden data)", gap.len(), gap.start);
        }
        if let Some(i) = file[gap.clone()].iter().position(|&b| b != 0) {
            malformed!("padding byte {} is {:#04x}, padding is zero", gap.start + i, file[gap.start + i]);
        }
        at = at.max(end);
    }
    Ok(())
}

fn read_tensors(bytes: &[u8], bounds: &Bounds<'_>) -> Result<Vec<TensorDesc>, Error> {
    let mut r = Reader::new(bytes, "tensor table");
    let count = r.u32()? as usize;
    r.reserved(4)?;
    if count > r.rest().len() / format::TENSOR_RECORD_LEN {
        malformed!("{count} tensors do not fit the {}-byte tensor table", bytes.len());
    }
    let mut tensors = Vec::with_capacity(count);
    for index in 0..count {
        let t = TensorDesc::read(&mut r, index)?;
        let (bound, place) = match t.storage {
            Storage::Arena => (bounds.arena, "arena"),
            Storage::Constant => (bounds.weights, "weights section"),
        };
        if t.offset.checked_add(t.len).is_none_or(|end| end > bound) {
            malformed!("tensor {index}: {} bytes at {} lie outside the {bound}-byte {place}", t.len, t.offset);
        }
        if t.shape.dims().contains(&0) {
            malformed!("tensor {index}: shape {:?} has an empty dimension", t.shape.dims());
        }
        let (at, len) = t.name;
        if at.checked_add(len).and_then(|end| bounds.names.get(at..end)).is_none() {
            malformed!("tensor {index}: name lies outside the strings section");
        }
        tensors.push(t);
    }
    if !r.rest().is_empty() {
        malformed!("{} stray bytes after the tensor table", r.rest().len());
    }
    Ok(tensors)
}

fn read_graph(bytes: &[u8], tensors: usize) -> Result<(Vec<usize>, Vec<usize>), Error> {
    let mut r = Reader::new(bytes, "graph section");
    let (n_in, n_out) = (r.u32()? as usize, r.u32()? as usize);
    if n_in.saturating_add(n_out) != r.rest().len() / 4 || !r.rest().len().is_multiple_of(4) {
        malformed!("the graph section lists {n_in} inputs and {n_out} outputs but holds {} bytes", bytes.len());
    }
    let mut read = |n: usize, role: &str| -> Result<Vec<usize>, Error> {
        (0..n)
            .map(|i| match r.u32()? as usize {
                t if t < tensors => Ok(t),
                t => malformed!("graph {role} {i} is tensor {t}, there are {tensors}"),
            })
            .collect()
    };
    let inputs = read(n_in, "input")?;
    let outputs = read(n_out, "output")?;
    if outputs.is_empty() {
        malformed!("the model has no outputs");
    }
    Ok((inputs, outputs))
}

fn read_ops(bytes: &[u8], tensors: &[TensorDesc], weights: &[u8]) -> Result<(Vec<Node>, Vec<usize>), Error> {
    let mut r = Reader::new(bytes, "operator list");
    let count = r.u32()? as usize;
    r.reserved(4)?;
    // Every record is at least 12 bytes: bound the allocation by the bytes.
    if count > r.rest().len() / 12 {
        malformed!("{count} operators do not fit the {}-byte operator list", bytes.len());
    }
    let mut nodes = Vec::with_capacity(count);
    let mut pool = Vec::new();
    let mut param_words = Vec::new();
    for index in 0..count {
        let code = r.u16()?;
        let Some(kind) = OpKind::from_code(code) else {
            malformed!("operator {index}: unknown kind {code} (from a newer converter?)");
        };
        let (n_in, n_out) = (usize::from(r.u8()?), usize::from(r.u8()?));
        let n_params = usize::from(r.u16()?);
        r.reserved(2)?;
        let (min_in, max_in) = ops::arity(kind);
        if !(min_in..=max_in).contains(&n_in) || n_out != 1 {
            malformed!("operator {index} ({kind:?}): {n_in} inputs and {n_out} outputs, {min_in} to {max_in} inputs and 1 output expected");
        }
        let start = pool.len();
        for i in 0..n_in {
            let t = r.u32()?;
            let optional = i >= min_in;
            pool.push(match t {
                format::ABSENT if optional => ABSENT,
                t if (t as usize) < tensors.len() => t as usize,
                t => malformed!("operator {index} ({kind:?}): input {i} is tensor {t}, there are {}", tensors.len()),
            });
        }
        let output = r.u32()? as usize;
        if output >= tensors.len() {
            malformed!("operator {index} ({kind:?}): output is tensor {output}, there are {}", tensors.len());
        }
        param_words.clear();
        for _ in 0..n_params {
            param_words.push(r.i32()?);
        }
        let op: Op = Op::decode(kind, &param_words, index)?;
        let inputs: Vec<Option<&TensorDesc>> = pool[start..].iter().map(|&t| tensors.get(t)).collect();
        ops::check(&op, &Site { index, kind, inputs: &inputs, output: &tensors[output], weights })?;
        nodes.push(Node { kind, op, inputs: (start, pool.len()), output });
    }
    if !r.rest().is_empty() {
        malformed!("{} stray bytes after the operator list", r.rest().len());
    }
    Ok((nodes, pool))
}

/// Checks the memory plan: activations are written once, read only after
/// they are written, and never overwritten while still needed.
fn check_plan(model: &Model<'_>) -> Result<(), Error> {
    const UNWRITTEN: usize = usize::MAX;
    let n = model.tensors.len();
    // Step at which each tensor is written (0 = before the first operator,
    // for graph inputs), and the last step that reads it.
    let mut written = alloc::vec![UNWRITTEN; n];
    let mut last_read = alloc::vec![0usize; n];
    for &t in &model.inputs {
        if model.tensors[t].storage != Storage::Arena {
            malformed!("graph input tensor {t} is not an activation");
        }
        written[t] = 0;
    }
    for (i, node) in model.nodes.iter().enumerate() {
        let step = i + 1;
        for t in model.node_inputs(node).iter().copied().filter(|&t| t != ABSENT) {
            let constant = model.tensors[t].storage == Storage::Constant;
            if !constant && written[t] == UNWRITTEN {
                malformed!("operator {i} ({:?}) reads tensor {t} before anything writes it", node.kind);
            }
            last_read[t] = step;
        }
        let out = node.output;
        if model.tensors[out].storage != Storage::Arena {
            malformed!("operator {i} ({:?}) writes tensor {out}, which is not an activation", node.kind);
        }
        if written[out] != UNWRITTEN {
            malformed!("tensor {out} is written twice (operator {i} and an earlier one or the graph input)");
        }
        written[out] = step;
    }
    for &t in &model.outputs {
        if written[t] == UNWRITTEN {
            malformed!("graph output tensor {t} is never written");
        }
        last_read[t] = usize::MAX;
    }
    // When operator `step` writes its output, no other tensor that was
    // written before and is read at `step` or later may share its bytes.
    let mut live: Vec<usize> = model.inputs.clone();
    for (i, node) in model.nodes.iter().enumerate() {
        let step = i + 1;
        live.retain(|&t| last_read[t] >= step);
        let out = &model.tensors[node.output];
        for &t in &live {
            let other = &model.tensors[t];
            if t != node.output && out.offset < other.offset + other.len && other.offset < out.offset + out.len {
                malformed!(
                    "memory plan: operator {i} ({:?}) writes tensor {} over tensor {t}, which is still needed",
                    node.kind,
                    node.output
                );
            }
        }
        live.push(node.output);
    }
    Ok(())
}
