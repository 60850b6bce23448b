//! The real irreducible representations of a finite group, computed from its Cayley
//! table (nothing typed in per group).
//!
//! # Method
//!
//! Functions on G form the regular representation; the left action
//! `(L(g)f)(x) = f(g⁻¹x)` commutes with the right action `(R(h)f)(x) = f(xh)`, and by the
//! double-commutant theorem the right group algebra is the whole commutant of the left
//! one. So a random *symmetric* element `A = Σ_h c_h (R(h) + R(h)ᵀ)` of that algebra
//! (real random `c_h`) has as eigenspaces left-invariant subspaces, and for generic `c_h`
//! each eigenspace is exactly one copy of one real irreducible representation:
//!
//! - real type (complex irrep of dimension d with a real form): the commutant of its
//!   isotypic block is `M_d(R)`; a generic symmetric element has d eigenvalues, each
//!   with a d-dimensional eigenspace;
//! - complex type (a pair χ, χ̄ of dimension d): over R the pair is one irreducible of
//!   real dimension 2d, the commutant is `M_d(C)` and a generic Hermitian element has d
//!   eigenvalues with 2d-dimensional eigenspaces;
//! - quaternionic type (dimension d, even): one real irreducible of dimension 2d,
//!   commutant `M_{d/2}(H)`, d/2 eigenvalues with 2d-dimensional eigenspaces.
//!
//! Each eigenspace Q gives an orthogonal representation `ρ(g) = Qᵀ L(g) Q` and a real
//! character `χ(g) = tr ρ(g)`; eigenspaces with equal characters are copies of one irrep,
//! their span is its isotypic component (= the span of its matrix elements as functions
//! on G). The type is read off `⟨χ, χ⟩ = (1/|G|) Σ χ(g)²`: 1 real, 2 complex, 4
//! quaternionic (Frobenius–Schur). The decomposition is checked (eigenspace dimension =
//! χ(e), `⟨χ,χ⟩ ∈ {1,2,4}`, copies = dimension / ⟨χ,χ⟩) and redrawn with new `c_h` when
//! an accidental near-degeneracy merges two eigenspaces.
//!
//! So everything here is real: a complex-type pair (e.g. the frequencies ±k of C_n, or
//! the two 1-dimensional complex irreps of A4) is *one* real irrep of dimension 2, which
//! is also what the Z_p Fourier analysis reports as one frequency k.

use super::eigen::symmetric_eigen;
use super::group::Group;
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Frobenius–Schur type of a real irreducible representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IrrepType {
    /// A complex irrep with a real form (⟨χ,χ⟩ = 1).
    Real,
    /// A complex irrep not equivalent to its conjugate, taken together with it
    /// (⟨χ,χ⟩ = 2).
    Complex,
    /// A complex irrep equivalent to its conjugate without a real form, realified
    /// (⟨χ,χ⟩ = 4).
    Quaternionic,
}

impl IrrepType {
    /// `⟨χ, χ⟩` of the real character.
    pub fn norm(self) -> usize {
        match self {
            IrrepType::Real => 1,
            IrrepType::Complex => 2,
            IrrepType::Quaternionic => 4,
        }
    }
}

/// One real irreducible representation, as orthogonal matrices.
#[derive(Clone, Debug)]
pub struct Irrep {
    /// `ρ0` … in the order of [`Irreps::of`] (ρ0 is the trivial one).
    pub name: String,
    /// Real dimension D of the representation (its matrices are D×D).
    pub dim: usize,
    /// Frobenius–Schur type.
    pub kind: IrrepType,
    /// Real character `tr ρ(g)` per element.
    pub character: Vec<f64>,
    /// `ρ(g)` row-major, D² entries per element, element after element.
    matrices: Vec<f64>,
    /// Orthonormal basis of the isotypic component (functions on G), `iso_dim` vectors
    /// of |G| entries, concatenated.
    basis: Vec<f64>,
    /// Dimension of the isotypic component.
    iso_dim: usize,
}

impl Irrep {
    /// `ρ(g)` as a D×D row-major slice.
    pub fn matrix(&self, g: usize) -> &[f64] {
        let d2 = self.dim * self.dim;
        &self.matrices[g * d2..(g + 1) * d2]
    }

    /// Dimension of the complex irrep(s) it comes from: D for real type, D/2 otherwise
    /// (a complex-type irrep stands for two complex irreps of that dimension).
    pub fn complex_dim(&self) -> usize {
        if self.kind == IrrepType::Real {
            self.dim
        } else {
            self.dim / 2
        }
    }

    /// Dimension of its isotypic component in the functions on G (= the span of its
    /// matrix elements): D²/⟨χ,χ⟩.
    pub fn isotypic_dim(&self) -> usize {
        self.iso_dim
    }

    /// The orthonormal basis of its isotypic component: [`Irrep::isotypic_dim`] vectors
    /// of |G| entries each, concatenated (what [`Irrep::power`] projects on).
    pub fn isotypic_basis(&self) -> &[f64] {
        &self.basis
    }

    /// ‖P x‖²: the squared norm of the part of the function `x` on G in this irrep's
    /// matrix-element subspace.
    pub fn power(&self, x: &[f64]) -> f64 {
        let n = x.len();
        self.basis
            .chunks_exact(n)
            .map(|b| {
                let dot: f64 = b.iter().zip(x).map(|(p, q)| p * q).sum();
                dot * dot
            })
            .sum()
    }

    /// `ρ2 (dim 2, complex pair)`-style label.
    pub fn label(&self) -> String {
        match self.kind {
            IrrepType::Real => format!("{} (dim {})", self.name, self.dim),
            IrrepType::Complex => format!("{} (dim {}, complex pair)", self.name, self.dim),
            IrrepType::Quaternionic => format!("{} (dim {}, quaternionic)", self.name, self.dim),
        }
    }
}

/// All real irreps of a group, trivial first, then by dimension.
#[derive(Clone, Debug)]
pub struct Irreps {
    /// The group's name, e.g. `S4`.
    pub group: String,
    /// |G|.
    pub order: usize,
    /// The irreps, ρ0 (trivial) first.
    pub irreps: Vec<Irrep>,
}

/// An eigenspace: orthonormal vectors (functions on G).
type Space = Vec<Vec<f64>>;

/// Tries with fresh random coefficients before giving up.
const ATTEMPTS: u64 = 8;

/// Relative tolerance under which two eigenvalues count as one.
const EIGEN_TOL: f64 = 1e-8;

impl Irreps {
    /// Decomposes the regular representation of `group` (see the module docs).
    pub fn of(group: &Group) -> Result<Irreps> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            match Irreps::attempt(group, attempt) {
                Ok(irreps) => return Ok(irreps),
                Err(why) => last = why,
            }
        }
        Err(Error::config(
            "task.group",
            &group.name,
            format!("the irrep decomposition failed {ATTEMPTS} times: {last}"),
        ))
    }

    fn attempt(group: &Group, seed: u64) -> std::result::Result<Irreps, String> {
        let n = group.order();
        let mut rng = ChaCha8Rng::seed_from_u64(0x1e5e_0000 + seed);
        let mut a = vec![0.0; n * n];
        for h in 0..n {
            let c: f64 = rng.gen_range(-1.0..1.0);
            let hi = group.inverse(h);
            for x in 0..n {
                a[x * n + group.mul(x, h)] += c;
                a[x * n + group.mul(x, hi)] += c;
            }
        }
        let (values, vectors) = symmetric_eigen(&a, n);
        let scale = values.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        // Eigenspaces: runs of equal eigenvalues.
        let mut spaces: Vec<Space> = Vec::new();
        for (j, v) in vectors.into_iter().enumerate() {
            if j > 0 && values[j] - values[j - 1] <= EIGEN_TOL * scale {
                spaces.last_mut().expect("j > 0").push(v);
            } else {
                spaces.push(vec![v]);
            }
        }
        // Group them by character.
        // (character, the eigenspaces that have it)
        let mut classes: Vec<(Vec<f64>, Vec<Space>)> = Vec::new();
        for q in spaces {
            let chi: Vec<f64> = (0..n)
                .map(|g| {
                    q.iter()
                        .map(|v| (0..n).map(|x| v[group.mul(g, x)] * v[x]).sum::<f64>())
                        .sum()
                })
                .collect();
            match classes
                .iter_mut()
                .find(|(c, _)| c.iter().zip(&chi).all(|(p, q)| (p - q).abs() < 1e-6))
            {
                Some((_, copies)) => copies.push(q),
                None => classes.push((chi, vec![q])),
            }
        }
        let mut irreps = Vec::with_capacity(classes.len());
        for (chi, copies) in classes {
            let dim = copies[0].len();
            let nu = chi.iter().map(|c| c * c).sum::<f64>() / n as f64;
            let kind = match nu.round() as usize {
                1 => IrrepType::Real,
                2 => IrrepType::Complex,
                4 => IrrepType::Quaternionic,
                _ => return Err(format!("an eigenspace has ⟨χ,χ⟩ = {nu} (not 1, 2 or 4)")),
            };
            if (nu - nu.round()).abs() > 1e-6
                || (chi[0] - dim as f64).abs() > 1e-6
                || copies.iter().any(|q| q.len() != dim)
                || copies.len() * kind.norm() != dim
            {
                return Err(format!(
                    "eigenspaces of dimension {dim} with χ(e) = {}, ⟨χ,χ⟩ = {nu} and {} \
                     copies do not form an irrep (accidental degeneracy)",
                    chi[0],
                    copies.len()
                ));
            }
            let q = &copies[0];
            let mut matrices = Vec::with_capacity(n * dim * dim);
            for g in 0..n {
                for qi in q {
                    for qj in q {
                        matrices.push((0..n).map(|x| qi[group.mul(g, x)] * qj[x]).sum::<f64>());
                    }
                }
            }
            let iso_dim = copies.len() * dim;
            irreps.push(Irrep {
                name: String::new(),
                dim,
                kind,
                character: chi,
                matrices,
                basis: copies.into_iter().flatten().flatten().collect(),
                iso_dim,
            });
        }
        // Trivial first, then by dimension, then by character (rounded, so the order
        // does not depend on the draw): for C_n this is frequency order.
        let key = |r: &Irrep| -> (usize, Vec<i64>) {
            let chi = r
                .character
                .iter()
                .map(|c| (-c * 1e6).round() as i64)
                .collect();
            (r.dim, chi)
        };
        irreps.sort_by_key(key);
        for (i, r) in irreps.iter_mut().enumerate() {
            r.name = format!("ρ{i}");
        }
        Ok(Irreps {
            group: group.name.clone(),
            order: n,
            irreps,
        })
    }

    /// ‖P_ρ x‖² per irrep for a function `x` on G (sums to ‖x‖²; entry 0 is the
    /// trivial irrep, i.e. |G|·mean²).
    pub fn powers(&self, x: &[f64]) -> Vec<f64> {
        self.irreps.iter().map(|r| r.power(x)).collect()
    }

    /// Whether every irrep is of real type (all complex irreps have real forms, as for
    /// S_n and D_n).
    pub fn all_real(&self) -> bool {
        self.irreps.iter().all(|r| r.kind == IrrepType::Real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn irreps(name: &str) -> (Group, Irreps) {
        let g = Group::named(name).unwrap();
        let r = Irreps::of(&g).unwrap();
        (g, r)
    }

    fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
        let mut c = vec![0.0; d * d];
        for i in 0..d {
            for k in 0..d {
                for j in 0..d {
                    c[i * d + j] += a[i * d + k] * b[k * d + j];
                }
            }
        }
        c
    }

    const GROUPS: [&str; 10] = [
        "C2", "C7", "C6", "D5", "D4", "S3", "S4", "A4", "C3xC3", "S3xC2",
    ];

    #[test]
    fn dimensions_add_up_and_classes_count_the_irreps() {
        for name in GROUPS {
            let (g, r) = irreps(name);
            let n = g.order();
            // Over C: Σ d² = |G|, a complex-type irrep standing for two complex ones.
            let sum_sq: usize = r
                .irreps
                .iter()
                .map(|i| {
                    let d = i.complex_dim();
                    d * d * if i.kind == IrrepType::Complex { 2 } else { 1 }
                })
                .sum();
            assert_eq!(sum_sq, n, "{name}: Σ d² = |G|");
            let iso: usize = r.irreps.iter().map(Irrep::isotypic_dim).sum();
            assert_eq!(
                iso, n,
                "{name}: isotypic components fill the functions on G"
            );
            // Complex irreps = conjugacy classes.
            let complex_count: usize = r
                .irreps
                .iter()
                .map(|i| if i.kind == IrrepType::Complex { 2 } else { 1 })
                .sum();
            assert_eq!(complex_count, g.conjugacy_classes().len(), "{name}");
            assert!(r.irreps[0]
                .character
                .iter()
                .all(|c| (c - 1.0).abs() < 1e-10));
        }
    }

    #[test]
    fn irreps_are_orthogonal_homomorphisms() {
        for name in GROUPS {
            let (g, r) = irreps(name);
            let n = g.order();
            for rho in &r.irreps {
                let d = rho.dim;
                for a in 0..n {
                    let ra = rho.matrix(a);
                    // Orthogonal: ρ(a)ᵀρ(a) = I.
                    for i in 0..d {
                        for j in 0..d {
                            let dot: f64 = (0..d).map(|k| ra[k * d + i] * ra[k * d + j]).sum();
                            let want = if i == j { 1.0 } else { 0.0 };
                            assert!(
                                (dot - want).abs() < 1e-10,
                                "{name} {}: orthogonal",
                                rho.name
                            );
                        }
                    }
                    for b in 0..n {
                        let prod = matmul(ra, rho.matrix(b), d);
                        let ab = rho.matrix(g.mul(a, b));
                        for (x, y) in prod.iter().zip(ab) {
                            assert!(
                                (x - y).abs() < 1e-10,
                                "{name} {}: ρ(a)ρ(b) = ρ(ab)",
                                rho.name
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn schur_orthogonality_of_matrix_elements_and_characters() {
        for name in GROUPS {
            let (g, r) = irreps(name);
            let n = g.order();
            for (s, rs) in r.irreps.iter().enumerate() {
                for (t, rt) in r.irreps.iter().enumerate() {
                    let chi: f64 = (0..n)
                        .map(|x| rs.character[x] * rt.character[x])
                        .sum::<f64>()
                        / n as f64;
                    let want = if s == t { rs.kind.norm() as f64 } else { 0.0 };
                    assert!((chi - want).abs() < 1e-10, "{name}: ⟨χ{s}, χ{t}⟩ = {chi}");
                    // Matrix elements: orthogonal across distinct irreps; for a real-type
                    // irrep Σ_g ρ_ij ρ_kl = |G|/d δ_ik δ_jl.
                    if s != t || rs.kind == IrrepType::Real {
                        let (ds, dt) = (rs.dim, rt.dim);
                        for i in 0..ds * ds {
                            for k in 0..dt * dt {
                                let dot: f64 =
                                    (0..n).map(|x| rs.matrix(x)[i] * rt.matrix(x)[k]).sum();
                                let want = if s == t && i == k {
                                    n as f64 / ds as f64
                                } else {
                                    0.0
                                };
                                assert!((dot - want).abs() < 1e-10, "{name}: Schur {s} {t}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn types_follow_frobenius_schur() {
        let kinds = |name| -> Vec<(usize, IrrepType)> {
            irreps(name)
                .1
                .irreps
                .iter()
                .map(|r| (r.dim, r.kind))
                .collect()
        };
        use IrrepType::*;
        assert_eq!(kinds("C5"), [(1, Real), (2, Complex), (2, Complex)]);
        assert_eq!(kinds("A4"), [(1, Real), (2, Complex), (3, Real)]);
        assert_eq!(
            kinds("D4"),
            [(1, Real), (1, Real), (1, Real), (1, Real), (2, Real)]
        );
        assert!(irreps("S5").1.all_real());
        assert!(!irreps("C5").1.all_real());
    }

    /// The textbook character table of S4 on the classes e, (ab), (ab)(cd), (abc),
    /// (abcd), up to row order.
    #[test]
    fn s4_character_table_is_the_textbook_one() {
        let (g, r) = irreps("S4");
        // A class representative per cycle type, found by name.
        let find = |name: &str| g.element_names.iter().position(|x| x == name).unwrap();
        let reps = [
            find("e"),
            find("(0 1)"),
            find("(0 1)(2 3)"),
            find("(0 1 2)"),
            find("(0 1 2 3)"),
        ];
        let mut got: Vec<Vec<i64>> = r
            .irreps
            .iter()
            .map(|rho| {
                reps.iter()
                    .map(|&x| {
                        let c = rho.character[x];
                        assert!((c - c.round()).abs() < 1e-10);
                        c.round() as i64
                    })
                    .collect()
            })
            .collect();
        let mut want = vec![
            vec![1, 1, 1, 1, 1],
            vec![1, -1, 1, 1, -1],
            vec![2, 0, 2, -1, 0],
            vec![3, 1, -1, 0, -1],
            vec![3, -1, -1, 0, 1],
        ];
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn powers_split_the_norm() {
        let (_, r) = irreps("D5");
        let x: Vec<f64> = (0..10).map(|i| ((i * 7 + 3) % 11) as f64 - 4.5).collect();
        let total: f64 = r.powers(&x).iter().sum();
        let norm: f64 = x.iter().map(|v| v * v).sum();
        assert!((total - norm).abs() < 1e-10);
        let mean = x.iter().sum::<f64>() / 10.0;
        assert!(
            (r.powers(&x)[0] - 10.0 * mean * mean).abs() < 1e-10,
            "ρ0 is the mean"
        );
    }
}
