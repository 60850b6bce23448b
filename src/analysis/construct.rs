//! The exact max-margin solution of addition mod p with x² activation (theory.md §2):
//! a known answer for the engine (logits), the margin code (γ = γ*) and the Fourier
//! analysis (every frequency used, every neuron a pure sinusoid, θu + θv = θw).

use super::record::SpectraRecorder;
use crate::checkpoint;
use crate::config::{RunConfig, TaskConfig};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::{Activation, Weights};
use crate::task::Op;
use std::f64::consts::{FRAC_PI_2, PI};
use std::path::Path;

/// Width of the construction: 16 neurons per frequency 1..=(p−1)/2.
pub fn width(p: usize) -> usize {
    8 * (p - 1)
}

fn check_p(p: usize) -> Result<()> {
    if p < 3 || p.is_multiple_of(2) {
        return Err(Error::config(
            "p",
            p,
            "the max-margin construction needs an odd modulus p >= 3 (frequencies 1..(p-1)/2 must pair up)",
        ));
    }
    Ok(())
}

/// The construction's weights for odd p ≥ 3 (one model, width 8(p−1)).
///
/// For each frequency ζ = 1..=(p−1)/2 and each (θu, θv) ∈ {0, π/2, π, 3π/2}², in that
/// order (ζ outermost, θv innermost), one neuron with
/// `u[a] = cos(θu + 2πζa/p)`, `v[b] = cos(θv + 2πζb/p)`, `w[c] = cos(θu + θv + 2πζc/p)`.
/// Summing the 16 phase pairs cancels every term but `8·cos(2πζ(a+b−c)/p)`, and summing
/// over ζ gives the logits `f_c(a,b) = 4p·1[c = a+b mod p] − 4`.
pub fn max_margin(p: usize) -> Result<Weights<f64>> {
    check_p(p)?;
    let m = width(p);
    let mut weights = Weights {
        batch: 1,
        n_in: p,
        n_out: p,
        width: m,
        u: vec![0.0; p * m],
        v: vec![0.0; p * m],
        w: vec![0.0; p * m],
    };
    let phases = [0.0, FRAC_PI_2, PI, 3.0 * FRAC_PI_2];
    let mut i = 0;
    for zeta in 1..=(p - 1) / 2 {
        for &tu in &phases {
            for &tv in &phases {
                for a in 0..p {
                    // Reduce ζ·a mod p first so the angle stays small and exact.
                    let t = 2.0 * PI * ((zeta * a) % p) as f64 / p as f64;
                    weights.u[a * m + i] = (tu + t).cos();
                    weights.v[a * m + i] = (tv + t).cos();
                    weights.w[a * m + i] = (tu + tv + t).cos();
                }
                i += 1;
            }
        }
    }
    debug_assert_eq!(i, m);
    Ok(weights)
}

/// The config of a constructed run: addition mod p, x², untied, width 8(p−1), f64, all
/// pairs, no training steps.
pub fn config(p: usize) -> Result<RunConfig> {
    check_p(p)?;
    let mut config = RunConfig {
        dtype: crate::kinds::Dtype::F64,
        task: TaskConfig {
            op: Op::Add,
            p,
            train_fraction: 1.0,
        },
        ..RunConfig::default()
    };
    config.model.width = width(p);
    config.model.activation = Activation::Square;
    config.model.tied = false;
    config.model.embed_dim = 0;
    config.train.steps = 0;
    config.validate()?;
    Ok(config)
}

/// Writes a run directory holding the construction: `config.toml`, the checkpoint at
/// step 0, one `metrics.jsonl` line (accuracy and normalized margin over all pairs) and
/// one `spectra.jsonl` record, so `analyze` and the engine load it like a trained run.
pub fn write_run(p: usize, dir: &Path) -> Result<()> {
    let config = config(p)?;
    let weights = max_margin(p)?;
    std::fs::create_dir_all(dir.join(crate::layout::CHECKPOINTS_DIR))
        .map_err(|e| Error::io(dir, e))?;
    write_atomic(
        &dir.join(crate::layout::CONFIG_FILE),
        config.to_toml().as_bytes(),
    )?;
    checkpoint::save_weights(&checkpoint::path_for(dir, 0), &config, 0, &weights)?;
    let margin = super::margin::margins_all_pairs(&config, &weights)?.remove(0);
    let line = serde_json::json!({
        "step": 0,
        "model": 0,
        "lr": 0.0,
        "train_loss": margin.loss,
        "train_acc": margin.accuracy,
        "test_loss": serde_json::Value::Null,
        "test_acc": serde_json::Value::Null,
        "margin": margin.gamma,
        "gamma_star": margin.gamma_star,
        "elapsed_s": 0.0,
    });
    write_atomic(
        &dir.join(crate::layout::METRICS_FILE),
        format!("{line}\n").as_bytes(),
    )?;
    let spectra = dir.join(super::record::SPECTRA_FILE);
    let _ = std::fs::remove_file(&spectra);
    let mut recorder = SpectraRecorder::create(dir, p)?;
    recorder.append(0, &weights, 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_even_and_tiny_p() {
        for p in [0, 1, 2, 4, 10] {
            assert!(max_margin(p).is_err(), "p = {p}");
        }
        assert_eq!(max_margin(5).unwrap().width, 32);
    }
}
