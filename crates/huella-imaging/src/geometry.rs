//! 2-D affine maps and the least-squares similarity fit used by face alignment.

/// A 2-D affine map `(x, y) -> (a x + b y + tx, c x + d y + ty)`.
///
/// An `Affine2` has no built-in direction; each function that takes one says which way it
/// maps. [`Affine2::similarity_from_points`] returns the map taking `src` points to `dst`
/// points, while [`crate::warp_affine`] wants the map from *output* pixel coordinates to
/// *source* pixel coordinates, so aligning a face is
/// `warp_affine(&img, &fit.inverse()?, w, h)` with `fit` from landmarks to template.
/// Pixel centres sit at integer coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine2 {
    /// Coefficient of `x` in the output `x`.
    pub a: f32,
    /// Coefficient of `y` in the output `x`.
    pub b: f32,
    /// Coefficient of `x` in the output `y`.
    pub c: f32,
    /// Coefficient of `y` in the output `y`.
    pub d: f32,
    /// Translation along `x`.
    pub tx: f32,
    /// Translation along `y`.
    pub ty: f32,
}

impl Default for Affine2 {
    fn default() -> Self {
        Affine2::IDENTITY
    }
}

impl Affine2 {
    /// The map that leaves every point where it is.
    pub const IDENTITY: Affine2 = Affine2 {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 1.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// Maps one point.
    #[inline]
    pub fn apply(&self, (x, y): (f32, f32)) -> (f32, f32) {
        (
            self.a * x + self.b * y + self.tx,
            self.c * x + self.d * y + self.ty,
        )
    }

    /// The map that undoes this one; `None` if it is singular or not finite.
    pub fn inverse(&self) -> Option<Affine2> {
        let (a, b, c, d) = (
            f64::from(self.a),
            f64::from(self.b),
            f64::from(self.c),
            f64::from(self.d),
        );
        let (tx, ty) = (f64::from(self.tx), f64::from(self.ty));
        let det = a * d - b * c;
        let scale = a.abs().max(b.abs()).max(c.abs()).max(d.abs());
        if !det.is_finite() || det.abs() <= f64::from(f32::EPSILON) * scale * scale {
            return None;
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        let inv = Affine2 {
            a: ia as f32,
            b: ib as f32,
            c: ic as f32,
            d: id as f32,
            tx: (-(ia * tx + ib * ty)) as f32,
            ty: (-(ic * tx + id * ty)) as f32,
        };
        inv.is_finite().then_some(inv)
    }

    /// Whether every coefficient is finite.
    pub fn is_finite(&self) -> bool {
        [self.a, self.b, self.c, self.d, self.tx, self.ty]
            .iter()
            .all(|v| v.is_finite())
    }

    /// The rotation + uniform scale + translation that best maps `src[i]` onto `dst[i]`
    /// in the least-squares sense (Umeyama 1991, reflections excluded).
    ///
    /// Returns `None` for degenerate input: fewer than two pairs, slices of different
    /// lengths, non-finite coordinates, all `src` points (numerically) coincident, or all
    /// `dst` points coincident (a zero scale could not be inverted).
    pub fn similarity_from_points(src: &[(f32, f32)], dst: &[(f32, f32)]) -> Option<Affine2> {
        if src.len() != dst.len() || src.len() < 2 {
            return None;
        }
        let all_finite =
            |pts: &[(f32, f32)]| pts.iter().all(|p| p.0.is_finite() && p.1.is_finite());
        if !all_finite(src) || !all_finite(dst) {
            return None;
        }
        let n = src.len() as f64;
        let mean = |pts: &[(f32, f32)]| {
            let (sx, sy) = pts.iter().fold((0.0, 0.0), |(sx, sy), p| {
                (sx + f64::from(p.0), sy + f64::from(p.1))
            });
            (sx / n, sy / n)
        };
        let (mx, my) = mean(src);
        let (nx, ny) = mean(dst);
        // For 2-D, the scaled rotations are exactly the matrices [[p, -q], [q, p]], and the
        // least-squares (p, q) over centred points is (sum(s.d), sum(s x d)) / sum(|s|^2),
        // which is Umeyama's solution with the reflection excluded.
        let (mut var_s, mut var_d, mut dot, mut cross) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for (s, d) in src.iter().zip(dst) {
            let (sx, sy) = (f64::from(s.0) - mx, f64::from(s.1) - my);
            let (dx, dy) = (f64::from(d.0) - nx, f64::from(d.1) - ny);
            var_s += sx * sx + sy * sy;
            var_d += dx * dx + dy * dy;
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
        }
        let tiny = |var: f64, cx: f64, cy: f64| var <= 1e-12 * n * (1.0 + cx * cx + cy * cy);
        if tiny(var_s, mx, my) || tiny(var_d, nx, ny) {
            return None;
        }
        let p = dot / var_s;
        let q = cross / var_s;
        if p * p + q * q <= 1e-24 {
            return None;
        }
        let m = Affine2 {
            a: p as f32,
            b: (-q) as f32,
            c: q as f32,
            d: p as f32,
            tx: (nx - (p * mx - q * my)) as f32,
            ty: (ny - (q * mx + p * my)) as f32,
        };
        m.is_finite().then_some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f32, f32), b: (f32, f32), tol: f32) -> bool {
        (a.0 - b.0).abs() <= tol && (a.1 - b.1).abs() <= tol
    }

    fn similarity(angle: f32, scale: f32, tx: f32, ty: f32) -> Affine2 {
        let (s, c) = angle.sin_cos();
        Affine2 {
            a: scale * c,
            b: -scale * s,
            c: scale * s,
            d: scale * c,
            tx,
            ty,
        }
    }

    const LANDMARKS: [(f32, f32); 5] = [
        (38.3, 51.7),
        (73.5, 51.5),
        (56.0, 71.7),
        (41.5, 92.4),
        (70.7, 92.2),
    ];

    #[test]
    fn recovers_a_known_similarity() {
        let truth = similarity(0.6, 1.7, -12.5, 30.25);
        let dst: Vec<_> = LANDMARKS.iter().map(|&p| truth.apply(p)).collect();
        let fit = Affine2::similarity_from_points(&LANDMARKS, &dst).expect("well posed");
        for (x, y) in [
            (fit.a, truth.a),
            (fit.b, truth.b),
            (fit.c, truth.c),
            (fit.d, truth.d),
            (fit.tx, truth.tx),
            (fit.ty, truth.ty),
        ] {
            assert!((x - y).abs() < 1e-3, "{fit:?} vs {truth:?}");
        }
    }

    #[test]
    fn least_squares_with_noise_and_no_reflection() {
        let truth = similarity(-1.1, 0.8, 3.0, -4.0);
        let noise = [
            (0.1, -0.05),
            (-0.08, 0.02),
            (0.03, 0.07),
            (-0.02, -0.1),
            (0.0, 0.04),
        ];
        let dst: Vec<_> = LANDMARKS
            .iter()
            .zip(noise)
            .map(|(&p, n)| {
                let q = truth.apply(p);
                (q.0 + n.0, q.1 + n.1)
            })
            .collect();
        let fit = Affine2::similarity_from_points(&LANDMARKS, &dst).expect("well posed");
        assert!((fit.a - fit.d).abs() < 1e-6 && (fit.b + fit.c).abs() < 1e-6);
        for p in LANDMARKS {
            assert!(close(fit.apply(p), truth.apply(p), 0.2));
        }
        // A mirrored target cannot be matched by a rotation: the fit must not reflect.
        let mirrored: Vec<_> = LANDMARKS.iter().map(|&(x, y)| (-x, y)).collect();
        let fit = Affine2::similarity_from_points(&LANDMARKS, &mirrored).expect("well posed");
        assert!(fit.a * fit.d - fit.b * fit.c >= 0.0);
    }

    #[test]
    fn degenerate_inputs_give_none() {
        let p = [(1.0, 2.0), (3.0, 4.0)];
        assert!(Affine2::similarity_from_points(&p[..1], &p[..1]).is_none());
        assert!(Affine2::similarity_from_points(&p, &p[..1]).is_none());
        assert!(Affine2::similarity_from_points(&[(5.0, 5.0); 3], &LANDMARKS[..3]).is_none());
        assert!(Affine2::similarity_from_points(&LANDMARKS[..3], &[(5.0, 5.0); 3]).is_none());
        assert!(Affine2::similarity_from_points(&[(f32::NAN, 0.0), (1.0, 1.0)], &p).is_none());
        assert!(Affine2::similarity_from_points(&[], &[]).is_none());
    }

    #[test]
    fn inverse_round_trips_and_rejects_singular() {
        let m = Affine2 {
            a: 2.0,
            b: 0.5,
            c: -0.3,
            d: 1.5,
            tx: 7.0,
            ty: -2.0,
        };
        let inv = m.inverse().expect("invertible");
        for p in LANDMARKS {
            assert!(close(inv.apply(m.apply(p)), p, 1e-3));
        }
        let singular = Affine2 {
            a: 1.0,
            b: 2.0,
            c: 2.0,
            d: 4.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert!(singular.inverse().is_none());
        assert!(Affine2 {
            a: f32::NAN,
            ..Affine2::IDENTITY
        }
        .inverse()
        .is_none());
        assert_eq!(Affine2::IDENTITY.inverse(), Some(Affine2::IDENTITY));
    }
}
