//! Order statistics of a set of timings.

/// Median, minimum and 90th percentile of some timings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub p90: f64,
}

impl Stats {
    /// The statistics of `samples` (at least one): the median of an even
    /// count is the mean of the middle two; the 90th percentile is the
    /// smallest sample that at least 90% of the samples do not exceed.
    pub fn of(samples: &[f64]) -> Stats {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
        let p90 = s[(n * 9).div_ceil(10).max(1) - 1];
        Stats { median, min: s[0], p90 }
    }
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn order_statistics() {
        let odd = Stats::of(&[5.0, 1.0, 3.0]);
        assert_eq!(odd, Stats { median: 3.0, min: 1.0, p90: 5.0 });
        let ten: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(Stats::of(&ten), Stats { median: 5.5, min: 1.0, p90: 9.0 });
        assert_eq!(Stats::of(&[2.0]), Stats { median: 2.0, min: 2.0, p90: 2.0 });
    }
}
