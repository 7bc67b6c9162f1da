//! x86_64 kernels: AVX2, AVX-VNNI and AVX-512 VNNI.

mod add;
mod dwconv;
mod float;
mod gemm_avx512;
mod gemm_ymm;
mod ymm;

use super::gemm::{conv2d, fully_connected};
use super::{AddFn, ConvFn, FloatFns, GemmFns, Impl, Isa};

/// GEMM kernels, best first.
pub(super) static GEMM: [Impl<GemmFns>; 3] = [
    Impl {
        name: "qgemm_i8_8x32c4__avx512vnni",
        isa: Isa::Avx512Vnni,
        f: GemmFns { conv: conv2d::<gemm_avx512::Avx512Vnni>, fc: fully_connected::<gemm_avx512::Avx512Vnni> },
    },
    Impl {
        name: "qgemm_i8_4x16c4__avxvnni",
        isa: Isa::AvxVnni,
        f: GemmFns { conv: conv2d::<gemm_ymm::AvxVnni>, fc: fully_connected::<gemm_ymm::AvxVnni> },
    },
    Impl {
        name: "qgemm_i8_2x16c4__avx2",
        isa: Isa::Avx2,
        f: GemmFns { conv: conv2d::<gemm_ymm::Avx2>, fc: fully_connected::<gemm_ymm::Avx2> },
    },
];

/// Depthwise kernels, best first.
pub(super) static DWCONV: [Impl<ConvFn>; 2] = [
    Impl { name: "dwconv_i8_kxk__avx512vnni", isa: Isa::Avx512Vnni, f: dwconv::avx512::dwconv::<0> },
    Impl { name: "dwconv_i8_kxk__avx2", isa: Isa::Avx2, f: dwconv::avx2::dwconv::<0> },
];

/// Add kernels, best first.
pub(super) static ADD: [Impl<AddFn>; 1] = [Impl { name: "vadd_i8__avx2", isa: Isa::Avx2, f: add::add }];

/// Float convolution and fully connected kernels, best first.
pub(super) static FLOAT: [Impl<FloatFns>; 2] = [
    Impl {
        name: "fconv_f32_16x4__avx512",
        isa: Isa::Avx512Vnni,
        f: FloatFns { conv: float::conv_avx512, fc: float::fc_avx512 },
    },
    Impl { name: "fconv_f32_8x4__avx2", isa: Isa::Avx2, f: FloatFns { conv: float::conv_avx2, fc: float::fc_avx2 } },
];
