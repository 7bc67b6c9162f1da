//! Choosing a tensor's quantization range from the values calibration saw.
//! Min/max keeps every value but spends int8's 256 steps on rare outliers;
//! clipping them trades a little error on the few for a finer step for all.
//! The histogram is over the min/max range, so a clipped range lies inside.

use super::Range;

/// Bins per histogram: fine enough that the bin width is far below the
/// quantization step of any range the search picks.
pub const BINS: usize = 2048;

/// A histogram of one tensor's values over a fixed range.
#[derive(Clone, Debug)]
pub struct Histogram {
    range: Range,
    counts: Vec<u64>,
}

impl Histogram {
    /// An empty histogram over `range` (the tensor's min/max).
    pub fn new(range: Range) -> Self {
        Histogram { range, counts: vec![0; BINS] }
    }

    fn width(&self) -> f64 {
        (f64::from(self.range.max) - f64::from(self.range.min)) / BINS as f64
    }

    /// Adds `values` (all inside the range the histogram was made with).
    pub fn add(&mut self, values: &[f32]) {
        let (min, width) = (f64::from(self.range.min), self.width());
        if width <= 0.0 {
            self.counts[0] += values.len() as u64;
            return;
        }
        for &v in values {
            let bin = ((f64::from(v) - min) / width) as usize;
            self.counts[bin.min(BINS - 1)] += 1;
        }
    }

    /// Bin centres with their counts.
    fn bins(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let (min, width) = (f64::from(self.range.min), self.width());
        self.counts.iter().enumerate().map(move |(i, &n)| (min + (i as f64 + 0.5) * width, n as f64))
    }

    /// The range that keeps all but a `tail` fraction of the values on each
    /// side (e.g. 1e-4 for the 99.99th percentile).
    pub fn percentile(&self, tail: f64) -> Range {
        let total: u64 = self.counts.iter().sum();
        let cut = (tail * total as f64) as u64;
        let lo = self.first_past(cut, 0..BINS);
        let hi = self.first_past(cut, (0..BINS).rev());
        let at = |i: usize| (f64::from(self.range.min) + i as f64 * self.width()) as f32;
        Range { min: at(lo).min(0.0), max: at(hi + 1).max(0.0) }
    }

    /// The first bin, walking the bins in `order`, by which more than `cut`
    /// values have been passed.
    fn first_past(&self, cut: u64, mut order: impl Iterator<Item = usize>) -> usize {
        let mut seen = 0;
        order
            .find(|&i| {
                seen += self.counts[i];
                seen > cut
            })
            .unwrap_or(0)
    }

    /// The range `[lo, hi]` (holding 0, as activation quantization needs)
    /// that minimises the expected squared error of asymmetric int8
    /// quantization: rounding error (step²/12) for values inside, clipping
    /// error for values outside. Searches each end over fractions of the
    /// min/max range.
    pub fn mse_optimal(&self) -> Range {
        let (min, max) = (f64::from(self.range.min.min(0.0)), f64::from(self.range.max.max(0.0)));
        // Prefix sums of n, n·c and n·c² over the bins: the clipping error
        // of any end in O(1).
        let mut prefix = vec![[0f64; 3]; BINS + 1];
        for (i, (c, n)) in self.bins().enumerate() {
            let p = prefix[i];
            prefix[i + 1] = [p[0] + n, p[1] + n * c, p[2] + n * c * c];
        }
        let bin_of = |x: f64| {
            let w = self.width();
            if w <= 0.0 {
                return 0;
            }
            (((x - f64::from(self.range.min)) / w).ceil().max(0.0) as usize).min(BINS)
        };
        // Σ n (c - x)² over bins [from, to).
        let clip = |from: usize, to: usize, x: f64| {
            let [n, s, q] = [0, 1, 2].map(|k| prefix[to][k] - prefix[from][k]);
            (q - 2.0 * x * s + x * x * n).max(0.0)
        };
        const STEPS: usize = 128;
        let mut best = (f64::INFINITY, Range { min: min as f32, max: max as f32 });
        for i in 1..=STEPS {
            let lo = min * i as f64 / STEPS as f64;
            for j in 1..=STEPS {
                let hi = max * j as f64 / STEPS as f64;
                let step = (hi - lo) / 255.0;
                let (a, b) = (bin_of(lo), bin_of(hi));
                let inside = prefix[b.max(a)][0] - prefix[a][0];
                let error = clip(0, a, lo) + clip(b.max(a), BINS, hi) + inside * step * step / 12.0;
                if error < best.0 {
                    best = (error, Range { min: lo as f32, max: hi as f32 });
                }
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[f32]) -> Histogram {
        let min = values.iter().copied().fold(f32::INFINITY, f32::min);
        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut h = Histogram::new(Range { min, max });
        h.add(values);
        h
    }

    /// A million values evenly spread over [-1, 1].
    fn uniform() -> Vec<f32> {
        (0..1_000_000).map(|i| -1.0 + 2.0 * i as f32 / 999_999.0).collect()
    }

    #[test]
    fn mse_keeps_a_range_without_outliers() {
        let r = histogram(&uniform()).mse_optimal();
        assert!(r.min <= -0.98 && r.max >= 0.98, "{r:?}");
    }

    #[test]
    fn mse_clips_a_lone_outlier() {
        let mut values = uniform();
        values.push(50.0);
        let r = histogram(&values).mse_optimal();
        // With the range [-1, h], the error is 1e6 · ((h + 1) / 255)² / 12 for
        // the bulk plus (50 - h)² for the outlier: least at h ≈ 21.35.
        assert!(r.max > 20.0 && r.max < 23.0 && r.min <= -0.95, "{r:?}");
    }

    #[test]
    fn percentile_cuts_the_tails() {
        let r = histogram(&uniform()).percentile(0.01);
        assert!((r.min + 0.98).abs() < 0.005 && (r.max - 0.98).abs() < 0.005, "{r:?}");
        let positive: Vec<f32> = (0..1000).map(|i| 1.0 + i as f32).collect();
        let r = histogram(&positive).percentile(0.0);
        assert_eq!((r.min, r.max), (0.0, 1000.0), "the range holds 0 and every value");
    }
}
