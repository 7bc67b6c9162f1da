//! Int8 kernels. [`scalar`] is the specification: plain loops that say what
//! every operator computes, to the bit. Faster kernels must match it exactly.
//!
//! Kernels take their operands as views whose shapes the model checked at
//! load, so they have no failure cases of their own.
//!
//! Each operator with faster kernels has a table of implementations (name,
//! ISA level, function), best first, per architecture. [`Kernels::new`]
//! resolves every table once, for a [`Isa`] level, into function pointers:
//! the first entry whose level the session allows and the CPU supports,
//! else the scalar kernel. Names follow XNNPACK's convention:
//! `qgemm_i8_8x32c4__avx512vnni` is an int8 GEMM with 8×32 tiles and K in
//! groups of 4, for AVX-512 VNNI.
//!
//! | operator | kernels, best first |
//! |---|---|
//! | Conv (groups = 1, any window) and fully connected | `qgemm_i8_8x32c4__avx512vnni`, `qgemm_i8_4x16c4__avxvnni`, `qgemm_i8_2x16c4__avx2`, `qgemm_i8_4x16c4__dotprod`, `qgemm_i8_3x16c4__neon`, scalar |
//! | depthwise Conv (any window) | `dwconv_i8_kxk__avx512vnni`, `dwconv_i8_kxk__avx2` (also at the AVX-VNNI level), `dwconv_i8_kxk__neon`, scalar |
//! | Add | `vadd_i8__avx2` (same shapes; broadcasts run scalar), scalar |
//! | float Conv (groups = 1 or depthwise) and fully connected | `fconv_f32_16x4__avx512`, `fconv_f32_8x4__avx2`, `fconv_f32_4x4__neon`, scalar |
//! | everything else, grouped Conv | scalar |
//!
//! No kernel needs scratch memory in the arena, so the memory plan has no
//! per-operator scratch: the GEMM reads its input rows in place (an
//! implicit im2col) and uses at most about 20 KiB of stack (shifted input
//! rows and the per-channel constants of its output stage).

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
mod float_conv;
// The portable halves of the SIMD kernels: unused where no SIMD kernels exist.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
mod depthwise;
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
mod gemm;
mod isa;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use isa::Isa;

use crate::format::pack::Layout;
use crate::ops::{Act, Bounds, Conv2d};
use crate::{Error, Quant, Shape};

type ConvFn = unsafe fn(&Conv2d, QIn<'_>, Weights<'_>, &[i32], &Requant<'_>, QOut<'_>);
type FcFn = unsafe fn(QIn<'_>, Weights<'_>, &[i32], &Requant<'_>, QOut<'_>);
type AddFn = unsafe fn(QIn<'_>, QIn<'_>, Act, QOut<'_>);
type FloatConvFn = unsafe fn(&Conv2d, FIn<'_>, &FloatAffine<'_>, FOut<'_>);
type FloatFcFn = unsafe fn(FIn<'_>, &FloatAffine<'_>, FOut<'_>);

/// Float convolutions (one group or depthwise) and fully connected layers.
#[derive(Clone, Copy)]
struct FloatFns {
    conv: FloatConvFn,
    fc: FloatFcFn,
}

/// The GEMM behind convolutions (groups = 1) and fully connected layers.
#[derive(Clone, Copy)]
struct GemmFns {
    conv: ConvFn,
    fc: FcFn,
}

/// One implementation of an operator. Its functions are `unsafe`: they may
/// be called only on a CPU that supports `isa`, with operands that passed
/// the loader's checks.
struct Impl<F: 'static> {
    name: &'static str,
    isa: Isa,
    f: F,
}

static SCALAR_GEMM: Impl<GemmFns> =
    Impl { name: "qgemm_i8__scalar", isa: Isa::Scalar, f: GemmFns { conv: scalar_conv, fc: scalar_fc } };
static SCALAR_CONV: Impl<ConvFn> = Impl { name: "conv_i8__scalar", isa: Isa::Scalar, f: scalar_conv };

/// [`scalar::conv2d`] on packed weights, as a function pointer.
fn scalar_conv(p: &Conv2d, x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
    scalar::conv2d(p, x, w, bias, rq, y)
}

/// [`scalar::fully_connected`] on packed weights, as a function pointer.
fn scalar_fc(x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
    scalar::fully_connected(x, w, bias, rq, y)
}
static SCALAR_ADD: Impl<AddFn> = Impl { name: "vadd_i8__scalar", isa: Isa::Scalar, f: scalar::add };
static SCALAR_FLOAT: Impl<FloatFns> = Impl {
    name: "fconv_f32__scalar",
    isa: Isa::Scalar,
    f: FloatFns { conv: scalar::float::conv2d, fc: scalar::float::fully_connected },
};

#[cfg(target_arch = "aarch64")]
use aarch64 as native;
#[cfg(target_arch = "x86_64")]
use x86 as native;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod native {
    pub(super) static GEMM: [super::Impl<super::GemmFns>; 0] = [];
    pub(super) static DWCONV: [super::Impl<super::ConvFn>; 0] = [];
    pub(super) static ADD: [super::Impl<super::AddFn>; 0] = [];
    pub(super) static FLOAT: [super::Impl<super::FloatFns>; 0] = [];
}

/// The kernels of one session: every operator's implementation, chosen once.
#[derive(Clone, Copy)]
pub struct Kernels {
    isa: Isa,
    gemm: &'static Impl<GemmFns>,
    dwconv: &'static Impl<ConvFn>,
    add: &'static Impl<AddFn>,
    float: &'static Impl<FloatFns>,
}

impl core::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kernels").field("isa", &self.isa).field("names", &self.names()).finish()
    }
}

impl Kernels {
    /// The kernels for level `isa` ([`Isa::Auto`]: the best this CPU
    /// supports). A level the CPU does not support is an error.
    pub fn new(isa: Isa) -> Result<Kernels, Error> {
        let level = if isa == Isa::Auto { Isa::best() } else { isa };
        if !level.is_supported() {
            return Err(Error::UnsupportedIsa(level));
        }
        fn pick<F>(level: Isa, table: &'static [Impl<F>], scalar: &'static Impl<F>) -> &'static Impl<F> {
            table.iter().find(|i| level.allows(i.isa) && i.isa.is_supported()).unwrap_or(scalar)
        }
        Ok(Kernels {
            isa: level,
            gemm: pick(level, &native::GEMM, &SCALAR_GEMM),
            dwconv: pick(level, &native::DWCONV, &SCALAR_CONV),
            add: pick(level, &native::ADD, &SCALAR_ADD),
            float: pick(level, &native::FLOAT, &SCALAR_FLOAT),
        })
    }

    /// The level the kernels were chosen for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The names of the chosen GEMM, depthwise, Add and float convolution
    /// kernels.
    pub fn names(&self) -> [&'static str; 4] {
        [self.gemm.name, self.dwconv.name, self.add.name, self.float.name]
    }

    /// A convolution, as [`scalar::conv2d`], on operands the loader checked.
    pub(crate) fn conv2d(&self, p: &Conv2d, x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
        let f = match w.layout {
            Layout::Depthwise { .. } => self.dwconv.f,
            Layout::Gemm { groups: 1, .. } => self.gemm.f.conv,
            Layout::Gemm { .. } => SCALAR_CONV.f,
        };
        // SAFETY: `new` chose kernels whose ISA the CPU supports; the
        // operands passed the loader's checks for this operator.
        unsafe { f(p, x, w, bias, rq, y) }
    }

    /// A fully connected layer, as [`scalar::fully_connected`].
    pub(crate) fn fully_connected(&self, x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
        // SAFETY: as in `conv2d`.
        unsafe { (self.gemm.f.fc)(x, w, bias, rq, y) }
    }

    /// A float convolution, as [`scalar::float::conv2d`]: grouped
    /// convolutions other than depthwise with one weight per group run
    /// the scalar kernel.
    pub(crate) fn float_conv2d(&self, p: &Conv2d, x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
        let [_, _, group_in, o] = f.shape.nhwc();
        let vectorized = p.groups == 1 || (group_in == 1 && p.groups == o);
        let conv = if vectorized { self.float.f.conv } else { SCALAR_FLOAT.f.conv };
        // SAFETY: as in `conv2d`; the SIMD kernels take one group or
        // depthwise with one weight per group, as checked here.
        unsafe { conv(p, x, f, y) }
    }

    /// A float fully connected layer, as [`scalar::float::fully_connected`].
    pub(crate) fn float_fully_connected(&self, x: FIn<'_>, f: &FloatAffine<'_>, y: FOut<'_>) {
        // SAFETY: as in `conv2d`.
        unsafe { (self.float.f.fc)(x, f, y) }
    }

    /// An elementwise sum, as [`scalar::add`].
    pub(crate) fn add(&self, a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>) {
        // SAFETY: as in `conv2d`.
        unsafe { (self.add.f)(a, b, act, y) }
    }
}

/// Convolution or fully connected weights, packed in the file
/// ([`crate::format::pack`]).
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a> {
    /// The packed bytes.
    pub data: &'a [u8],
    /// The logical shape: `[O, KH, KW, C/groups]` or `[O, K]`.
    pub shape: Shape,
    /// How `data` is laid out.
    pub layout: Layout,
}

/// Where the scalar kernels read convolution and fully connected weights
/// from: the packed [`Weights`] of a model, or plain OHWI values in a
/// [`QIn`] (for tests that state weights directly). The arithmetic does not
/// depend on the layout.
pub trait WeightSource {
    /// The logical shape: `[O, KH, KW, C/groups]` or `[O, K]`.
    fn shape(&self) -> Shape;
    /// The weight of output channel `o`, window position `tap`
    /// (`ky * KW + kx`) and input channel `i` (within the group).
    fn at(&self, o: usize, tap: usize, i: usize) -> i8;
}

impl WeightSource for Weights<'_> {
    fn shape(&self) -> Shape {
        self.shape
    }

    #[inline(always)]
    fn at(&self, o: usize, tap: usize, i: usize) -> i8 {
        self.data[self.layout.index(o, tap, i)] as i8
    }
}

impl WeightSource for QIn<'_> {
    fn shape(&self) -> Shape {
        self.shape
    }

    /// Plain OHWI (or `[O, K]`): `data[(o * taps + tap) * K + i]`.
    #[inline(always)]
    fn at(&self, o: usize, tap: usize, i: usize) -> i8 {
        let dims = self.shape.nhwc();
        let (taps, k) = if self.shape.rank() == 2 { (1, dims[1]) } else { (dims[1] * dims[2], dims[3]) };
        self.data[(o * taps + tap) * k + i]
    }
}

/// A tensor that a kernel reads: int8 ([`QIn`]) or f32 ([`FIn`], whose
/// quantization is [`Quant::IDENTITY`] and unused).
#[derive(Clone, Copy, Debug)]
pub struct In<'a, T> {
    /// The elements, row-major.
    pub data: &'a [T],
    /// The shape.
    pub shape: Shape,
    /// The quantization.
    pub quant: Quant,
}

/// A tensor that a kernel writes, as [`In`].
#[derive(Debug)]
pub struct Out<'a, T> {
    /// The elements, row-major.
    pub data: &'a mut [T],
    /// The shape.
    pub shape: Shape,
    /// The quantization.
    pub quant: Quant,
}

/// An int8 tensor that a kernel reads.
pub type QIn<'a> = In<'a, i8>;
/// An int8 tensor that a kernel writes.
pub type QOut<'a> = Out<'a, i8>;
/// An f32 tensor that a kernel reads.
pub type FIn<'a> = In<'a, f32>;
/// An f32 tensor that a kernel writes.
pub type FOut<'a> = Out<'a, f32>;

impl<'a> FIn<'a> {
    /// An f32 view.
    pub fn new(data: &'a [f32], shape: Shape) -> Self {
        In { data, shape, quant: Quant::IDENTITY }
    }
}

impl<'a> FOut<'a> {
    /// An f32 view.
    pub fn new(data: &'a mut [f32], shape: Shape) -> Self {
        Out { data, shape, quant: Quant::IDENTITY }
    }
}

/// Float weights as the file stores them: f16 (widened to f32 exactly) or
/// f32, row-major in the operator's layout.
#[derive(Clone, Copy, Debug)]
pub enum FloatWeights<'a> {
    /// IEEE binary16.
    F16(&'a [half::f16]),
    /// IEEE binary32.
    F32(&'a [f32]),
}

impl FloatWeights<'_> {
    /// Weight `i`, as f32.
    #[inline(always)]
    pub fn at(&self, i: usize) -> f32 {
        match self {
            FloatWeights::F16(w) => w[i].to_f32(),
            FloatWeights::F32(w) => w[i],
        }
    }
}

/// The weights and output stage of a float convolution or fully connected
/// layer.
#[derive(Clone, Copy, Debug)]
pub struct FloatAffine<'a> {
    /// `[KH, KW, C/groups, O]` or `[K, O]`: the output channel is last.
    pub weights: FloatWeights<'a>,
    /// The weights' shape.
    pub shape: Shape,
    /// One per output channel.
    pub bias: &'a [f32],
    /// Per output channel, the factor for negative values (a fused PRelu).
    pub alpha: Option<&'a [f32]>,
    /// The fused clamp.
    pub bounds: Bounds,
}

impl FloatAffine<'_> {
    /// Output channel `o` of accumulator `acc`: `v = acc + bias[o]`, then
    /// `v * alpha[o]` where `v < 0`, then the bounds.
    #[inline(always)]
    pub fn finish(&self, acc: f32, o: usize) -> f32 {
        let mut v = acc + self.bias[o];
        if let Some(alpha) = self.alpha {
            if v < 0.0 {
                v *= alpha[o];
            }
        }
        self.bounds.apply(v)
    }
}

/// The output stage of a convolution or fully connected layer.
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    /// Per output channel, `s_x * s_w[c] / s_y`.
    pub multiplier: &'a [f32],
    /// Per output channel, used instead where the accumulator is negative
    /// (a fused PRelu); the same slice as `multiplier` when there is none.
    pub negative: &'a [f32],
    /// Output zero point.
    pub zero_point: i32,
    /// Fused activation.
    pub act: Act,
}

impl Requant<'_> {
    /// The int8 output of channel `c` for accumulator `acc`.
    #[inline(always)]
    pub fn apply(&self, acc: i32, c: usize) -> i8 {
        let m = if acc >= 0 { self.multiplier[c] } else { self.negative[c] };
        crate::quant::requantize(acc, m, self.zero_point, self.act.min, self.act.max)
    }
}
