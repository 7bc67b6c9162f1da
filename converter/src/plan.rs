//! The memory planner: places every activation in one arena so that tensors
//! whose lifetimes overlap never share bytes.
//!
//! The algorithm is TFLite Micro's greedy planner: take the buffers in
//! descending order of size; put each at the lowest offset where it fits
//! between the buffers already placed whose lifetimes overlap its own. It is
//! not optimal, but it is simple, fast and close to optimal on chain-like
//! networks. The runtime re-checks the result when it loads the file.

/// One buffer to place: its size and the operator steps during which it
/// must keep its contents, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// Size in bytes.
    pub size: usize,
    /// First step: when it is written (0 for a graph input).
    pub first: usize,
    /// Last step: when it is last read (`usize::MAX` for a graph output).
    pub last: usize,
}

impl Lifetime {
    fn overlaps(&self, other: &Lifetime) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Where each buffer goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Byte offset of each buffer, in the order given; multiples of `align`.
    pub offsets: Vec<usize>,
    /// Bytes the arena needs.
    pub arena_size: usize,
}

/// Places `buffers` with every offset a multiple of `align`.
pub fn plan(buffers: &[Lifetime], align: usize) -> Plan {
    // 1. Largest first: big buffers are the hardest to fit later. Ties go
    //    to the earlier-born buffer, so the result is deterministic.
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(buffers[i].size), buffers[i].first, i));

    let mut offsets = vec![0; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    for &i in &order {
        let me = buffers[i];
        // 2. The placed buffers alive at the same time, by offset.
        let mut neighbours: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| buffers[j].overlaps(&me))
            .map(|&j| (offsets[j], offsets[j] + buffers[j].size))
            .collect();
        neighbours.sort_unstable();
        // 3. The first gap between them that is big enough.
        let mut candidate = 0;
        for (start, end) in neighbours {
            if candidate + me.size <= start {
                break;
            }
            candidate = candidate.max(end.next_multiple_of(align));
        }
        offsets[i] = candidate;
        placed.push(i);
    }
    let arena_size = buffers.iter().zip(&offsets).map(|(b, &o)| o + b.size).max().unwrap_or(0).next_multiple_of(align);
    Plan { offsets, arena_size }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn life(size: usize, first: usize, last: usize) -> Lifetime {
        Lifetime { size, first, last }
    }

    #[test]
    fn a_chain_reuses_two_buffers() {
        // x0 -> x1 -> x2 -> x3: each buffer dies when the next one is made.
        let chain = [life(100, 0, 1), life(100, 1, 2), life(100, 2, 3), life(100, 3, usize::MAX)];
        let p = plan(&chain, 64);
        assert_eq!(p.arena_size, 256);
        assert_eq!(p.offsets, vec![0, 128, 0, 128]);
    }

    #[test]
    fn a_small_buffer_fills_a_gap() {
        let buffers = [life(1000, 0, 2), life(64, 1, 1), life(1000, 2, 3), life(500, 3, 4)];
        let p = plan(&buffers, 64);
        // 1000 and 1000 overlap at step 2; 500 fits where the first 1000 was.
        assert_eq!(p.arena_size, 2048);
        assert_eq!(p.offsets[3], 0);
    }

    proptest! {
        #[test]
        fn live_buffers_never_overlap(
            raw in proptest::collection::vec((1usize..5000, 0usize..30, 0usize..10), 1..60),
            align in prop::sample::select(vec![1usize, 16, 64]),
        ) {
            let buffers: Vec<Lifetime> = raw.iter().map(|&(s, f, d)| life(s, f, f + d)).collect();
            let p = plan(&buffers, align);
            for (i, a) in buffers.iter().enumerate() {
                prop_assert_eq!(p.offsets[i] % align, 0);
                prop_assert!(p.offsets[i] + a.size <= p.arena_size);
                for (j, b) in buffers.iter().enumerate().skip(i + 1) {
                    if a.overlaps(b) {
                        let (ra, rb) = (p.offsets[i]..p.offsets[i] + a.size, p.offsets[j]..p.offsets[j] + b.size);
                        prop_assert!(ra.end <= rb.start || rb.end <= ra.start, "{i} {ra:?} and {j} {rb:?} overlap");
                    }
                }
            }
            // Never worse than no reuse at all.
            let total: usize = buffers.iter().map(|b| b.size.next_multiple_of(align)).sum();
            prop_assert!(p.arena_size <= total);
        }
    }
}
