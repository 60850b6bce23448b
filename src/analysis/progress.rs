//! Progress measures over training: how concentrated each neuron's spectrum is, whether
//! the frequency a neuron ends on was already favoured at initialization (the "lottery"
//! view), and when a split run memorizes and then generalizes.

use super::basis::Invariant;
use super::fourier::{dominant, ModelSpectra, Part};
use super::record::SpectraRecord;
use super::summary::NeuronFeatures;
use serde::{Deserialize, Serialize};

/// Kept under this path for callers that read IPR over training as a progress measure;
/// it lives in [`super::fourier`] because per-neuron features need it too.
pub use super::fourier::ipr;

/// Mean IPR and share of neurons whose combined power holds at least `threshold` at
/// one frequency, of one spectra record (how far the neurons have concentrated at
/// that step).
pub fn record_measures(r: &SpectraRecord, threshold: f64) -> (f64, f64) {
    let n = r.width().max(1) as f64;
    let mean_ipr = r.power.iter().map(|p| ipr(p)).sum::<f64>() / n;
    let share = r.frac.iter().filter(|&&f| f >= threshold).count() as f64 / n;
    (mean_ipr, share)
}

/// Alignment of neuron `i` at frequency `k` under `invariant`:
/// `|Re(û_k · v̂_k^± · conj(ŵ_k))|` = `|û_k|·|v̂_k|·|ŵ_k|·|cos(θu ± θv − θw)|`, with
/// `v̂_k` for [`Invariant::Sum`] and `conj(v̂_k)` for [`Invariant::Difference`].
///
/// Why this quantity: for σ = x² the part of `h_i(a,b)` that mixes the inputs is
/// `2·u_i[a]·v_i[b]`, and its overlap with the output `w_i[c]` along the correct answer
/// (c = a + b, or a − b) at frequency k is proportional to that real part. So the score
/// is how much a neuron at initialization already pushes (either sign) the logit of the
/// right answer through frequency k: power-weighted phase alignment.
pub fn alignment(spectra: &ModelSpectra, invariant: Invariant, i: usize, k: usize) -> f64 {
    let u = spectra.coef(i, Part::U)[k];
    let v = spectra.coef(i, Part::V)[k];
    let v = match invariant {
        Invariant::Sum => v,
        Invariant::Difference => v.conj(),
    };
    let w = spectra.coef(i, Part::W)[k];
    (u * v * w.conj()).re.abs()
}

/// The frequency (k ≥ 1) of largest [`alignment`]; ties go to the lower frequency.
pub fn best_aligned(spectra: &ModelSpectra, invariant: Invariant, i: usize) -> usize {
    let mut best = 1;
    let mut best_score = f64::NEG_INFINITY;
    for k in 1..spectra.n_freq {
        let s = alignment(spectra, invariant, i, k);
        if s > best_score {
            best = k;
            best_score = s;
        }
    }
    best
}

/// Where each neuron stood at initialization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitFreqs {
    /// Dominant (k ≥ 1) frequency of the combined u+v+w power at init.
    pub strongest: Vec<usize>,
    /// Frequency of largest [`alignment`] at init (`None` for a task without a phase
    /// invariant, where no alignment is defined).
    pub aligned: Option<Vec<usize>>,
}

/// Strongest and best-aligned frequency (under `invariant`) of every neuron of an
/// initial model.
pub fn init_freqs(init: &ModelSpectra, invariant: Option<Invariant>) -> InitFreqs {
    InitFreqs {
        strongest: (0..init.width)
            .map(|i| dominant(&init.combined_power(i)).0)
            .collect(),
        aligned: invariant.map(|inv| {
            (0..init.width)
                .map(|i| best_aligned(init, inv, i))
                .collect()
        }),
    }
}

/// The lottery check of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lottery {
    /// Neurons considered: those sinusoidal at the end (the others have no meaningful
    /// final frequency).
    pub considered: usize,
    /// Of those, how many end on their strongest frequency at init, and the share.
    pub same_as_strongest: usize,
    /// `same_as_strongest / considered` (None when no neuron is considered).
    pub share_strongest: Option<f64>,
    /// Of those, how many end on their best phase-aligned frequency at init (`None`
    /// without an invariant).
    pub same_as_aligned: Option<usize>,
    /// `same_as_aligned / considered` (None when no neuron is considered, or without an
    /// invariant).
    pub share_aligned: Option<f64>,
    /// Share expected by chance if final frequencies were independent of init:
    /// 1 / ⌊p/2⌋.
    pub chance: f64,
}

/// Compares final frequencies with the init ones; frequencies are 1..=max_freq.
pub fn lottery(init: &InitFreqs, last: &[NeuronFeatures], max_freq: usize) -> Lottery {
    let considered: Vec<&NeuronFeatures> = last.iter().filter(|f| f.sinusoidal).collect();
    let hits = |init: &[usize]| {
        considered
            .iter()
            .filter(|f| init.get(f.neuron) == Some(&f.freq))
            .count()
    };
    let same_as_strongest = hits(&init.strongest);
    let same_as_aligned = init.aligned.as_deref().map(hits);
    let share = |h: usize| (!considered.is_empty()).then(|| h as f64 / considered.len() as f64);
    Lottery {
        considered: considered.len(),
        same_as_strongest,
        share_strongest: share(same_as_strongest),
        same_as_aligned,
        share_aligned: same_as_aligned.and_then(share),
        chance: 1.0 / max_freq.max(1) as f64,
    }
}

/// Accuracy level that marks a grokking stage.
pub const STAGE_ACCURACY: f64 = 0.95;

/// Grokking stages of one model of a split run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    /// End of memorization: first evaluated step with train accuracy ≥ 0.95.
    pub memorized: Option<u64>,
    /// End of generalization: first evaluated step with test accuracy ≥ 0.95 (None
    /// without a test split, or before it happens).
    pub generalized: Option<u64>,
}

/// Finds the stages in `(step, train_acc, test_acc)` rows, in step order.
pub fn stages(rows: impl IntoIterator<Item = (u64, Option<f64>, Option<f64>)>) -> Stages {
    let mut s = Stages::default();
    for (step, train, test) in rows {
        if s.memorized.is_none() && train.is_some_and(|a| a >= STAGE_ACCURACY) {
            s.memorized = Some(step);
        }
        if s.generalized.is_none() && test.is_some_and(|a| a >= STAGE_ACCURACY) {
            s.generalized = Some(step);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_take_first_crossing() {
        let rows = vec![
            (0, Some(0.1), Some(0.0)),
            (100, Some(0.96), Some(0.2)),
            (200, Some(0.5), Some(0.95)),
            (300, Some(1.0), Some(1.0)),
        ];
        let s = stages(rows);
        assert_eq!(s.memorized, Some(100));
        assert_eq!(s.generalized, Some(200));
        assert_eq!(stages(vec![(0, Some(1.0), None)]).generalized, None);
    }
}
