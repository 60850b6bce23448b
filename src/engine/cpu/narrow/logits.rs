//! The logits product of a tile, `hidden · Wᵀ`, for the narrow kernels' small models:
//! classes in the SIMD lanes (p = 23: two AVX-512 vectors, 23 of 32 lanes used), rows
//! broadcast, and for the column epilogue's class-major tile a row-major scratch
//! transposed `N × N` in registers ([`super::Lanes::transpose_block`]).

#[cfg(target_arch = "x86_64")]
use super::{Avx2, Avx512, Isa, Lanes};

/// Where [`logits_at`] puts a tile's logits.
#[derive(Clone, Copy, Debug)]
pub(in crate::engine::cpu) enum LogitsLayout {
    /// Class-major, `logits[c·ld + r]` (the column epilogue's tile; `ld` a multiple of
    /// the lanes). The blocks store whole rows of `cp` classes into a row-major scratch
    /// (`ld · cp` values), which [`Lanes::transpose_block`] then turns class-major
    /// `N × N` at a time. Storing each logit by itself at its class-major place cost a
    /// third of the kernel (p = 23: 23 scalar stores and loads per row, perf annotate).
    ClassMajor { ld: usize },
    /// Element (row r, class c) at `r·row_step + c·class_step`, one scalar store each
    /// (the head epilogue's row-major tile, whose rows are not padded to whole vectors).
    Strided { row_step: usize, class_step: usize },
}

/// `logits = hidden · Wᵀ` for rows `r0..r0 + MR` (fewer at the tile's end), classes in
/// the SIMD lanes: `w_t` is `Wᵀ` packed as `m` rows of `cp` classes (`cp` a multiple of
/// `L::N`, zero past `n_out`), and each block keeps `MR` rows × `NC` vectors of classes
/// in registers, broadcasting one `hidden` value per row per neuron. Under
/// [`LogitsLayout::ClassMajor`] the sums go as whole vectors to row `r` of `rows_out`
/// (`cp` values a row); under [`LogitsLayout::Strided`] one by one into `logits`.
///
/// # Safety
/// The CPU must have `L`'s instruction set; `hidden` holds `rows · hs` values, `w_t`
/// `m · cp`, `rows_out` (class-major) `rows · cp`, and every (row < rows, class < n_out)
/// lies inside `logits` (strided).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn logits_block<L: Lanes, const NC: usize, const MR: usize>(
    hidden: &[f32],
    (hs, m, rows): (usize, usize, usize),
    w_t: &[f32],
    (cp, n_out, c0): (usize, usize, usize),
    logits: &mut [f32],
    layout: LogitsLayout,
    r0: usize,
) {
    let mut acc = [[L::zero(); NC]; MR];
    let h_rows: [*const f32; MR] =
        std::array::from_fn(|i| hidden.as_ptr().add((r0 + i).min(rows - 1) * hs));
    for j in 0..m {
        let w_row = w_t.as_ptr().add(j * cp + c0);
        let w_vec: [L; NC] = std::array::from_fn(|k| L::load(w_row.add(k * L::N)));
        for i in 0..MR {
            let h = L::splat(*h_rows[i].add(j));
            for k in 0..NC {
                acc[i][k] = h.mul_add(w_vec[k], acc[i][k]);
            }
        }
    }
    let live = MR.min(rows - r0);
    match layout {
        LogitsLayout::ClassMajor { .. } => {
            for (i, row) in acc.iter().enumerate().take(live) {
                let out = logits.as_mut_ptr().add((r0 + i) * cp + c0);
                for (k, s) in row.iter().enumerate() {
                    s.store(out.add(k * L::N));
                }
            }
        }
        LogitsLayout::Strided {
            row_step,
            class_step,
        } => {
            let mut block = [0.0f32; 64];
            let classes = (n_out - c0).min(NC * L::N);
            for (i, row) in acc.iter().enumerate().take(live) {
                for (k, s) in row.iter().enumerate() {
                    s.store(block.as_mut_ptr().add(k * L::N));
                }
                let base = (r0 + i) * row_step + c0 * class_step;
                for (c, &x) in block[..classes].iter().enumerate() {
                    *logits.get_unchecked_mut(base + c * class_step) = x;
                }
            }
        }
    }
}

/// Every row and class of the tile through [`logits_block`], with the block shape for
/// `L`: class blocks of up to four vectors, rows per block as registers allow; then,
/// class-major, the transposition of `rows_out` into `logits`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn logits_all<L: Lanes>(
    hidden: &[f32],
    dims: (usize, usize, usize),
    w_t: &[f32],
    (cp, n_out): (usize, usize),
    logits: &mut [f32],
    layout: LogitsLayout,
    rows_out: &mut [f32],
) {
    let rows = dims.2;
    match layout {
        LogitsLayout::ClassMajor { ld } => {
            logits_blocks::<L>(hidden, dims, w_t, (cp, n_out), rows_out, layout);
            // Rows past `rows` (up to the block's end) are stale scratch; they land in
            // the tile's padding columns, which the epilogue zeroes before reading.
            for r0 in (0..rows).step_by(L::N) {
                for c0 in (0..n_out).step_by(L::N) {
                    L::transpose_block(
                        rows_out.as_ptr().add(r0 * cp + c0),
                        cp,
                        logits.as_mut_ptr().add(c0 * ld + r0),
                        ld,
                        (n_out - c0).min(L::N),
                    );
                }
            }
        }
        LogitsLayout::Strided { .. } => {
            logits_blocks::<L>(hidden, dims, w_t, (cp, n_out), logits, layout)
        }
    }
}

/// The blocks of [`logits_all`], each storing into `block_out` as `layout` says.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn logits_blocks<L: Lanes>(
    hidden: &[f32],
    dims: (usize, usize, usize),
    w_t: &[f32],
    (cp, n_out): (usize, usize),
    block_out: &mut [f32],
    layout: LogitsLayout,
) {
    let rows = dims.2;
    // Sum registers: up to 24 of AVX-512's 32, up to 12 of AVX2's 16.
    let wide = L::N == 16;
    for c0 in (0..n_out).step_by(4 * L::N) {
        let nc = (n_out - c0).div_ceil(L::N).min(4);
        let classes = (cp, n_out, c0);
        macro_rules! run {
            ($nc:literal, $mr:literal) => {
                for r0 in (0..rows).step_by($mr) {
                    logits_block::<L, $nc, $mr>(hidden, dims, w_t, classes, block_out, layout, r0)
                }
            };
        }
        match (wide, nc) {
            (true, 1) => run!(1, 12),
            (true, 2) => run!(2, 12),
            (true, 3) => run!(3, 8),
            (true, _) => run!(4, 6),
            // AVX2 keeps a register or two spare (MR·NC + NC + 1 ≤ 15): at 4 × 3 = 12 sums
            // LLVM spilled one to the stack and the loop ran at half speed.
            (false, 1) => run!(1, 8),
            (false, 2) => run!(2, 6),
            (false, 3) => run!(3, 3),
            (false, _) => run!(4, 2),
        }
    }
}

/// `logits = hidden · Wᵀ` for the whole tile at `isa` ([`logits_block`]): `hidden` is
/// `rows` rows of `hs` neurons (the first `m` used), `w_t` is `Wᵀ` packed as `m` rows of
/// `cp` classes, the result goes to `logits` in `layout`; `rows_out` is the class-major
/// layout's row-major scratch (unused, and may be empty, when strided).
///
/// # Safety
/// `isa` must come from [`Isa::detect`] and `cp` be a multiple of `isa.lanes()`; the
/// slices hold what [`logits_block`] reads and writes.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(in crate::engine::cpu) unsafe fn logits_at(
    isa: Isa,
    hidden: &[f32],
    (hs, m, rows): (usize, usize, usize),
    w_t: &[f32],
    (cp, n_out): (usize, usize),
    logits: &mut [f32],
    layout: LogitsLayout,
    rows_out: &mut [f32],
) {
    if rows == 0 || n_out == 0 {
        return;
    }
    assert!(hidden.len() >= rows * hs && m <= hs && w_t.len() >= m * cp);
    assert!(cp.is_multiple_of(isa.lanes()) && n_out <= cp);
    match layout {
        LogitsLayout::ClassMajor { ld } => {
            // The transposition reads and writes whole blocks of rows.
            let padded = rows.div_ceil(isa.lanes()) * isa.lanes();
            assert!(ld.is_multiple_of(isa.lanes()) && ld >= padded);
            assert!(logits.len() >= n_out * ld && rows_out.len() >= ld * cp);
        }
        LogitsLayout::Strided {
            row_step,
            class_step,
        } => assert!((rows - 1) * row_step + (n_out - 1) * class_step < logits.len()),
    }
    let dims = (hs, m, rows);
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn avx512(
        h: &[f32],
        dims: (usize, usize, usize),
        w_t: &[f32],
        classes: (usize, usize),
        out: &mut [f32],
        layout: LogitsLayout,
        rows_out: &mut [f32],
    ) {
        logits_all::<Avx512>(h, dims, w_t, classes, out, layout, rows_out)
    }
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(
        h: &[f32],
        dims: (usize, usize, usize),
        w_t: &[f32],
        classes: (usize, usize),
        out: &mut [f32],
        layout: LogitsLayout,
        rows_out: &mut [f32],
    ) {
        logits_all::<Avx2>(h, dims, w_t, classes, out, layout, rows_out)
    }
    match isa {
        Isa::Avx512 => avx512(hidden, dims, w_t, (cp, n_out), logits, layout, rows_out),
        Isa::Avx2 => avx2(hidden, dims, w_t, (cp, n_out), logits, layout, rows_out),
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::{Avx2, Avx512, Isa, Lanes};

    /// Each ISA's block transposition against index arithmetic, with a partial last
    /// class block (`dst_rows < N`) that must leave the rows below it untouched.
    #[test]
    fn transpose_block_matches_indices() {
        fn check<L: Lanes>(run: unsafe fn(*const f32, usize, *mut f32, usize, usize)) {
            let n = L::N;
            let (src_step, dst_step) = (n + 3, n + 5);
            let src: Vec<f32> = (0..n * src_step).map(|i| i as f32).collect();
            for dst_rows in [n, n - 1, 1] {
                let mut dst = vec![-1.0f32; n * dst_step];
                // SAFETY: the caller checked the ISA; both buffers hold n rows.
                unsafe { run(src.as_ptr(), src_step, dst.as_mut_ptr(), dst_step, dst_rows) };
                for k in 0..n {
                    for i in 0..dst_step {
                        let want = if k < dst_rows && i < n {
                            src[i * src_step + k]
                        } else {
                            -1.0
                        };
                        assert_eq!(dst[k * dst_step + i], want, "N {n} row {k} lane {i}");
                    }
                }
            }
        }
        if Isa::detect() == Some(Isa::Avx512) {
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512(s: *const f32, ss: usize, d: *mut f32, ds: usize, k: usize) {
                Avx512::transpose_block(s, ss, d, ds, k)
            }
            check::<Avx512>(avx512);
        }
        if Isa::detect().is_some() {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(s: *const f32, ss: usize, d: *mut f32, ds: usize, k: usize) {
                Avx2::transpose_block(s, ss, d, ds, k)
            }
            check::<Avx2>(avx2);
        }
    }
}
