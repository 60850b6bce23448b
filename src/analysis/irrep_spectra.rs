//! Per-neuron power over a finite group's irreps: the [`ModelSpectra`] of the irrep
//! basis ([`super::basis::Basis::for_group`]), with "frequency" k = irrep ρk.
//!
//! Power at ρk of a vector x (a function on G) is ‖P_k x‖², its squared norm in ρk's
//! matrix-element subspace, so the powers of a vector sum to ‖x‖² and ρ0 (the trivial
//! irrep) holds |G|·mean², the way frequency 0 does in the DFT. There are no phases:
//! the coefficients are left at 0.

use super::fourier::ModelSpectra;
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::task::Irreps;
use rayon::prelude::*;

/// Irrep spectra of the given `(weights, model)` pairs, every neuron of every snapshot in
/// one parallel pass. Every snapshot must have `n_in = n_out = |G|`.
pub fn spectra_many(
    irreps: &Irreps,
    snapshots: &[(&Weights<f64>, usize)],
) -> Result<Vec<ModelSpectra>> {
    let n = irreps.order;
    let k = irreps.irreps.len();
    for &(w, model) in snapshots {
        if w.n_in != n || w.n_out != n || model >= w.batch {
            return Err(Error::Shape {
                what: format!("weights for the irrep analysis of {}", irreps.group),
                expected: format!("n_in = n_out = |G| = {n}, model < batch"),
                got: format!(
                    "n_in = {}, n_out = {}, model {model} of {}",
                    w.n_in, w.n_out, w.batch
                ),
            });
        }
    }
    snapshots
        .par_iter()
        .map(|&(weights, model)| {
            let (u, v, w) = weights.model(model);
            let m = weights.width;
            let power: Vec<f64> = (0..m)
                .into_par_iter()
                .flat_map_iter(|i| {
                    [u, v, w].into_iter().flat_map(move |data| {
                        // Token-major storage: x_i[g] = data[g·m + i].
                        let x: Vec<f64> = (0..n).map(|g| data[g * m + i]).collect();
                        irreps.powers(&x)
                    })
                })
                .collect();
            debug_assert_eq!(power.len(), 3 * m * k);
            Ok(ModelSpectra::from_powers(n, m, power))
        })
        .collect()
}
