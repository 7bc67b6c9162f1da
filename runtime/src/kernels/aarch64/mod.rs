//! aarch64 kernels: Advanced SIMD (NEON) and the dot-product extension.
//!
//! Untested so far: this code is type-checked only when built for aarch64,
//! and its bit-identity tests need qemu (see the cross-build issue).

mod dwconv;
mod float;
mod gemm;
mod neon;

use super::gemm::{conv2d, fully_connected};
use super::{AddFn, ConvFn, FloatFns, GemmFns, Impl, Isa};

/// GEMM kernels, best first.
pub(super) static GEMM: [Impl<GemmFns>; 2] = [
    Impl {
        name: "qgemm_i8_4x16c4__dotprod",
        isa: Isa::Dotprod,
        f: GemmFns { conv: conv2d::<gemm::Dotprod>, fc: fully_connected::<gemm::Dotprod> },
    },
    Impl {
        name: "qgemm_i8_3x16c4__neon",
        isa: Isa::Neon,
        f: GemmFns { conv: conv2d::<gemm::Neon>, fc: fully_connected::<gemm::Neon> },
    },
];

/// Depthwise kernels, best first.
pub(super) static DWCONV: [Impl<ConvFn>; 1] =
    [Impl { name: "dwconv_i8_kxk__neon", isa: Isa::Neon, f: dwconv::dwconv::<0> }];

/// Add kernels, best first (none yet: the scalar one runs).
pub(super) static ADD: [Impl<AddFn>; 0] = [];

/// Float convolution and fully connected kernels, best first.
pub(super) static FLOAT: [Impl<FloatFns>; 1] =
    [Impl { name: "fconv_f32_4x4__neon", isa: Isa::Neon, f: FloatFns { conv: float::conv_neon, fc: float::fc_neon } }];
