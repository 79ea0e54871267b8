//! Comparing two recall/throughput curves at equal recall.
//!
//! Each index is measured at a few settings of its search breadth (`ef`), giving points
//! (recall, QPS). To compare throughput at equal accuracy, for each point of the peer we
//! read our curve at the peer's recall:
//!
//! * **interpolated**: our points sorted by recall, QPS linearly interpolated between
//!   the two points that bracket the target recall. Where several of our points share a
//!   recall, the fastest is kept. If even our lowest point beats the target, that
//!   point's QPS is used (we are at least that fast at equal recall). If our best point
//!   stays below the target, there is no value.
//! * **first ef reaching it**: the QPS of our smallest-`ef` point whose recall is at
//!   least the target (no interpolation, conservative).

/// One measured setting.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Search breadth.
    pub ef: usize,
    /// Recall at this setting, in [0, 1].
    pub recall: f64,
    /// Queries per CPU-second at this setting.
    pub qps: f64,
}

/// Our QPS read at a target recall, by both methods (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AtRecall {
    /// The target recall.
    pub recall: f64,
    /// Interpolated QPS; `None` when our curve never reaches the target.
    pub interpolated_qps: Option<f64>,
    /// The smallest `ef` of ours reaching the target, and its QPS.
    pub first_ef: Option<(usize, f64)>,
}

/// Read `ours` at `target` recall.
pub fn qps_at_recall(ours: &[Point], target: f64) -> AtRecall {
    let mut pts: Vec<Point> = ours.to_vec();
    pts.sort_by(|a, b| a.recall.total_cmp(&b.recall).then(b.qps.total_cmp(&a.qps)));
    pts.dedup_by(|later, kept| later.recall == kept.recall);
    // Beyond a point, a slower point with lower recall is useless: keep the upper hull
    // in the sense "best QPS achievable at >= this recall".
    for i in (0..pts.len().saturating_sub(1)).rev() {
        if pts[i].qps < pts[i + 1].qps {
            pts[i].qps = pts[i + 1].qps;
        }
    }
    let interpolated_qps = match pts.iter().position(|p| p.recall >= target) {
        None => None,
        Some(0) => Some(pts[0].qps),
        Some(i) => {
            let (a, b) = (pts[i - 1], pts[i]);
            let t = (target - a.recall) / (b.recall - a.recall);
            Some(a.qps + t * (b.qps - a.qps))
        }
    };
    let first_ef = ours
        .iter()
        .filter(|p| p.recall >= target)
        .min_by_key(|p| p.ef)
        .map(|p| (p.ef, p.qps));
    AtRecall {
        recall: target,
        interpolated_qps,
        first_ef,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ef: usize, recall: f64, qps: f64) -> Point {
        Point { ef, recall, qps }
    }

    #[test]
    fn interpolates_between_bracketing_points() {
        let ours = [p(16, 0.90, 1000.0), p(32, 0.96, 800.0), p(64, 0.99, 500.0)];
        let r = qps_at_recall(&ours, 0.93);
        assert!((r.interpolated_qps.unwrap_or(0.0) - 900.0).abs() < 1e-9);
        assert_eq!(r.first_ef, Some((32, 800.0)));
        // Below our curve: our fastest point already beats the target.
        assert_eq!(qps_at_recall(&ours, 0.5).interpolated_qps, Some(1000.0));
        // Above our curve: no value.
        let r = qps_at_recall(&ours, 0.995);
        assert_eq!((r.interpolated_qps, r.first_ef), (None, None));
        // Exactly on a point.
        assert_eq!(qps_at_recall(&ours, 0.99).interpolated_qps, Some(500.0));
    }

    #[test]
    fn saturated_recall_keeps_the_fastest_point() {
        let ours = [p(32, 1.0, 900.0), p(64, 1.0, 600.0), p(16, 0.98, 1200.0)];
        assert_eq!(qps_at_recall(&ours, 1.0).interpolated_qps, Some(900.0));
        assert_eq!(qps_at_recall(&ours, 1.0).first_ef, Some((32, 900.0)));
    }
}
