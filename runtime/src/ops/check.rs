//! Load-time checks of each operator against its tensors: dtypes, storage,
//! shapes and parameters. What passes here, the kernels can run without
//! further checks.

use super::{Op, OpKind};
use crate::error::{malformed, Error};
use crate::format::pack::Layout;
use crate::format::{DType, Storage, TensorDesc};

/// What one operator sees: its index and kind (for messages), its inputs
/// (`None` for an absent optional one), its output, and the weights section
/// (whose bounds every constant was checked against).
pub(crate) struct Site<'a> {
    pub index: usize,
    pub kind: OpKind,
    pub inputs: &'a [Option<&'a TensorDesc>],
    pub output: &'a TensorDesc,
    pub weights: &'a [u8],
}

impl<'a> Site<'a> {
    fn fail<T>(&self, what: core::fmt::Arguments<'_>) -> Result<T, Error> {
        malformed!("operator {} ({:?}): {}", self.index, self.kind, what)
    }

    fn input(&self, i: usize) -> Result<&'a TensorDesc, Error> {
        match self.inputs.get(i).copied().flatten() {
            Some(t) => Ok(t),
            None => self.fail(format_args!("input {i} is absent but required")),
        }
    }

    /// Input `i`, checked to have `dtype`; constants must be stored in the file.
    fn typed(&self, i: usize, dtype: DType, constant: bool) -> Result<&'a TensorDesc, Error> {
        let t = self.input(i)?;
        if t.dtype != dtype {
            return self.fail(format_args!("input {i} is {:?}, {dtype:?} expected", t.dtype));
        }
        if constant && t.storage != Storage::Constant {
            return self.fail(format_args!("input {i} must be a constant in the file"));
        }
        Ok(t)
    }

    fn output_typed(&self, dtype: DType) -> Result<&'a TensorDesc, Error> {
        if self.output.dtype != dtype {
            return self.fail(format_args!("output is {:?}, {dtype:?} expected", self.output.dtype));
        }
        Ok(self.output)
    }

    fn dims(&self, t: &TensorDesc, rank: usize, role: &str) -> Result<[usize; 4], Error> {
        if t.shape.rank() != rank {
            return self.fail(format_args!("{role} has rank {}, {rank} expected", t.shape.rank()));
        }
        Ok(t.shape.nhwc())
    }

    fn same_shape(&self, a: &TensorDesc, b: &TensorDesc) -> Result<(), Error> {
        if a.shape != b.shape {
            return self.fail(format_args!("shapes {:?} and {:?} differ", a.shape.dims(), b.shape.dims()));
        }
        Ok(())
    }

    fn same_quant(&self, a: &TensorDesc, b: &TensorDesc) -> Result<(), Error> {
        if a.quant != b.quant {
            return self.fail(format_args!("input and output quantization differ ({:?}, {:?})", a.quant, b.quant));
        }
        Ok(())
    }

    /// A per-channel constant vector of `len` elements.
    fn vector(&self, i: usize, dtype: DType, len: usize) -> Result<(), Error> {
        let t = self.typed(i, dtype, true)?;
        if t.shape.dims() != [len] {
            return self.fail(format_args!("input {i} has shape {:?}, [{len}] expected", t.shape.dims()));
        }
        Ok(())
    }

    /// Weights (packed in `layout`), bias, multiplier and optional negative
    /// multiplier of a Conv2d or FullyConnected with `outputs` channels.
    fn affine(&self, outputs: usize, layout: Layout, weights: &[u8]) -> Result<(), Error> {
        if self.input(1)?.quant.zero_point != 0 {
            return self.fail(format_args!("weights must be symmetric (zero point 0)"));
        }
        let expected = layout.checked_len();
        if expected != Some(weights.len()) {
            return self.fail(format_args!(
                "packed weights hold {} bytes, their layout {layout:?} needs {expected:?}",
                weights.len()
            ));
        }
        if let Err(what) = layout.verify(weights) {
            return self.fail(format_args!("packed weights: {what}"));
        }
        self.vector(2, DType::I32, outputs)?;
        self.vector(3, DType::F32, outputs)?;
        if self.inputs.get(4).copied().flatten().is_some() {
            self.vector(4, DType::F32, outputs)?;
        }
        Ok(())
    }
}

impl Site<'_> {
    /// Input `i` as an activation of int8 or f32, the dtypes operators that
    /// only move elements take.
    fn movable(&self, i: usize) -> Result<&TensorDesc, Error> {
        let t = self.input(i)?;
        if !matches!(t.dtype, DType::I8 | DType::F32) {
            return self.fail(format_args!("input {i} is {:?}, I8 or F32 expected", t.dtype));
        }
        Ok(t)
    }

    /// The weights (input 1, an f16 or f32 constant of `rank`), bias and
    /// optional slope of a float convolution or fully connected layer:
    /// returns the weights' dimensions.
    fn float_affine(&self, rank: usize) -> Result<[usize; 4], Error> {
        let wt = self.input(1)?;
        if !matches!(wt.dtype, DType::F16 | DType::F32) || wt.storage != Storage::Constant {
            return self.fail(format_args!("weights must be an f16 or f32 constant, found {:?}", wt.dtype));
        }
        let dims = self.dims(wt, rank, "weights")?;
        let outputs = dims[rank - 1];
        self.vector(2, DType::F32, outputs)?;
        if self.inputs.get(3).copied().flatten().is_some() {
            self.vector(3, DType::F32, outputs)?;
        }
        Ok(dims)
    }

    /// Inputs `0..count` broadcast to the output (each dimension equal to
    /// the output's or 1, aligned at the last), all of `dtype`.
    fn broadcasts(&self, count: usize, dtype: DType) -> Result<(), Error> {
        let y = self.output_typed(dtype)?;
        for i in 0..count {
            let t = self.typed(i, dtype, false)?;
            let fits = t.shape.rank() <= y.shape.rank()
                && t.shape.dims().iter().rev().zip(y.shape.dims().iter().rev()).all(|(&a, &b)| a == b || a == 1);
            if !fits {
                return self.fail(format_args!(
                    "input {i} of shape {:?} does not broadcast to the output's {:?}",
                    t.shape.dims(),
                    y.shape.dims()
                ));
            }
        }
        Ok(())
    }

    /// The output shape of the convolution `p` with a `[kh, kw]` window
    /// on `x` [N,H,W,C], with `o` output channels.
    fn conv_output(
        &self,
        p: &super::Conv2d,
        x: [usize; 4],
        kh: usize,
        kw: usize,
        o: usize,
    ) -> Result<[usize; 4], Error> {
        let [n, h, w, _] = x;
        let [top, left, bottom, right] = p.pad;
        let oh = window_out(h, top + bottom, kh, p.dilation[0], p.stride[0]);
        let ow = window_out(w, left + right, kw, p.dilation[1], p.stride[1]);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return self.fail(format_args!("the {kh}x{kw} kernel does not fit the padded {h}x{w} input"));
        };
        Ok([n, oh, ow, o])
    }

    /// That `groups` divides `c` input and `o` output channels with `cg`
    /// weights per group.
    fn groups_fit(&self, c: usize, o: usize, cg: usize, groups: usize) -> Result<(), Error> {
        if !c.is_multiple_of(groups) || !o.is_multiple_of(groups) || cg != c / groups {
            return self.fail(format_args!(
                "{c} input and {o} output channels, weights for {cg} per group, {groups} groups do not fit"
            ));
        }
        Ok(())
    }
}

/// Output size of a sliding window: `(size + pads - span) / stride + 1`,
/// where `span` is the dilated window; `None` if the window does not fit.
fn window_out(size: usize, pads: usize, window: usize, dilation: usize, stride: usize) -> Option<usize> {
    let span = window.checked_sub(1)?.checked_mul(dilation)?.checked_add(1)?;
    let padded = size.checked_add(pads)?;
    Some(padded.checked_sub(span)? / stride + 1)
}

/// Checks operator `site` as decoded into `op`.
pub(crate) fn check(op: &Op, site: &Site<'_>) -> Result<(), Error> {
    let y = site.output;
    match *op {
        Op::Conv2d(p) => {
            let x = site.dims(site.typed(0, DType::I8, false)?, 4, "input")?;
            let wt = site.typed(1, DType::Packed, true)?;
            let [o, kh, kw, cg] = site.dims(wt, 4, "weights")?;
            site.groups_fit(x[3], o, cg, p.groups)?;
            site.affine(o, Layout::conv([o, kh, kw, cg], p.groups), &site.weights[wt.range()])?;
            let dims = site.conv_output(&p, x, kh, kw, o)?;
            expect_dims(site, site.output_typed(DType::I8)?, dims, 4)
        }
        Op::FloatConv2d(f) => {
            let x = site.dims(site.typed(0, DType::F32, false)?, 4, "input")?;
            let [kh, kw, cg, o] = site.float_affine(4)?;
            site.groups_fit(x[3], o, cg, f.conv.groups)?;
            let dims = site.conv_output(&f.conv, x, kh, kw, o)?;
            expect_dims(site, site.output_typed(DType::F32)?, dims, 4)
        }
        Op::FloatFullyConnected(_) => {
            let [n, k, ..] = site.dims(site.typed(0, DType::F32, false)?, 2, "input")?;
            let [wk, o, ..] = site.float_affine(2)?;
            if wk != k {
                return site.fail(format_args!("input has {k} features, weights expect {wk}"));
            }
            expect_dims(site, site.output_typed(DType::F32)?, [n, o, 1, 1], 2)
        }
        Op::FloatBinary(_) => site.broadcasts(2, DType::F32),
        Op::FloatUnary { .. } | Op::FloatSoftmax => {
            site.same_shape(site.typed(0, DType::F32, false)?, site.output_typed(DType::F32)?)
        }
        Op::FloatMatMul => {
            let (a, b) = (site.typed(0, DType::F32, false)?, site.typed(1, DType::F32, false)?);
            let rank = a.shape.rank();
            let (ad, bd) = (a.shape.nhwc(), b.shape.nhwc());
            if !(2..=4).contains(&rank) || b.shape.rank() != rank || ad[..rank - 2] != bd[..rank - 2] {
                return site.fail(format_args!(
                    "operands {:?} and {:?}: ranks 2 to 4, equal, with the same leading dimensions expected",
                    a.shape.dims(),
                    b.shape.dims()
                ));
            }
            if ad[rank - 1] != bd[rank - 2] {
                return site.fail(format_args!("{:?} times {:?}: inner sizes differ", a.shape.dims(), b.shape.dims()));
            }
            let mut dims = ad;
            dims[rank - 1] = bd[rank - 1];
            expect_dims(site, site.output_typed(DType::F32)?, dims, rank)
        }
        Op::FullyConnected(_) => {
            let [n, k, ..] = site.dims(site.typed(0, DType::I8, false)?, 2, "input")?;
            let wt = site.typed(1, DType::Packed, true)?;
            let [o, wk, ..] = site.dims(wt, 2, "weights")?;
            if wk != k {
                return site.fail(format_args!("input has {k} features, weights expect {wk}"));
            }
            site.affine(o, Layout::fully_connected(o, k), &site.weights[wt.range()])?;
            expect_dims(site, site.output_typed(DType::I8)?, [n, o, 1, 1], 2)
        }
        Op::Add(_) | Op::Sub(_) | Op::Mul(_) | Op::Max(_) | Op::Min(_) => site.broadcasts(2, DType::I8),
        Op::Concat { axis } => {
            let y = site.output_typed(site.movable(0)?.dtype)?;
            if axis >= y.shape.rank() {
                return site.fail(format_args!("axis {axis} is past the output's rank {}", y.shape.rank()));
            }
            let mut total = 0usize;
            for i in 0..site.inputs.len() {
                let t = site.typed(i, y.dtype, false)?;
                let mut dims = t.shape.nhwc();
                if t.shape.rank() != y.shape.rank() {
                    return site.fail(format_args!(
                        "input {i} has rank {}, the output {}",
                        t.shape.rank(),
                        y.shape.rank()
                    ));
                }
                total += dims[axis];
                dims[axis] = y.shape.nhwc()[axis];
                if dims != y.shape.nhwc() {
                    return site.fail(format_args!(
                        "input {i} of shape {:?} does not fit the output {:?}",
                        t.shape.dims(),
                        y.shape.dims()
                    ));
                }
            }
            if total != y.shape.nhwc()[axis] {
                return site.fail(format_args!(
                    "inputs add up to {total} along axis {axis}, the output has {}",
                    y.shape.nhwc()[axis]
                ));
            }
            Ok(())
        }
        Op::MaxPool(p) | Op::AvgPool(p) => {
            let x = site.typed(0, DType::I8, false)?;
            let [n, h, w, c] = site.dims(x, 4, "input")?;
            if matches!(op, Op::MaxPool(_)) {
                site.same_quant(x, y)?;
            }
            let [top, left, bottom, right] = p.pad;
            let oh = window_out(h, top + bottom, p.kernel[0], 1, p.stride[0]);
            let ow = window_out(w, left + right, p.kernel[1], 1, p.stride[1]);
            let (Some(oh), Some(ow)) = (oh, ow) else {
                return site.fail(format_args!("the {:?} window does not fit the padded {h}x{w} input", p.kernel));
            };
            expect_dims(site, site.output_typed(DType::I8)?, [n, oh, ow, c], 4)
        }
        Op::GlobalAvgPool => {
            let [n, _, _, c] = site.dims(site.typed(0, DType::I8, false)?, 4, "input")?;
            expect_dims(site, site.output_typed(DType::I8)?, [n, 1, 1, c], 4)
        }
        Op::PRelu => {
            let x = site.typed(0, DType::I8, false)?;
            let channels = x.shape.dims().last().copied().unwrap_or(1);
            site.vector(1, DType::F32, channels)?;
            site.same_shape(x, site.output_typed(DType::I8)?)
        }
        Op::Lut => {
            let x = site.typed(0, DType::I8, false)?;
            site.vector(1, DType::I8, 256)?;
            site.same_shape(x, site.output_typed(DType::I8)?)
        }
        Op::Softmax => {
            let x = site.typed(0, DType::I8, false)?;
            site.vector(1, DType::F32, 256)?;
            site.same_shape(x, site.output_typed(DType::I8)?)
        }
        Op::L2Norm | Op::Clamp(_) => {
            let x = site.typed(0, DType::I8, false)?;
            if matches!(op, Op::Clamp(_)) {
                site.same_quant(x, y)?;
            }
            site.same_shape(x, site.output_typed(DType::I8)?)
        }
        Op::Reshape => {
            let x = site.input(0)?;
            site.output_typed(x.dtype)?;
            site.same_quant(x, y)?;
            if x.shape.elements() != y.shape.elements() {
                return site.fail(format_args!(
                    "reshape from {:?} to {:?} changes the element count",
                    x.shape.dims(),
                    y.shape.dims()
                ));
            }
            Ok(())
        }
        Op::Transpose { perm, axes } => {
            let x = site.movable(0)?;
            site.same_quant(x, y)?;
            let rank = x.shape.rank();
            let mut seen = [false; 4];
            for &a in &perm[..axes] {
                if a >= rank || core::mem::replace(&mut seen[a], true) {
                    return site.fail(format_args!("{:?} is not a permutation of {rank} axes", &perm[..axes]));
                }
            }
            if axes != rank {
                return site.fail(format_args!("{axes} axes for a rank-{rank} input"));
            }
            let mut dims = [1; 4];
            for (d, &a) in dims.iter_mut().zip(&perm[..rank]) {
                *d = x.shape.nhwc()[a];
            }
            expect_dims(site, site.output_typed(x.dtype)?, dims, rank)
        }
        Op::Pad { before, after, axes, .. } => {
            let x = site.typed(0, DType::I8, false)?;
            site.same_quant(x, y)?;
            let rank = x.shape.rank();
            if axes != rank {
                return site.fail(format_args!("padding for {axes} axes, the input has {rank}"));
            }
            let mut dims = [1; 4];
            for i in 0..rank {
                let Some(d) = x.shape.nhwc()[i].checked_add(before[i]).and_then(|d| d.checked_add(after[i])) else {
                    return site.fail(format_args!("padded size overflows"));
                };
                dims[i] = d;
            }
            expect_dims(site, site.output_typed(DType::I8)?, dims, rank)
        }
        Op::Slice { start, step, axes } => {
            let x = site.movable(0)?;
            site.same_quant(x, y)?;
            let rank = x.shape.rank();
            if axes != rank || y.shape.rank() != rank {
                return site.fail(format_args!(
                    "slice parameters for {axes} axes, the input has rank {rank}, the output {}",
                    y.shape.rank()
                ));
            }
            let (xd, yd) = (x.shape.nhwc(), site.output_typed(x.dtype)?.shape.nhwc());
            for a in 0..rank {
                // The first and last source index along `a`, in i128 so that
                // no product of a file's numbers overflows.
                let last = start[a] as i128 + (yd[a] as i128 - 1) * step[a] as i128;
                if yd[a] > 0 && !(start[a] < xd[a] && (0..xd[a] as i128).contains(&last)) {
                    return site.fail(format_args!(
                        "axis {a}: {} elements from {} by step {} leave the input's 0..{}",
                        yd[a], start[a], step[a], xd[a]
                    ));
                }
            }
            Ok(())
        }
        Op::Reduce { .. } | Op::FloatReduce { .. } => {
            let dtype = if matches!(op, Op::Reduce { .. }) { DType::I8 } else { DType::F32 };
            let x = site.typed(0, dtype, false)?;
            let rank = x.shape.rank();
            let mut dims = x.shape.nhwc();
            match rank.checked_sub(1) {
                Some(last) if dims[last] > 0 => dims[last] = 1,
                _ => return site.fail(format_args!("input {:?} has no last dimension to reduce", x.shape.dims())),
            }
            expect_dims(site, site.output_typed(dtype)?, dims, rank)
        }
        Op::ZeroInsert { stride } => {
            let x = site.typed(0, DType::I8, false)?;
            site.same_quant(x, y)?;
            let [n, h, w, c] = site.dims(x, 4, "input")?;
            let spread = |size: usize, s: usize| size.checked_sub(1)?.checked_mul(s)?.checked_add(1);
            let (Some(oh), Some(ow)) = (spread(h, stride[0]), spread(w, stride[1])) else {
                return site.fail(format_args!("{h}x{w} input at stride {stride:?}: empty, or the output overflows"));
            };
            expect_dims(site, site.output_typed(DType::I8)?, [n, oh, ow, c], 4)
        }
        Op::Resize(_) => {
            let [n, _, _, c] = site.dims(site.typed(0, DType::I8, false)?, 4, "input")?;
            let [yn, _, _, yc] = site.dims(site.output_typed(DType::I8)?, 4, "output")?;
            if (n, c) != (yn, yc) {
                return site.fail(format_args!("resize changes batch or channels"));
            }
            Ok(())
        }
        Op::Quantize => {
            let x = site.input(0)?;
            if !matches!(x.dtype, DType::F32 | DType::I8) {
                return site.fail(format_args!("input is {:?}, F32 or I8 expected", x.dtype));
            }
            site.same_shape(x, site.output_typed(DType::I8)?)
        }
        Op::Dequantize => {
            let x = site.typed(0, DType::I8, false)?;
            site.same_shape(x, site.output_typed(DType::F32)?)
        }
    }
}

fn expect_dims(site: &Site<'_>, y: &TensorDesc, dims: [usize; 4], rank: usize) -> Result<(), Error> {
    if y.shape.rank() != rank || y.shape.nhwc() != dims {
        return site.fail(format_args!("output has shape {:?}, {:?} expected", y.shape.dims(), &dims[..rank]));
    }
    Ok(())
}
