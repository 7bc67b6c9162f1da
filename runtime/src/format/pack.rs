//! How convolution and fully connected weights are laid out in the file:
//! already in the order the int8 kernels read them, so that nothing is
//! repacked at load. Every kernel, the scalar specification included, reads
//! this one layout. The converter calls [`Layout::pack`] (through
//! [`super::ModelWriter::conv_weights`] and
//! [`super::ModelWriter::fc_weights`]); the loader calls [`Layout::verify`].
//!
//! Logically the weights are OHWI: `w[o][ky][kx][i]` with `i` in
//! `0..C/groups`; `tap = ky * KW + kx` numbers the window positions.
//!
//! # GEMM layout (every convolution but depthwise, and fully connected)
//!
//! For each group `g`, its `O/groups` output channels are cut into blocks of
//! [`BLOCK`] = 16 (the last block padded with zero channels). Blocks follow
//! one another, group by group; each block is `taps * (kg * 64 + 64)` bytes,
//! where `kg = ceil(K / 4)` and `K = C/groups`:
//!
//! ```text
//! [taps][kg][16 channels][4 bytes]  i8: w[o][tap][4j..4j+4], zero past K
//! [taps][16 channels]               i32: Σ_i w[o][tap][i], the tap's sum
//! ```
//!
//! Four consecutive `K` values of one channel are adjacent, and sixteen
//! channels make 64 bytes: one `vpdpbusd` operand on zmm, or four `sdot`
//! operands on NEON. The per-tap weight sums let a kernel that works on
//! shifted activations (`x ^ 0x80` for the u8×s8 `vpdpbusd`) or on raw
//! signed ones remove the zero point afterwards, over exactly the taps it
//! visited: `Σ (x - zx) w = Σ (x + s) w - (s + zx) Σ w`.
//!
//! # Depthwise layout (groups = C = O, one input channel per group)
//!
//! `[taps][C rounded up to 16]` i8, zero past `C`: the sixteen channels a
//! vector holds are adjacent for every tap.

use alloc::vec;
use alloc::vec::Vec;

/// Output channels per block of the GEMM layout.
pub const BLOCK: usize = 16;
/// Bytes along K that a kernel consumes at once.
pub const GROUP: usize = 4;

/// The layout of one weight tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// GEMM blocks, see the module documentation.
    Gemm {
        /// Number of groups.
        groups: usize,
        /// Output channels per group.
        outputs: usize,
        /// Window positions, `KH * KW`.
        taps: usize,
        /// Input channels per group.
        k: usize,
    },
    /// Depthwise, see the module documentation.
    Depthwise {
        /// Channels.
        channels: usize,
        /// Window positions, `KH * KW`.
        taps: usize,
    },
}

impl Layout {
    /// The layout of convolution weights of logical shape
    /// `[O, KH, KW, C/groups]`.
    pub fn conv(dims: [usize; 4], groups: usize) -> Layout {
        let [o, kh, kw, k] = dims;
        let taps = kh * kw;
        if groups > 1 && k == 1 && o == groups {
            Layout::Depthwise { channels: o, taps }
        } else {
            Layout::Gemm { groups, outputs: o / groups.max(1), taps, k }
        }
    }

    /// The layout of fully connected weights `[O, K]`.
    pub fn fully_connected(o: usize, k: usize) -> Layout {
        Layout::Gemm { groups: 1, outputs: o, taps: 1, k }
    }

    /// Groups of [`GROUP`] bytes along K (GEMM), rounded up.
    pub fn k_groups(&self) -> usize {
        match *self {
            Layout::Gemm { k, .. } => k.div_ceil(GROUP),
            Layout::Depthwise { .. } => 1,
        }
    }

    /// Bytes of the weights of one tap of one GEMM block.
    pub fn tap_len(&self) -> usize {
        self.k_groups() * GROUP * BLOCK
    }

    /// Bytes of one GEMM block, sums included.
    pub fn block_len(&self) -> usize {
        match *self {
            Layout::Gemm { taps, .. } => taps * (self.tap_len() + BLOCK * 4),
            Layout::Depthwise { .. } => 0,
        }
    }

    /// Blocks per group (GEMM).
    pub fn blocks(&self) -> usize {
        match *self {
            Layout::Gemm { outputs, .. } => outputs.div_ceil(BLOCK),
            Layout::Depthwise { .. } => 0,
        }
    }

    /// Channels of one tap row, padded (depthwise).
    pub fn padded_channels(&self) -> usize {
        match *self {
            Layout::Depthwise { channels, .. } => channels.next_multiple_of(BLOCK),
            Layout::Gemm { .. } => 0,
        }
    }

    /// Total bytes, or `None` on overflow (for the loader's checks).
    pub fn checked_len(&self) -> Option<usize> {
        match *self {
            Layout::Gemm { groups, outputs, taps, k } => {
                let tap = k.div_ceil(GROUP).checked_mul(GROUP * BLOCK)?.checked_add(BLOCK * 4)?;
                groups.checked_mul(outputs.div_ceil(BLOCK))?.checked_mul(taps)?.checked_mul(tap)
            }
            Layout::Depthwise { channels, taps } => channels.checked_next_multiple_of(BLOCK)?.checked_mul(taps),
        }
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.checked_len().expect("weight layout size overflows")
    }

    /// Whether the layout holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Byte offset of `w[o][tap][i]`.
    #[inline(always)]
    pub fn index(&self, o: usize, tap: usize, i: usize) -> usize {
        match *self {
            Layout::Gemm { outputs, .. } => {
                let (g, local) = (o / outputs, o % outputs);
                let block = (g * self.blocks() + local / BLOCK) * self.block_len();
                block + tap * self.tap_len() + ((i / GROUP) * BLOCK + local % BLOCK) * GROUP + i % GROUP
            }
            Layout::Depthwise { .. } => tap * self.padded_channels() + o,
        }
    }

    /// Byte offset of the sum of tap `tap` of channel `o` (GEMM).
    fn sum_index(&self, o: usize, tap: usize) -> usize {
        let Layout::Gemm { outputs, taps, .. } = *self else { return 0 };
        let (g, local) = (o / outputs, o % outputs);
        let block = (g * self.blocks() + local / BLOCK) * self.block_len();
        block + taps * self.tap_len() + (tap * BLOCK + local % BLOCK) * 4
    }

    fn dims(&self) -> (usize, usize, usize) {
        match *self {
            Layout::Gemm { groups, outputs, taps, k } => (groups * outputs, taps, k),
            Layout::Depthwise { channels, taps } => (channels, taps, 1),
        }
    }

    /// Packs OHWI weights (`O * taps * K` values).
    pub fn pack(&self, ohwi: &[i8]) -> Vec<u8> {
        let (o, taps, k) = self.dims();
        assert_eq!(ohwi.len(), o * taps * k, "weights do not match the layout {self:?}");
        let mut out = vec![0u8; self.len()];
        for oc in 0..o {
            for tap in 0..taps {
                let row = &ohwi[(oc * taps + tap) * k..][..k];
                for (i, &v) in row.iter().enumerate() {
                    out[self.index(oc, tap, i)] = v as u8;
                }
                if let Layout::Gemm { .. } = self {
                    let sum: i32 = row.iter().map(|&v| i32::from(v)).sum();
                    out[self.sum_index(oc, tap)..][..4].copy_from_slice(&sum.to_le_bytes());
                }
            }
        }
        out
    }

    /// Checks packed bytes (of [`Layout::len`]): every padding byte is zero
    /// and every stored sum is right, so that every kernel computes the same
    /// thing as the scalar one even on a hostile file.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), &'static str> {
        if bytes.len() != self.len() {
            return Err("its byte length does not match the packed layout");
        }
        let (o, taps, k) = self.dims();
        // Count the non-zero bytes at the places that hold weights and sums
        // (checking the sums on the way); any other non-zero byte is padding.
        let mut used = 0;
        for oc in 0..o {
            for tap in 0..taps {
                let mut sum = 0i32;
                for i in 0..k {
                    let b = bytes[self.index(oc, tap, i)];
                    sum += i32::from(b as i8);
                    used += usize::from(b != 0);
                }
                if let Layout::Gemm { .. } = self {
                    let stored: [u8; 4] = bytes[self.sum_index(oc, tap)..][..4].try_into().expect("4 bytes");
                    if i32::from_le_bytes(stored) != sum {
                        return Err("a stored weight sum is wrong");
                    }
                    used += stored.iter().filter(|&&b| b != 0).count();
                }
            }
        }
        if bytes.iter().filter(|&&b| b != 0).count() != used {
            return Err("a padding byte is not zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_verifies() {
        for (dims, groups) in [([5, 3, 3, 7], 1), ([17, 1, 1, 9], 1), ([6, 3, 3, 2], 3), ([20, 3, 3, 1], 20)] {
            let layout = Layout::conv(dims, groups);
            let w: Vec<i8> = (0..dims.iter().product::<usize>()).map(|i| (i * 37 % 255) as i8).collect();
            let mut packed = layout.pack(&w);
            assert_eq!(packed.len(), layout.len());
            layout.verify(&packed).unwrap();
            let [_, kh, kw, k] = dims;
            for (j, &v) in w.iter().enumerate() {
                let (oc, tap, i) = (j / (kh * kw * k), j / k % (kh * kw), j % k);
                assert_eq!(packed[layout.index(oc, tap, i)] as i8, v);
            }
            if let Some(b) = packed.iter().rposition(|&b| b == 0) {
                packed[b] = 1;
                assert!(layout.verify(&packed).is_err());
            }
        }
    }
}
