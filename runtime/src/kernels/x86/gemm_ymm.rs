//! The ymm GEMM microkernels, 16 columns (one packed block) per tile:
//! `qgemm_i8_4x16c4__avxvnni` (`vpdpbusd` on `x ^ 0x80`) and
//! `qgemm_i8_2x16c4__avx2` (bytes widened to i16 and multiplied with
//! `vpmaddwd`, which cannot saturate: unlike `vpmaddubsw`, it sums two
//! i16 × i16 products in i32).

use core::arch::x86_64::*;

use super::ymm::store_tile;
use crate::kernels::gemm::{Microkernel, Tile};

/// The AVX-VNNI microkernel.
pub(crate) struct AvxVnni;

impl Microkernel for AvxVnni {
    const MR: usize = 4;
    const NT: usize = 16;
    const X_SHIFT: i32 = 128;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            if t.shifted {
                vnni::<false>(t)
            } else {
                vnni::<true>(t)
            }
        }
    }
}

/// The AVX2 microkernel.
pub(crate) struct Avx2;

impl Microkernel for Avx2 {
    const MR: usize = 2;
    const NT: usize = 16;
    const X_SHIFT: i32 = 0;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { widened(t) }
    }
}

/// Adds the 16 weight sums at `w + at` to `sums`.
///
/// # Safety
///
/// The CPU supports AVX2; `w + at` holds 64 readable bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn add_sums(sums: &mut [__m256i; 2], w: *const u8, at: usize) {
    for (h, s) in sums.iter_mut().enumerate() {
        // SAFETY: 32 of the 64 bytes.
        *s = _mm256_add_epi32(*s, unsafe { _mm256_loadu_si256(w.add(at + 32 * h) as *const __m256i) });
    }
}

/// The tile, flipping the rows' sign bits itself if `FLIP`.
///
/// # Safety
///
/// The CPU supports AVX2 and AVX-VNNI; `t` satisfies
/// [`Microkernel::tile`]'s contract.
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn vnni<const FLIP: bool>(t: &Tile) {
    const MR: usize = AvxVnni::MR;
    let flip = _mm256_set1_epi32(0x8080_8080u32 as i32);
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let mut sums = [_mm256_setzero_si256(); 2];
    let w = t.w[0];
    // SAFETY: `at` is the offset of 16 sums within a whole block.
    let tap = |at: usize| unsafe { add_sums(&mut sums, w, at) };
    let group = |rows: &[*const u8; MR], at: usize| {
        // SAFETY: `at` is the offset of a 64-byte K group within a block.
        let b = [0, 1].map(|h| unsafe { _mm256_loadu_si256(w.add(at + 32 * h) as *const __m256i) });
        for (acc, &row) in acc.iter_mut().zip(rows) {
            // SAFETY: `walk` gives addresses of 4 readable bytes.
            let x = _mm256_set1_epi32(unsafe { (row as *const i32).read_unaligned() });
            let x = if FLIP { _mm256_xor_si256(x, flip) } else { x };
            acc[0] = _mm256_dpbusd_avx_epi32(acc[0], x, b[0]);
            acc[1] = _mm256_dpbusd_avx_epi32(acc[1], x, b[1]);
        }
    };
    // SAFETY: the tile satisfies the driver's guarantees.
    unsafe {
        t.walk::<MR>(tap, group);
        store_tile(t, acc, sums);
    }
}

/// # Safety
///
/// The CPU supports AVX2; `t` satisfies [`Microkernel::tile`]'s contract.
#[target_feature(enable = "avx2")]
unsafe fn widened(t: &Tile) {
    const MR: usize = Avx2::MR;
    // Per row, four registers of two partial sums per channel: channels
    // 4q..4q + 4, K pairs (0, 1) and (2, 3) of each group.
    let mut acc = [[_mm256_setzero_si256(); 4]; MR];
    let mut sums = [_mm256_setzero_si256(); 2];
    let w = t.w[0];
    // SAFETY: `at` is the offset of 16 sums within a whole block.
    let tap = |at: usize| unsafe { add_sums(&mut sums, w, at) };
    let group = |rows: &[*const u8; MR], at: usize| {
        // SAFETY: `at` is the offset of a 64-byte K group within a block.
        let b = [0, 1, 2, 3]
            .map(|q| _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(w.add(at + 16 * q) as *const __m128i) }));
        for (acc, &row) in acc.iter_mut().zip(rows) {
            // SAFETY: `walk` gives addresses of 4 readable bytes.
            let x = _mm_cvtepi8_epi16(_mm_cvtsi32_si128(unsafe { (row as *const i32).read_unaligned() }));
            let x = _mm256_broadcastq_epi64(x);
            for (acc, b) in acc.iter_mut().zip(b) {
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(b, x));
            }
        }
    };
    // SAFETY: the tile satisfies the driver's guarantees.
    unsafe { t.walk::<MR>(tap, group) };
    // hadd gives channels [0, 1, 4, 5 | 2, 3, 6, 7]; the permute orders them.
    let channels =
        acc.map(|a| [0, 1].map(|h| _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(a[2 * h], a[2 * h + 1]))));
    // SAFETY: as above.
    unsafe { store_tile(t, channels, sums) };
}
