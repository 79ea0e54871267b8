//! Order-preserving u32 keys for f32 scores, and the sorted-array walk that every
//! error-rate figure comes from.

/// Map a finite f32 to a u32 whose unsigned order is the numeric order (-0.0 == +0.0).
pub(crate) fn key(x: f32) -> u32 {
    let x = if x == 0.0 { 0.0 } else { x };
    let b = x.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Inverse of [`key`].
pub(crate) fn unkey(k: u32) -> f32 {
    let b = if k >> 31 == 1 { k & 0x7FFF_FFFF } else { !k };
    f32::from_bits(b)
}

/// A sorted array of score keys, optionally carrying a subject index per entry.
pub(crate) trait Keys {
    fn n(&self) -> usize;
    fn key_at(&self, i: usize) -> u32;
    fn subject_at(&self, i: usize) -> u32;
}

impl Keys for [u32] {
    #[inline]
    fn n(&self) -> usize {
        self.len()
    }
    #[inline]
    fn key_at(&self, i: usize) -> u32 {
        self[i]
    }
    #[inline]
    fn subject_at(&self, _i: usize) -> u32 {
        0
    }
}

impl Keys for [u64] {
    #[inline]
    fn n(&self) -> usize {
        self.len()
    }
    #[inline]
    fn key_at(&self, i: usize) -> u32 {
        (self[i] >> 32) as u32
    }
    #[inline]
    fn subject_at(&self, i: usize) -> u32 {
        self[i] as u32
    }
}

/// Number of entries with key < k (binary search).
pub(crate) fn count_lt<K: Keys + ?Sized>(a: &K, k: u32) -> usize {
    let (mut lo, mut hi) = (0usize, a.n());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if a.key_at(mid) < k {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// One operating point: threshold key and weighted error counts there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Threshold (key); a comparison matches when its score key >= this.
    pub key: u32,
    /// Impostor comparisons with score >= threshold (false matches).
    pub fm: u64,
    /// Genuine comparisons with score < threshold, plus genuine failures (false non-matches).
    pub fnm: u64,
}

/// Totals (weights) of the two classes, failures included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Totals {
    pub genuine: u64,
    pub impostor: u64,
    pub genuine_failures: u64,
}

impl Totals {
    pub fn fmr(&self, p: &Point) -> f64 {
        p.fm as f64 / self.impostor as f64
    }
    pub fn fnmr(&self, p: &Point) -> f64 {
        p.fnm as f64 / self.genuine as f64
    }
}

/// Everything one pass over the merged thresholds yields.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    /// Last point with FNMR < FMR before the crossing (None if the first point already crossed).
    pub before_cross: Option<Point>,
    /// First point with FNMR >= FMR.
    pub cross: Point,
    /// Last point with FNMR <= FMR (FVC's t1); None if there is none.
    pub fvc_t1: Option<Point>,
    /// For each requested FMR level: the first (lowest) threshold with FMR <= level.
    pub at_fmr: Vec<Point>,
    /// First point with no false match.
    pub zero_fmr: Point,
    /// Last point with no false non-match (None when genuine failures make FNMR > 0 everywhere).
    pub zero_fnmr: Option<Point>,
}

/// Walk every distinct threshold of the merged sorted arrays in ascending order, plus the
/// threshold just above the highest score, with per-subject weights.
///
/// `imp_scores_w` is the total weight of impostor *scores* (failures excluded);
/// failures never match, so they only enter the totals.
pub(crate) fn walk<G, I, W>(
    g: &G,
    i: &I,
    weight: W,
    totals: Totals,
    imp_scores_w: u64,
    levels: &[f64],
) -> Walk
where
    G: Keys + ?Sized,
    I: Keys + ?Sized,
    W: Fn(u32) -> u64,
{
    let (ng, ni) = (g.n(), i.n());
    let (wg, wi) = (totals.genuine as u128, totals.impostor as u128);
    let mut at_fmr: Vec<Option<Point>> = vec![None; levels.len()];
    let mut before_cross = None;
    let mut cross = None;
    let mut fvc_t1 = None;
    let mut zero_fmr = None;
    let mut zero_fnmr = None;
    let mut prev: Option<Point> = None;
    let mut process = |p: Point| {
        let fmr = p.fm as f64 / totals.impostor as f64;
        for (slot, &level) in at_fmr.iter_mut().zip(levels) {
            if slot.is_none() && fmr <= level {
                *slot = Some(p);
            }
        }
        if zero_fmr.is_none() && p.fm == 0 {
            zero_fmr = Some(p);
        }
        if p.fnm == 0 {
            zero_fnmr = Some(p);
        }
        let lhs = p.fnm as u128 * wi; // FNMR * WG * WI
        let rhs = p.fm as u128 * wg; // FMR * WG * WI
        if cross.is_none() && lhs >= rhs {
            cross = Some(p);
            before_cross = prev;
        }
        if lhs <= rhs {
            fvc_t1 = Some(p);
        }
        prev = Some(p);
    };
    let (mut gi, mut ii) = (0usize, 0usize);
    let mut fnm = totals.genuine_failures;
    let mut imp_below = 0u64;
    let mut last = 0u32;
    while gi < ng || ii < ni {
        let kg = if gi < ng { g.key_at(gi) } else { u32::MAX };
        let ki = if ii < ni { i.key_at(ii) } else { u32::MAX };
        let v = kg.min(ki);
        process(Point {
            key: v,
            fm: imp_scores_w - imp_below,
            fnm,
        });
        while gi < ng && g.key_at(gi) == v {
            fnm += weight(g.subject_at(gi));
            gi += 1;
        }
        while ii < ni && i.key_at(ii) == v {
            imp_below += weight(i.subject_at(ii));
            ii += 1;
        }
        last = v;
    }
    // The threshold just above every score: nothing matches.
    process(Point {
        key: last.saturating_add(1),
        fm: 0,
        fnm: totals.genuine,
    });
    let top = Point {
        key: last.saturating_add(1),
        fm: 0,
        fnm: totals.genuine,
    };
    Walk {
        before_cross,
        cross: cross.unwrap_or(top),
        fvc_t1,
        at_fmr: at_fmr.into_iter().map(|p| p.unwrap_or(top)).collect(),
        zero_fmr: zero_fmr.unwrap_or(top),
        zero_fnmr,
    }
}

/// EER by linear interpolation of the (FMR, FNMR) segment that crosses FMR = FNMR.
pub(crate) fn eer_interpolated(w: &Walk, t: &Totals) -> f64 {
    let (f2, n2) = (t.fmr(&w.cross), t.fnmr(&w.cross));
    match w.before_cross {
        None => (f2 + n2) / 2.0,
        Some(p1) => {
            let (f1, n1) = (t.fmr(&p1), t.fnmr(&p1));
            let (d1, d2) = (f1 - n1, f2 - n2);
            if d1 - d2 <= 0.0 {
                return (f2 + n2) / 2.0;
            }
            let lambda = d1 / (d1 - d2);
            f1 + lambda * (f2 - f1)
        }
    }
}

/// FVC2000 EER interval (Maio et al. 2002): [low, high].
pub(crate) fn eer_fvc(w: &Walk, t: &Totals) -> (f64, f64, u32, u32) {
    let t2 = w.cross;
    let (f2, n2) = (t.fmr(&t2), t.fnmr(&t2));
    match w.fvc_t1 {
        None => (f2.min(n2), f2.max(n2), t2.key, t2.key),
        Some(t1) => {
            let (f1, n1) = (t.fmr(&t1), t.fnmr(&t1));
            if f1 + n1 <= f2 + n2 {
                (n1, f1, t1.key, t1.key)
            } else {
                (f2, n2, t2.key, t2.key)
            }
        }
    }
}
