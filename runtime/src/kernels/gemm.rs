//! The portable half of the int8 GEMM: convolutions (groups = 1) and fully
//! connected layers cut into tiles of `MR` output pixels × `NT` output
//! channels, each computed by an ISA's microkernel ([`Microkernel`]) over
//! an implicit im2col: the microkernel walks the window positions itself,
//! reading each input row in place, so that no scratch memory is needed.
//!
//! A tile's accumulators start at the bias; the microkernel adds
//! `Σ (x + s) w` over the window positions it visits, where `s` is its
//! [`Microkernel::X_SHIFT`] (128 for the u8×s8 `vpdpbusd`, which reads
//! `x ^ 0x80`; 0 for kernels that multiply signed bytes), adds up the
//! visited positions' weight sums from the packed layout, and subtracts
//! `(s + zx) Σ w`. In wrapping i32 arithmetic this is exactly the scalar
//! kernel's `Σ (x - zx) w`, padding included (a skipped position
//! contributes nothing to either).

use crate::format::pack::{Layout, BLOCK, GROUP};
use crate::kernels::{QIn, QOut, Requant, Weights};
use crate::ops::Conv2d;

/// Window positions a tile visits: `ky` in `ky.0..ky.1`, `kx` in
/// `kx.0..kx.1`; position `(ky, kx)` is at `a + ky * dy + kx * dx`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Taps {
    pub ky: (usize, usize),
    pub kx: (usize, usize),
    pub kw: usize,
    pub dy: isize,
    pub dx: isize,
}

/// The per-channel constants of the output stage of up to 32 channels,
/// zero past the layer's channels.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Epilogue {
    pub bias: [i32; 32],
    pub mult: [f32; 32],
    pub neg: [f32; 32],
    /// `s + zx`: the multiple of the weight sums to subtract.
    pub shift: i32,
    pub zero_point: i32,
    pub min: i32,
    pub max: i32,
}

/// One tile for a microkernel. Raw pointers: the driver guarantees what
/// [`Microkernel::tile`] requires.
#[derive(Debug)]
pub(crate) struct Tile {
    /// Row 0 at window position (0, 0); it may lie outside the input, but
    /// every position in [`Tile::taps`] lies inside, for every row.
    pub a: *const i8,
    /// Bytes from one row (output pixel) to the next.
    pub a_stride: usize,
    /// One past the last byte of the rows' buffer (the input, or the
    /// shifted copy): a partial last K group may read on up to it, since
    /// the weights past K are zero (the loader checks the padding).
    pub a_end: *const i8,
    /// Rows, `1..=MR`.
    pub m: usize,
    /// Bytes per row and position: the input channels.
    pub k: usize,
    pub taps: Taps,
    /// The packed blocks of the tile's columns; the second equals the first
    /// when the tile has 16 columns or fewer.
    pub w: [*const u8; 2],
    /// Weight bytes per position within a block.
    pub tap_len: usize,
    /// Offset of the weight sums within a block.
    pub sums_at: usize,
    pub epilogue: *const Epilogue,
    /// Row 0's first output channel; rows are `y_stride` bytes apart.
    pub y: *mut i8,
    pub y_stride: usize,
    /// Columns to store, `1..=NT`.
    pub n: usize,
    /// Whether the rows already hold `x + X_SHIFT` (as bytes): the driver
    /// copies the rows of single-position tiles, shifted, to the stack once
    /// and reuses them for every column block.
    pub shifted: bool,
}

impl Tile {
    /// Visits every window position, then every 4-byte K group of it:
    /// `tap(sums)` gets the offset of the position's weight sums within a
    /// block, `group(rows, w)` the address of the group in each of the `MR`
    /// rows (rows past `m` repeat the last; a partial last group is copied,
    /// zero-filled, to the stack, unless the whole group lies before
    /// [`Tile::a_end`]) and the offset of its weights in a block.
    ///
    /// # Safety
    ///
    /// The tile must satisfy the driver's guarantees (see the fields).
    #[inline(always)]
    pub(crate) unsafe fn walk<const MR: usize>(
        &self,
        mut tap: impl FnMut(usize),
        mut group: impl FnMut(&[*const u8; MR], usize),
    ) {
        let t = self.taps;
        let full = self.k / GROUP;
        let rest = self.k % GROUP;
        let rows: [usize; MR] = core::array::from_fn(|r| r.min(self.m - 1) * self.a_stride);
        for ky in t.ky.0..t.ky.1 {
            for kx in t.kx.0..t.kx.1 {
                let position = ky * t.kw + kx;
                tap(self.sums_at + position * BLOCK * 4);
                let a = self.a.wrapping_offset(ky as isize * t.dy + kx as isize * t.dx) as *const u8;
                let w = position * self.tap_len;
                for j in 0..full {
                    group(&rows.map(|r| a.wrapping_add(r + j * GROUP)), w + j * BLOCK * GROUP);
                }
                let last = a.wrapping_add(rows[MR - 1] + full * GROUP + GROUP);
                if rest != 0 && last <= self.a_end as *const u8 {
                    group(&rows.map(|r| a.wrapping_add(r + full * GROUP)), w + full * BLOCK * GROUP);
                } else if rest != 0 {
                    let mut tail = [[0u8; GROUP]; MR];
                    for (r, t) in rows.iter().zip(&mut tail) {
                        for (i, b) in t[..rest].iter_mut().enumerate() {
                            // SAFETY: byte `full * 4 + i < k` of a row at a
                            // visited position lies inside the input.
                            *b = unsafe { *a.add(r + full * GROUP + i) };
                        }
                    }
                    group(&core::array::from_fn(|r| tail[r].as_ptr()), w + full * BLOCK * GROUP);
                }
            }
        }
    }
}

/// An ISA's GEMM microkernel.
pub(crate) trait Microkernel {
    /// Rows (output pixels) per tile.
    const MR: usize;
    /// Columns (output channels) per tile: 16 or 32.
    const NT: usize;
    /// What the kernel adds to each activation before multiplying: 0, or
    /// 128 (`x ^ 0x80`, read as u8).
    const X_SHIFT: i32;

    /// Computes a tile and stores its `m × n` int8 outputs.
    ///
    /// # Safety
    ///
    /// The CPU supports the kernel's ISA, and `t` satisfies the guarantees
    /// documented on [`Tile`]'s fields: every visited byte of every row lies
    /// inside the input, the weight blocks are whole, the `m` output rows of
    /// `n` bytes lie inside the output.
    unsafe fn tile(t: &Tile);
}

/// Valid window positions `lo..hi` of a window starting at `start` with
/// `taps` positions `step` apart, over an axis of `size`.
pub(crate) fn valid(start: isize, step: usize, taps: usize, size: usize) -> (usize, usize) {
    let step = step as isize;
    let lo = if start < 0 { ((-start + step - 1) / step).min(taps as isize) } else { 0 };
    let last = size as isize - 1 - start;
    let hi = if last < 0 { 0 } else { (last / step + 1).min(taps as isize) };
    (lo as usize, hi.max(lo) as usize)
}

/// Receives one tile: row 0 at window position (0, 0), bytes between rows,
/// rows, the positions to visit, and row 0's output.
type Emit<'e> = &'e mut dyn FnMut(*const i8, usize, usize, Taps, *mut i8);

/// Runs microkernel `K` over every column block, for tiles that `rows`
/// generates: `rows(emit)` calls `emit(a, a_stride, m, taps, y)` per tile.
fn run<K: Microkernel>(
    w: &Weights<'_>,
    bias: &[i32],
    rq: &Requant<'_>,
    zx: i32,
    (k, x_end): (usize, *const i8),
    y_stride: usize,
    rows: impl Fn(Emit<'_>),
) {
    const CHUNK: usize = 8;
    let o = bias.len();
    let layout = w.layout;
    let (tap_len, block_len) = (layout.tap_len(), layout.block_len());
    let Layout::Gemm { taps: positions, .. } = layout else { unreachable!("a GEMM layout") };
    let sums_at = positions * tap_len;
    let blocks = layout.blocks();
    let per_tile = K::NT / BLOCK;
    let tiles = blocks.div_ceil(per_tile);
    // Rows shifted once per tile (for kernels that shift), `k4` bytes apart.
    const SHIFTED: usize = 16 * 1024;
    let k4 = k.next_multiple_of(GROUP);
    let shift = K::X_SHIFT != 0 && positions == 1 && K::MR * k4 <= SHIFTED;
    let mut shifted_rows = [0u8; SHIFTED];
    for first in (0..tiles).step_by(CHUNK) {
        let chunk = first..tiles.min(first + CHUNK);
        let mut epilogues = [Epilogue {
            bias: [0; 32],
            mult: [0.0; 32],
            neg: [0.0; 32],
            shift: K::X_SHIFT.wrapping_add(zx),
            zero_point: rq.zero_point,
            min: rq.act.min,
            max: rq.act.max,
        }; CHUNK];
        for (e, j) in epilogues.iter_mut().zip(chunk.clone()) {
            let c0 = j * K::NT;
            let n = K::NT.min(o - c0);
            e.bias[..n].copy_from_slice(&bias[c0..][..n]);
            e.mult[..n].copy_from_slice(&rq.multiplier[c0..][..n]);
            e.neg[..n].copy_from_slice(&rq.negative[c0..][..n]);
        }
        rows(&mut |a, a_stride, m, taps, y| {
            let shifted = shift && taps.ky == (0, 1) && taps.kx == (0, 1);
            let (a, a_stride, a_end) = if shifted {
                for r in 0..m {
                    // SAFETY: the rows of a tile at its one visited position
                    // hold `k` bytes each inside `x`.
                    let row = unsafe { core::slice::from_raw_parts(a.add(r * a_stride) as *const u8, k) };
                    for (s, &v) in shifted_rows[r * k4..][..k].iter_mut().zip(row) {
                        *s = v ^ 0x80;
                    }
                }
                let rows = shifted_rows.as_ptr_range();
                (rows.start as *const i8, k4, rows.end as *const i8)
            } else {
                (a, a_stride, x_end)
            };
            for (e, j) in epilogues.iter().zip(chunk.clone()) {
                let b0 = j * per_tile;
                let b1 = (b0 + per_tile - 1).min(blocks - 1);
                let block = |b: usize| w.data[b * block_len..][..block_len].as_ptr();
                let tile = Tile {
                    a,
                    a_stride,
                    a_end,
                    m,
                    k,
                    taps,
                    w: [block(b0), block(b1)],
                    tap_len,
                    sums_at,
                    epilogue: e,
                    y: y.wrapping_add(j * K::NT),
                    y_stride,
                    n: K::NT.min(o - j * K::NT),
                    shifted,
                };
                // SAFETY: the caller checked the ISA; `rows` gives tiles
                // whose visited rows lie in `x` and whose outputs lie in `y`;
                // the blocks are whole slices of the validated weights.
                unsafe { K::tile(&tile) };
            }
        });
    }
}

/// Tiles of `MR` consecutive rows over `rows` rows of `k` bytes.
fn flat<K: Microkernel>(x: *const i8, y: *mut i8, rows: usize, k: usize, o: usize) -> impl Fn(Emit<'_>) {
    let one = Taps { ky: (0, 1), kx: (0, 1), kw: 1, dy: 0, dx: 0 };
    move |emit| {
        for m0 in (0..rows).step_by(K::MR) {
            emit(x.wrapping_add(m0 * k), k, K::MR.min(rows - m0), one, y.wrapping_add(m0 * o));
        }
    }
}

/// Convolution with groups = 1, as [`crate::kernels::scalar::conv2d`].
pub(crate) fn conv2d<K: Microkernel>(
    p: &Conv2d,
    x: QIn<'_>,
    w: Weights<'_>,
    bias: &[i32],
    rq: &Requant<'_>,
    y: QOut<'_>,
) {
    let [n, h, width, c] = x.shape.nhwc();
    let [o, kh, kw, _] = w.shape.nhwc();
    let [_, oh, ow, _] = y.shape.nhwc();
    let (xp, yp) = (x.data.as_ptr(), y.data.as_mut_ptr());
    let x_end = x.data.as_ptr_range().end;
    let zx = x.quant.zero_point;
    if kh == 1 && kw == 1 && p.stride == [1, 1] && p.pad == [0; 4] {
        return run::<K>(&w, bias, rq, zx, (c, x_end), o, flat::<K>(xp, yp, n * h * width, c, o));
    }
    let [top, left, ..] = p.pad;
    let [sy, sx] = p.stride;
    let [dy, dx] = p.dilation;
    // Output columns whose whole window row lies inside the input.
    let inner_lo = left.div_ceil(sx).min(ow);
    let inner_hi = match (width + left).checked_sub((kw - 1) * dx + 1) {
        Some(last) => (last / sx + 1).min(ow),
        None => 0,
    }
    .max(inner_lo);
    let rows = move |emit: Emit<'_>| {
        for b in 0..n {
            for oy in 0..oh {
                let iy0 = (oy * sy) as isize - top as isize;
                let ky = valid(iy0, dy, kh, h);
                let mut tile = |ox: usize, m: usize| {
                    let ix0 = (ox * sx) as isize - left as isize;
                    let kx = if m == 1 { valid(ix0, dx, kw, width) } else { (0, kw) };
                    let taps = Taps { ky, kx, kw, dy: (dy * width * c) as isize, dx: (dx * c) as isize };
                    let pixel = ((b * h) as isize + iy0) * width as isize + ix0;
                    let a = xp.wrapping_offset(pixel * c as isize);
                    emit(a, sx * c, m, taps, yp.wrapping_add(((b * oh + oy) * ow + ox) * o));
                };
                for ox in (0..inner_lo).chain(inner_hi..ow) {
                    tile(ox, 1);
                }
                for ox in (inner_lo..inner_hi).step_by(K::MR) {
                    tile(ox, K::MR.min(inner_hi - ox));
                }
            }
        }
    };
    run::<K>(&w, bias, rq, zx, (c, x_end), o, rows)
}

/// Fully connected, as [`crate::kernels::scalar::fully_connected`].
pub(crate) fn fully_connected<K: Microkernel>(x: QIn<'_>, w: Weights<'_>, bias: &[i32], rq: &Requant<'_>, y: QOut<'_>) {
    let [n, k, ..] = x.shape.nhwc();
    let o = bias.len();
    let x_end = x.data.as_ptr_range().end;
    run::<K>(&w, bias, rq, x.quant.zero_point, (k, x_end), o, flat::<K>(x.data.as_ptr(), y.data.as_mut_ptr(), n, k, o))
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn valid_positions() {
        assert_eq!(valid(-1, 1, 3, 5), (1, 3));
        assert_eq!(valid(3, 1, 3, 5), (0, 2));
        assert_eq!(valid(-3, 2, 3, 5), (2, 3));
        assert_eq!(valid(-5, 1, 3, 2), (3, 3));
        assert_eq!(valid(7, 1, 3, 5), (0, 0));
        assert_eq!(valid(-2, 1, 1, 1), (1, 1));
    }
}
