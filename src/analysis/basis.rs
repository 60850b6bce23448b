//! Which Fourier basis the analysis of a task uses, and which phase invariant it checks.
//!
//! The max-margin picture (theory.md §2–§4) is a statement about a group: the network
//! computes `c = a ∘ b` with clocks, one character of the group per neuron. So the basis
//! follows the operation:
//!
//! - `a+b`, `a−b` over Z_p: the additive characters, a DFT over Z_p of `x[a]`.
//! - `a·b`, `a/b` over Z_p (p prime): on inputs ≠ 0 the multiplicative group Z_p^* is
//!   cyclic, `x = g^j` for a generator `g`, so `a·b ↔ j_a + j_b` and `a/b ↔ j_a − j_b`
//!   (mod p−1). The DFT runs over Z_{p−1} on the relabelled vector `x'[j] = x[g^j]`; the
//!   entry of input / output 0 lies outside that group and is reported on its own
//!   ([`super::fourier::ModelSpectra::excluded`]).
//! - `a²+ab+b²`: no group structure makes it an addition; it is reported in the additive
//!   basis, and no invariant is claimed.
//! - `a·b` in a finite group (`task.group`): the real irreducible representations of the
//!   group ([`crate::task::Irreps`]) take the place of the frequencies: "frequency" k is
//!   irrep ρk (ρ0 the trivial one, the mean), and a vector's power at k is its squared
//!   norm in ρk's matrix-element subspace (the universality paper's measure). For C_n
//!   this is exactly the DFT power at frequency k (tests/analysis_groups.rs). No phase
//!   invariant is claimed (an irrep of dimension > 1 has no single phase).
//!
//! # Invariants
//!
//! With the DFT convention of [`super::fourier`] (`x[a] = A·cos(2πka/n + θ)` has phase θ
//! at k) and σ = x², the part of `σ(u[a] + v[b])` that mixes the two inputs is
//! `2u[a]v[b] = A_u A_v [cos(ω(a+b) + θu+θv) + cos(ω(a−b) + θu−θv)]`, `ω = 2πk/n`. For
//! `c = a + b` the output `w[c] = cos(ωc + θw)` lines up with the first term when
//! `θw = θu + θv`; for `c = a − b` with the second when `θw = θu − θv`. So the residuals
//! are `θu + θv − θw` ([`Invariant::Sum`]) and `θu − θv − θw` ([`Invariant::Difference`]),
//! both 0 for a planted exact solution (tests/analysis_basis.rs checks that such a
//! network does classify its task, and that the other sign does not).

use super::fourier::{spectra_relabelled, wrap_angle, FourierPlan, ModelSpectra};
use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::task::{is_prime, pow_mod, Group, Irreps, Op};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The phase relation of a neuron that computes the task with one frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Invariant {
    /// `θu + θv = θw` (the group operation is the basis's addition).
    Sum,
    /// `θu − θv = θw` (the group operation is the basis's subtraction).
    Difference,
}

impl Invariant {
    /// Sign with which `θv` enters the residual.
    pub fn v_sign(self) -> f64 {
        match self {
            Invariant::Sum => 1.0,
            Invariant::Difference => -1.0,
        }
    }

    /// The residual `θu ± θv − θw`, wrapped to (−π, π].
    pub fn residual(self, theta_u: f64, theta_v: f64, theta_w: f64) -> f64 {
        wrap_angle(theta_u + self.v_sign() * theta_v - theta_w)
    }

    /// The residual as a formula, `θu + θv − θw` or `θu − θv − θw`.
    pub fn formula(self) -> &'static str {
        match self {
            Invariant::Sum => "θu + θv − θw",
            Invariant::Difference => "θu − θv − θw",
        }
    }
}

/// How inputs are relabelled before the DFT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relabelling {
    /// `x[a]` as is, over Z_p.
    Additive,
    /// `x'[j] = x[g^j mod p]`, over Z_{p−1}; input 0 is left out.
    DiscreteLog {
        /// The generator g of Z_p^* (the smallest primitive root).
        generator: usize,
    },
    /// No DFT: each vector is a function on a finite group, split by the group's real
    /// irreps (see the module docs).
    Irreps,
}

/// The basis and invariant of one task, with its planned DFT.
#[derive(Clone, Debug)]
pub struct Basis {
    op: Op,
    p: usize,
    relabelling: Relabelling,
    /// Position j of the relabelled vector → the token it reads (`n` entries).
    relabel: Vec<usize>,
    plan: FourierPlan,
    invariant: Option<Invariant>,
    /// The group's irreps, for [`Relabelling::Irreps`].
    irreps: Option<Arc<Irreps>>,
}

/// What `summary.json` says about the basis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BasisReport {
    /// `additive` or `discrete log`.
    pub name: String,
    /// The group the DFT runs over, e.g. `Z_22`.
    pub group: String,
    /// Its size n (frequencies are 1..=⌊n/2⌋).
    pub size: usize,
    /// Generator g of Z_p^* for the discrete-log basis (input `g^j` sits at position j).
    pub generator: Option<usize>,
    /// The phase relation checked, e.g. `θu − θv − θw = 0`; null when none is claimed.
    pub invariant: Option<String>,
    /// Inputs / outputs outside the basis (reported as each neuron's weight share on
    /// them): `[0]` for the discrete-log basis.
    pub excluded: Vec<usize>,
    /// One sentence on why this basis.
    pub note: String,
    /// What the basis's components are called: `frequency`, or `irrep` for a group's
    /// irreps (older summaries lack it: frequency).
    #[serde(default = "frequency_unit")]
    pub unit: String,
}

fn frequency_unit() -> String {
    "frequency".into()
}

impl BasisReport {
    /// The plural of [`BasisReport::unit`].
    pub fn units(&self) -> &'static str {
        if self.unit == "irrep" {
            "irreps"
        } else {
            "frequencies"
        }
    }

    /// How vectors are taken apart: `DFT over Z_71`, `split over the irreps of S4`.
    pub fn transform(&self) -> String {
        if self.unit == "irrep" {
            format!("split over the irreps of {}", self.group)
        } else {
            format!("DFT over {}", self.group)
        }
    }

    /// Component k as written in text: `7`, or `ρ7` for irreps.
    pub fn component(&self, k: usize) -> String {
        if self.unit == "irrep" {
            format!("ρ{k}")
        } else {
            k.to_string()
        }
    }
}

/// The smallest primitive root of a prime p (a generator of the cyclic group Z_p^*):
/// the smallest g whose power `g^((p−1)/q)` is not 1 for every prime q dividing p − 1.
pub fn primitive_root(p: usize) -> Result<usize> {
    if !is_prime(p) {
        return Err(Error::config(
            "p",
            p,
            "a primitive root exists for the prime moduli this analysis uses; p is not prime",
        ));
    }
    if p == 2 {
        return Ok(1);
    }
    let order = (p - 1) as u64;
    let mut factors = Vec::new();
    let mut rest = order;
    let mut q = 2;
    while q * q <= rest {
        if rest.is_multiple_of(q) {
            factors.push(q);
            while rest.is_multiple_of(q) {
                rest /= q;
            }
        }
        q += 1;
    }
    if rest > 1 {
        factors.push(rest);
    }
    (2..p as u64)
        .find(|&g| {
            factors
                .iter()
                .all(|&q| pow_mod(g, order / q, p as u64) != 1)
        })
        .map(|g| g as usize)
        .ok_or_else(|| Error::config("p", p, "no primitive root found (p is not prime?)"))
}

impl Basis {
    /// The basis of `op` over Z_p: additive for `add`, `sub`, `quad`; discrete log for
    /// `mul` and `div` (p prime, p ≥ 5 so that Z_{p−1} has a frequency besides 0 and
    /// ⌊n/2⌋).
    pub fn for_task(op: Op, p: usize) -> Result<Basis> {
        match op {
            Op::Add => Basis::additive(op, p, Some(Invariant::Sum)),
            Op::Sub => Basis::additive(op, p, Some(Invariant::Difference)),
            Op::Quad => Basis::additive(op, p, None),
            Op::Mul | Op::Div => {
                if p < 5 {
                    return Err(Error::config(
                        "p",
                        p,
                        format!(
                            "the discrete-log analysis of '{}' runs over Z_(p-1) and needs p >= 5",
                            op.name()
                        ),
                    ));
                }
                let g = primitive_root(p)?;
                let relabel: Vec<usize> = (0..p - 1)
                    .map(|j| pow_mod(g as u64, j as u64, p as u64) as usize)
                    .collect();
                Ok(Basis {
                    op,
                    p,
                    relabelling: Relabelling::DiscreteLog { generator: g },
                    plan: FourierPlan::new(p - 1)?,
                    relabel,
                    invariant: Some(if op == Op::Mul {
                        Invariant::Sum
                    } else {
                        Invariant::Difference
                    }),
                    irreps: None,
                })
            }
        }
    }

    fn additive(op: Op, p: usize, invariant: Option<Invariant>) -> Result<Basis> {
        Ok(Basis {
            op,
            p,
            relabelling: Relabelling::Additive,
            plan: FourierPlan::new(p)?,
            relabel: (0..p).collect(),
            invariant,
            irreps: None,
        })
    }

    /// The irrep basis of a group's table (`p` = |G|; `op` is not used).
    pub fn for_group(group: &Group) -> Result<Basis> {
        let irreps = Irreps::of(group)?;
        let n = group.order();
        Ok(Basis {
            op: Op::Add,
            p: n,
            relabelling: Relabelling::Irreps,
            plan: FourierPlan::new(n)?,
            relabel: (0..n).collect(),
            invariant: None,
            irreps: Some(Arc::new(irreps)),
        })
    }

    /// The basis of a run's task: [`Basis::for_group`] for `task.group`, else
    /// [`Basis::for_task`].
    pub fn for_config(config: &RunConfig) -> Result<Basis> {
        match config.group_name()? {
            Some(g) => Basis::for_group(&Group::build(&g)),
            None => Basis::for_task(config.task.op, config.task.p),
        }
    }

    /// The group's irreps in the irrep basis (`None` in a Fourier basis).
    pub fn irreps(&self) -> Option<&Irreps> {
        self.irreps.as_deref()
    }

    /// The name of "frequency" k on axes: `k` for a DFT, `ρk` for irreps.
    pub fn freq_name(&self, k: usize) -> String {
        match &self.irreps {
            Some(_) => format!("ρ{k}"),
            None => k.to_string(),
        }
    }

    /// The operation this basis analyses.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The modulus of the task (inputs and outputs are `0..p`).
    pub fn p(&self) -> usize {
        self.p
    }

    /// Size n of the group the DFT runs over (p, or p − 1 for the discrete log).
    pub fn size(&self) -> usize {
        self.relabel.len()
    }

    /// Largest frequency, ⌊n/2⌋ (the last irrep's index in the irrep basis).
    pub fn max_freq(&self) -> usize {
        match &self.irreps {
            Some(r) => r.irreps.len() - 1,
            None => self.size() / 2,
        }
    }

    /// How inputs are relabelled.
    pub fn relabelling(&self) -> Relabelling {
        self.relabelling
    }

    /// Token at position j of the relabelled vector, j < n.
    pub fn token(&self, j: usize) -> usize {
        self.relabel[j]
    }

    /// The invariant checked, or `None` where the task has none (`a²+ab+b²`).
    pub fn invariant(&self) -> Option<Invariant> {
        self.invariant
    }

    /// Whether this is the plain DFT over Z_p (the basis training records
    /// `spectra.jsonl` in).
    pub fn is_additive(&self) -> bool {
        self.relabelling == Relabelling::Additive
    }

    /// The residual of a neuron's phases, or `None` without an invariant.
    pub fn residual(&self, theta_u: f64, theta_v: f64, theta_w: f64) -> Option<f64> {
        self.invariant
            .map(|inv| inv.residual(theta_u, theta_v, theta_w))
    }

    /// Spectra of the given `(weights, model)` pairs in this basis (all neurons in one
    /// parallel pass); every snapshot must have `n_in = n_out = p`.
    pub fn spectra_many(&self, snapshots: &[(&Weights<f64>, usize)]) -> Result<Vec<ModelSpectra>> {
        for &(w, _) in snapshots {
            if w.n_in != self.p || w.n_out != self.p {
                return Err(Error::Shape {
                    what: format!(
                        "weights for the analysis of {} mod {}",
                        self.op.name(),
                        self.p
                    ),
                    expected: format!("n_in = n_out = {}", self.p),
                    got: format!("n_in = {}, n_out = {}", w.n_in, w.n_out),
                });
            }
        }
        match &self.irreps {
            Some(irreps) => super::irrep_spectra::spectra_many(irreps, snapshots),
            None => spectra_relabelled(&self.plan, &self.relabel, snapshots),
        }
    }

    /// Spectra of one model.
    pub fn spectra(&self, weights: &Weights<f64>, model: usize) -> Result<ModelSpectra> {
        Ok(self.spectra_many(&[(weights, model)])?.remove(0))
    }

    /// Short label of the frequency axis, e.g. `frequency k (log basis, Z_22)`.
    pub fn freq_label(&self) -> String {
        match self.relabelling {
            Relabelling::Additive => format!("frequency k (Z_{})", self.size()),
            Relabelling::DiscreteLog { .. } => {
                format!("frequency k (log basis, Z_{} = Z_p−1)", self.size())
            }
            Relabelling::Irreps => format!("irrep ρk of {}", self.group_name()),
        }
    }

    /// The residual as a formula for labels (`θu − θv − θw`), or `None`.
    pub fn residual_formula(&self) -> Option<&'static str> {
        self.invariant.map(Invariant::formula)
    }

    fn group_name(&self) -> &str {
        self.irreps.as_ref().map_or("", |r| r.group.as_str())
    }

    /// [`Basis::report`] of the irrep basis: named `irreps of G`, its irreps listed.
    fn irrep_report(&self) -> BasisReport {
        let group = self.group_name();
        let list: Vec<String> = self
            .irreps
            .iter()
            .flat_map(|r| r.irreps.iter().map(|i| i.label()))
            .collect();
        BasisReport {
            name: format!("irreps of {group}"),
            group: group.to_string(),
            size: self.size(),
            generator: None,
            invariant: None,
            excluded: Vec::new(),
            unit: "irrep".into(),
            note: format!(
                "a·b in {group}: each u_i, v_i, w_i split over the group's real irreducible \
                 representations, computed by decomposing the regular representation ({}; a \
                 complex pair counts as one real irrep); power at ρk = squared norm in ρk's \
                 matrix-element subspace, ρ0 = the mean",
                list.join(", ")
            ),
        }
    }

    /// What `summary.json` records about the basis.
    pub fn report(&self) -> BasisReport {
        let n = self.size();
        let (name, generator, excluded, note) = match self.relabelling {
            Relabelling::Irreps => return self.irrep_report(),
            Relabelling::Additive => (
                "additive",
                None,
                Vec::new(),
                match self.invariant {
                    Some(inv) => format!(
                        "{} is {} in Z_{}: one DFT over Z_{} of every u_i, v_i, w_i",
                        formula(self.op),
                        if inv == Invariant::Sum {
                            "addition"
                        } else {
                            "subtraction"
                        },
                        self.p,
                        self.p
                    ),
                    None => format!(
                        "{} is not a group operation on Z_{}: the additive DFT is reported \
                         for reference and no phase invariant is claimed (no residual)",
                        formula(self.op),
                        self.p
                    ),
                },
            ),
            Relabelling::DiscreteLog { generator } => (
                "discrete log",
                Some(generator),
                vec![0],
                format!(
                    "{} on inputs ≠ 0 is {} of discrete logs in Z_{n} (x = {generator}^j mod {}): \
                     DFT over Z_{n} of x'[j] = x[{generator}^j]; input and output 0 lie outside \
                     (their weight share is reported per neuron)",
                    formula(self.op),
                    if self.op == Op::Mul {
                        "addition"
                    } else {
                        "subtraction"
                    },
                    self.p
                ),
            ),
        };
        BasisReport {
            name: name.into(),
            group: format!("Z_{n}"),
            size: n,
            generator,
            invariant: self.invariant.map(|i| format!("{} = 0", i.formula())),
            excluded,
            note,
            unit: frequency_unit(),
        }
    }
}

/// The operation as a formula (`a·b`).
fn formula(op: Op) -> &'static str {
    match op {
        Op::Add => "a+b",
        Op::Sub => "a−b",
        Op::Mul => "a·b",
        Op::Div => "a/b",
        Op::Quad => "a²+ab+b²",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_roots_are_the_smallest_generators() {
        // Known smallest primitive roots.
        for (p, g) in [
            (3, 2),
            (5, 2),
            (7, 3),
            (11, 2),
            (23, 5),
            (41, 6),
            (71, 7),
            (97, 5),
        ] {
            assert_eq!(primitive_root(p).unwrap(), g, "p = {p}");
        }
        // By brute force: g generates all of Z_p^*, and no smaller one does.
        for p in [13usize, 31, 113] {
            let g = primitive_root(p).unwrap();
            let order = |h: usize| {
                (1..p)
                    .find(|&e| pow_mod(h as u64, e as u64, p as u64) == 1)
                    .unwrap()
            };
            assert_eq!(order(g), p - 1);
            assert!((2..g).all(|h| order(h) < p - 1));
        }
        assert!(primitive_root(9).is_err());
    }

    #[test]
    fn log_basis_turns_products_into_sums() {
        let b = Basis::for_task(Op::Mul, 23).unwrap();
        assert_eq!((b.size(), b.max_freq()), (22, 11));
        let mut seen = [false; 23];
        for j in 0..22 {
            seen[b.token(j)] = true;
            for i in 0..22 {
                assert_eq!(b.token(i) * b.token(j) % 23, b.token((i + j) % 22));
            }
        }
        assert!(!seen[0] && seen[1..].iter().all(|&s| s));
        assert_eq!(b.invariant(), Some(Invariant::Sum));
        assert_eq!(
            Basis::for_task(Op::Div, 23).unwrap().invariant(),
            Some(Invariant::Difference)
        );
        assert_eq!(
            Basis::for_task(Op::Quad, 23)
                .unwrap()
                .residual(0.1, 0.2, 0.3),
            None
        );
        assert!(Basis::for_task(Op::Mul, 3).is_err());
        assert!(Basis::for_task(Op::Mul, 21).is_err());
    }

    #[test]
    fn residual_signs() {
        let sub = Basis::for_task(Op::Sub, 7).unwrap();
        assert!((sub.residual(0.5, 0.2, 0.3).unwrap()).abs() < 1e-15);
        let add = Basis::for_task(Op::Add, 7).unwrap();
        assert!((add.residual(0.5, 0.2, 0.7).unwrap()).abs() < 1e-15);
    }
}
