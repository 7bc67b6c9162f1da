//! `vadd_i8__avx2`: the requantizing Add, 8 elements at a time, for inputs
//! of the output's shape (broadcasts go to the scalar kernel).

use core::arch::x86_64::*;

use super::ymm::{pack16, quantize, Clamp};
use crate::kernels::{scalar, QIn, QOut};
use crate::ops::Act;
use crate::quant::rescale;

/// # Safety
///
/// The CPU supports AVX2; the operands passed the loader's checks for
/// [`crate::OpKind::Add`].
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn add(a: QIn<'_>, b: QIn<'_>, act: Act, y: QOut<'_>) {
    if a.shape != y.shape || b.shape != y.shape {
        return scalar::add(a, b, act, y);
    }
    let c = Clamp::new(y.quant.zero_point, act.min, act.max);
    let side = |q: QIn<'_>| (_mm256_set1_epi32(q.quant.zero_point), _mm256_set1_ps(rescale(q.quant, y.quant)));
    let (sa, sb) = (side(a), side(b));
    let term = |v: &[i8], (z, m): (__m256i, __m256)| {
        let mut lanes = [0i8; 8];
        lanes[..v.len()].copy_from_slice(v);
        let v = _mm256_cvtepi8_epi32(_mm_set1_epi64x(i64::from_le_bytes(lanes.map(|b| b as u8))));
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), m)
    };
    let chunks = a.data.chunks(8).zip(b.data.chunks(8)).zip(y.data.chunks_mut(8));
    for ((a, b), y) in chunks {
        let q = quantize(_mm256_add_ps(term(a, sa), term(b, sb)), c);
        let bytes = _mm_cvtsi128_si64(pack16(q, q)).to_le_bytes();
        for (y, &v) in y.iter_mut().zip(&bytes) {
            *y = v as i8;
        }
    }
}
