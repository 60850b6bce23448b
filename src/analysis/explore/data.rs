//! What the explorer page embeds: the effective weights of a subsample of the run's
//! checkpoints (8-bit, one scale per vector), the curves of `metrics.jsonl`, the IPR over
//! training, the final dominant frequency of every neuron and the task's answer table.
//!
//! The weights, not their spectra, are embedded: the page needs u_i, v_i, w_i themselves
//! for the bar charts and the logits, and the spectra follow from them in a few
//! milliseconds (the page transforms one snapshot when the slider lands on it), so
//! storing both would double the file for nothing.
//!
//! Size: one snapshot of one model is 3·m·p bytes plus 3·m scales (4 bytes each). At
//! most [`WEIGHT_BUDGET`] bytes of them are embedded (base64 adds a third): a p = 113,
//! m = 512 run fits 80 snapshots (about 19.5 MB of page); a bigger run keeps evenly
//! spaced checkpoints, always the first and the last, and the page says so.

use crate::analysis::basis::Basis;
use crate::analysis::fourier::ipr;
use crate::analysis::pipeline::RunAnalysis;
use crate::error::{Error, Result};
use crate::model::{Activation, Weights};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;

/// Most bytes of quantized weights and scales embedded (before base64).
pub const WEIGHT_BUDGET: usize = 14_500_000;

/// Most points per curve (longer metrics logs are thinned evenly, the last kept).
const MAX_CURVE_POINTS: usize = 2000;

/// The Fourier basis the page transforms the weights in: the analysis's own
/// ([`crate::analysis::basis`], which follows the task), as a relabelling the page
/// applies before its DFT over the group.
#[derive(Serialize)]
pub struct PageBasis {
    /// `additive` or `discrete log`.
    pub name: String,
    /// The group of the DFT, e.g. `Z_112`.
    pub group: String,
    /// Its size n (frequencies 0..=⌊n/2⌋).
    pub size: usize,
    /// The token position j of the relabelled vector reads (`x'[j] = x[tokens[j]]`).
    pub tokens: Vec<usize>,
    /// Generator of Z_p^* in the discrete-log basis.
    pub generator: Option<usize>,
    /// Sign of θv in the phase residual θu ± θv − θw (none where no invariant holds).
    pub v_sign: Option<f64>,
    /// The residual as a formula, e.g. `θu + θv − θw`.
    pub formula: Option<String>,
    /// For a group's table: its irreps, whose projections replace the DFT ("frequency"
    /// k = irrep ρk, no phases); `None` for a DFT basis.
    pub irreps: Option<Vec<PageIrrep>>,
}

/// One irrep as the page uses it: power at ρk = Σ over its basis vectors of (b · x)².
#[derive(Serialize)]
pub struct PageIrrep {
    /// `ρ2 (dim 2)`-style label.
    pub label: String,
    /// Orthonormal basis of its isotypic component, vectors of |G| entries concatenated.
    pub basis: Vec<f64>,
}

fn page_basis(b: &Basis) -> PageBasis {
    let report = b.report();
    PageBasis {
        tokens: (0..b.size()).map(|j| b.token(j)).collect(),
        size: b.size(),
        name: report.name,
        group: report.group,
        generator: report.generator,
        v_sign: b.invariant().map(|i| i.v_sign()),
        formula: b.invariant().map(|i| i.formula().to_string()),
        irreps: b.irreps().map(|r| {
            r.irreps
                .iter()
                .map(|irrep| PageIrrep {
                    label: irrep.label(),
                    basis: irrep.isotypic_basis().to_vec(),
                })
                .collect()
        }),
    }
}

/// The page's data, serialized as JSON into a `<script type="application/json">`.
#[derive(Serialize)]
pub struct PageData {
    /// Task name, e.g. `a+b mod 113`.
    pub task: String,
    /// Run directory as given to `analyze`.
    pub run: String,
    /// The modulus, or |G| for a group's table (inputs and outputs range over 0..p).
    pub p: usize,
    /// Hidden width m.
    pub width: usize,
    /// `square`, `relu` or `pow` (then [`PageData::power`] is its exponent).
    pub activation: String,
    /// Exponent of σ(x) = x^k (2 for `square`, 1 for `relu`, unused there).
    pub power: u32,
    /// Tied embeddings (v = u); the embedded weights are the effective ones either way.
    pub tied: bool,
    /// Factored embedding dimension (0 = unfactored); effective U, V are embedded.
    pub embed_dim: usize,
    /// Fourier basis of the page's transforms.
    pub basis: PageBasis,
    /// γ* of the setup, where the theory applies.
    pub gamma_star: Option<f64>,
    /// Power fraction above which a neuron counts as sinusoidal.
    pub threshold: f64,
    /// Steps of the embedded snapshots, ascending.
    pub steps: Vec<u64>,
    /// Checkpoints the run has (more than `steps.len()` when subsampled).
    pub checkpoints_total: usize,
    /// Models in the run (more than `models.len()` when some were left out).
    pub models_total: usize,
    /// `answer[a·p + b]` = the correct c for (a, b), −1 where the task has no such pair.
    pub answer: Vec<i32>,
    /// One entry per embedded model.
    pub models: Vec<ModelData>,
}

/// One model's share of [`PageData`].
#[derive(Serialize)]
pub struct ModelData {
    /// Index of the model in the batch.
    pub model: usize,
    /// Final dominant frequency of each neuron (the analysis's `neurons.csv`).
    pub final_freq: Vec<usize>,
    /// Its share of the neuron's power.
    pub final_fraction: Vec<f64>,
    /// Curves from `metrics.jsonl` and the spectra timeline.
    pub curves: Curves,
    /// Base64 of i8 values, laid out `[snapshot][part u,v,w][neuron][a]`.
    pub weights_i8: String,
    /// Base64 of little-endian f32 scales, `[snapshot][part][neuron]`: value = q·scale.
    pub scales_f32: String,
}

/// Curves over training of one model (`None` = not logged).
#[derive(Serialize, Default)]
pub struct Curves {
    /// Steps of the metrics rows.
    pub step: Vec<u64>,
    /// Training loss.
    pub train_loss: Vec<Option<f64>>,
    /// Held-out loss.
    pub test_loss: Vec<Option<f64>>,
    /// Training accuracy.
    pub train_acc: Vec<Option<f64>>,
    /// Held-out accuracy.
    pub test_acc: Vec<Option<f64>>,
    /// Normalized margin over the training pairs.
    pub margin: Vec<Option<f64>>,
    /// Steps of the spectra timeline.
    pub ipr_step: Vec<u64>,
    /// Mean inverse participation ratio of the neurons' power at each of them.
    pub ipr: Vec<f64>,
}

/// Indices of `keep` evenly spaced items of `n`: the first and the last always (only
/// the last when `keep` is 1).
pub fn spread(n: usize, keep: usize) -> Vec<usize> {
    if keep >= n {
        return (0..n).collect();
    }
    if keep <= 1 {
        return vec![n - 1];
    }
    let mut idx: Vec<usize> = (0..keep)
        .map(|j| ((j as f64) * (n - 1) as f64 / (keep - 1) as f64).round() as usize)
        .collect();
    idx.dedup();
    idx
}

/// How many snapshots and models fit [`WEIGHT_BUDGET`]: all of both when they do; else
/// fewer snapshots, down to two (the first and the last); then fewer models; and when
/// not even two snapshots of one model fit, the last snapshot of model 0 alone.
pub fn fit_budget(per_snapshot_model: usize, snapshots: usize, models: usize) -> (usize, usize) {
    let per = per_snapshot_model.max(1);
    let two = snapshots.min(2);
    let snaps = (WEIGHT_BUDGET / (per * models.max(1))).min(snapshots);
    if snaps >= two {
        return (snaps, models);
    }
    let models_fit = WEIGHT_BUDGET / (per * two.max(1));
    if models_fit >= 1 {
        return (two, models_fit.min(models));
    }
    (1.min(snapshots), 1)
}

/// Appends model `k` of `w` as 8-bit values with one scale per vector (max |x| / 127, so
/// the error of each value is at most half a step of its own vector).
fn quantize_into(w: &Weights<f64>, k: usize, q: &mut Vec<u8>, scales: &mut Vec<u8>) {
    let (p, m) = (w.n_in, w.width);
    let (u, v, wo) = w.model(k);
    for data in [u, v, wo] {
        for i in 0..m {
            // Token-major: x_i[a] = data[a·m + i].
            let max = (0..p).map(|a| data[a * m + i].abs()).fold(0.0, f64::max);
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.extend_from_slice(&(scale as f32).to_le_bytes());
            q.extend(
                (0..p).map(|a| (data[a * m + i] / scale).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
    }
}

/// A number JSON can carry (non-finite → None).
fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// Curves of model `k` of the analysis.
fn curves_of(a: &RunAnalysis, k: usize) -> Curves {
    let rows = a.dir.metrics_of(k);
    let mut c = Curves::default();
    for j in spread(rows.len(), MAX_CURVE_POINTS) {
        let r = rows[j];
        c.step.push(r.step);
        c.train_loss.push(finite(r.train_loss));
        c.test_loss.push(finite(r.test_loss));
        c.train_acc.push(finite(r.train_acc));
        c.test_acc.push(finite(r.test_acc));
        c.margin.push(finite(r.margin));
    }
    let timeline = &a.timeline[k];
    for j in spread(timeline.len(), MAX_CURVE_POINTS) {
        let rec = &timeline[j];
        let m = rec.power.len().max(1) as f64;
        c.ipr_step.push(rec.step);
        c.ipr
            .push(rec.power.iter().map(|row| ipr(row)).sum::<f64>() / m);
    }
    c
}

/// Activation as the page names it, with its exponent.
fn activation_of(act: Activation) -> (String, u32) {
    match act {
        Activation::Square => ("pow".into(), 2),
        Activation::Relu => ("relu".into(), 1),
        Activation::Pow(k) => ("pow".into(), k),
    }
}

/// Builds the page's data: loads the chosen checkpoints of the run again (the analysis
/// keeps only their spectra) and quantizes their effective weights.
pub fn page_data(a: &RunAnalysis) -> Result<PageData> {
    let dir = &a.dir;
    let config = &dir.config;
    // p = |G| for a group's table (the basis knows it; `task.p` is unused there).
    let p = a.basis.p();
    let spec = config.model_spec();
    let m = spec.width;
    if spec.n_out != p || spec.n_in != p {
        return Err(Error::Shape {
            what: "model for the explorer".into(),
            expected: format!("inputs and outputs over the task's {p} elements"),
            got: format!("n_in = {}, n_out = {}", spec.n_in, spec.n_out),
        });
    }
    let per_snapshot_model = 3 * m * (p + 4);
    let (snaps, n_models) = fit_budget(per_snapshot_model, dir.checkpoints.len(), config.models);
    let chosen = spread(dir.checkpoints.len(), snaps);

    let mut q: Vec<Vec<u8>> = vec![Vec::with_capacity(chosen.len() * 3 * m * p); n_models];
    let mut scales: Vec<Vec<u8>> = vec![Vec::with_capacity(chosen.len() * 3 * m * 4); n_models];
    let mut steps = Vec::with_capacity(chosen.len());
    for &j in &chosen {
        let ckpt = dir.load(&dir.checkpoints[j].1)?;
        steps.push(ckpt.step);
        for k in 0..n_models {
            quantize_into(&ckpt.weights, k, &mut q[k], &mut scales[k]);
        }
    }

    let task = config.build_task()?;
    let mut answer = vec![-1i32; p * p];
    let pairs = &task.pairs;
    for ((&x, &y), &c) in pairs.a.iter().zip(&pairs.b).zip(&pairs.label) {
        answer[x as usize * p + y as usize] = c as i32;
    }

    let models = (0..n_models)
        .map(|k| ModelData {
            model: k,
            final_freq: a.neurons[k].iter().map(|n| n.freq).collect(),
            final_fraction: a.neurons[k].iter().map(|n| n.fraction).collect(),
            curves: curves_of(a, k),
            weights_i8: STANDARD.encode(&q[k]),
            scales_f32: STANDARD.encode(&scales[k]),
        })
        .collect();
    let (activation, power) = activation_of(spec.activation);
    Ok(PageData {
        task: task.name.clone(),
        run: a.summary.run.clone(),
        p,
        width: m,
        activation,
        power,
        tied: spec.tied,
        embed_dim: config.model.embed_dim,
        basis: page_basis(&a.basis),
        gamma_star: a.gamma_star,
        threshold: a.summary.threshold,
        steps,
        checkpoints_total: dir.checkpoints.len(),
        models_total: config.models,
        answer,
        models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_ends_and_counts() {
        assert_eq!(spread(5, 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(81, 80).len(), 80);
        let s = spread(1000, 7);
        assert_eq!((s[0], s[6], s.len()), (0, 999, 7));
        assert_eq!(spread(1, 2), vec![0]);
    }

    #[test]
    fn budget_fits_p113_m512_at_80_snapshots() {
        let per = 3 * 512 * (113 + 4);
        assert_eq!(fit_budget(per, 80, 1), (80, 1));
        assert_eq!(fit_budget(per, 81, 1), (80, 1));
        let (s, b) = fit_budget(per, 500, 1);
        assert!(s * per <= WEIGHT_BUDGET && (s + 1) * per > WEIGHT_BUDGET && b == 1);
        // Too many models for even two snapshots each: fewer models.
        let (s, b) = fit_budget(per, 10, 100);
        assert_eq!(s, 2);
        assert!(b * 2 * per <= WEIGHT_BUDGET && (b + 1) * 2 * per > WEIGHT_BUDGET);
        // One snapshot of one model is over the budget: the last snapshot alone.
        assert_eq!(fit_budget(WEIGHT_BUDGET / 2 + 1, 10, 3), (1, 1));
        assert_eq!(spread(10, 1), vec![9]);
    }

    #[test]
    fn quantization_error_is_within_half_a_step() {
        let (p, m) = (7, 3);
        let u: Vec<f64> = (0..p * m).map(|j| ((j * 37) % 11) as f64 - 5.3).collect();
        let w = Weights {
            batch: 1,
            n_in: p,
            n_out: p,
            width: m,
            u: u.clone(),
            v: u.iter().map(|x| x * 1e-3).collect(),
            w: vec![0.0; p * m],
        };
        let (mut q, mut s) = (Vec::new(), Vec::new());
        quantize_into(&w, 0, &mut q, &mut s);
        assert_eq!((q.len(), s.len()), (3 * m * p, 3 * m * 4));
        let scale = |j: usize| f32::from_le_bytes(s[4 * j..4 * j + 4].try_into().unwrap()) as f64;
        for (part, data) in [&w.u, &w.v, &w.w].into_iter().enumerate() {
            for i in 0..m {
                let sc = scale(part * m + i);
                for a in 0..p {
                    let back = (q[(part * m + i) * p + a] as i8) as f64 * sc;
                    assert!((back - data[a * m + i]).abs() <= 0.5 * sc * (1.0 + 1e-6));
                }
            }
        }
    }
}
