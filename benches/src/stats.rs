//! Percentiles and means over measured samples.

/// The `p`-th percentile (0..=100) of `values`, linearly interpolated between the two
/// nearest ranks (NumPy's default method). `None` for an empty slice or a NaN in it.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(percentile_sorted(&sorted, p))
}

/// Like [`percentile`] for values already sorted ascending (not checked).
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Arithmetic mean; 0 for an empty slice.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Latency summary of one timed loop, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Median latency.
    pub p50_ms: f64,
    /// 99th-percentile latency.
    pub p99_ms: f64,
    /// Mean latency.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// Summarise per-call latencies given in seconds. `None` when empty.
    pub fn from_seconds(latencies_s: &[f64]) -> Option<Self> {
        Some(Self {
            p50_ms: percentile(latencies_s, 50.0)? * 1e3,
            p99_ms: percentile(latencies_s, 99.0)? * 1e3,
            mean_ms: mean(latencies_s) * 1e3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [0, 50, 99, 100]) == [1, 2.5, 3.97, 4]
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 50.0), Some(2.5));
        assert!((percentile(&v, 99.0).unwrap_or(0.0) - 3.97).abs() < 1e-12);
        assert_eq!(percentile(&v, 100.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0, f64::NAN], 50.0), None);
        assert_eq!(percentile(&[1.0], 101.0), None);
    }

    #[test]
    fn latency_summary_in_ms() {
        let s = LatencySummary::from_seconds(&[0.001, 0.002, 0.003]).unwrap();
        assert!((s.p50_ms - 2.0).abs() < 1e-9);
        assert!((s.mean_ms - 2.0).abs() < 1e-9);
        assert!(s.p99_ms > 2.9 && s.p99_ms <= 3.0);
    }
}
