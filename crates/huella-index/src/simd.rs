//! Dot-product kernels, chosen once at run time for the CPU at hand.
//!
//! On x86-64 with AVX2 and FMA the kernels use 256-bit intrinsics; everywhere else a
//! portable scalar version runs. The choice is made on first use and cached.

use std::sync::OnceLock;

/// The kernel set in use.
#[derive(Clone, Copy)]
struct Kernels {
    dot_f32: fn(&[f32], &[f32]) -> f32,
    dot_i8: fn(&[i8], &[i8]) -> i32,
    dot_i8_x4: fn(&[i8], &[i8]) -> [i32; 4],
    sign_hadamard: fn(&mut [f32], &[f32], usize),
}

static KERNELS: OnceLock<Kernels> = OnceLock::new();

fn kernels() -> &'static Kernels {
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Kernels {
                    dot_f32: avx2::dot_f32,
                    dot_i8: avx2::dot_i8,
                    dot_i8_x4: avx2::dot_i8_x4,
                    sign_hadamard: avx2::sign_hadamard,
                };
            }
        }
        Kernels {
            dot_f32: scalar::dot_f32,
            dot_i8: scalar::dot_i8,
            dot_i8_x4: scalar::dot_i8_x4,
            sign_hadamard: scalar::sign_hadamard,
        }
    })
}

/// Pseudo-random rotation rounds over `width` interleaved vectors: for each chunk of
/// `signs` as long as `y`, multiply `y` by it, then apply an unnormalised fast
/// Walsh-Hadamard transform to every column (`y` holds a power-of-two number of rows of
/// `width` values; column `h` is one vector).
#[inline]
pub(crate) fn sign_hadamard(y: &mut [f32], signs: &[f32], width: usize) {
    (kernels().sign_hadamard)(y, signs, width)
}

/// Dot product of two f32 vectors (over the shorter length).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot_f32)(a, b)
}

/// Dot product of two int8 vectors with values in -127..=127 (over the shorter length).
/// The value -128 is excluded so that the AVX2 kernel's `|q|` and `sign` tricks are
/// exact: every product pair then fits an i16 without saturating.
#[inline]
pub(crate) fn dot_i8(query: &[i8], row: &[i8]) -> i32 {
    (kernels().dot_i8)(query, row)
}

/// Dot products of an int8 query with four consecutive int8 rows of the query's length
/// (`rows.len() == 4 * query.len()`); values in -127..=127 as for [`dot_i8`].
#[inline]
pub(crate) fn dot_i8_x4(query: &[i8], rows: &[i8]) -> [i32; 4] {
    (kernels().dot_i8_x4)(query, rows)
}

/// Hint that `data` will be read soon: up to its first `lines` 64-byte cache lines, into
/// every cache level. A no-op off x86-64.
#[inline]
pub(crate) fn prefetch<T>(data: &[T], lines: usize) {
    prefetch_with::<T, 3>(data, lines);
}

/// Like [`prefetch`], but only into the outer caches (L2 and beyond): for streams read a
/// few KiB ahead, so that the far-ahead requests do not crowd the L1 fill buffers.
#[inline]
pub(crate) fn prefetch_far<T>(data: &[T], lines: usize) {
    prefetch_with::<T, 2>(data, lines);
}

#[inline]
fn prefetch_with<T, const HINT: i32>(data: &[T], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::_mm_prefetch;
        let bytes = std::mem::size_of_val(data);
        let start = data.as_ptr().cast::<i8>();
        for line in 0..lines.min(bytes.div_ceil(64)) {
            // SAFETY: `start + 64 * line` lies inside the slice (line < bytes / 64 rounded
            // up); prefetching is a hint that never faults. SSE is part of the x86-64
            // baseline.
            unsafe { _mm_prefetch::<HINT>(start.add(64 * line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, lines);
}

/// Ask the kernel to back the spare and used capacity of `v` with transparent huge pages
/// (2 MiB), where the system allows it on request (`madvise` mode). Graph search touches
/// nodes at random across the whole allocation; with 4 KiB pages nearly every visited
/// node also costs a TLB miss and a page walk. A hint only: failure changes nothing.
pub(crate) fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<T>();
        let aligned = start.div_ceil(HUGE) * HUGE;
        if end > aligned + HUGE {
            let len = (end - aligned) / HUGE * HUGE;
            // SAFETY: [aligned, aligned + len) lies inside the live allocation of `v`
            // (its capacity), and MADV_HUGEPAGE only changes how the kernel backs those
            // pages, never their contents or validity.
            let _ =
                unsafe { libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

mod scalar {
    /// Every butterfly adds and subtracts whole rows, so it vectorises at every stage.
    #[inline(always)]
    pub(super) fn sign_hadamard(y: &mut [f32], signs: &[f32], width: usize) {
        let n = y.len() / width.max(1);
        for round in signs.chunks_exact(y.len().max(1)) {
            for (x, s) in y.iter_mut().zip(round) {
                *x *= s;
            }
            let mut h = 1;
            while h < n {
                for block in y.chunks_exact_mut(2 * h * width) {
                    let (a, b) = block.split_at_mut(h * width);
                    for (x, z) in a.iter_mut().zip(b.iter_mut()) {
                        let (sum, diff) = (*x + *z, *x - *z);
                        *x = sum;
                        *z = diff;
                    }
                }
                h *= 2;
            }
        }
    }

    pub(super) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        // Eight independent lanes let the compiler vectorise where it can.
        let mut lanes = [0.0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..8 {
                lanes[l] += x[l] * y[l];
            }
        }
        let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
        lanes.iter().sum::<f32>() + tail
    }

    pub(super) fn dot_i8(q: &[i8], row: &[i8]) -> i32 {
        q.iter()
            .zip(row)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum()
    }

    pub(super) fn dot_i8_x4(q: &[i8], rows: &[i8]) -> [i32; 4] {
        let d = q.len();
        std::array::from_fn(|r| dot_i8(q, rows.get(r * d..(r + 1) * d).unwrap_or(&[])))
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    pub(super) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: this kernel is only installed after AVX2 and FMA were detected.
        unsafe { dot_f32_impl(a, b) }
    }

    pub(super) fn sign_hadamard(y: &mut [f32], signs: &[f32], width: usize) {
        // SAFETY: this kernel is only installed after AVX2 and FMA were detected.
        unsafe { sign_hadamard_impl(y, signs, width) }
    }

    /// The portable code, compiled for AVX2.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sign_hadamard_impl(y: &mut [f32], signs: &[f32], width: usize) {
        super::scalar::sign_hadamard(y, signs, width)
    }

    pub(super) fn dot_i8(q: &[i8], row: &[i8]) -> i32 {
        // SAFETY: this kernel is only installed after AVX2 was detected.
        unsafe { dot_i8_impl(q, row) }
    }

    pub(super) fn dot_i8_x4(q: &[i8], rows: &[i8]) -> [i32; 4] {
        if rows.len() != 4 * q.len() {
            return super::scalar::dot_i8_x4(q, rows);
        }
        // SAFETY: this kernel is only installed after AVX2 was detected, and rows holds
        // exactly four rows of q.len() values, as dot_i8_x4_impl requires.
        unsafe { dot_i8_x4_impl(q, rows) }
    }

    /// Horizontal sum by halving (3 dependent adds) rather than 7 scalar adds in a row.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum_ps(v: __m256) -> f32 {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        let one = _mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair));
        _mm_cvtss_f32(one)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn hsum_epi32(v: __m256i) -> i32 {
        let mut lanes = [0i32; 8];
        // SAFETY: lanes is 8 i32s, exactly one unaligned 256-bit store.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().sum()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_f32_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: every load reads 8 floats starting at an index i + j with
        // i + j + 8 <= n, inside both slices.
        let sum = unsafe {
            let mut acc = [_mm256_setzero_ps(); 4];
            while i + 32 <= n {
                for (j, lane) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                    let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                    *lane = _mm256_fmadd_ps(x, y, *lane);
                }
                i += 32;
            }
            while i + 8 <= n {
                let x = _mm256_loadu_ps(pa.add(i));
                let y = _mm256_loadu_ps(pb.add(i));
                acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
                i += 8;
            }
            let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            hsum_ps(s)
        };
        if i == n {
            sum
        } else {
            sum + super::scalar::dot_f32(&a[i..n], &b[i..n])
        }
    }

    /// 32 products of `|q|` (unsigned) and `row * sign(q)` (signed), summed in adjacent
    /// pairs to i16 (exact: |value| <= 2 * 127 * 127 < 2^15) and then to eight i32 lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn madd_i8(q_abs: __m256i, q: __m256i, row: __m256i) -> __m256i {
        let pairs = _mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(row, q));
        _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot_i8_impl(q: &[i8], row: &[i8]) -> i32 {
        let n = q.len().min(row.len());
        let mut i = 0;
        // SAFETY: each step reads 32 i8s of q and of row from index i with i + 32 <= n,
        // inside both slices.
        let sum = unsafe {
            let mut acc = _mm256_setzero_si256();
            while i + 32 <= n {
                let qv = _mm256_loadu_si256(q.as_ptr().add(i).cast());
                let rv = _mm256_loadu_si256(row.as_ptr().add(i).cast());
                acc = _mm256_add_epi32(acc, madd_i8(_mm256_abs_epi8(qv), qv, rv));
                i += 32;
            }
            hsum_epi32(acc)
        };
        sum + super::scalar::dot_i8(&q[i..n], &row[i..n])
    }

    /// Requires `rows.len() == 4 * q.len()`.
    #[target_feature(enable = "avx2")]
    unsafe fn dot_i8_x4_impl(q: &[i8], rows: &[i8]) -> [i32; 4] {
        let d = q.len();
        let mut i = 0;
        // SAFETY: each step reads 32 i8s of q from index i and 32 i8s of row r from
        // r * d + i, with i + 32 <= d and r < 4, inside q and inside rows (4 * d long).
        let mut sums = unsafe {
            let mut acc = [_mm256_setzero_si256(); 4];
            while i + 32 <= d {
                let qv = _mm256_loadu_si256(q.as_ptr().add(i).cast());
                let q_abs = _mm256_abs_epi8(qv);
                for (r, lane) in acc.iter_mut().enumerate() {
                    let rv = _mm256_loadu_si256(rows.as_ptr().add(r * d + i).cast());
                    *lane = _mm256_add_epi32(*lane, madd_i8(q_abs, qv, rv));
                }
                i += 32;
            }
            // Reduce the four accumulators together: two rounds of pairwise adds leave,
            // in each 128-bit half, one partial sum per row; adding the halves finishes.
            let ab = _mm256_hadd_epi32(acc[0], acc[1]);
            let cd = _mm256_hadd_epi32(acc[2], acc[3]);
            let abcd = _mm256_hadd_epi32(ab, cd);
            let total = _mm_add_epi32(
                _mm256_castsi256_si128(abcd),
                _mm256_extracti128_si256::<1>(abcd),
            );
            let mut out = [0i32; 4];
            _mm_storeu_si128(out.as_mut_ptr().cast(), total);
            out
        };
        for (r, sum) in sums.iter_mut().enumerate() {
            *sum += super::scalar::dot_i8(&q[i..], &rows[r * d + i..(r + 1) * d]);
        }
        sums
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn f32_kernel_matches_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for len in (1..600)
            .step_by(7)
            .chain([1, 7, 8, 9, 31, 32, 33, 192, 599])
        {
            let a: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            for got in [dot(&a, &b), scalar::dot_f32(&a, &b)] {
                assert!(
                    (f64::from(got) - exact).abs() < 1e-4,
                    "len {len}: {got} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn i8_kernels_match_scalar_exactly() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        for len in (1..600)
            .step_by(5)
            .chain([1, 15, 16, 17, 31, 32, 33, 64, 192, 599])
        {
            let q: Vec<i8> = (0..len).map(|_| rng.gen_range(-127..=127)).collect();
            let rows: Vec<i8> = (0..4 * len).map(|_| rng.gen_range(-127..=127)).collect();
            let expect: [i32; 4] =
                std::array::from_fn(|r| scalar::dot_i8(&q, &rows[r * len..(r + 1) * len]));
            assert_eq!(dot_i8_x4(&q, &rows), expect, "len {len}");
            assert_eq!(scalar::dot_i8_x4(&q, &rows), expect, "len {len}");
            assert_eq!(dot_i8(&q, &rows[..len]), expect[0], "len {len}");
        }
    }

    #[test]
    fn mismatched_lengths_use_the_shorter() {
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[1.0, 1.0]), 3.0);
        assert_eq!(dot_i8(&[1, 2, 3], &[1, 1]), 3);
        assert_eq!(dot_i8_x4(&[1, 1], &[1, 1, 1]), [2, 0, 0, 0]);
    }
}
