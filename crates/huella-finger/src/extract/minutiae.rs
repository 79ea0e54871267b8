//! Minutiae from the skeleton: crossing-number detection, skeleton tracing, direction
//! and the removal of false minutiae.
//!
//! - Detection: the crossing number (Arcelli & Baja 1984; Maltoni et al., *Handbook of
//!   Fingerprint Recognition*, 2nd ed., section 3.7.1): 1 marks a ridge ending, 3 or
//!   more a bifurcation; adjacent bifurcation pixels form one junction.
//! - Direction: the ISO/IEC 19794-2 convention (the INCITS 378 one): a bifurcation points
//!   along the valley between its two branches, away from the stem; a ridge ending,
//!   its dual (a valley bifurcation), points along the ridge that ends, into its body.
//!   The direction is the local ridge orientation, its sense taken from the traced
//!   skeleton (its angle is used alone where the two disagree, near singular points).
//! - False minutiae (Xiao & Raafat, "Fingerprint image postprocessing", Pattern
//!   Recognition 24(10), 1991; Tico & Kuosmanen, "An algorithm for fingerprint image
//!   postprocessing", 2000): minutiae near the foreground border; spurs (an ending
//!   traced into a junction within a short length); islands and short ridges (an
//!   ending traced into another ending); bridges, lakes and ladders (a junction traced
//!   into another junction); broken ridges (two endings facing each other along the
//!   ridge flow); dense clusters, which mark noise.

use std::f32::consts::{PI, TAU};

use super::grid::Grid;
use super::orientation::OrientationField;
use super::skeleton::{crossing_number, neighbourhood, RING};
use super::ExtractConfig;
use crate::MinutiaKind;

/// A detected minutia in processing coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Found {
    pub x: f32,
    pub y: f32,
    /// Direction, image angle (y down) in `[0, 2π)`.
    pub angle: f32,
    pub kind: MinutiaKind,
    /// 0..1.
    pub quality: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Length,
    Ending,
    Junction,
}

#[derive(Debug)]
struct Trace {
    path: Vec<(i32, i32)>,
    stop: Stop,
}

#[derive(Debug)]
struct Candidate {
    x: f32,
    y: f32,
    kind: MinutiaKind,
    traces: Vec<Trace>,
}

/// Minutiae of `skel` with direction and quality, false ones removed.
pub(crate) fn detect(
    skel: &Grid<bool>,
    field: &OrientationField,
    border: &Grid<f32>,
    p: &ExtractConfig,
) -> Vec<Found> {
    let (candidates, owner) = find_candidates(skel, p.spur_length.max(p.direction_length));
    // Structural rules, decided on the original candidates so removals do not cascade.
    let owner_of = |(x, y): (i32, i32)| owner.at(x as usize, y as usize).checked_sub(1);
    let mut doomed = vec![false; candidates.len()];
    for (i, c) in candidates.iter().enumerate() {
        for t in &c.traces {
            if t.stop == Stop::Length || t.path.len() > p.spur_length {
                continue;
            }
            let last = *t.path.last().unwrap_or(&(0, 0));
            // Spur: ending <-> junction; island: ending <-> ending; bridge: junction <->
            // junction. All three remove both ends.
            doomed[i] = true;
            let other = match t.stop {
                Stop::Ending => owner_of(last),
                _ => junction_owner(&owner, last),
            };
            if let Some(o) = other {
                doomed[o as usize] = true;
            }
        }
    }
    let mut found: Vec<(usize, Found)> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let d = border.at(c.x.round() as usize, c.y.round() as usize);
        if doomed[i] || d < p.border_margin {
            continue;
        }
        let Some(angle) = direction(c, field, p.direction_length) else {
            continue;
        };
        let (bx, by) = (c.x as usize / field.bs, c.y as usize / field.bs);
        let coherence = field.coherence.at(bx, by);
        let clarity = ((coherence - 0.2) / 0.6).clamp(0.05, 1.0);
        let inside = (d / (3.0 * p.border_margin)).clamp(0.0, 1.0);
        found.push((
            i,
            Found {
                x: c.x,
                y: c.y,
                angle,
                kind: c.kind,
                quality: clarity * (0.5 + 0.5 * inside),
            },
        ));
    }
    let found = remove_broken_ridges(found, p.break_distance);
    remove_clusters(found, p.cluster_radius, p.cluster_count)
}

/// Candidates (endings and junction clusters) with their traced branches, and a grid
/// mapping each candidate pixel to its index + 1.
fn find_candidates(skel: &Grid<bool>, max_len: usize) -> (Vec<Candidate>, Grid<u32>) {
    let mut cn = Grid::new(skel.w, skel.h, 0u8);
    for y in 1..skel.h.saturating_sub(1) {
        for x in 1..skel.w - 1 {
            if skel.at(x, y) {
                cn.set(x, y, crossing_number(neighbourhood(skel, x, y)) as u8);
            }
        }
    }
    let junction = cn.map(|c| c >= 3);
    let mut owner = Grid::new(skel.w, skel.h, 0u32);
    let mut candidates = Vec::new();
    for y in 1..skel.h.saturating_sub(1) {
        for x in 1..skel.w - 1 {
            let c = cn.at(x, y);
            if owner.at(x, y) != 0 || !(c == 1 || c >= 3) {
                continue;
            }
            let id = candidates.len() as u32 + 1;
            let cluster = if c == 1 {
                vec![(x as i32, y as i32)]
            } else {
                flood(&junction, (x as i32, y as i32))
            };
            for &(px, py) in &cluster {
                owner.set(px as usize, py as usize, id);
            }
            let n = cluster.len() as f32;
            let cx = cluster.iter().map(|p| p.0 as f32).sum::<f32>() / n;
            let cy = cluster.iter().map(|p| p.1 as f32).sum::<f32>() / n;
            let traces = trace_branches(skel, &junction, &cluster, max_len);
            let kind = if c == 1 {
                MinutiaKind::Ending
            } else {
                MinutiaKind::Bifurcation
            };
            candidates.push(Candidate {
                x: cx,
                y: cy,
                kind,
                traces,
            });
        }
    }
    (candidates, owner)
}

/// The junction candidate owning pixel `p` or one of its neighbours.
fn junction_owner(owner: &Grid<u32>, p: (i32, i32)) -> Option<u32> {
    std::iter::once((0, 0))
        .chain(RING)
        .find_map(|(dx, dy)| owner.get(p.0 + dx, p.1 + dy).filter(|&o| o != 0))
        .map(|o| o - 1)
}

/// The 8-connected set of `true` pixels containing `start`, in discovery order.
fn flood(g: &Grid<bool>, start: (i32, i32)) -> Vec<(i32, i32)> {
    let mut out = vec![start];
    let mut i = 0;
    while i < out.len() {
        let (x, y) = out[i];
        for (dx, dy) in RING {
            let q = (x + dx, y + dy);
            if g.get(q.0, q.1) == Some(true) && !out.contains(&q) {
                out.push(q);
            }
        }
        i += 1;
    }
    out
}

/// Traces every branch leaving `cluster` for up to `max_len` pixels.
fn trace_branches(
    skel: &Grid<bool>,
    junction: &Grid<bool>,
    cluster: &[(i32, i32)],
    max_len: usize,
) -> Vec<Trace> {
    let mut starts: Vec<(i32, i32)> = Vec::new();
    for &(x, y) in cluster {
        for (dx, dy) in RING {
            let q = (x + dx, y + dy);
            if skel.get(q.0, q.1) == Some(true) && !cluster.contains(&q) && !starts.contains(&q) {
                starts.push(q);
            }
        }
    }
    // 4-adjacent starts belong to one branch (for a single pixel these are its
    // crossing-number runs); a branch's first pixel is its first member.
    let mut group = vec![usize::MAX; starts.len()];
    let mut firsts = Vec::new();
    for i in 0..starts.len() {
        if group[i] != usize::MAX {
            continue;
        }
        group[i] = firsts.len();
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            for k in 0..starts.len() {
                let (a, b) = (starts[j], starts[k]);
                if group[k] == usize::MAX && (a.0 - b.0).abs() + (a.1 - b.1).abs() == 1 {
                    group[k] = firsts.len();
                    stack.push(k);
                }
            }
        }
        firsts.push(starts[i]);
    }
    let mut visited: Vec<(i32, i32)> = cluster.iter().chain(&starts).copied().collect();
    let base = visited.len();
    firsts
        .into_iter()
        .map(|first| {
            visited.truncate(base);
            trace(skel, junction, first, &mut visited, max_len)
        })
        .collect()
}

/// Follows the skeleton from `first` (already in `visited`) until it ends, forks or
/// reaches `max_len` pixels.
fn trace(
    skel: &Grid<bool>,
    junction: &Grid<bool>,
    first: (i32, i32),
    visited: &mut Vec<(i32, i32)>,
    max_len: usize,
) -> Trace {
    let mut path = vec![first];
    let mut cur = first;
    loop {
        if junction.get(cur.0, cur.1) == Some(true) {
            return Trace {
                path,
                stop: Stop::Junction,
            };
        }
        if path.len() >= max_len {
            return Trace {
                path,
                stop: Stop::Length,
            };
        }
        let mut open = [false; 8];
        for (k, (dx, dy)) in RING.iter().enumerate() {
            let q = (cur.0 + dx, cur.1 + dy);
            open[k] = skel.get(q.0, q.1) == Some(true) && !visited.contains(&q);
        }
        let runs = (0..8).filter(|&k| !open[k] && open[(k + 1) % 8]).count();
        let all = open.iter().all(|&o| o);
        if !open.iter().any(|&o| o) {
            return Trace {
                path,
                stop: Stop::Ending,
            };
        }
        if runs >= 2 && !all {
            return Trace {
                path,
                stop: Stop::Junction,
            };
        }
        // Prefer a 4-neighbour (even ring index); the rest of the run is behind us.
        let k = (0..8)
            .filter(|&k| open[k])
            .min_by_key(|&k| (k % 2, k))
            .unwrap_or(0);
        for (j, (dx, dy)) in RING.iter().enumerate() {
            if open[j] {
                visited.push((cur.0 + dx, cur.1 + dy));
            }
        }
        cur = (cur.0 + RING[k].0, cur.1 + RING[k].1);
        path.push(cur);
    }
}

/// Image angle of the vector from `(x, y)` to the `len`-th pixel of a trace.
fn trace_angle(c: &Candidate, t: &Trace, len: usize) -> Option<f32> {
    let &(px, py) = t.path.get(len.min(t.path.len()).checked_sub(1)?)?;
    let (vx, vy) = (px as f32 - c.x, py as f32 - c.y);
    (vx != 0.0 || vy != 0.0).then(|| vy.atan2(vx))
}

/// Smallest absolute difference of two angles, `[0, π]`.
pub(crate) fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

/// Direction of a candidate (image angle in `[0, 2π)`), or `None` when its branches do
/// not allow one.
fn direction(c: &Candidate, field: &OrientationField, len: usize) -> Option<f32> {
    let traced = match (c.kind, c.traces.as_slice()) {
        (MinutiaKind::Ending, [t]) => trace_angle(c, t, len)?,
        (MinutiaKind::Bifurcation, [a, b, s]) => {
            let angles = [
                trace_angle(c, a, len)?,
                trace_angle(c, b, len)?,
                trace_angle(c, s, len)?,
            ];
            // The stem is the branch left out of the closest pair.
            let pairs = [(0, 1, 2), (0, 2, 1), (1, 2, 0)];
            let &(_, _, stem) = pairs.iter().min_by(|p, q| {
                angle_diff(angles[p.0], angles[p.1])
                    .total_cmp(&angle_diff(angles[q.0], angles[q.1]))
            })?;
            angles[stem] + PI
        }
        _ => return None,
    };
    let theta = field.angle_at(c.x, c.y);
    let flow = if angle_diff(theta, traced) <= PI / 2.0 {
        theta
    } else {
        theta + PI
    };
    let chosen = if angle_diff(flow, traced) < PI / 6.0 {
        flow
    } else {
        traced
    };
    Some(chosen.rem_euclid(TAU))
}

/// Drops pairs of endings that face each other across a short gap along the ridge flow.
fn remove_broken_ridges(found: Vec<(usize, Found)>, max_dist: f32) -> Vec<Found> {
    let mut dead = vec![false; found.len()];
    for i in 0..found.len() {
        let a = &found[i].1;
        if a.kind != MinutiaKind::Ending {
            continue;
        }
        for j in i + 1..found.len() {
            let b = &found[j].1;
            if b.kind != MinutiaKind::Ending {
                continue;
            }
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let dist = dx.hypot(dy);
            if dist > max_dist || dist == 0.0 {
                continue;
            }
            // Each ending points into its own ridge, so across a gap they point away
            // from each other: b lies behind a and a behind b, along the flow.
            let gap = dy.atan2(dx);
            let facing = angle_diff(a.angle, b.angle) > 5.0 * PI / 6.0
                && angle_diff(gap, a.angle + PI) < PI / 4.0
                && angle_diff(gap + PI, b.angle + PI) < PI / 4.0;
            if facing {
                dead[i] = true;
                dead[j] = true;
            }
        }
    }
    found
        .into_iter()
        .zip(dead)
        .filter(|(_, d)| !d)
        .map(|((_, f), _)| f)
        .collect()
}

/// Drops minutiae with at least `count` others within `radius`.
fn remove_clusters(found: Vec<Found>, radius: f32, count: usize) -> Vec<Found> {
    let crowded: Vec<bool> = found
        .iter()
        .map(|a| {
            found
                .iter()
                .filter(|b| (b.x - a.x).hypot(b.y - a.y) <= radius)
                .count()
                > count
        })
        .collect();
    found
        .into_iter()
        .zip(crowded)
        .filter(|(_, c)| !c)
        .map(|(f, _)| f)
        .collect()
}
