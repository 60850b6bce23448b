//! Discrete Fourier transform over Z_p of every neuron's `u_i`, `v_i`, `w_i`.
//!
//! # Conventions
//!
//! For a real vector `x ∈ R^p` the DFT is `X_k = Σ_a x[a]·e^{−2πi·k·a/p}`. Frequencies
//! `k` and `p − k` carry conjugate coefficients, so only the half spectrum
//! `k = 0..=⌊p/2⌋` is kept and the two are combined:
//!
//! - **power** `P_k = (|X_k|² + |X_{p−k}|²)/p` for `0 < k < p/2`, and `|X_k|²/p` for
//!   `k = 0` (the mean) and, when p is even, `k = p/2`. By Parseval `Σ_k P_k = ‖x‖²`, so
//!   powers are in the same units as the squared norms the margin uses.
//! - **phase** `θ_k = arg X_k`. A pure sinusoid `x[a] = A·cos(2πka/p + θ)` with
//!   `0 < k < p/2` has `X_k = (A·p/2)·e^{iθ}`, so its phase is exactly `θ` and its
//!   amplitude `A = 2|X_k|/p`. Phases lie in `(−π, π]`.
//!
//! The transform is planned once per p (rustfft) and run over all neurons of all
//! snapshots in parallel (rayon); each worker keeps its own buffer and scratch.
//!
//! The group need not be the inputs' own labels: [`spectra_relabelled`] transforms
//! `x'[j] = x[relabel[j]]` over Z_n, which is how [`super::basis`] analyses a·b in the
//! discrete-log basis (n = p − 1, input 0 left out). Entries no position reads are kept
//! as the neuron's *excluded* squared norm, so norms stay whole.

use crate::error::{Error, Result};
use crate::model::Weights;
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use std::f64::consts::PI;
use std::sync::Arc;

/// Which of a neuron's three vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// First-input embedding `u_i`.
    U = 0,
    /// Second-input embedding `v_i`.
    V = 1,
    /// Output weights `w_i`.
    W = 2,
}

impl Part {
    /// All three parts, in storage order.
    pub const ALL: [Part; 3] = [Part::U, Part::V, Part::W];
}

/// Wraps an angle into `(−π, π]`.
pub fn wrap_angle(x: f64) -> f64 {
    let y = x.rem_euclid(2.0 * PI); // [0, 2π)
    if y > PI {
        y - 2.0 * PI
    } else {
        y
    }
}

/// A planned real DFT of length p, shared by every transform of one analysis.
#[derive(Clone)]
pub struct FourierPlan {
    p: usize,
    fft: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for FourierPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FourierPlan(p = {})", self.p)
    }
}

impl FourierPlan {
    /// Plans the forward DFT over Z_p (p ≥ 2).
    pub fn new(p: usize) -> Result<FourierPlan> {
        if p < 2 {
            return Err(Error::config(
                "p",
                p,
                "a Fourier analysis over Z_p needs p >= 2",
            ));
        }
        let fft = FftPlanner::<f64>::new().plan_fft_forward(p);
        Ok(FourierPlan { p, fft })
    }

    /// The modulus p this plan transforms over.
    pub fn p(&self) -> usize {
        self.p
    }

    /// Number of kept frequencies, `⌊p/2⌋ + 1` (frequency 0 included).
    pub fn n_freq(&self) -> usize {
        self.p / 2 + 1
    }

    /// A work buffer sized for this plan (one per thread).
    pub fn workspace(&self) -> Workspace {
        Workspace {
            buf: vec![Complex64::default(); self.p],
            scratch: vec![Complex64::default(); self.fft.get_inplace_scratch_len()],
        }
    }

    /// Transforms the strided real vector `x[a] = data[offset + a·stride]`, `a < p`,
    /// writing the half-spectrum coefficients and powers (`n_freq` each).
    pub fn transform_strided(
        &self,
        data: &[f64],
        offset: usize,
        stride: usize,
        ws: &mut Workspace,
        coef: &mut [Complex64],
        power: &mut [f64],
    ) {
        let p = self.p;
        for (a, slot) in ws.buf.iter_mut().enumerate() {
            *slot = Complex64::new(data[offset + a * stride], 0.0);
        }
        self.fft.process_with_scratch(&mut ws.buf, &mut ws.scratch);
        let inv_p = 1.0 / p as f64;
        for k in 0..self.n_freq() {
            let x = ws.buf[k];
            coef[k] = x;
            // k and p − k are distinct unless k = 0 or 2k = p.
            let pair = if k == 0 || 2 * k == p { 1.0 } else { 2.0 };
            power[k] = pair * x.norm_sqr() * inv_p;
        }
    }

    /// Half spectrum of a contiguous vector of length p.
    pub fn transform(&self, x: &[f64]) -> Result<(Vec<Complex64>, Vec<f64>)> {
        if x.len() != self.p {
            return Err(Error::Shape {
                what: "vector to transform".into(),
                expected: format!("length p = {}", self.p),
                got: format!("length {}", x.len()),
            });
        }
        let mut ws = self.workspace();
        let mut coef = vec![Complex64::default(); self.n_freq()];
        let mut power = vec![0.0; self.n_freq()];
        self.transform_strided(x, 0, 1, &mut ws, &mut coef, &mut power);
        Ok((coef, power))
    }
}

/// Per-thread buffers of a [`FourierPlan`].
pub struct Workspace {
    buf: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

/// Half spectra of `u_i`, `v_i`, `w_i` for every neuron of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpectra {
    /// Size n of the group transformed over (p for the DFT over Z_p).
    pub n: usize,
    /// Kept frequencies per vector, `⌊n/2⌋ + 1`.
    pub n_freq: usize,
    /// Neurons of the model.
    pub width: usize,
    /// `coef[(3·i + part)·n_freq + k]`.
    coef: Vec<Complex64>,
    /// Same layout as `coef`.
    power: Vec<f64>,
    /// `excluded[3·i + part]`: squared norm of the entries outside the relabelling.
    excluded: Vec<f64>,
}

impl ModelSpectra {
    fn zeros(n: usize, width: usize) -> ModelSpectra {
        let n_freq = n / 2 + 1;
        ModelSpectra {
            n,
            n_freq,
            width,
            coef: vec![Complex64::default(); 3 * width * n_freq],
            power: vec![0.0; 3 * width * n_freq],
            excluded: vec![0.0; 3 * width],
        }
    }

    /// Spectra from powers alone (`3·width` vectors of equal length, neuron-major, u, v,
    /// w within a neuron), coefficients and excluded norms 0: the irrep basis
    /// ([`super::irrep_spectra`]), which has powers but no phases.
    pub(crate) fn from_powers(n: usize, width: usize, power: Vec<f64>) -> ModelSpectra {
        let n_freq = power.len() / (3 * width).max(1);
        ModelSpectra {
            n,
            n_freq,
            width,
            coef: vec![Complex64::default(); power.len()],
            power,
            excluded: vec![0.0; 3 * width],
        }
    }

    fn range(&self, i: usize, part: Part) -> std::ops::Range<usize> {
        let start = (3 * i + part as usize) * self.n_freq;
        start..start + self.n_freq
    }

    /// Power per frequency `0..n_freq` of one vector of neuron `i`.
    pub fn power(&self, i: usize, part: Part) -> &[f64] {
        &self.power[self.range(i, part)]
    }

    /// DFT coefficients `X_k`, `k = 0..n_freq`, of one vector of neuron `i`.
    pub fn coef(&self, i: usize, part: Part) -> &[Complex64] {
        &self.coef[self.range(i, part)]
    }

    /// Phase `θ = arg X_k` of one vector of neuron `i` at frequency `k`.
    pub fn phase(&self, i: usize, part: Part, k: usize) -> f64 {
        let c = self.coef(i, part)[k];
        c.im.atan2(c.re)
    }

    /// Squared norm of the entries of one vector of neuron `i` that the basis leaves
    /// out (the input / output 0 of the discrete-log basis; 0 for the DFT over Z_p).
    pub fn excluded(&self, i: usize, part: Part) -> f64 {
        self.excluded[3 * i + part as usize]
    }

    /// ‖u_i‖² + ‖v_i‖² + ‖w_i‖²: the combined power plus the excluded entries.
    pub fn sq_norm(&self, i: usize) -> f64 {
        let inside: f64 = Part::ALL
            .iter()
            .map(|&p| self.power(i, p).iter().sum::<f64>())
            .sum();
        inside + Part::ALL.iter().map(|&p| self.excluded(i, p)).sum::<f64>()
    }

    /// Power of `u_i`, `v_i` and `w_i` summed per frequency (sums to the neuron's
    /// squared norm ‖u_i‖² + ‖v_i‖² + ‖w_i‖² less the excluded entries).
    pub fn combined_power(&self, i: usize) -> Vec<f64> {
        let mut out = self.power(i, Part::U).to_vec();
        for part in [Part::V, Part::W] {
            for (o, x) in out.iter_mut().zip(self.power(i, part)) {
                *o += x;
            }
        }
        out
    }
}

/// Checks that model `k` of `weights` can be read as functions on Z_p.
fn check_shape(weights: &Weights<f64>, model: usize) -> Result<()> {
    if weights.n_out != weights.n_in {
        return Err(Error::Shape {
            what: "weights for a Fourier analysis over Z_p".into(),
            expected: format!(
                "n_out = n_in (w_i must be a function on Z_{})",
                weights.n_in
            ),
            got: format!("n_in = {}, n_out = {}", weights.n_in, weights.n_out),
        });
    }
    if model >= weights.batch {
        return Err(Error::Shape {
            what: "model index".into(),
            expected: format!("< {} (models in the batch)", weights.batch),
            got: model.to_string(),
        });
    }
    Ok(())
}

/// Neurons handed to one rayon job.
const CHUNK: usize = 32;

/// Spectra of the given `(weights, model)` pairs over Z_p, all neurons of all of them
/// transformed in one parallel pass with one shared plan. Every snapshot must have
/// `n_in = n_out = plan.p()`.
pub fn spectra_many(
    plan: &FourierPlan,
    snapshots: &[(&Weights<f64>, usize)],
) -> Result<Vec<ModelSpectra>> {
    for &(w, _) in snapshots {
        if w.n_in != plan.p() {
            return Err(Error::Shape {
                what: "weights for this Fourier plan".into(),
                expected: format!("n_in = {}", plan.p()),
                got: format!("n_in = {}", w.n_in),
            });
        }
    }
    let identity: Vec<usize> = (0..plan.p()).collect();
    spectra_relabelled(plan, &identity, snapshots)
}

/// Spectra over Z_n (n = `plan.p()` = `relabel.len()`) of the relabelled vectors
/// `x'[j] = x[relabel[j]]`: position j reads token `relabel[j]`, so the DFT sees the
/// inputs in the order of the group. Tokens no position reads go to
/// [`ModelSpectra::excluded`]. Every snapshot must have `n_in = n_out` and every
/// `relabel[j] < n_in`; `relabel` must not repeat a token.
pub fn spectra_relabelled(
    plan: &FourierPlan,
    relabel: &[usize],
    snapshots: &[(&Weights<f64>, usize)],
) -> Result<Vec<ModelSpectra>> {
    let n = plan.p();
    if relabel.len() != n {
        return Err(Error::Shape {
            what: "relabelling of a Fourier analysis".into(),
            expected: format!("{n} positions (the plan's group size)"),
            got: format!("{} positions", relabel.len()),
        });
    }
    for &(w, k) in snapshots {
        check_shape(w, k)?;
        let mut seen = vec![false; w.n_in];
        for &t in relabel {
            if t >= w.n_in || std::mem::replace(&mut seen[t], true) {
                return Err(Error::Shape {
                    what: "relabelling of a Fourier analysis".into(),
                    expected: format!("distinct tokens < n_in = {}", w.n_in),
                    got: format!("token {t}"),
                });
            }
        }
    }
    let mut out: Vec<ModelSpectra> = snapshots
        .iter()
        .map(|(w, _)| ModelSpectra::zeros(n, w.width))
        .collect();
    let nf = plan.n_freq();
    // One job per chunk of neurons of one snapshot; jobs own disjoint output slices.
    let mut jobs = Vec::new();
    for (spectra, &(weights, model)) in out.iter_mut().zip(snapshots) {
        let per = 3 * nf * CHUNK;
        for (c, ((coef, power), excluded)) in spectra
            .coef
            .chunks_mut(per)
            .zip(spectra.power.chunks_mut(per))
            .zip(spectra.excluded.chunks_mut(3 * CHUNK))
            .enumerate()
        {
            jobs.push((weights, model, c * CHUNK, coef, power, excluded));
        }
    }
    jobs.into_par_iter().for_each_init(
        || (plan.workspace(), vec![0.0; n * CHUNK]),
        |(ws, block), (weights, model, first, coef, power, excluded)| {
            let (u, v, w) = weights.model(model);
            let m = weights.width;
            let cols = coef.len() / (3 * nf);
            let mut inside = vec![false; weights.n_in];
            for &a in relabel {
                inside[a] = true;
            }
            for (part, data) in [u, v, w].into_iter().enumerate() {
                // Token-major storage: x_i[a] = data[a·m + i]. Gather the chunk's columns
                // row by row (contiguous reads) into a small n × cols block first; reading
                // one column at a time would touch a new cache line per element.
                for (j, &a) in relabel.iter().enumerate() {
                    block[j * cols..(j + 1) * cols]
                        .copy_from_slice(&data[a * m + first..a * m + first + cols]);
                }
                for j in 0..cols {
                    let r = (3 * j + part) * nf..(3 * j + part + 1) * nf;
                    plan.transform_strided(block, j, cols, ws, &mut coef[r.clone()], &mut power[r]);
                }
                for a in (0..inside.len()).filter(|&a| !inside[a]) {
                    for j in 0..cols {
                        excluded[3 * j + part] += data[a * m + first + j].powi(2);
                    }
                }
            }
        },
    );
    Ok(out)
}

/// Spectra of one model (a convenience wrapper of [`spectra_many`]).
pub fn spectra(plan: &FourierPlan, weights: &Weights<f64>, model: usize) -> Result<ModelSpectra> {
    Ok(spectra_many(plan, &[(weights, model)])?.remove(0))
}

/// The strongest frequency of a power vector, ignoring frequency 0: the mean of a
/// vector is not a Fourier feature (a constant embedding adds nothing that depends on
/// the input), so "dominant" always means one of `1..n_freq`. Returns `(k, P_k / Σ P)`
/// (the denominator includes frequency 0); a zero vector gives `(1, 0)`. Ties go to
/// the lower frequency.
pub fn dominant(power: &[f64]) -> (usize, f64) {
    let total: f64 = power.iter().sum();
    let mut best = 1.min(power.len().saturating_sub(1));
    for (k, &x) in power.iter().enumerate().skip(1) {
        if x > power[best] {
            best = k;
        }
    }
    let frac = if total > 0.0 {
        power[best] / total
    } else {
        0.0
    };
    (best, frac)
}

/// Inverse participation ratio `Σ P_k² / (Σ P_k)²` of a power vector: 1 when all power is
/// at one frequency, `1/n` when spread evenly over n. A zero vector gives 0.
pub fn ipr(power: &[f64]) -> f64 {
    let total: f64 = power.iter().sum();
    if total > 0.0 {
        power.iter().map(|x| x * x).sum::<f64>() / (total * total)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn ipr_limits() {
        assert_eq!(ipr(&[0.0, 2.0, 0.0]), 1.0);
        assert!((ipr(&[1.0; 4]) - 0.25).abs() < 1e-15);
        assert_eq!(ipr(&[0.0, 0.0]), 0.0);
    }

    use super::*;

    fn naive_dft(x: &[f64]) -> Vec<Complex64> {
        let p = x.len();
        (0..p)
            .map(|k| {
                x.iter()
                    .enumerate()
                    .map(|(a, &xa)| {
                        let t = -2.0 * PI * ((k * a) % p) as f64 / p as f64;
                        Complex64::new(xa * t.cos(), xa * t.sin())
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn matches_naive_dft_and_parseval() {
        for p in [2, 3, 7, 12, 31, 113] {
            let x: Vec<f64> = (0..p)
                .map(|a| ((a * a + 3 * a) % 17) as f64 - 8.0)
                .collect();
            let plan = FourierPlan::new(p).unwrap();
            let (coef, power) = plan.transform(&x).unwrap();
            let naive = naive_dft(&x);
            for k in 0..plan.n_freq() {
                assert!((coef[k] - naive[k]).norm() < 1e-10, "p={p} k={k}");
            }
            let norm: f64 = x.iter().map(|v| v * v).sum();
            let total: f64 = power.iter().sum();
            assert!(
                (total - norm).abs() < 1e-9 * norm,
                "p={p}: {total} vs {norm}"
            );
        }
    }

    #[test]
    fn pure_cosine_gives_its_phase_and_amplitude() {
        let p = 23;
        let plan = FourierPlan::new(p).unwrap();
        for (k, theta, amp) in [(1, 0.3, 1.0), (5, -2.9, 0.25), (11, PI, 3.0)] {
            let x: Vec<f64> = (0..p)
                .map(|a| amp * (2.0 * PI * (k * a) as f64 / p as f64 + theta).cos())
                .collect();
            let (coef, power) = plan.transform(&x).unwrap();
            let got = coef[k].im.atan2(coef[k].re);
            assert!(wrap_angle(got - theta).abs() < 1e-12, "{got} vs {theta}");
            assert!((2.0 * coef[k].norm() / p as f64 - amp).abs() < 1e-12);
            let (best, frac) = dominant(&power);
            assert_eq!(best, k);
            assert!((frac - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn wrap_angle_range() {
        assert_eq!(wrap_angle(PI), PI);
        assert!((wrap_angle(-PI) - PI).abs() < 1e-15);
        assert!((wrap_angle(3.0 * PI / 2.0) + PI / 2.0).abs() < 1e-15);
        assert!(wrap_angle(0.0) == 0.0);
        assert!((wrap_angle(7.0) - (7.0 - 2.0 * PI)).abs() < 1e-15);
    }

    #[test]
    fn dominant_skips_frequency_zero() {
        assert_eq!(dominant(&[10.0, 1.0, 2.0]), (2, 2.0 / 13.0));
        assert_eq!(dominant(&[0.0, 0.0, 0.0]), (1, 0.0));
    }

    #[test]
    fn relabelled_spectra_read_the_permuted_vector_and_keep_the_rest() {
        let (p, m) = (7, 40);
        let u: Vec<f64> = (0..p * m).map(|j| ((j * 31) % 17) as f64 - 8.0).collect();
        let weights = Weights {
            batch: 1,
            n_in: p,
            n_out: p,
            width: m,
            u: u.clone(),
            v: u.iter().map(|x| 0.5 * x).collect(),
            w: u.iter().map(|x| x + 1.0).collect(),
        };
        // 3 generates Z_7^*: positions 0..6 read tokens 1, 3, 2, 6, 4, 5; token 0 is left out.
        let relabel = [1, 3, 2, 6, 4, 5];
        let plan = FourierPlan::new(6).unwrap();
        let s = spectra_relabelled(&plan, &relabel, &[(&weights, 0)])
            .unwrap()
            .remove(0);
        assert_eq!((s.n, s.n_freq), (6, 4));
        for i in [0, 33, 39] {
            let col: Vec<f64> = relabel.iter().map(|&a| u[a * m + i]).collect();
            let (c, pw) = plan.transform(&col).unwrap();
            assert_eq!(s.coef(i, Part::U), &c[..]);
            assert_eq!(s.power(i, Part::U), &pw[..]);
            assert_eq!(s.excluded(i, Part::U), u[i] * u[i]);
            let norm: f64 = (0..p)
                .map(|a| {
                    let x = u[a * m + i];
                    x * x + (0.5 * x).powi(2) + (x + 1.0).powi(2)
                })
                .sum();
            assert!((s.sq_norm(i) - norm).abs() < 1e-9 * norm);
        }
        assert!(spectra_relabelled(&plan, &[1, 3, 2, 6, 4, 1], &[(&weights, 0)]).is_err());
        assert!(spectra_relabelled(&plan, &[1, 3, 2, 6, 4, 7], &[(&weights, 0)]).is_err());
        assert!(spectra_relabelled(&plan, &[1, 3, 2], &[(&weights, 0)]).is_err());
    }

    #[test]
    fn batched_equals_single_and_reads_token_major() {
        let (p, m) = (11, 70); // more than two chunks
        let u: Vec<f64> = (0..p * m)
            .map(|j| ((j * 7919) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let v: Vec<f64> = u.iter().map(|x| x * 0.5 + 0.1).collect();
        let w: Vec<f64> = u.iter().rev().copied().collect();
        let weights = Weights {
            batch: 1,
            n_in: p,
            n_out: p,
            width: m,
            u: u.clone(),
            v,
            w,
        };
        let plan = FourierPlan::new(p).unwrap();
        let s = spectra(&plan, &weights, 0).unwrap();
        for i in [0, 31, 32, 69] {
            let col: Vec<f64> = (0..p).map(|a| u[a * m + i]).collect();
            let (c, pw) = plan.transform(&col).unwrap();
            assert_eq!(s.coef(i, Part::U), &c[..]);
            assert_eq!(s.power(i, Part::U), &pw[..]);
        }
    }
}
