//! Binarisation of the enhanced image and thinning to a one-pixel ridge skeleton.
//!
//! Thinning is the two-subiteration parallel algorithm of Guo & Hall ("Parallel
//! thinning with two-subiteration algorithms", CACM 32(3), 1989) in the form Lam, Lee &
//! Suen survey ("Thinning methodologies - a comprehensive survey", IEEE TPAMI 14(9),
//! 1992), the one scikit-image's `thin` implements: it keeps 8-connectivity and leaves
//! fewer staircase pixels than Zhang-Suen, which matters to the crossing number.

use super::grid::Grid;

/// The 8 neighbours, x1..x8 of Guo & Hall: E, NE, N, NW, W, SW, S, SE (counter-clockwise
/// as viewed, y down).
pub(crate) const RING: [(i32, i32); 8] = [
    (1, 0),
    (1, -1),
    (0, -1),
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// Ridge pixels: enhanced response above 0 (the one-pixel image border is cleared so
/// every neighbourhood lookup stays inside).
pub(crate) fn binarise(enhanced: &Grid<f32>) -> Grid<bool> {
    let mut out = enhanced.map(|v| v > 0.0);
    clear_border(&mut out);
    out
}

fn clear_border(g: &mut Grid<bool>) {
    for x in 0..g.w {
        g.set(x, 0, false);
        g.set(x, g.h - 1, false);
    }
    for y in 0..g.h {
        g.set(0, y, false);
        g.set(g.w - 1, y, false);
    }
}

/// The 8-bit neighbourhood code of `(x, y)`: bit `k` is `RING[k]`. The pixel must not be
/// on the border.
#[inline]
pub(crate) fn neighbourhood(g: &Grid<bool>, x: usize, y: usize) -> u8 {
    let mut code = 0u8;
    for (k, (dx, dy)) in RING.iter().enumerate() {
        let (nx, ny) = ((x as i32 + dx) as usize, (y as i32 + dy) as usize);
        if g.at(nx, ny) {
            code |= 1 << k;
        }
    }
    code
}

/// Crossing number: the number of 0 -> 1 transitions around the neighbourhood (1 at a
/// ridge ending, 2 along a ridge, 3 at a bifurcation).
#[inline]
pub(crate) fn crossing_number(code: u8) -> u32 {
    (0..8)
        .filter(|&k| code & (1 << k) == 0 && code & (1 << ((k + 1) % 8)) != 0)
        .count() as u32
}

/// Whether Guo & Hall delete a pixel with this neighbourhood in subiteration `second`.
fn deletable(code: u8, second: bool) -> bool {
    let x = |k: usize| code & (1 << ((k - 1) % 8)) != 0;
    let x_h = (1..=4)
        .filter(|&i| !x(2 * i - 1) && (x(2 * i) || x(2 * i + 1)))
        .count();
    let n1 = (1..=4).filter(|&k| x(2 * k - 1) || x(2 * k)).count();
    let n2 = (1..=4).filter(|&k| x(2 * k) || x(2 * k + 1)).count();
    let n = n1.min(n2);
    let g3 = if second {
        !((x(6) || x(7) || !x(4)) && x(5))
    } else {
        !((x(2) || x(3) || !x(8)) && x(1))
    };
    x_h == 1 && (2..=3).contains(&n) && g3
}

/// Thins the ridge pixels of `binary` to a one-pixel-wide 8-connected skeleton.
pub(crate) fn thin(binary: &Grid<bool>) -> Grid<bool> {
    let luts: [[bool; 256]; 2] = [0, 1].map(|s| {
        let mut lut = [false; 256];
        for (code, d) in lut.iter_mut().enumerate() {
            *d = deletable(code as u8, s == 1);
        }
        lut
    });
    let mut g = binary.clone();
    clear_border(&mut g);
    let mut live: Vec<(usize, usize)> = (0..g.h)
        .flat_map(|y| (0..g.w).map(move |x| (x, y)))
        .filter(|&(x, y)| g.at(x, y))
        .collect();
    let mut doomed = Vec::new();
    loop {
        let mut changed = false;
        for lut in &luts {
            doomed.clear();
            doomed.extend(
                live.iter()
                    .copied()
                    .filter(|&(x, y)| lut[neighbourhood(&g, x, y) as usize]),
            );
            for &(x, y) in &doomed {
                g.set(x, y, false);
            }
            changed |= !doomed.is_empty();
            live.retain(|&(x, y)| g.at(x, y));
        }
        if !changed {
            return g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thick_bar_thins_to_a_line_with_two_endings() {
        let mut b = Grid::new(30, 12, false);
        for y in 4..9 {
            for x in 3..27 {
                b.set(x, y, true);
            }
        }
        let s = thin(&b);
        let pixels: Vec<(usize, usize)> = (0..12)
            .flat_map(|y| (0..30).map(move |x| (x, y)))
            .filter(|&(x, y)| s.at(x, y))
            .collect();
        assert!(pixels.len() >= 15 && pixels.len() <= 26, "{}", pixels.len());
        let endings = pixels
            .iter()
            .filter(|&&(x, y)| crossing_number(neighbourhood(&s, x, y)) == 1)
            .count();
        assert_eq!(endings, 2);
        assert!(pixels.iter().all(|&(_, y)| (5..=7).contains(&y)));
    }
}
