//! The NEON GEMM microkernels, 16 columns (one packed block) per tile:
//! `qgemm_i8_4x16c4__dotprod` (`sdot`, emitted with inline `asm!` because
//! `vdotq_s32` is unstable) and `qgemm_i8_3x16c4__neon` (`smull` and
//! `sadalp`: each i8 × i8 product fits i16 and pairs are summed in i32, so
//! nothing saturates). Both multiply signed bytes: no shift.

use core::arch::aarch64::*;

use super::neon::store_tile;
use crate::kernels::gemm::{Microkernel, Tile};

/// The dot-product microkernel.
pub(crate) struct Dotprod;

impl Microkernel for Dotprod {
    const MR: usize = 4;
    const NT: usize = 16;
    const X_SHIFT: i32 = 0;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { dot(t) }
    }
}

/// The plain NEON microkernel.
pub(crate) struct Neon;

impl Microkernel for Neon {
    const MR: usize = 3;
    const NT: usize = 16;
    const X_SHIFT: i32 = 0;

    unsafe fn tile(t: &Tile) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { widened(t) }
    }
}

/// Loads the 64 bytes of a K group (16 channels × 4) at `w + at`.
///
/// # Safety
///
/// The CPU supports NEON; `w + at` holds 64 readable bytes.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn group(w: *const u8, at: usize) -> [int8x16_t; 4] {
    // SAFETY: 16 of the 64 bytes each.
    core::array::from_fn(|q| unsafe { vld1q_s8(w.add(at + 16 * q) as *const i8) })
}

/// Adds the 16 weight sums at `w + at` to `sums`.
///
/// # Safety
///
/// As [`group`].
#[target_feature(enable = "neon")]
#[inline]
unsafe fn add_sums(sums: &mut [int32x4_t; 4], w: *const u8, at: usize) {
    for (q, s) in sums.iter_mut().enumerate() {
        // SAFETY: 16 of the 64 bytes.
        *s = vaddq_s32(*s, unsafe { vld1q_s32(w.add(at + 16 * q) as *const i32) });
    }
}

/// The 4 bytes at `row`, repeated in every 32-bit lane.
///
/// # Safety
///
/// The CPU supports NEON; `row` holds 4 readable bytes.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn broadcast(row: *const u8) -> int8x16_t {
    // SAFETY: 4 readable bytes; `read_unaligned` needs no alignment.
    vreinterpretq_s8_s32(vdupq_n_s32(unsafe { (row as *const i32).read_unaligned() }))
}

/// `acc + Σ a[4i..4i + 4] · b[4i..4i + 4]` per 32-bit lane: `sdot`.
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` reads and writes these registers only, and this
    // function runs only where the CPU has the dot-product extension.
    unsafe {
        core::arch::asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        )
    };
    acc
}

/// Walks the tile: for every row and K group, `mac(acc, w, x)` with the
/// row's `R` accumulators, the group's 64 weight bytes and the row's 4
/// bytes in every lane. Returns the accumulators and the visited sums.
/// `zero` is a zero vector (made by the caller, whose target features make
/// the intrinsic safe to call).
///
/// # Safety
///
/// The CPU supports NEON; `t` satisfies [`Microkernel::tile`]'s contract.
#[inline(always)]
unsafe fn accumulate<const MR: usize, const R: usize>(
    t: &Tile,
    zero: int32x4_t,
    mut mac: impl FnMut(&mut [int32x4_t; R], [int8x16_t; 4], int8x16_t),
) -> ([[int32x4_t; R]; MR], [int32x4_t; 4]) {
    debug_assert!(!t.shifted, "NEON kernels multiply signed bytes: nothing shifts their rows");
    let mut acc = [[zero; R]; MR];
    let mut sums = [zero; 4];
    let w = t.w[0];
    // SAFETY: `at` is the offset of 16 sums within a whole block.
    let tap = |at: usize| unsafe { add_sums(&mut sums, w, at) };
    let step = |rows: &[*const u8; MR], at: usize| {
        // SAFETY: `at` is the offset of a K group within a block; `walk`
        // gives addresses of 4 readable bytes.
        let b = unsafe { group(w, at) };
        for (acc, &row) in acc.iter_mut().zip(rows) {
            // SAFETY: as above.
            mac(acc, b, unsafe { broadcast(row) });
        }
    };
    // SAFETY: the tile satisfies the driver's guarantees.
    unsafe { t.walk::<MR>(tap, step) };
    (acc, sums)
}

/// # Safety
///
/// The CPU supports NEON and the dot-product extension; `t` satisfies
/// [`Microkernel::tile`]'s contract.
#[target_feature(enable = "neon,dotprod")]
unsafe fn dot(t: &Tile) {
    // SAFETY: forwarded from the caller's contract.
    let (acc, sums) = unsafe {
        accumulate::<{ Dotprod::MR }, 4>(t, vdupq_n_s32(0), |acc, b, x| {
            for (acc, b) in acc.iter_mut().zip(b) {
                *acc = sdot(*acc, b, x);
            }
        })
    };
    // SAFETY: as above.
    unsafe { store_tile(t, acc, sums) };
}

/// # Safety
///
/// The CPU supports NEON; `t` satisfies [`Microkernel::tile`]'s contract.
#[target_feature(enable = "neon")]
unsafe fn widened(t: &Tile) {
    // Per row, eight registers of two partial sums per channel: register
    // 2q + h holds channels 4q + 2h and 4q + 2h + 1, K pairs (0, 1), (2, 3).
    // SAFETY: forwarded from the caller's contract.
    let (acc, sums) = unsafe {
        accumulate::<{ Neon::MR }, 8>(t, vdupq_n_s32(0), |acc, b, x| {
            for (q, b) in b.into_iter().enumerate() {
                acc[2 * q] = vpadalq_s16(acc[2 * q], vmull_s8(vget_low_s8(b), vget_low_s8(x)));
                acc[2 * q + 1] = vpadalq_s16(acc[2 * q + 1], vmull_high_s8(b, x));
            }
        })
    };
    let channels = acc.map(|a| core::array::from_fn(|q| vpaddq_s32(a[2 * q], a[2 * q + 1])));
    // SAFETY: as above.
    unsafe { store_tile(t, channels, sums) };
}
