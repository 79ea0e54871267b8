//! Accuracy measures shared by every index under test (and mirrored, line for line, in
//! `benches/hnswlib_peer.py`).

/// Share of the query identity's gallery samples ("mates") found among `hit_rows`.
///
/// `hit_rows` are gallery row numbers (the benchmark uses row `r` as `TemplateId(r)`),
/// `labels[r]` the identity of row `r`, `mates` how many gallery rows the identity has.
/// Rows out of range count as misses.
pub fn mate_recall(hit_rows: &[u64], labels: &[u32], query_label: u32, mates: usize) -> f64 {
    if mates == 0 {
        return 0.0;
    }
    let found = hit_rows
        .iter()
        .filter(|&&r| usize::try_from(r).ok().and_then(|r| labels.get(r)) == Some(&query_label))
        .count();
    found.min(mates) as f64 / mates as f64
}

/// Share of `reference` (the exact top-k) that `candidate` also returned:
/// `|candidate ∩ reference| / |reference|`. 1 when `reference` is empty.
pub fn overlap(candidate: &[u64], reference: &[u64]) -> f64 {
    if reference.is_empty() {
        return 1.0;
    }
    let hits = reference.iter().filter(|r| candidate.contains(r)).count();
    hits as f64 / reference.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mate_recall_counts_only_the_query_identity() {
        let labels = [0, 0, 1, 1, 2, 2];
        assert_eq!(mate_recall(&[0, 1, 2], &labels, 0, 2), 1.0);
        assert_eq!(mate_recall(&[2, 0, 4], &labels, 0, 2), 0.5);
        assert_eq!(mate_recall(&[2, 3, 99], &labels, 0, 2), 0.0);
        assert_eq!(mate_recall(&[], &labels, 0, 2), 0.0);
    }

    #[test]
    fn overlap_is_share_of_reference() {
        assert_eq!(overlap(&[1, 2, 3], &[3, 2, 1]), 1.0);
        assert_eq!(overlap(&[1, 9, 8, 7], &[1, 2, 3, 4]), 0.25);
        assert_eq!(overlap(&[1], &[]), 1.0);
    }
}
