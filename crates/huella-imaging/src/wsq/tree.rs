//! Where each wavelet node and each quantised subband lies in the image.
//!
//! WSQ splits the image five times into quadrants (20 "w-tree" nodes) and quantises 64
//! subbands ("q-tree"), of which the first 60 are coded. When a length is odd the two
//! halves differ by one; which half gets the extra sample is fixed by the standard per
//! node, and these tables reproduce it exactly.

/// A rectangle of the coefficient plane, in samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

/// One step of the inverse transform: the rectangle whose four quadrants are joined, and
/// whether the high-pass half comes first along the columns or the rows.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Node {
    pub rect: Rect,
    pub high_first_in_columns: bool,
    pub high_first_in_rows: bool,
}

/// The number of wavelet nodes.
pub(super) const NODES: usize = 20;
/// The number of quantiser bins a DQT segment defines.
pub(super) const SUBBANDS: usize = 64;
/// The subbands that carry data; 60..64 are always discarded by the standard.
pub(super) const CODED_SUBBANDS: usize = 60;

/// Splits `len` in two; an odd length gives the extra sample to the first half unless
/// `second_larger`.
fn split(len: usize, second_larger: bool) -> (usize, usize) {
    let small = len / 2;
    let large = len - small;
    if second_larger {
        (small, large)
    } else {
        (large, small)
    }
}

/// The four quadrants of `r`, in the order top-left, top-right, bottom-left, bottom-right.
fn quadrants(r: Rect, wide_right: bool, tall_bottom: bool) -> [Rect; 4] {
    let (left, right) = split(r.w, wide_right);
    let (top, bottom) = split(r.h, tall_bottom);
    [
        Rect {
            x: r.x,
            y: r.y,
            w: left,
            h: top,
        },
        Rect {
            x: r.x + left,
            y: r.y,
            w: right,
            h: top,
        },
        Rect {
            x: r.x,
            y: r.y + top,
            w: left,
            h: bottom,
        },
        Rect {
            x: r.x + left,
            y: r.y + top,
            w: right,
            h: bottom,
        },
    ]
}

/// The 20 nodes of the decomposition of a `width x height` image.
pub(super) fn wavelet_nodes(width: usize, height: usize) -> [Node; NODES] {
    let mut rects = [Rect::default(); NODES];
    // Node `parent` is split into nodes first..first+4 (the last one only if `all_four`);
    // nodes 4 and 5 put an odd length's extra sample in their right and bottom halves.
    let split_node = |rects: &mut [Rect; NODES], parent: usize, first: usize, all_four: bool| {
        let q = quadrants(rects[parent], parent == 4, parent == 5);
        let count = if all_four { 4 } else { 3 };
        rects[first..first + count].copy_from_slice(&q[..count]);
    };
    rects[0] = Rect {
        x: 0,
        y: 0,
        w: width,
        h: height,
    };
    // The bottom-right quadrant of the full image is not split further (subbands 60-63).
    split_node(&mut rects, 0, 1, false);
    // Node 1 is split unevenly: its top-right and bottom-left quadrants become nodes 4
    // and 5, its top-left node 14.
    let (left, right) = split(rects[1].w, false);
    let (top, bottom) = split(rects[1].h, false);
    rects[4] = Rect {
        x: left,
        y: 0,
        w: right,
        h: top,
    };
    rects[5] = Rect {
        x: 0,
        y: top,
        w: left,
        h: bottom,
    };
    rects[14] = Rect {
        x: 0,
        y: 0,
        w: left,
        h: top,
    };
    split_node(&mut rects, 4, 6, true);
    split_node(&mut rects, 5, 10, true);
    split_node(&mut rects, 14, 15, true);
    rects[19] = Rect {
        x: 0,
        y: 0,
        w: rects[15].w.div_ceil(2),
        h: rects[15].h.div_ceil(2),
    };

    const HIGH_FIRST_IN_ROWS: [usize; 8] = [2, 4, 7, 9, 11, 13, 16, 18];
    const HIGH_FIRST_IN_COLUMNS: [usize; 8] = [3, 5, 8, 9, 12, 13, 17, 18];
    let mut nodes = [Node::default(); NODES];
    for (i, node) in nodes.iter_mut().enumerate() {
        *node = Node {
            rect: rects[i],
            high_first_in_columns: HIGH_FIRST_IN_COLUMNS.contains(&i),
            high_first_in_rows: HIGH_FIRST_IN_ROWS.contains(&i),
        };
    }
    nodes
}

/// The 64 quantised subbands of the decomposition described by `nodes`.
pub(super) fn subbands(nodes: &[Node; NODES]) -> [Rect; SUBBANDS] {
    let mut bands = [Rect::default(); SUBBANDS];
    // Sixteen subbands from one node: its quadrants, each split again into four. The
    // flags say which half of an odd length is the larger in the first split; in the
    // second split a quadrant gives the extra sample to the half away from the node's
    // top-left corner.
    let mut sixteen = |first: usize, r: Rect, tall_bottom: bool, wide_right: bool| {
        for (k, q) in quadrants(r, wide_right, tall_bottom)
            .into_iter()
            .enumerate()
        {
            let outer_x = k % 2 == 1;
            let outer_y = k >= 2;
            let at = first + 4 * k;
            bands[at..at + 4].copy_from_slice(&quadrants(q, outer_x, outer_y));
        }
    };
    // The order matters: later groups overwrite entries of earlier ones (3, 48-50).
    sixteen(3, nodes[14].rect, false, false);
    sixteen(19, nodes[4].rect, false, true);
    sixteen(48, nodes[0].rect, false, false);
    sixteen(35, nodes[5].rect, true, false);
    bands[..4].copy_from_slice(&quadrants(nodes[19].rect, false, false));
    bands
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(r: &Rect) -> usize {
        r.w * r.h
    }

    #[test]
    fn coded_subbands_tile_the_image_less_the_discarded_quadrant() {
        for (w, h) in [(388, 374), (540, 520), (157, 193), (64, 64), (7, 3), (1, 1)] {
            let nodes = wavelet_nodes(w, h);
            let bands = subbands(&nodes);
            let mut covered = vec![0u8; w * h];
            for b in &bands[..CODED_SUBBANDS] {
                assert!(b.x + b.w <= w && b.y + b.h <= h, "{w}x{h}: {b:?}");
                for y in b.y..b.y + b.h {
                    for x in b.x..b.x + b.w {
                        covered[y * w + x] += 1;
                    }
                }
            }
            let discarded: usize = bands[CODED_SUBBANDS..].iter().map(area).sum();
            assert_eq!(discarded, area(&quadrants(nodes[0].rect, false, false)[3]));
            assert!(covered.iter().all(|&c| c <= 1), "{w}x{h}: overlap");
            let ones = covered.iter().filter(|&&c| c == 1).count();
            assert_eq!(ones + discarded, w * h, "{w}x{h}");
        }
    }

    #[test]
    fn uneven_splits_follow_the_standard() {
        // 157 wide: node 1 is 79 wide; node 4 (its right part) is 39 and splits 19 | 20.
        let nodes = wavelet_nodes(157, 193);
        assert_eq!(
            nodes[1].rect,
            Rect {
                x: 0,
                y: 0,
                w: 79,
                h: 97
            }
        );
        assert_eq!(
            nodes[4].rect,
            Rect {
                x: 40,
                y: 0,
                w: 39,
                h: 49
            }
        );
        assert_eq!(nodes[6].rect.w, 19);
        assert_eq!(nodes[7].rect.w, 20);
        assert_eq!(
            nodes[5].rect,
            Rect {
                x: 0,
                y: 49,
                w: 40,
                h: 48
            }
        );
        assert!(nodes[9].high_first_in_rows && nodes[9].high_first_in_columns);
        assert!(!nodes[0].high_first_in_rows && !nodes[19].high_first_in_columns);
    }
}
