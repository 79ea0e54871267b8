//! A bounded selection of the best-scoring keys.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Keeps the `cap` best `(score, key)` pairs seen: higher score first, then lower key.
#[derive(Debug)]
pub(crate) struct TopK<K> {
    cap: usize,
    /// The worst kept entry is at the top.
    heap: BinaryHeap<Worst<K>>,
}

/// Orders entries so that the *worse* one is greater.
#[derive(Debug, Clone, Copy)]
struct Worst<K>(f32, K);

impl<K: Ord> Ord for Worst<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

impl<K: Ord> PartialOrd for Worst<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord> PartialEq for Worst<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K: Ord> Eq for Worst<K> {}

impl<K: Ord + Copy> TopK<K> {
    /// An empty selection of at most `cap` entries.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            heap: BinaryHeap::with_capacity(cap.min(4096) + 1),
        }
    }

    /// The score an entry must beat (or tie with a lower key) once the selection is full.
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        match self.heap.peek() {
            Some(w) if self.heap.len() >= self.cap => w.0,
            _ => f32::NEG_INFINITY,
        }
    }

    /// Offer one entry.
    #[inline]
    pub(crate) fn push(&mut self, score: f32, key: K) {
        let entry = Worst(score, key);
        if self.heap.len() < self.cap {
            self.heap.push(entry);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if entry < *worst {
                *worst = entry;
            }
        }
    }

    /// The kept entries, best first.
    pub(crate) fn into_sorted(self) -> Vec<(f32, K)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Worst(score, key)| (score, key))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_id_tie_break() {
        let mut top = TopK::new(3);
        for (s, k) in [(0.5, 4), (0.9, 7), (0.5, 2), (0.1, 1), (0.9, 3), (0.5, 1)] {
            top.push(s, k);
        }
        assert_eq!(top.into_sorted(), vec![(0.9, 3), (0.9, 7), (0.5, 1)]);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut top = TopK::new(0);
        top.push(1.0, 1u32);
        assert!(top.into_sorted().is_empty());
        assert_eq!(TopK::<u32>::new(2).threshold(), f32::NEG_INFINITY);
    }
}
