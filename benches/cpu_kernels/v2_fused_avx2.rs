//! v2: a hand-written f32 path for AVX2+FMA: one 6×16 microkernel serves all three
//! products of a tile, and packing is reduced to `W`, once per pass. (Formerly
//! `CpuKernel::FusedAvx2` in the engine; it measured ~5–10% slower than the `gemm`
//! crate's AVX-512 kernels (v3) on the benchmark shapes, so it lives here.) f32 only.
//!
//! # Strategy
//! The microkernel keeps a 6×16 block of C in 12 ymm registers and, per step of k,
//! loads 16 floats of B and broadcasts 6 of A (2 loads + 6 broadcasts per 12 FMAs,
//! which keeps both FMA pipes of a Zen 4 / Intel core busy). A is read in place through
//! a (row stride, k stride) pair, so no product needs A packed:
//!
//! | product                      | A (6 rows)                 | B (16 columns)               | after the block            |
//! |------------------------------|----------------------------|------------------------------|----------------------------|
//! | logits = hidden · Wᵀ         | hidden rows (pairs)        | Wᵀ, packed once per pass     | store                      |
//! | dW += Gᵀ · hidden            | G columns (classes), k = pair | hidden rows, in place     | add into a padded dW       |
//! | D = G · W                    | G rows (pairs)             | W, packed once per pass      | σ'(s) ⊙ D scattered into dU[a], dV[b]; D never stored |
//!
//! Rows are padded to a multiple of 6 (zero hidden rows give zero logits and are never
//! turned into G, so they contribute nothing) and columns to a multiple of 16 (zero
//! padding in the packed W and the hidden rows), so the kernel has no edge cases; only
//! the scatter masks the last neuron panel.

use clockwork::engine::cpu::dev::{
    self, balanced_tile, epilogue_row, Act, Context, JobResult, Pow, Relu, Square,
};
use clockwork::engine::cpu::CpuBackend;
use clockwork::engine::{CoreSpec, PassStats};
use clockwork::error::Result;
use clockwork::model::{Activation, Weights};
use clockwork::task::PairSet;
use std::arch::x86_64::*;

const MR: usize = 6;
const NR: usize = 16;

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// W of one model in the two panel layouts the kernel reads.
#[derive(Default)]
struct PackedW {
    /// Wᵀ (m × n_out) as panels of 16 classes: `[panel][neuron][16]`.
    by_class: Vec<f32>,
    /// W (n_out × m) as panels of 16 neurons: `[panel][class][16]`.
    by_neuron: Vec<f32>,
}

impl PackedW {
    fn pack(&mut self, w: &[f32], n_out: usize, m: usize) {
        let (n16, m16) = (round_up(n_out, NR), round_up(m, NR));
        self.by_class.clear();
        self.by_class.resize(n16 * m, 0.0);
        for panel in 0..n16 / NR {
            for i in 0..m {
                let dst = &mut self.by_class[(panel * m + i) * NR..][..NR];
                for (l, d) in dst.iter_mut().enumerate() {
                    let c = panel * NR + l;
                    if c < n_out {
                        *d = w[c * m + i];
                    }
                }
            }
        }
        self.by_neuron.clear();
        self.by_neuron.resize(m16 * n_out, 0.0);
        for panel in 0..m16 / NR {
            for c in 0..n_out {
                let j0 = panel * NR;
                let len = NR.min(m - j0);
                self.by_neuron[(panel * n_out + c) * NR..][..len]
                    .copy_from_slice(&w[c * m + j0..][..len]);
            }
        }
    }
}

/// One pass (with `grads`: loss and gradient; without: forward only) through
/// `backend`'s chunking and reduction with the v2 job; `None` on a CPU without
/// AVX2+FMA. Packs every model's W first, as the engine did once per pass.
pub fn pass(
    backend: &CpuBackend,
    core: CoreSpec,
    weights: &Weights<f32>,
    pairs: &PairSet,
    grads: Option<&mut Weights<f32>>,
) -> Option<Result<Vec<PassStats>>> {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return None;
    }
    let len = weights.n_out * weights.width;
    let packed: Vec<PackedW> = (0..weights.batch)
        .map(|k| {
            let mut packed = PackedW::default();
            packed.pack(
                &weights.w[k * len..(k + 1) * len],
                weights.n_out,
                weights.width,
            );
            packed
        })
        .collect();
    Some(dev::run_with_job(
        backend,
        core,
        weights,
        pairs,
        grads,
        |ctx, k, range, want, out| {
            let packed = &packed[k];
            // SAFETY: AVX2 and FMA were detected above.
            unsafe {
                match ctx.core.activation {
                    Activation::Square => job(ctx, packed, Square, k, range, want, out),
                    Activation::Relu => job(ctx, packed, Relu, k, range, want, out),
                    Activation::Pow(n) => job(ctx, packed, Pow(n), k, range, want, out),
                }
            }
        },
    ))
}

/// 6×16 block of `Σ_k A[r][k] · B[k][c]`; A at `a + r·rs_a + k·cs_a`, B at `b + k·rs_b`.
///
/// The twelve accumulators are separate variables, not an array: with an array LLVM
/// split the loop in two (six chains each, every A element broadcast twice), which
/// measured ~15% slower.
#[inline(always)]
unsafe fn microkernel(
    k: usize,
    a: *const f32,
    rs_a: usize,
    cs_a: usize,
    b: *const f32,
    rs_b: usize,
) -> [__m256; 12] {
    let z = _mm256_setzero_ps();
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
    let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
    let (a0, a1, a2) = (a, a.add(rs_a), a.add(2 * rs_a));
    let (a3, a4, a5) = (a.add(3 * rs_a), a.add(4 * rs_a), a.add(5 * rs_a));
    let mut b_row = b;
    let mut off = 0;
    for _ in 0..k {
        let b0 = _mm256_loadu_ps(b_row);
        let b1 = _mm256_loadu_ps(b_row.add(8));
        let x = _mm256_broadcast_ss(&*a0.add(off));
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        let x = _mm256_broadcast_ss(&*a1.add(off));
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        let x = _mm256_broadcast_ss(&*a2.add(off));
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        let x = _mm256_broadcast_ss(&*a3.add(off));
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        let x = _mm256_broadcast_ss(&*a4.add(off));
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        let x = _mm256_broadcast_ss(&*a5.add(off));
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
        b_row = b_row.add(rs_b);
        off += cs_a;
    }
    [c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51]
}

/// The fused job for f32 on AVX2+FMA: model `k`, pairs `start..end`, like the
/// production tile loop. Its padded tile workspaces are the job's three
/// ([`JobResult::workspaces`]: hidden, logits, dW).
#[target_feature(enable = "avx2,fma")]
unsafe fn job<A: Act<f32>>(
    ctx: &Context<f32>,
    packed: &PackedW,
    act: A,
    k: usize,
    (start, end): (usize, usize),
    want_grads: bool,
    out: &mut JobResult<f32>,
) {
    let [hidden, logits, grad_w] = out.workspaces();
    let mut ws = Workspace {
        hidden: std::mem::take(hidden),
        logits: std::mem::take(logits),
        grad_w: std::mem::take(grad_w),
    };
    let weights = ctx.weights;
    let (u, v, _) = weights.model(k);
    let (p, m, n_out) = (weights.n_in(), weights.width(), weights.n_out());
    let (m16, n16, n6) = (round_up(m, NR), round_up(n_out, NR), round_up(n_out, MR));
    let tile_rows = balanced_tile(end - start, ctx.tile_rows);
    let tile = round_up(tile_rows, MR);
    out.reset(want_grads, p * m, n_out * m);
    // Padding columns of hidden must be zero; they are never written below.
    ws.hidden.clear();
    ws.hidden.resize(tile * m16, 0.0);
    ws.logits.clear();
    ws.logits.resize(tile * n16, 0.0);
    if want_grads {
        ws.grad_w.clear();
        ws.grad_w.resize(n6 * m16, 0.0);
    }
    let (hidden, logits) = (&mut ws.hidden[..], &mut ws.logits[..]);
    let mut t0 = start;
    while t0 < end {
        let t1 = (t0 + tile_rows).min(end);
        let rows = t1 - t0;
        let rows6 = round_up(rows, MR);
        let (a_idx, b_idx, labels) = (
            &ctx.pairs.a[t0..t1],
            &ctx.pairs.b[t0..t1],
            &ctx.pairs.label[t0..t1],
        );
        for r in 0..rows {
            let (ua, vb) = (
                &u[a_idx[r] as usize * m..][..m],
                &v[b_idx[r] as usize * m..][..m],
            );
            for ((h, &x), &z) in hidden[r * m16..r * m16 + m].iter_mut().zip(ua).zip(vb) {
                *h = act.act(x + z);
            }
        }
        hidden[rows * m16..rows6 * m16].fill(0.0);

        // logits = hidden · Wᵀ
        for rb in (0..rows6).step_by(MR) {
            for panel in 0..n16 / NR {
                let acc = microkernel(
                    m,
                    hidden.as_ptr().add(rb * m16),
                    m16,
                    1,
                    packed.by_class.as_ptr().add(panel * m * NR),
                    NR,
                );
                for r in 0..MR {
                    let dst = logits.as_mut_ptr().add((rb + r) * n16 + panel * NR);
                    _mm256_storeu_ps(dst, acc[2 * r]);
                    _mm256_storeu_ps(dst.add(8), acc[2 * r + 1]);
                }
            }
        }
        for r in 0..rows {
            epilogue_row(
                ctx.core.loss,
                &mut logits[r * n16..r * n16 + n_out],
                labels[r] as usize,
                ctx.inv_n,
                out,
            );
        }
        // Rows past `rows` hold zero logits, i.e. G = 0: harmless below.
        logits[rows * n16..rows6 * n16].fill(0.0);
        if !want_grads {
            t0 = t1;
            continue;
        }
        let g = &logits[..];

        // dW (n6 × m16) += Gᵀ · hidden, k = the tile's pairs.
        // Panel-outer: the 16 hidden columns of a panel (rows × 64 B) stay in L1 while
        // every block of 6 classes streams past them.
        for panel in 0..m16 / NR {
            for cb in (0..n6).step_by(MR) {
                let acc = microkernel(
                    rows6,
                    g.as_ptr().add(cb),
                    1,
                    n16,
                    hidden.as_ptr().add(panel * NR),
                    m16,
                );
                for r in 0..MR {
                    let dst = ws.grad_w.as_mut_ptr().add((cb + r) * m16 + panel * NR);
                    _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), acc[2 * r]));
                    _mm256_storeu_ps(
                        dst.add(8),
                        _mm256_add_ps(_mm256_loadu_ps(dst.add(8)), acc[2 * r + 1]),
                    );
                }
            }
        }

        // D = G · W, consumed at once: dS = σ'(U[a] + V[b]) ⊙ D into dU[a] and dV[b].
        let mut block = [0.0f32; MR * NR];
        for rb in (0..rows6).step_by(MR) {
            for panel in 0..m16 / NR {
                let acc = microkernel(
                    n_out,
                    g.as_ptr().add(rb * n16),
                    n16,
                    1,
                    packed.by_neuron.as_ptr().add(panel * n_out * NR),
                    NR,
                );
                for r in 0..MR {
                    _mm256_storeu_ps(block.as_mut_ptr().add(r * NR), acc[2 * r]);
                    _mm256_storeu_ps(block.as_mut_ptr().add(r * NR + 8), acc[2 * r + 1]);
                }
                let j0 = panel * NR;
                let len = NR.min(m - j0);
                for r in 0..MR.min(rows - rb.min(rows)) {
                    let t = rb + r;
                    let (ia, ib) = (a_idx[t] as usize * m + j0, b_idx[t] as usize * m + j0);
                    let d = &block[r * NR..r * NR + len];
                    let (us, vs) = (&u[ia..ia + len], &v[ib..ib + len]);
                    let mut ds = [0.0f32; NR];
                    for l in 0..len {
                        ds[l] = d[l] * act.grad(us[l] + vs[l]);
                    }
                    for (g, &x) in out.grad_u[ia..ia + len].iter_mut().zip(&ds) {
                        *g += x;
                    }
                    for (g, &x) in out.grad_v[ib..ib + len].iter_mut().zip(&ds) {
                        *g += x;
                    }
                }
            }
        }
        t0 = t1;
    }
    if want_grads {
        for c in 0..n_out {
            out.grad_w[c * m..(c + 1) * m].copy_from_slice(&ws.grad_w[c * m16..c * m16 + m]);
        }
    }
    let [hidden, logits, grad_w] = out.workspaces();
    (*hidden, *logits, *grad_w) = (ws.hidden, ws.logits, ws.grad_w);
}

/// The padded tile workspaces of one job.
struct Workspace {
    hidden: Vec<f32>,
    logits: Vec<f32>,
    grad_w: Vec<f32>,
}
