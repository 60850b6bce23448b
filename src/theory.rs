//! Closed-form results from the margin theory (shared/theory.md §2) the engine checks
//! itself against.

use crate::config::RunConfig;
use crate::model::{Activation, ModelSpec, Weights};
use crate::real::Real;
use crate::task::{Group, GroupName, Irreps, Op};

/// γ* of `config`'s models, for a margin over the whole table (`whole_table`) or not:
/// [`gamma_star`] for an operation mod p, [`gamma_star_group`] for `task.group`, with
/// the same conditions on the model (x², untied, unfactored). The one entry point the
/// trainer and the analysis share.
pub fn gamma_star_for(config: &RunConfig, whole_table: bool) -> Option<f64> {
    if let Some(parity) = config.parity() {
        return gamma_star_parity_setup(config, parity, whole_table);
    }
    if config.is_base_p_task() {
        // (x0 + x1·p) mod q is no group operation on the inputs: no theorem covers it.
        return None;
    }
    let spec = config.model_spec();
    match config.group_name() {
        Ok(None) => gamma_star(config.task.op, &spec, whole_table),
        Ok(Some(g)) => (whole_table && covered_model(&spec))
            .then(|| gamma_star_group(&g))
            .flatten(),
        Err(_) => None,
    }
}

/// The model conditions of the theorems: x², untied, unfactored.
fn covered_model(spec: &ModelSpec) -> bool {
    spec.activation == Activation::Square && !spec.tied && spec.embed_dim.is_none()
}

/// Maximum normalized margin of the x² network on the group table `a·b` (theory.md
/// §2), where the theory gives one:
///
/// - C_n is addition mod n (element k is the generator's k-th power), so it takes the
///   Z_p rule, [`gamma_star_modular_addition`]`(n)`, exactly as `task.op = "add"` does.
/// - A group whose irreps are all of real type (S_n, D_n, …; the case the margin
///   theorem for groups is proved in): `2 / (3√(3|G|)) / Σ_{ρ ≠ 1} d_ρ^{5/2}`, the
///   irreps computed by [`Irreps::of`] (S3 0.023605, S4 2.0766e-3, S5 1.3260e-4).
/// - Otherwise (a complex- or quaternionic-type irrep, e.g. A4 or C5xC5): `None`, the
///   formula is not established there.
pub fn gamma_star_group(name: &GroupName) -> Option<f64> {
    if let Some(n) = name.cyclic_order() {
        return Some(gamma_star_modular_addition(n));
    }
    let irreps = Irreps::of(&Group::build(name)).ok()?;
    irreps.all_real().then(|| {
        let sum: f64 = irreps.irreps[1..]
            .iter()
            .map(|r| (r.dim as f64).powf(2.5))
            .sum();
        2.0 / (3.0 * (3.0 * irreps.order as f64).sqrt()) / sum
    })
}

/// Width the max-margin solution of a real-type group needs (theory.md §2: S3 18, S4
/// 126, S5 1190): `2 Σ_{ρ ≠ 1} d_ρ³`. `None` where [`gamma_star_group`] is `None` or
/// the group is cyclic (whose rule, like Z_p's, needs 4(n−1)).
pub fn gamma_star_group_width(name: &GroupName) -> Option<usize> {
    if let Some(n) = name.cyclic_order() {
        return Some(4 * (n - 1));
    }
    let irreps = Irreps::of(&Group::build(name)).ok()?;
    irreps.all_real().then(|| {
        2 * irreps.irreps[1..]
            .iter()
            .map(|r| r.dim.pow(3))
            .sum::<usize>()
    })
}

/// γ* of a setup when the theory gives one, else None: the one rule every caller uses
/// (the trainer's evaluations, the run summary, the analysis).
///
/// Covered: x², addition or subtraction mod p, untied and unfactored, and a margin taken
/// over the whole table (`whole_table`). a−b has a+b's γ*: relabelling b → −b permutes
/// the rows of V, which changes neither the margins nor the norm (theory.md §4). With a
/// train split the margin is taken over the training pairs, which may exceed the
/// all-pairs maximum, so no γ* is defined for it (compare the all-pairs margin with γ*
/// instead). Tied or factored models are not covered by the construction, nor are a·b,
/// a/b (a group of order p − 1 plus the 0 row and column) or a²+ab+b².
pub fn gamma_star(op: Op, spec: &ModelSpec, whole_table: bool) -> Option<f64> {
    (whole_table && matches!(op, Op::Add | Op::Sub) && covered_model(spec))
        .then(|| gamma_star_modular_addition(spec.n_in))
}

/// Maximum normalized margin of the x² network on addition mod p (width ≥ 4(p−1)),
/// with the L_{2,3} normalization: `√(2/27) / (√p · (p − 1))`.
pub fn gamma_star_modular_addition(p: usize) -> f64 {
    let p = p as f64;
    (2.0f64 / 27.0).sqrt() / (p.sqrt() * (p - 1.0))
}

/// The normalizer of the margin for an `h`-homogeneous network:
/// `Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{h/2}` (h = 3 for x²: the L_{2,3} norm).
pub fn margin_norm<F: Real>(weights: &Weights<F>, k: usize, activation: Activation) -> f64 {
    let half_h = activation.homogeneity() / 2.0;
    weights
        .neuron_sq_norms(k)
        .iter()
        .map(|n| n.powf(half_h))
        .sum()
}

/// Maximum normalized margin of the x^k network on sparse parity of k bits (theory.md
/// §2, seed 000): `k!·√(2·(k+1)^{−(k+1)})`; k = 4 gives 0.60716.
///
/// How the margin is defined for the engine's bit-string task so that this formula is
/// the bound: inputs x ∈ {±1}ⁿ (`encoding = "pm1"`), the label y = parity of the first k
/// bits (y = 0 exactly when Π_{j<k} x_j = +1), two logits f_0, f_1, the margin of a
/// string f_y − f_{1−y}, and the normalizer Σ_i (‖u_i‖² + ‖w_i‖²)^{(k+1)/2} with
/// u_i ∈ Rⁿ the neuron's row of the dense first layer and w_i ∈ R² its two output
/// weights (the code's [`margin_norm`] with V = 0, h = k+1); the margin is the minimum
/// over all 2ⁿ strings. Why the √2: only w_i1 − w_i0 =: a_i reaches the margin, and
/// ‖w_i‖² ≥ a_i²/2 (equality at w_i = (−a_i/2, a_i/2)), so the two-logit network is
/// the scalar one f = Σ_i a_i (u_i·x)^k with a_i's cost halved. The construction
/// attaining it: for every sign pattern s ∈ {±1}^k, one neuron with u = c·s on the
/// parity bits (0 elsewhere) and a = b·Π s, which gives
/// `Σ_s Π s (s·x)^k = 2^k k! Π x_j`; the ratio b·c^k / (k c² + b²/2)^{(k+1)/2} is
/// largest at k c² = k/(k+1), b²/2 = 1/(k+1), where it is √2·(k+1)^{−(k+1)/2}.
pub fn gamma_star_sparse_parity(k: u32) -> f64 {
    let factorial: f64 = (1..=k).map(f64::from).product();
    factorial * (2.0 * (k as f64 + 1.0).powf(-(k as f64 + 1.0))).sqrt()
}

/// The conditions under which [`gamma_star_sparse_parity`] bounds a parity run's
/// margin: σ = x^k with k the parity's size, ±1 inputs, the margin over every string
/// (the population task, trained on all of it, `whole_table`).
fn gamma_star_parity_setup(
    config: &RunConfig,
    parity: crate::task::Parity,
    whole_table: bool,
) -> Option<f64> {
    let degree = match config.model.activation {
        Activation::Square => 2,
        Activation::Pow(d) => d,
        Activation::Relu => return None,
    };
    let covered = whole_table
        && degree as usize == parity.k
        && parity.encoding == crate::task::BitEncoding::PlusMinusOne
        && config.task.train_size.is_none();
    covered.then(|| gamma_star_sparse_parity(degree))
}

/// Normalized margin: the smallest unnormalized margin over the pairs divided by
/// [`margin_norm`]. Scale-invariant.
pub fn normalized_margin<F: Real>(
    min_margin: f64,
    weights: &Weights<F>,
    k: usize,
    activation: Activation,
) -> f64 {
    min_margin / margin_norm(weights, k, activation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_parity_gamma_star_and_its_conditions() {
        assert!((gamma_star_sparse_parity(4) - 0.60716).abs() < 5e-6);
        // k = 2: 2·√(2/27).
        assert!((gamma_star_sparse_parity(2) - 2.0 * (2.0f64 / 27.0).sqrt()).abs() < 1e-15);
        let c = RunConfig::from_toml(
            "[task]\nbits = 6\nparity_k = 4\n[model]\nactivation = \"pow4\"\n",
        )
        .unwrap();
        assert_eq!(gamma_star_for(&c, true), Some(gamma_star_sparse_parity(4)));
        assert_eq!(gamma_star_for(&c, false), None, "a split");
        let mut relu = c.clone();
        relu.model.activation = Activation::Relu;
        assert_eq!(gamma_star_for(&relu, true), None);
        let mut zero_one = c.clone();
        zero_one.task.encoding = Some(crate::task::BitEncoding::ZeroOne);
        assert_eq!(gamma_star_for(&zero_one, true), None);
        let mut other_k = c;
        other_k.task.parity_k = Some(3);
        assert_eq!(gamma_star_for(&other_k, true), None);
    }

    fn spec(p: usize) -> ModelSpec {
        ModelSpec {
            n_in: p,
            n_out: p,
            width: 4 * (p - 1),
            activation: Activation::Square,
            tied: false,
            embed_dim: None,
            dense: false,
            init_scale: 0.5,
        }
    }

    /// theory.md §2's values (p = 23, 71, 97, 113 as printed there; p = 5 from the
    /// formula by hand: √(2/27) / (√5 · 4) = 0.030429).
    #[test]
    fn gamma_star_matches_theory_md() {
        for (p, expected) in [
            (5, 3.0429e-2),
            (23, 2.5796e-3),
            (71, 4.6143e-4),
            (97, 2.8786e-4),
            (113, 2.2860e-4),
        ] {
            let g = gamma_star(Op::Add, &spec(p), true).unwrap();
            assert!(
                (g / expected - 1.0).abs() < 5e-5,
                "p = {p}: {g} vs {expected}"
            );
        }
    }

    /// theory.md §2 prints γ* to five significant digits for p = 23, 71, 97, 113 (and §4
    /// 2.58e-3 for a−b mod 23, the a+b value by relabelling): the formula, written the
    /// way theory.md writes it, must reproduce those strings exactly, not merely within
    /// a tolerance.
    #[test]
    fn gamma_star_modular_addition_prints_theory_md_literally() {
        for (p, printed) in [
            (23, "2.5796e-3"),
            (71, "4.6143e-4"),
            (97, "2.8786e-4"),
            (113, "2.2860e-4"),
        ] {
            assert_eq!(
                format!("{:.4e}", gamma_star_modular_addition(p)),
                printed,
                "p = {p}"
            );
        }
        assert_eq!(
            format!("{:.2e}", gamma_star_modular_addition(23)),
            "2.58e-3"
        );
        // And by hand, independently of the code's arithmetic: p = 5 is
        // √(2/27)/(√5·4) = 0.0304290…, p = 3 is √(2/27)/(√3·2) = 0.0785674…
        assert_eq!(format!("{:.6}", gamma_star_modular_addition(5)), "0.030429");
        assert_eq!(format!("{:.6}", gamma_star_modular_addition(3)), "0.078567");
    }

    /// theory.md §2's group values and widths, printed there to five digits.
    #[test]
    fn gamma_star_of_groups_matches_theory_md() {
        for (name, printed, width) in [
            ("S3", "2.3605e-2", 18),
            ("S4", "2.0766e-3", 126),
            ("S5", "1.3260e-4", 1190),
        ] {
            let g: GroupName = name.parse().unwrap();
            assert_eq!(format!("{:.4e}", gamma_star_group(&g).unwrap()), printed);
            assert_eq!(gamma_star_group_width(&g), Some(width), "{name}");
        }
        // C_n is a+b mod n: the same rule, the same number.
        let c7: GroupName = "C7".parse().unwrap();
        assert_eq!(gamma_star_group(&c7), Some(gamma_star_modular_addition(7)));
        // Complex-type irreps: not covered.
        for name in ["A4", "C5xC5"] {
            assert_eq!(gamma_star_group(&name.parse().unwrap()), None, "{name}");
        }
        // Through a config: only x², untied, unfactored and over the whole table.
        let mut c = RunConfig::default();
        c.task.group = Some("S3".into());
        c.model.width = 18;
        assert!(gamma_star_for(&c, true).is_some());
        assert_eq!(gamma_star_for(&c, false), None);
        c.model.activation = Activation::Relu;
        assert_eq!(gamma_star_for(&c, true), None);
    }

    /// theory.md §4: a−b mod 23 has γ* = 2.58e-3, a+b's value.
    #[test]
    fn gamma_star_of_subtraction_is_that_of_addition() {
        let g = gamma_star(Op::Sub, &spec(23), true).unwrap();
        assert_eq!(format!("{g:.2e}"), "2.58e-3");
        assert_eq!(Some(g), gamma_star(Op::Add, &spec(23), true));
        assert_eq!(gamma_star(Op::Sub, &spec(23), false), None, "split");
    }

    #[test]
    fn gamma_star_is_undefined_outside_the_theorem() {
        assert_eq!(gamma_star(Op::Add, &spec(23), false), None, "split");
        assert_eq!(gamma_star(Op::Mul, &spec(23), true), None, "mul");
        assert_eq!(gamma_star(Op::Div, &spec(23), true), None, "div");
        let mut s = spec(23);
        s.activation = Activation::Relu;
        assert_eq!(gamma_star(Op::Add, &s, true), None, "relu");
        let mut s = spec(23);
        s.tied = true;
        assert_eq!(gamma_star(Op::Add, &s, true), None, "tied");
        let mut s = spec(23);
        s.embed_dim = Some(8);
        assert_eq!(gamma_star(Op::Add, &s, true), None, "factored");
    }
}
