//! The Fourier-sparse ("single frequency") initialization: every neuron starts as one
//! cosine, so its spectrum holds all its power at one frequency.
//!
//! Why: the closest public peer (Y-Agent/modular-addition-feature-learning,
//! `src/model_base.py`, `init_type = "single-freq"`) starts its gradient-descent runs
//! from such weights to watch phases align under fixed frequencies. What it does, and
//! what this does:
//! - the (p−1)/2 frequencies 1..=(p−1)/2 in a random order are repeated until there is
//!   one per neuron, and that list is shuffled, so every frequency holds ⌊m/K⌋ or
//!   ⌈m/K⌉ neurons (the peer's `decide_frequencies` with `freq_num = (p−1)//2`);
//! - neuron i's input weights are `s·cos(2π f_i x / p − φ_i)` and its output weights
//!   `s·cos(2π f_i c / p − ψ_i)`, s the init scale: the peer writes a unit 2-vector
//!   (a normalized Gaussian draw, so a uniform phase) into the cos/sin pair of the
//!   normalized Fourier basis and scales by `init_scale·√(p/2)`, which is this cosine of
//!   amplitude s; its output weights take a second, independent draw of phases with the
//!   same frequencies (`sparse_initialization` called twice);
//! - the peer's model is tied (it embeds the sum of the two one-hots), so `v = u`
//!   there; an untied model here draws v's phase on its own, after u's.
//!
//! Deterministic per (seed, stream) like the Gaussian draw: the ChaCha8 stream is used
//! in the order frequencies, u phases, v phases (untied), w phases.

use crate::error::{Error, Result};
use crate::real::Real;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The phase of a normalized standard-normal 2-vector, as (cos φ, sin φ).
fn unit_pair(rng: &mut ChaCha8Rng) -> (f64, f64) {
    loop {
        let a: f64 = StandardNormal.sample(rng);
        let b: f64 = StandardNormal.sample(rng);
        let r = a.hypot(b);
        if r > 0.0 {
            return (a / r, b / r);
        }
    }
}

/// Each of `m` neurons' frequency in 1..=(p−1)/2, balanced (see the module docs).
/// `p ≥ 3` (checked by the config).
pub(crate) fn frequencies(p: usize, m: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let k = (p - 1) / 2;
    let mut choices: Vec<usize> = (1..=k).collect();
    choices.shuffle(rng);
    let mut assigned: Vec<usize> = choices.iter().copied().cycle().take(m).collect();
    assigned.shuffle(rng);
    assigned
}

/// Writes `rows × m` values (row-major, row = token, column = neuron), neuron i the
/// cosine of frequency `freq[i]` with a fresh phase, amplitude `scale`.
fn cosines<F: Real>(
    p: usize,
    rows: usize,
    freq: &[usize],
    scale: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<F>,
) {
    let m = freq.len();
    let phases: Vec<(f64, f64)> = (0..m).map(|_| unit_pair(rng)).collect();
    for x in 0..rows {
        for (&f, &(c, d)) in freq.iter().zip(&phases) {
            let angle = 2.0 * std::f64::consts::PI * ((f * x) % p) as f64 / p as f64;
            out.push(F::of(scale * (c * angle.cos() + d * angle.sin())));
        }
    }
}

/// Whether `spec` can start Fourier-sparse: unfactored (a factored model's U = E·P has
/// no per-neuron cosine to set), one modulus for inputs and outputs, and p ≥ 3 (p = 2
/// has no frequency besides the constant).
pub(crate) fn check(spec: &super::ModelSpec) -> Result<()> {
    if spec.embed_dim.is_some() {
        return Err(Error::config(
            "model.init",
            "fourier-sparse",
            "needs an unfactored model (model.embed_dim = 0)",
        ));
    }
    if spec.n_in != spec.n_out || spec.n_in < 3 {
        return Err(Error::config(
            "model.init",
            "fourier-sparse",
            format!(
                "needs inputs and outputs mod one p >= 3 (got {} inputs, {} outputs)",
                spec.n_in, spec.n_out
            ),
        ));
    }
    Ok(())
}

/// One model's parameters (`u`, `v` unless tied, `w`, in [`super::ModelSpec::tensors`]
/// order, unfactored) drawn Fourier-sparse, the embeddings' cosines of amplitude
/// `scale`, the output weights' of amplitude `scale_out`, appended to `out`.
pub(crate) fn draw<F: Real>(
    spec: &super::ModelSpec,
    scale: f64,
    scale_out: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<F>,
) {
    let p = spec.n_in;
    let freq = frequencies(p, spec.width, rng);
    cosines(p, p, &freq, scale, rng, out);
    if !spec.tied {
        cosines(p, p, &freq, scale, rng, out);
    }
    cosines(p, spec.n_out, &freq, scale_out, rng, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn frequencies_are_balanced_and_cover_every_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let f = frequencies(11, 23, &mut rng);
        let counts: Vec<usize> = (1..=5)
            .map(|k| f.iter().filter(|&&x| x == k).count())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 23);
        assert!(counts.iter().all(|&c| c == 4 || c == 5), "{counts:?}");
    }
}
