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
    let term = |v: [i8; 8], (z, m): (__m256i, __m256)| {
        let v = _mm256_cvtepi8_epi32(_mm_set1_epi64x(i64::from_le_bytes(v.map(|b| b as u8))));
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), m)
    };
    let sum = |a: [i8; 8], b: [i8; 8]| -> [i8; 8] {
        let q = quantize(_mm256_add_ps(term(a, sa), term(b, sb)), c);
        _mm_cvtsi128_si64(pack16(q, q)).to_le_bytes().map(|v| v as i8)
    };
    let mut chunks = a.data.chunks_exact(8).zip(b.data.chunks_exact(8)).zip(y.data.chunks_exact_mut(8));
    for ((a, b), y) in &mut chunks {
        y.copy_from_slice(&sum(a.try_into().expect("8"), b.try_into().expect("8")));
    }
    // The last 0 to 7 elements, through zero-padded copies.
    let tail = a.data.len() / 8 * 8;
    let pad = |v: &[i8]| core::array::from_fn(|i| v.get(tail + i).copied().unwrap_or(0));
    let last = sum(pad(a.data), pad(b.data));
    let rest = y.data.len() - tail;
    y.data[tail..].copy_from_slice(&last[..rest]);
}
