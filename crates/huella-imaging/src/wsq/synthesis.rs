//! From quantised coefficients to pixels: dequantisation, the inverse wavelet transform
//! and the final shift and scale.
//!
//! The arithmetic is single precision and every sum is taken in the order of the NIST
//! reference decoder (NBIS), so results match it exactly rather than to within rounding.

use super::tree::{Node, Rect, CODED_SUBBANDS, SUBBANDS};

/// The synthesis filters of a DTT segment; both have odd length (whole-sample symmetric).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Filters {
    low: Vec<f32>,
    high: Vec<f32>,
    low_phases: Phases,
    high_phases: Phases,
}

/// A filter's even taps (0, 2, 4, ...) and odd taps (1, 3, ...): each output uses one.
type Phases = [Vec<f32>; 2];

impl Filters {
    pub fn new(low: Vec<f32>, high: Vec<f32>) -> Filters {
        let phases = |taps: &[f32]| -> Phases {
            [
                taps.iter().step_by(2).copied().collect(),
                taps.iter().skip(1).step_by(2).copied().collect(),
            ]
        };
        Filters {
            low_phases: phases(&low),
            high_phases: phases(&high),
            low,
            high,
        }
    }
}

/// The quantiser of a DQT segment.
#[derive(Debug, Clone)]
pub(super) struct Quantiser {
    /// `C`: where a non-zero index's value sits within its bin.
    pub bin_centre: f32,
    /// Bin width per subband; 0 means the subband is not coded.
    pub bin: [f32; SUBBANDS],
    /// Zero-bin width per subband.
    pub zero_bin: [f32; SUBBANDS],
}

impl Quantiser {
    /// The coded subbands in coding order, skipping those with a zero bin width.
    pub fn coded<'a>(
        &'a self,
        bands: &'a [Rect; SUBBANDS],
    ) -> impl Iterator<Item = (usize, Rect)> + 'a {
        (0..CODED_SUBBANDS)
            .filter(|&k| self.bin[k] != 0.0)
            .map(move |k| (k, bands[k]))
    }
}

/// Places the quantised indices (in coding order) into a `width`-wide plane as values.
///
/// The caller guarantees that every band lies inside the plane and that `indices` holds
/// exactly the samples of the coded bands; a shortfall leaves zeros.
pub(super) fn dequantise(
    indices: &[i16],
    quantiser: &Quantiser,
    bands: &[Rect; SUBBANDS],
    plane: &mut [f32],
    width: usize,
) {
    let mut next = indices.iter();
    let c = quantiser.bin_centre;
    for (k, band) in quantiser.coded(bands) {
        let (q, half_zero) = (quantiser.bin[k], f64::from(quantiser.zero_bin[k]) / 2.0);
        for y in band.y..band.y + band.h {
            let start = y * width + band.x;
            let Some(row) = plane.get_mut(start..start + band.w) else {
                return;
            };
            for (out, &i) in row.iter_mut().zip(next.by_ref()) {
                let i = f32::from(i);
                // The zero-bin half width is added in double precision, as NBIS does.
                *out = match i {
                    _ if i > 0.0 => (f64::from(q * (i - c)) + half_zero) as f32,
                    _ if i < 0.0 => (f64::from(q * (i + c)) - half_zero) as f32,
                    _ => 0.0,
                };
            }
        }
    }
}

/// Inverts the wavelet decomposition in place, deepest node first.
pub(super) fn reconstruct(plane: &mut [f32], width: usize, nodes: &[Node], filters: &Filters) {
    let mut line = Vec::new();
    let mut out = Vec::new();
    for node in nodes.iter().rev() {
        let r = node.rect;
        if r.w == 0 || r.h == 0 {
            continue;
        }
        // Columns first, then rows; each line is synthesised from its two halves.
        for x in r.x..r.x + r.w {
            line.clear();
            line.extend((r.y..r.y + r.h).map(|y| plane.get(y * width + x).copied().unwrap_or(0.0)));
            synthesise(&line, &mut out, filters, node.high_first_in_columns);
            for (y, &v) in (r.y..r.y + r.h).zip(&out) {
                if let Some(p) = plane.get_mut(y * width + x) {
                    *p = v;
                }
            }
        }
        for y in r.y..r.y + r.h {
            let start = y * width + r.x;
            let Some(row) = plane.get_mut(start..start + r.w) else {
                continue;
            };
            synthesise(row, &mut out, filters, node.high_first_in_rows);
            row.copy_from_slice(&out);
        }
    }
}

/// The position of a filter tap in one half of a line: it moves by `step` and turns at
/// either end. The first turn at an end marked `repeat_*` reads the end sample twice
/// (half-sample symmetry); any other turn reflects about the end sample.
#[derive(Debug, Clone, Copy)]
struct Walk {
    pos: isize,
    step: isize,
    repeat_left: bool,
    repeat_right: bool,
}

impl Walk {
    fn turn_left(&mut self) {
        if self.pos == 0 {
            if self.repeat_left {
                self.step = 0;
                self.repeat_left = false;
            } else {
                self.step = 1;
            }
        }
    }

    fn turn(&mut self, len: isize) {
        self.turn_left();
        if self.pos == len - 1 {
            if self.repeat_right {
                self.step = 0;
                self.repeat_right = false;
            } else {
                self.step = -1;
            }
        }
    }
}

/// A sample of a half line; positions outside it (possible only in bands too short for
/// the filter) read as zero.
fn at(half: &[f32], pos: isize) -> f32 {
    usize::try_from(pos)
        .ok()
        .and_then(|p| half.get(p))
        .copied()
        .unwrap_or(0.0)
}

/// The samples a walk of `count` reads when it stays clear of both ends (so never turns),
/// lowest position first, and whether it reads them forwards; `None` near an end.
fn interior(half: &[f32], w: Walk, count: usize) -> Option<(&[f32], bool)> {
    let span = isize::try_from(count).ok()?.checked_sub(1)?;
    let (lo, hi) = match w.step {
        1 => (w.pos, w.pos + span),
        -1 => (w.pos - span, w.pos),
        _ => return None,
    };
    if lo < 1 || hi > half.len() as isize - 2 {
        return None;
    }
    let samples = half.get(usize::try_from(lo).ok()?..=usize::try_from(hi).ok()?)?;
    Some((samples, w.step == 1))
}

/// How one filter runs over its half of a line.
struct Pass<'a> {
    half: &'a [f32],
    taps: &'a Phases,
    start: Walk,
    /// Taps used for the first output pair (0: one output, 1: two).
    first_tap: usize,
    /// Lowest tap of the final pair (0: two outputs, 1: one, 2: none).
    last_tap: usize,
}

impl Pass<'_> {
    /// Runs the pass, handing each output index and tap walk to `emit`. Outputs come in
    /// pairs (taps 1 then 0), one pair per high-pass sample, plus the partial pairs at the
    /// ends; the start position then moves one sample.
    fn run(mut self, pairs: usize, mut emit: impl FnMut(usize, Walk, usize, &[f32], &Phases)) {
        let mut n = 0;
        for pair in 0..pairs {
            let top = if pair == 0 { self.first_tap } else { 1 };
            for tap in (0..=top).rev() {
                emit(n, self.start, tap, self.half, self.taps);
                n += 1;
            }
            self.start.turn_left();
            self.start.pos += self.start.step;
        }
        for tap in (self.last_tap..=1).rev() {
            emit(n, self.start, tap, self.half, self.taps);
            n += 1;
        }
    }
}

/// Synthesises one line from its low-pass and high-pass halves into `out`.
///
/// An odd line has one more low-pass than high-pass sample. `high_first` says the
/// high-pass half is stored first (the spectral inversion of some nodes).
fn synthesise(line: &[f32], out: &mut Vec<f32>, filters: &Filters, high_first: bool) {
    let n = line.len();
    out.clear();
    out.resize(n, 0.0);
    let odd = n % 2 == 1;
    let high_len = n / 2;
    let low_len = n - high_len;
    let (low, high) = if high_first {
        let (h, l) = line.split_at(high_len);
        (l, h)
    } else {
        line.split_at(low_len)
    };
    let (lo, hi) = (&filters.low, &filters.high);
    let low_pair = ((lo.len() - 1) / 2) % 2;
    let high_pair = hi.len().div_ceil(2) % 2;
    let last = |first_tap: usize| match (odd, first_tap) {
        (true, 1) => 1,
        (true, _) => 0,
        (false, 1) => 2,
        (false, _) => 1,
    };

    let low_pass = Pass {
        half: low,
        taps: &filters.low_phases,
        start: Walk {
            pos: ((lo.len() - 1) / 4) as isize,
            step: -1,
            repeat_left: false,
            repeat_right: !odd,
        },
        first_tap: low_pair,
        last_tap: last(low_pair),
    };
    low_pass.run(high_len, |i, mut w, tap, half, taps| {
        let used = phase(taps, tap);
        let acc = match interior(half, w, used.len()) {
            // Same products, same order as the walk below, without its end checks.
            Some((xs, true)) => dot(xs.iter(), used),
            Some((xs, false)) => dot(xs.iter().rev(), used),
            None => {
                let len = half.len() as isize;
                let mut acc = at(half, w.pos) * used.first().copied().unwrap_or(0.0);
                for &t in used.iter().skip(1) {
                    w.turn(len);
                    w.pos += w.step;
                    acc += at(half, w.pos) * t;
                }
                acc
            }
        };
        if let Some(o) = out.get_mut(i) {
            *o = acc;
        }
    });

    let high_pass = Pass {
        half: high,
        taps: &filters.high_phases,
        start: Walk {
            pos: ((hi.len() + 1) / 4) as isize - 1,
            step: -1,
            repeat_left: true,
            repeat_right: odd,
        },
        first_tap: high_pair,
        last_tap: last(high_pair),
    };
    high_pass.run(high_len, |i, mut w, tap, half, taps| {
        let Some(o) = out.get_mut(i) else {
            return;
        };
        let used = phase(taps, tap);
        let mut acc = *o;
        match interior(half, w, used.len()) {
            Some((xs, true)) => xs.iter().zip(used).for_each(|(x, t)| acc += x * t),
            Some((xs, false)) => xs.iter().rev().zip(used).for_each(|(x, t)| acc += x * t),
            None => {
                let len = half.len() as isize;
                for &t in used {
                    w.turn(len);
                    acc += at(half, w.pos) * t;
                    w.pos += w.step;
                }
            }
        }
        *o = acc;
    });
}

/// The taps `tap`, `tap + 2`, ... of a filter (its even or odd phase).
fn phase(taps: &Phases, tap: usize) -> &[f32] {
    taps.get(tap).map_or(&[], Vec::as_slice)
}

/// `sum(x * t)` taken left to right, starting from the first product.
fn dot<'a>(xs: impl Iterator<Item = &'a f32>, taps: &[f32]) -> f32 {
    let mut terms = xs.zip(taps).map(|(x, t)| x * t);
    let first = terms.next().unwrap_or(0.0);
    terms.fold(first, |acc, v| acc + v)
}

/// Converts reconstructed values to 8-bit grey: `value * scale + shift`, rounded half up
/// and clamped, with NBIS's single/double precision mix.
pub(super) fn to_grey(plane: &[f32], shift: f32, scale: f32) -> impl Iterator<Item = u8> + '_ {
    plane.iter().map(move |&v| {
        let t = ((f64::from(v * scale + shift)) + 0.5) as f32;
        if t < 0.0 {
            0
        } else if t > 255.0 {
            255
        } else {
            t as u8 // truncates, as C does
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 9/7 biorthogonal synthesis pair as NBIS's encoder writes it: 7-tap low-pass,
    /// 9-tap high-pass.
    pub(super) fn cdf97() -> Filters {
        let lo_half = [1.115_087_1_f32, 0.591_271_8, -0.057_543_5, -0.091_271_8];
        let hi_half = [
            0.602_949_f32,
            -0.266_864_1,
            -0.078_223_3,
            0.016_864_1,
            0.026_748_8,
        ];
        let mirror = |half: &[f32]| -> Vec<f32> {
            half.iter()
                .rev()
                .chain(half.iter().skip(1))
                .copied()
                .collect()
        };
        Filters::new(mirror(&lo_half), mirror(&hi_half))
    }

    #[test]
    fn a_constant_low_band_synthesises_to_a_constant_line() {
        // With zero high-pass samples, a flat low band must come back flat (the low-pass
        // filter's DC gain), whatever the length, parity or half order.
        let f = cdf97();
        let gain: f32 = f.low.iter().step_by(2).sum::<f32>();
        let gain_odd: f32 = f.low.iter().skip(1).step_by(2).sum::<f32>();
        assert!((gain - gain_odd).abs() < 1e-3, "{gain} {gain_odd}");
        let mut out = Vec::new();
        for n in [5usize, 8, 13, 24, 51] {
            for high_first in [false, true] {
                let mut line = vec![0.0; n];
                let low_len = n - n / 2;
                let low_range = if high_first { n / 2..n } else { 0..low_len };
                line[low_range].iter_mut().for_each(|v| *v = 10.0);
                synthesise(&line, &mut out, &f, high_first);
                for (i, v) in out.iter().enumerate() {
                    assert!(
                        (v - 10.0 * gain).abs() < 1e-3,
                        "n={n} {high_first} [{i}] = {v}"
                    );
                }
            }
        }
    }

    #[test]
    fn tiny_and_empty_lines_do_not_panic() {
        let f = cdf97();
        let mut out = Vec::new();
        for n in 0..5 {
            synthesise(&vec![1.0; n], &mut out, &f, false);
            assert_eq!(out.len(), n);
            assert!(out.iter().all(|v| v.is_finite()));
        }
        let one_tap = Filters::new(vec![1.0], vec![1.0]);
        synthesise(&[1.0, 2.0, 3.0], &mut out, &one_tap, true);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn grey_conversion_rounds_and_clamps() {
        let grey: Vec<u8> = to_grey(&[-300.0, -0.6, 0.49, 1.5, 127.4, 400.0], 128.0, 1.0).collect();
        assert_eq!(grey, [0, 127, 128, 130, 255, 255]);
    }
}
