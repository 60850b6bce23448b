//! Per-neuron Fourier features and what they add up to for one model.
//!
//! A neuron's frequency is the dominant frequency (k ≥ 1) of the combined power of
//! `u_i`, `v_i`, `w_i`; its phases are read at that frequency. It is *sinusoidal* when
//! each of its three vectors separately keeps at least `threshold` of its power at that
//! one frequency — the shape the max-margin theory predicts (theory.md §3), where u, v
//! and w share one frequency.
//!
//! Frequencies and phases are those of the spectra handed in, in whatever basis
//! [`super::basis::Basis`] computed them; the phase residual is the basis's
//! [`Invariant`] (none for a task without one).

use super::basis::Invariant;
use super::fourier::{dominant, ipr, ModelSpectra, Part};
use serde::{Deserialize, Serialize};

/// Default power fraction above which a neuron counts as sinusoidal.
pub const DEFAULT_THRESHOLD: f64 = 0.9;

/// Fourier features of one neuron.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronFeatures {
    /// Index of the neuron in the model.
    pub neuron: usize,
    /// Dominant frequency (1..=⌊p/2⌋) of the combined u+v+w power.
    pub freq: usize,
    /// Share of the combined power at `freq`.
    pub fraction: f64,
    /// Smallest of the three per-vector shares at `freq`.
    pub min_fraction: f64,
    /// Dominant frequency of `u_i` on its own (likewise `freq_v`, `freq_w`; each vector's
    /// share there is `fraction_u` etc.).
    pub freq_u: usize,
    /// Dominant frequency of `v_i`.
    pub freq_v: usize,
    /// Dominant frequency of `w_i`.
    pub freq_w: usize,
    /// Share of `u_i`'s power at `freq_u`.
    pub fraction_u: f64,
    /// Share of `v_i`'s power at `freq_v`.
    pub fraction_v: f64,
    /// Share of `w_i`'s power at `freq_w`.
    pub fraction_w: f64,
    /// u, v and w have the same dominant frequency.
    pub shared_freq: bool,
    /// Phase of `u_i` at `freq` (convention of [`super::fourier`]:
    /// `x[a] = A·cos(2πka/p + θ)`).
    pub theta_u: f64,
    /// Phase of `v_i` at `freq`.
    pub theta_v: f64,
    /// Phase of `w_i` at `freq`.
    pub theta_w: f64,
    /// The invariant's residual (θu + θv − θw for a+b and a·b, θu − θv − θw for a−b and
    /// a/b) wrapped to (−π, π]; 0 for the max-margin solution. `None` when the task has
    /// no invariant (a²+ab+b²).
    pub residual: Option<f64>,
    /// ‖u_i‖² + ‖v_i‖² + ‖w_i‖² (all entries, those outside the basis included).
    pub sq_norm: f64,
    /// Share of `sq_norm` on the entries outside the basis (input and output 0 of the
    /// discrete-log basis; 0 in the additive basis).
    #[serde(default)]
    pub excluded_share: f64,
    /// Inverse participation ratio of the combined power (1 = one frequency).
    pub ipr: f64,
    /// `min_fraction ≥ threshold`.
    pub sinusoidal: bool,
}

/// Features of every neuron of one model of a+b (residual θu + θv − θw).
pub fn neuron_features(spectra: &ModelSpectra, threshold: f64) -> Vec<NeuronFeatures> {
    neuron_features_with(spectra, Some(Invariant::Sum), threshold)
}

/// Features of every neuron of one model, with the residual of `invariant` (none
/// without one).
pub fn neuron_features_with(
    spectra: &ModelSpectra,
    invariant: Option<Invariant>,
    threshold: f64,
) -> Vec<NeuronFeatures> {
    (0..spectra.width)
        .map(|i| {
            let combined = spectra.combined_power(i);
            let (freq, fraction) = dominant(&combined);
            let share_at = |part: Part| {
                let pw = spectra.power(i, part);
                let total: f64 = pw.iter().sum();
                if total > 0.0 {
                    pw[freq] / total
                } else {
                    0.0
                }
            };
            let min_fraction = Part::ALL
                .iter()
                .map(|&part| share_at(part))
                .fold(f64::INFINITY, f64::min);
            let (freq_u, fraction_u) = dominant(spectra.power(i, Part::U));
            let (freq_v, fraction_v) = dominant(spectra.power(i, Part::V));
            let (freq_w, fraction_w) = dominant(spectra.power(i, Part::W));
            let theta_u = spectra.phase(i, Part::U, freq);
            let theta_v = spectra.phase(i, Part::V, freq);
            let theta_w = spectra.phase(i, Part::W, freq);
            let sq_norm = spectra.sq_norm(i);
            NeuronFeatures {
                neuron: i,
                freq,
                fraction,
                min_fraction,
                freq_u,
                freq_v,
                freq_w,
                fraction_u,
                fraction_v,
                fraction_w,
                shared_freq: freq_u == freq_v && freq_v == freq_w,
                theta_u,
                theta_v,
                theta_w,
                residual: invariant.map(|inv| inv.residual(theta_u, theta_v, theta_w)),
                sq_norm,
                excluded_share: if sq_norm > 0.0 {
                    (sq_norm - combined.iter().sum::<f64>()).max(0.0) / sq_norm
                } else {
                    0.0
                },
                ipr: ipr(&combined),
                sinusoidal: min_fraction >= threshold,
            }
        })
        .collect()
}

/// What one model's neurons add up to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrequencySummary {
    /// Largest frequency, ⌊p/2⌋ (frequencies are 1..=max_freq).
    pub max_freq: usize,
    /// Power fraction above which a neuron counts as sinusoidal.
    pub threshold: f64,
    /// Neurons of the model.
    pub neurons: usize,
    /// Neurons per dominant frequency, index = frequency (index 0 is always 0).
    pub neurons_per_freq: Vec<usize>,
    /// Sinusoidal neurons per frequency.
    pub sinusoidal_per_freq: Vec<usize>,
    /// Share of the model's total ‖u_i‖² + ‖v_i‖² + ‖w_i‖² held by the neurons of each
    /// dominant frequency (index 0 is always 0). The max-margin solution spreads its
    /// weight evenly over the frequencies, not necessarily its neurons: neuron counts per
    /// frequency can vary while these shares are all near 1/max_freq.
    #[serde(default)]
    pub norm_share_per_freq: Vec<f64>,
    /// Largest and smallest norm share over the frequencies in use, as multiples of the
    /// equal share 1/max_freq (1 and 1 when the weight is spread perfectly evenly; null
    /// with no frequency in use).
    #[serde(default)]
    pub norm_share_range: Option<(f64, f64)>,
    /// Share of Σ_i n_i^{3/2} (n_i = ‖u_i‖² + ‖v_i‖² + ‖w_i‖²) held by the neurons of each
    /// dominant frequency (index 0 is always 0). For σ = x² a neuron's contribution to
    /// the logits scales as n_i^{3/2}, so this is each frequency's share of the logit
    /// amplitude: the quantity the max-margin solution makes equal across frequencies
    /// (theory.md §4), where neither the neuron counts nor the Σ n_i shares need be.
    #[serde(default)]
    pub amplitude_share_per_freq: Vec<f64>,
    /// Largest and smallest amplitude share over the frequencies in use, as multiples of
    /// the equal share 1/max_freq (null with no frequency in use).
    #[serde(default)]
    pub amplitude_share_range: Option<(f64, f64)>,
    /// Frequencies of at least one sinusoidal neuron, and the others.
    pub freqs_used: Vec<usize>,
    /// Frequencies without any sinusoidal neuron.
    pub freqs_missing: Vec<usize>,
    /// Share of sinusoidal neurons.
    pub sinusoidal_share: f64,
    /// Share of neurons whose u, v, w have one dominant frequency.
    pub shared_freq_share: f64,
    /// Over sinusoidal neurons: largest |residual| of the basis's invariant (null when
    /// there are none, or the task has no invariant).
    pub residual_max_abs: Option<f64>,
    /// Mean |residual| over sinusoidal neurons (null likewise).
    pub residual_mean_abs: Option<f64>,
    /// Mean inverse participation ratio of the combined power.
    pub mean_ipr: f64,
    /// Mean over neurons of the share of their norm² outside the basis (input and
    /// output 0 of the discrete-log basis; 0 in the additive basis).
    #[serde(default)]
    pub excluded_share_mean: f64,
    /// Largest such share over the neurons.
    #[serde(default)]
    pub excluded_share_max: f64,
}

/// Each entry's share of the total (all 0 when the total is 0).
fn shares(per_freq: &[f64]) -> Vec<f64> {
    let total: f64 = per_freq.iter().sum();
    per_freq
        .iter()
        .map(|&x| if total > 0.0 { x / total } else { 0.0 })
        .collect()
}

/// Smallest and largest of `shares` over `used` frequencies, as multiples of the equal
/// share 1/max_freq.
fn share_range(shares: &[f64], used: &[usize], max_freq: usize) -> Option<(f64, f64)> {
    used.iter()
        .map(|&k| shares[k] * max_freq as f64)
        .map(|r| (r, r))
        .reduce(|(lo, hi), (r, _)| (lo.min(r), hi.max(r)))
}

/// Aggregates neuron features (of a model over Z_p with ⌊p/2⌋ = `max_freq`).
pub fn summarize(features: &[NeuronFeatures], max_freq: usize, threshold: f64) -> FrequencySummary {
    let mut neurons_per_freq = vec![0; max_freq + 1];
    let mut sinusoidal_per_freq = vec![0; max_freq + 1];
    let mut norm_per_freq = vec![0.0; max_freq + 1];
    let mut amplitude_per_freq = vec![0.0; max_freq + 1];
    let mut residuals = Vec::new();
    for f in features {
        neurons_per_freq[f.freq] += 1;
        norm_per_freq[f.freq] += f.sq_norm;
        amplitude_per_freq[f.freq] += f.sq_norm.powf(1.5);
        if f.sinusoidal {
            sinusoidal_per_freq[f.freq] += 1;
            if let Some(r) = f.residual {
                residuals.push(r.abs());
            }
        }
    }
    let (freqs_used, freqs_missing): (Vec<usize>, Vec<usize>) =
        (1..=max_freq).partition(|&k| sinusoidal_per_freq[k] > 0);
    let norm_share_per_freq = shares(&norm_per_freq);
    let norm_share_range = share_range(&norm_share_per_freq, &freqs_used, max_freq);
    let amplitude_share_per_freq = shares(&amplitude_per_freq);
    let amplitude_share_range = share_range(&amplitude_share_per_freq, &freqs_used, max_freq);
    let n = features.len().max(1) as f64;
    let count = |pred: fn(&NeuronFeatures) -> bool| features.iter().filter(|f| pred(f)).count();
    FrequencySummary {
        max_freq,
        threshold,
        neurons: features.len(),
        neurons_per_freq,
        sinusoidal_per_freq,
        norm_share_per_freq,
        norm_share_range,
        amplitude_share_per_freq,
        amplitude_share_range,
        freqs_used,
        freqs_missing,
        sinusoidal_share: count(|f| f.sinusoidal) as f64 / n,
        shared_freq_share: count(|f| f.shared_freq) as f64 / n,
        residual_max_abs: residuals.iter().copied().reduce(f64::max),
        residual_mean_abs: (!residuals.is_empty())
            .then(|| residuals.iter().sum::<f64>() / residuals.len() as f64),
        mean_ipr: features.iter().map(|f| f.ipr).sum::<f64>() / n,
        excluded_share_mean: features.iter().map(|f| f.excluded_share).sum::<f64>() / n,
        excluded_share_max: features
            .iter()
            .map(|f| f.excluded_share)
            .fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::fourier::{spectra, FourierPlan};
    use crate::model::Weights;
    use std::f64::consts::PI;

    /// Two neurons: a clean sinusoid at k = 3 with θu + θv = θw, and one with
    /// u at k = 1, v at k = 2, w at k = 2.
    #[test]
    fn features_of_planted_neurons() {
        let (p, m) = (13, 2);
        let c = |k: usize, th: f64, a: usize| (2.0 * PI * (k * a) as f64 / p as f64 + th).cos();
        let mut w = Weights {
            batch: 1,
            n_in: p,
            n_out: p,
            width: m,
            u: vec![0.0; p * m],
            v: vec![0.0; p * m],
            w: vec![0.0; p * m],
        };
        for a in 0..p {
            w.u[a * m] = c(3, 0.4, a);
            w.v[a * m] = c(3, -1.1, a);
            w.w[a * m] = c(3, 0.4 - 1.1 + 0.25, a);
            w.u[a * m + 1] = c(1, 0.0, a);
            w.v[a * m + 1] = c(2, 0.0, a);
            w.w[a * m + 1] = c(2, 0.0, a);
        }
        let plan = FourierPlan::new(p).unwrap();
        let f = neuron_features(&spectra(&plan, &w, 0).unwrap(), 0.9);
        assert_eq!(f[0].freq, 3);
        assert!(f[0].sinusoidal && f[0].shared_freq);
        let r0 = f[0].residual.unwrap();
        assert!((r0 + 0.25).abs() < 1e-12, "{r0}");
        assert!((f[0].ipr - 1.0).abs() < 1e-12);
        assert!((f[0].sq_norm - 3.0 * p as f64 / 2.0).abs() < 1e-9);
        assert_eq!((f[1].freq, f[1].freq_u, f[1].freq_v), (2, 1, 2));
        assert!(!f[1].shared_freq && !f[1].sinusoidal);
        assert!(f[1].min_fraction.abs() < 1e-12);
        let s = summarize(&f, p / 2, 0.9);
        assert_eq!(s.freqs_used, vec![3]);
        assert_eq!(s.freqs_missing, vec![1, 2, 4, 5, 6]);
        assert_eq!(s.neurons_per_freq, vec![0, 0, 1, 1, 0, 0, 0]);
        assert_eq!(s.sinusoidal_share, 0.5);
        assert!((s.residual_max_abs.unwrap() - 0.25).abs() < 1e-12);
        // Both neurons hold 3·p/2 of norm²: half the weight at k = 3, half at k = 2.
        let shares = &s.norm_share_per_freq;
        assert_eq!(shares.len(), 7);
        assert!((shares[3] - 0.5).abs() < 1e-12 && (shares[2] - 0.5).abs() < 1e-12);
        assert_eq!(shares.iter().filter(|&&x| x != 0.0).count(), 2);
        // Only k = 3 is in use (sinusoidal): its share is 3× the equal share 1/6.
        let (lo, hi) = s.norm_share_range.unwrap();
        assert!((lo - 3.0).abs() < 1e-12 && (hi - 3.0).abs() < 1e-12);
        // Equal norms: the n^{3/2} shares are the norm shares.
        assert_eq!(s.amplitude_share_per_freq, s.norm_share_per_freq);
        // Neuron 0 at twice the scale: n_0 = 4·n_1, so n^{3/2} gives it 8 of 9 parts
        // where Σ n gives it 4 of 5.
        for x in
            w.u.iter_mut()
                .chain(w.v.iter_mut())
                .chain(w.w.iter_mut())
                .step_by(2)
        {
            *x *= 2.0;
        }
        let f = neuron_features(&spectra(&plan, &w, 0).unwrap(), 0.9);
        let s = summarize(&f, p / 2, 0.9);
        assert!((s.norm_share_per_freq[3] - 0.8).abs() < 1e-12);
        assert!((s.amplitude_share_per_freq[3] - 8.0 / 9.0).abs() < 1e-12);
        assert_eq!((s.excluded_share_mean, s.excluded_share_max), (0.0, 0.0));
    }
}
