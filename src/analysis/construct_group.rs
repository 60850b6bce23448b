//! The exact max-margin network of a finite group's table (label = a·b) with x²
//! activation: a known answer for the group γ* of theory.md §2, the margin code and the
//! irrep analysis, as the Z_p construction ([`super::construct`]) is for addition mod p.
//!
//! Why it works. For a real-type irrep ρ of dimension d with orthogonal matrices,
//! `χ_ρ(a·b·c⁻¹) = tr(ρ(a) ρ(b) ρ(c)ᵀ) = Σ_{i,j,k} ρ(a)_ij ρ(b)_jk ρ(c)_ik`, and the
//! characters sum to `Σ_ρ d_ρ χ_ρ(g) = |G|·1[g = e]`. Each term `x(a) y(b) z(c)` is the
//! cross term of two x² neurons, `(x + y)² z − (x − y)² z = 4xyz`: neuron
//! `(t·x, t·y, t·z)` and neuron `(t·x, −t·y, −t·z)` add up to `4t³·xyz` (their squares
//! cancel). With `t_ρ³ = d_ρ / 4` for every nontrivial ρ, the logits are
//! `f_c(a,b) = Σ_{ρ≠1} d_ρ χ_ρ(a·b·c⁻¹) = |G|·1[c = a·b] − 1`: every pair has margin |G|.
//! Schur orthogonality (`Σ_g ρ_ij(g)² = |G|/d`) makes every neuron of ρ weigh
//! `n_i = 3t²|G|/d`, so `Σ_i n_i^{3/2} = ½ (3|G|)^{3/2} Σ_ρ d_ρ^{5/2}` and
//! `γ = 2 / (3√(3|G|) Σ_{ρ≠1} d_ρ^{5/2})`, theory.md's γ*. The width,
//! `2 Σ_{ρ≠1} d_ρ³`, is the one theory.md gives (S3 18, S4 126, S5 1190).
//!
//! Only groups whose irreps are all of real type (S_n, D_n, products of them) qualify:
//! a complex or quaternionic irrep's real form has other orthogonality constants, and
//! theory.md's γ* is stated for the real case.

use super::construct::write_constructed_run;
use crate::config::{RunConfig, TaskConfig};
use crate::engine::Backend;
use crate::error::{Error, Result};
use crate::model::{Activation, Weights};
use crate::task::{Group, Irreps};
use std::path::Path;

/// The group and its irreps, checked to be all of real type.
fn real_irreps(name: &str) -> Result<(Group, Irreps)> {
    let group = Group::named(name)?;
    let irreps = Irreps::of(&group)?;
    if !irreps.all_real() {
        return Err(Error::config(
            "group",
            name,
            "the exact construction needs irreps that are all of real type (S_n, D_n and \
             their products); this group has a complex or quaternionic one",
        ));
    }
    Ok((group, irreps))
}

/// Width of the construction: two neurons per matrix-element triple (i, j, k) of every
/// nontrivial irrep, `2 Σ_{ρ≠1} d_ρ³`.
pub fn width(name: &str) -> Result<usize> {
    let (_, irreps) = real_irreps(name)?;
    Ok(width_of(&irreps))
}

fn width_of(irreps: &Irreps) -> usize {
    irreps.irreps[1..].iter().map(|r| 2 * r.dim.pow(3)).sum()
}

/// The construction's weights for the group `name` (one model, f64): for each
/// nontrivial irrep ρ (in [`Irreps::of`] order) and each (i, j, k) < d³ (i outermost),
/// the neuron pair `u = t·ρ_ij, v = ±t·ρ_jk, w = ±t·ρ_ik` with `t = (d/4)^{1/3}`.
/// Inputs and outputs are the group's elements in [`Group`] order; the logits are
/// `|G|·1[c = a·b] − 1`.
pub fn max_margin(name: &str) -> Result<Weights<f64>> {
    let (group, irreps) = real_irreps(name)?;
    let n = group.order();
    let m = width_of(&irreps);
    let mut weights = Weights {
        batch: 1,
        n_in: n,
        n_out: n,
        width: m,
        u: vec![0.0; n * m],
        v: vec![0.0; n * m],
        w: vec![0.0; n * m],
    };
    let mut neuron = 0;
    for rho in &irreps.irreps[1..] {
        let d = rho.dim;
        let t = (d as f64 / 4.0).cbrt();
        for i in 0..d {
            for j in 0..d {
                for k in 0..d {
                    for sign in [1.0, -1.0] {
                        for g in 0..n {
                            let r = rho.matrix(g);
                            weights.u[g * m + neuron] = t * r[i * d + j];
                            weights.v[g * m + neuron] = sign * t * r[j * d + k];
                            weights.w[g * m + neuron] = sign * t * r[i * d + k];
                        }
                        neuron += 1;
                    }
                }
            }
        }
    }
    debug_assert_eq!(neuron, m);
    Ok(weights)
}

/// The config of a constructed group run: the table of `name`, x², untied, unfactored,
/// the construction's width, f64, all pairs, no training steps.
pub fn config(name: &str) -> Result<RunConfig> {
    let m = width(name)?;
    let mut config = RunConfig {
        dtype: crate::kinds::Dtype::F64,
        task: TaskConfig {
            group: Some(name.to_string()),
            train_fraction: 1.0,
            ..TaskConfig::default()
        },
        ..RunConfig::default()
    };
    config.model.width = m;
    config.model.activation = Activation::Square;
    config.model.tied = false;
    config.model.embed_dim = 0;
    config.train.steps = 0;
    config.validate()?;
    Ok(config)
}

/// Writes the construction of the group `name` as a step-0 run directory at `dir`
/// (config, checkpoint, one metrics line with the accuracy and γ over all pairs,
/// evaluated with `backend`), which `analyze` reads like a trained run.
pub fn write_run(backend: &dyn Backend<f64>, name: &str, dir: &Path) -> Result<()> {
    write_constructed_run(backend, &config(name)?, &max_margin(name)?, dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reference;
    use crate::engine::CoreSpec;
    use crate::kinds::Loss;
    use crate::theory;

    #[test]
    fn logits_are_order_times_the_table_minus_one() {
        for name in ["S3", "D4"] {
            let group = Group::named(name).unwrap();
            let n = group.order();
            let w = max_margin(name).unwrap();
            for a in 0..n {
                for b in 0..n {
                    let f = reference::logits(Activation::Square, &w, 0, a, b);
                    for (c, &fc) in f.iter().enumerate() {
                        let want = if c == group.mul(a, b) {
                            n as f64 - 1.0
                        } else {
                            -1.0
                        };
                        assert!(
                            (fc - want).abs() < 1e-10,
                            "{name} ({a},{b}) c={c}: {fc} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn meets_the_group_gamma_star_to_1e_9() {
        for (name, m) in [("S3", 18), ("S4", 126)] {
            let config = config(name).unwrap();
            assert_eq!(config.model.width, m, "{name}: theory.md's width");
            let w = max_margin(name).unwrap();
            let task = config.build_task().unwrap();
            let core = CoreSpec {
                activation: Activation::Square,
                loss: Loss::CrossEntropy,
            };
            let stats = reference::loss_and_grad(core, &w, &task.pairs, None);
            assert_eq!(stats[0].correct, task.len());
            let gamma = theory::normalized_margin(stats[0].min_margin, &w, 0, Activation::Square);
            let star = theory::gamma_star_for(&config, true).expect("γ* of a real-type group");
            assert!(
                (gamma / star - 1.0).abs() < 1e-9,
                "{name}: γ = {gamma:e}, γ* = {star:e}"
            );
        }
    }

    #[test]
    fn groups_with_complex_irreps_are_refused_by_name() {
        // A4 has a pair of complex 1-d irreps; C5 has complex ones too.
        for name in ["A4", "C5"] {
            let e = max_margin(name).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("real type"), "{e}");
        }
        assert!(max_margin("S9").is_err());
    }
}
