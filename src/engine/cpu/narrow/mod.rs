//! Hand-blocked f32 kernels for the two backward products of a tile, for the small models
//! of a sweep (p = 23, m = 96: every product is rows × 96 · 96 × 23 or thinner); the
//! forward product, `logits = hidden · Wᵀ`, is in [`logits`].
//!
//! # Why not the `gemm` crate here
//! `gemm` packs both operands of every call into its own panels and picks blocks for big
//! matrices; for a tile of 176 rows × 23 classes × 96 neurons the packing and the block
//! set-up cost as much as the multiply-adds (perf: half of a sweep step in `gemm`, a
//! third of it packing and dispatch). Here nothing is packed: the kernels read the tile's
//! own buffers in place, and one register block covers all 96 neurons.
//!
//! # Strategy
//! Both kernels keep a block of `MR × NV` SIMD registers of sums (AVX-512: 4 × 6 zmm,
//! 4 rows × 96 neurons; AVX2: 6 × 2 ymm, 6 rows × 16 neurons) and per step of the inner
//! dimension load `NV` vectors of neurons and broadcast `MR` scalars of `G`, so each
//! loaded vector feeds `MR` FMAs and each broadcast `NV` (6·4 = 24 FMAs per 10 loads):
//!
//! | kernel               | block of                 | inner dim | vectors loaded   | broadcast |
//! |----------------------|--------------------------|-----------|------------------|-----------|
//! | [`backprop`]         | `D = G·W`: MR rows       | classes   | a row of `W`     | `G[r, c]` |
//! | [`grad_w`]           | `dW += Gᵀ·hidden`: MR classes | rows | a row of `hidden` | `G[r, c]` |
//!
//! `G` is read through (row step, class step) strides, so a class-major tile (the column
//! epilogue's) and a row-major one (the multi-head epilogue's) both work. Neuron rows are
//! padded to a whole number of vectors (`W` repacked once per job, `hidden` written so by
//! the job) so no load is partial; the `MR` edge repeats the last row (its sums are
//! dropped) and the neuron edge takes a block with fewer vectors (`NV` is a const
//! generic, one instantiation per count). [`backprop`] applies σ' to its block
//! of `D` while it is in registers and adds the rows into dU, dV: `D` is never stored.
//! (It did go through a small buffer to a scalar-code scatter in the job, whose per-row
//! set-up and overlap checks cost as much as the scatter's arithmetic.)
//!
//! Checked against the f64 reference by every engine test (`tests/engine_vs_reference.rs`
//! runs the production path, which takes these kernels for f32 on AVX2 and AVX-512).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

pub(super) use super::tile::LaneGrad;

mod logits;
#[cfg(target_arch = "x86_64")]
pub(super) use logits::logits_at;
pub(super) use logits::LogitsLayout;

/// A SIMD register of f32 lanes and the few operations the kernels use.
///
/// # Safety
/// Every method needs the instruction set of its implementation and valid pointers.
#[cfg(target_arch = "x86_64")]
pub(super) trait Lanes: Copy {
    /// Lanes per register.
    const N: usize;
    /// Row blocking (`MR`) and neuron vectors (`NV`) of the kernels: as many sums as
    /// the register file holds with room for the loads.
    const MR: usize;
    /// See [`Lanes::MR`].
    const NV: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// `self · b + c`.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// Adds the first `n` lanes into `p[..n]` (all lanes when `n >= N`).
    unsafe fn add_into(self, p: *mut f32, n: usize);
    /// The first `n` values at `p` (all lanes when `n >= N`), zeros past them.
    unsafe fn load_first(p: *const f32, n: usize) -> Self;
    /// `self + b`.
    unsafe fn add(self, b: Self) -> Self;
    /// `self · b`.
    unsafe fn mul(self, b: Self) -> Self;
    /// 1 in the lanes where `self > 0`, else 0 (NaN: 0), as ReLU's scalar σ'.
    unsafe fn step(self) -> Self;
    /// Transposes an `N × N` block: reads row `i` at `src + i·src_step`, writes column
    /// `k` of it as row `k` at `dst + k·dst_step`, for `k < dst_rows` only (so a block
    /// past the last class stores nothing out of bounds). In registers: `log2 N` stages,
    /// each swapping one bit between the row and the lane index of every element.
    unsafe fn transpose_block(
        src: *const f32,
        src_step: usize,
        dst: *mut f32,
        dst_step: usize,
        dst_rows: usize,
    );
}

/// The [`Lanes`] methods that are one intrinsic each, for a register type `$t` (a
/// newtype over the ISA's vector): zero, splat, load, store, mul_add, add, mul.
#[cfg(target_arch = "x86_64")]
macro_rules! one_intrinsic_methods {
    ($t:ident: $zero:ident, $splat:ident, $load:ident, $store:ident, $fma:ident, $add:ident, $mul:ident) => {
        #[inline(always)]
        unsafe fn zero() -> Self {
            $t($zero())
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            $t($splat(x))
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            $t($load(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            $store(p, self.0)
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            $t($fma(self.0, b.0, c.0))
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            $t($add(self.0, b.0))
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            $t($mul(self.0, b.0))
        }
    };
}

/// AVX-512: 32 zmm registers, 24 of them sums.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Avx512(__m512);

/// AVX2: 16 ymm registers, 12 of them sums.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Avx2(__m256);

#[cfg(target_arch = "x86_64")]
impl Avx512 {
    /// The mask of the first `n` lanes (all of them when `n >= 16`).
    #[inline(always)]
    fn first_lanes(n: usize) -> __mmask16 {
        if n >= 16 {
            !0
        } else {
            (1u16 << n) - 1
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    /// The mask of `maskload`/`maskstore` for the first `n` (< 8) lanes.
    #[inline(always)]
    unsafe fn first_lanes(n: usize) -> __m256i {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lane)
    }
}

/// The permute indices of [`Avx512::transpose_block`]'s stage for bit `d = 1 << s`:
/// lane `l` of the first output row (`KEEP`) and of the second (`TAKE`), where 0..16
/// picks from the first input row and 16..32 from the second.
const fn transpose_indices(take: bool) -> [[i32; 16]; 4] {
    let mut out = [[0i32; 16]; 4];
    let mut s = 0;
    while s < 4 {
        let d = 1 << s;
        let mut l = 0;
        while l < 16 {
            out[s][l] = match (l & d == 0, take) {
                (true, false) => l,
                (false, false) => 16 + l - d,
                (true, true) => l + d,
                (false, true) => 16 + l,
            } as i32;
            l += 1;
        }
        s += 1;
    }
    out
}
const TRANSPOSE_KEEP: [[i32; 16]; 4] = transpose_indices(false);
const TRANSPOSE_TAKE: [[i32; 16]; 4] = transpose_indices(true);

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx512 {
    const N: usize = 16;
    const MR: usize = 4;
    const NV: usize = 6;
    one_intrinsic_methods!(Avx512: _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_mul_ps);
    #[inline(always)]
    unsafe fn add_into(self, p: *mut f32, n: usize) {
        let mask = Self::first_lanes(n);
        let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), self.0);
        _mm512_mask_storeu_ps(p, mask, sum)
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        Avx512(_mm512_maskz_loadu_ps(Self::first_lanes(n), p))
    }
    #[inline(always)]
    unsafe fn step(self) -> Self {
        let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, _mm512_setzero_ps());
        Avx512(_mm512_maskz_mov_ps(positive, _mm512_set1_ps(1.0)))
    }
    #[inline(always)]
    unsafe fn transpose_block(
        src: *const f32,
        src_step: usize,
        dst: *mut f32,
        dst_step: usize,
        dst_rows: usize,
    ) {
        let mut r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * src_step)));
        // Stage d: rows i and i + d (bit d of i clear) trade the lanes whose bit d
        // differs from the row's, one two-source permute per output row (64 in all).
        // Spelled out so that the sixteen rows stay in registers.
        macro_rules! stage {
            ($d:literal: $($i:literal)*) => {{
                let keep = _mm512_loadu_si512(TRANSPOSE_KEEP[($d as usize).trailing_zeros() as usize].as_ptr().cast());
                let take = _mm512_loadu_si512(TRANSPOSE_TAKE[($d as usize).trailing_zeros() as usize].as_ptr().cast());
                $(
                    let (a, b) = (r[$i], r[$i + $d]);
                    r[$i] = _mm512_permutex2var_ps(a, keep, b);
                    r[$i + $d] = _mm512_permutex2var_ps(a, take, b);
                )*
            }};
        }
        stage!(8: 0 1 2 3 4 5 6 7);
        stage!(4: 0 1 2 3 8 9 10 11);
        stage!(2: 0 1 4 5 8 9 12 13);
        stage!(1: 0 2 4 6 8 10 12 14);
        for (k, row) in r.iter().enumerate().take(dst_rows) {
            _mm512_storeu_ps(dst.add(k * dst_step), *row);
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    const N: usize = 8;
    const MR: usize = 6;
    const NV: usize = 2;
    one_intrinsic_methods!(Avx2: _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_mul_ps);
    #[inline(always)]
    unsafe fn add_into(self, p: *mut f32, n: usize) {
        // Whole vectors without a mask: a masked store is slow on some AVX2 cores.
        if n >= 8 {
            return _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), self.0));
        }
        let mask = Self::first_lanes(n);
        let sum = _mm256_add_ps(_mm256_maskload_ps(p, mask), self.0);
        _mm256_maskstore_ps(p, mask, sum)
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        if n >= 8 {
            return Avx2(_mm256_loadu_ps(p));
        }
        Avx2(_mm256_maskload_ps(p, Self::first_lanes(n)))
    }
    #[inline(always)]
    unsafe fn step(self) -> Self {
        let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, _mm256_setzero_ps());
        Avx2(_mm256_and_ps(positive, _mm256_set1_ps(1.0)))
    }
    #[inline(always)]
    unsafe fn transpose_block(
        src: *const f32,
        src_step: usize,
        dst: *mut f32,
        dst_step: usize,
        dst_rows: usize,
    ) {
        let mut r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_step)));
        // The same three bit swaps as AVX-512's, each with the cheapest AVX2 shuffle:
        // halves for bit 2, pairs within each half for bit 1, neighbours for bit 0.
        for i in 0..4 {
            let (a, b) = (r[i], r[i + 4]);
            r[i] = _mm256_permute2f128_ps::<0x20>(a, b);
            r[i + 4] = _mm256_permute2f128_ps::<0x31>(a, b);
        }
        for i in [0, 1, 4, 5] {
            let (a, b) = (r[i], r[i + 2]);
            r[i] = _mm256_shuffle_ps::<0x44>(a, b);
            r[i + 2] = _mm256_shuffle_ps::<0xEE>(a, b);
        }
        for i in [0, 2, 4, 6] {
            let (a, b) = (r[i], r[i + 1]);
            r[i] = _mm256_blend_ps::<0xAA>(a, _mm256_moveldup_ps(b));
            r[i + 1] = _mm256_blend_ps::<0xAA>(_mm256_movehdup_ps(a), b);
        }
        for (k, row) in r.iter().enumerate().take(dst_rows) {
            _mm256_storeu_ps(dst.add(k * dst_step), *row);
        }
    }
}

/// `G` of a tile: element (row r, class c) at `ptr[r·row_step + c·class_step]`.
#[derive(Clone, Copy)]
pub(super) struct Grads<'a> {
    pub g: &'a [f32],
    pub row_step: usize,
    pub class_step: usize,
    pub rows: usize,
    pub n_out: usize,
}

impl Grads<'_> {
    /// Whether every (row, class) of the view lies inside the slice (checked once per
    /// kernel call, so the inner loops read unchecked).
    fn in_bounds(&self) -> bool {
        self.rows > 0
            && self.n_out > 0
            && (self.rows - 1) * self.row_step + (self.n_out - 1) * self.class_step < self.g.len()
    }

    /// G[r, c]. Safety: `r < rows`, `c < n_out` and [`Grads::in_bounds`].
    #[inline(always)]
    unsafe fn at(&self, r: usize, c: usize) -> f32 {
        *self
            .g
            .get_unchecked(r * self.row_step + c * self.class_step)
    }
}

/// The widest block of at most `L::NV` vectors, then the rest, over `vectors` vectors:
/// calls `$body::<NV>(first vector)` with a const `NV` for each block.
macro_rules! for_each_block {
    ($lanes:ty, $vectors:expr, |$nv:ident, $v0:ident| $body:expr) => {{
        let vectors: usize = $vectors;
        let mut $v0 = 0;
        while $v0 < vectors {
            let left = (vectors - $v0).min(<$lanes>::NV);
            match left {
                6 => {
                    const $nv: usize = 6;
                    $body
                }
                5 => {
                    const $nv: usize = 5;
                    $body
                }
                4 => {
                    const $nv: usize = 4;
                    $body
                }
                3 => {
                    const $nv: usize = 3;
                    $body
                }
                2 => {
                    const $nv: usize = 2;
                    $body
                }
                _ => {
                    const $nv: usize = 1;
                    $body
                }
            }
            $v0 += left;
        }
    }};
}

mod backprop;
#[cfg(target_arch = "x86_64")]
pub(super) use backprop::backprop_scatter_at;
pub(super) use backprop::Scatter;

/// `dW += Gᵀ·hidden` (`dW` is `n_out × m`, row-major; `hidden` is the tile's rows of
/// `mp` neurons, zero past `m`), one block of `L::MR` classes × up to `L::NV` vectors of
/// neurons at a time, summing over the tile's rows.
///
/// # Safety
/// The CPU must have `L`'s instruction set; `hidden` holds `g.rows · mp` values and
/// `grad_w` `g.n_out · m`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn grad_w<L: Lanes>(
    g: Grads<'_>,
    hidden: &[f32],
    mp: usize,
    grad_w: &mut [f32],
    m: usize,
) {
    if g.rows == 0 {
        return;
    }
    assert!(g.in_bounds() && mp.is_multiple_of(L::N) && m <= mp);
    assert!(hidden.len() >= g.rows * mp && grad_w.len() >= g.n_out * m);
    for c0 in (0..g.n_out).step_by(L::MR) {
        let live = L::MR.min(g.n_out - c0);
        for_each_block!(L, mp / L::N, |NV, v0| {
            let sums = grad_w_block::<L, NV>(g, hidden, mp, c0, v0 * L::N);
            for (i, row) in sums.iter().enumerate().take(live) {
                for (v, s) in row.iter().enumerate() {
                    let j = (v0 + v) * L::N;
                    if j < m {
                        s.add_into(grad_w.as_mut_ptr().add((c0 + i) * m + j), m - j);
                    }
                }
            }
        });
    }
}

/// One block of [`grad_w`]: classes `c0..c0 + MR` (the last class repeated past
/// `n_out`), neurons `j0..j0 + NV·N`, summed over all rows.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn grad_w_block<L: Lanes, const NV: usize>(
    g: Grads<'_>,
    hidden: &[f32],
    mp: usize,
    c0: usize,
    j0: usize,
) -> [[L; NV]; 6] {
    let mut acc = [[L::zero(); NV]; 6];
    let classes: [usize; 6] = std::array::from_fn(|i| (c0 + i).min(g.n_out - 1));
    for r in 0..g.rows {
        let h_row = hidden.as_ptr().add(r * mp + j0);
        let h_vec: [L; NV] = std::array::from_fn(|v| L::load(h_row.add(v * L::N)));
        for i in 0..L::MR {
            let gi = L::splat(g.at(r, classes[i]));
            for v in 0..NV {
                acc[i][v] = gi.mul_add(h_vec[v], acc[i][v]);
            }
        }
    }
    acc
}

/// The instruction set the kernels run at, or `None` (no AVX2+FMA, or not x86-64):
/// the job then takes the `gemm` products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// The best the CPU has, capped by `CLOCKWORK_SIMD` like the rest of the job.
    pub(super) fn detect() -> Option<Isa> {
        #[cfg(target_arch = "x86_64")]
        {
            use super::simd::{level, Level};
            match level() {
                Level::Avx512 => return Some(Isa::Avx512),
                Level::Avx2 => return Some(Isa::Avx2),
                Level::Scalar => {}
            }
        }
        None
    }

    /// Lanes of a register: neuron rows are padded to a multiple of this.
    pub(super) fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }
}

/// [`grad_w`] at `isa`, compiled for it.
///
/// # Safety
/// As [`backprop_scatter_at`], and the slices as [`grad_w`] requires.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn grad_w_at(
    isa: Isa,
    g: Grads<'_>,
    hidden: &[f32],
    mp: usize,
    dw: &mut [f32],
    m: usize,
) {
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn avx512(g: Grads<'_>, h: &[f32], mp: usize, dw: &mut [f32], m: usize) {
        grad_w::<Avx512>(g, h, mp, dw, m)
    }
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(g: Grads<'_>, h: &[f32], mp: usize, dw: &mut [f32], m: usize) {
        grad_w::<Avx2>(g, h, mp, dw, m)
    }
    match isa {
        Isa::Avx512 => avx512(g, hidden, mp, dw, m),
        Isa::Avx2 => avx2(g, hidden, mp, dw, m),
    }
}
