//! Plain-loop reference: the model exactly as written in shared/theory.md, one pair at a
//! time, in whatever precision it is called with (tests call it in f64). Slow on purpose.
//! Bit-string pair sets ([`crate::task::Inputs::Bits`]) take the dense first layer
//! `s = U x` in place of the embedding lookup `u[a] + v[b]`.

use super::{CoreSpec, HeadStats, Loss, PassStats};
use crate::model::{Activation, AsWeightsView, Weights};
use crate::real::Real;
use crate::task::PairSet;

/// σ(x) for the activation `act`.
pub fn activate(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Square => x * x,
        Activation::Relu => x.max(0.0),
        Activation::Pow(k) => x.powi(k as i32),
    }
}

/// σ'(x), the derivative of [`activate`] (ReLU's is taken as 0 at x = 0).
pub fn activate_grad(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Square => 2.0 * x,
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Pow(k) => k as f64 * x.powi(k as i32 - 1),
    }
}

/// Logits `f_c(a, b)`, `c = 0..n_out`, of model `k` for pair `(a, b)`, in f64.
/// `weights` is a `&Weights` or a [`crate::model::WeightsView`].
pub fn logits<F: Real>(
    act: Activation,
    weights: &(impl AsWeightsView<F> + ?Sized),
    k: usize,
    a: usize,
    b: usize,
) -> Vec<f64> {
    let weights = weights.weights_view();
    let (u, v, w) = weights.model(k);
    let m = weights.width();
    let hidden: Vec<f64> = (0..m)
        .map(|i| activate(act, u[a * m + i].f64() + v[b * m + i].f64()))
        .collect();
    (0..weights.n_out())
        .map(|c| (0..m).map(|i| w[c * m + i].f64() * hidden[i]).sum())
        .collect()
}

/// The dense input vector `x` of example `t` of a bit-string pair set (bit j of the
/// mask `a[t]`, encoded), or None for a token pair set.
pub fn dense_input(pairs: &PairSet, t: usize) -> Option<Vec<f64>> {
    let (n, encoding) = pairs.inputs.bits()?;
    let mask = pairs.a[t];
    Some((0..n).map(|j| encoding.value(mask >> j & 1 == 1)).collect())
}

/// Pre-activations `s_i`, `i = 0..m`, of model `k` on example `t`: `u_i[a] + v_i[b]`
/// for token pairs, `Σ_j U[j, i]·x_j` for a dense (bit-string) input.
pub fn pre_activations<F: Real>(
    weights: &(impl AsWeightsView<F> + ?Sized),
    k: usize,
    pairs: &PairSet,
    t: usize,
) -> Vec<f64> {
    let weights = weights.weights_view();
    let (u, v, _) = weights.model(k);
    let m = weights.width();
    match dense_input(pairs, t) {
        None => {
            let (a, b) = (pairs.a[t] as usize, pairs.b[t] as usize);
            (0..m)
                .map(|i| u[a * m + i].f64() + v[b * m + i].f64())
                .collect()
        }
        Some(x) => (0..m)
            .map(|i| {
                x.iter()
                    .enumerate()
                    .map(|(j, xj)| u[j * m + i].f64() * xj)
                    .sum()
            })
            .collect(),
    }
}

/// Loss, stats and (if `grads` is given) gradients, straight from the definitions, one
/// [`PassStats`] per model. `grads` is replaced by f64 gradients of the mean data loss in
/// the engine layout (`u`, `v` separate even when tied). `weights` is a `&Weights` or
/// a [`crate::model::WeightsView`]. Pairs and lengths are not checked: an out-of-range
/// index panics.
pub fn loss_and_grad<F: Real>(
    core: CoreSpec,
    weights: &(impl AsWeightsView<F> + ?Sized),
    pairs: &PairSet,
    mut grads: Option<&mut Weights<f64>>,
) -> Vec<PassStats> {
    let weights = weights.weights_view();
    let (p, m, c_out) = (weights.n_in(), weights.width(), weights.n_out());
    let n = pairs.len() as f64;
    if let Some(g) = grads.as_deref_mut() {
        *g = Weights {
            batch: weights.batch(),
            n_in: p,
            n_out: c_out,
            width: m,
            u: vec![0.0; weights.u().len()],
            v: vec![0.0; weights.v().len()],
            w: vec![0.0; weights.w().len()],
        };
    }
    let mut all = Vec::new();
    for k in 0..weights.batch() {
        let mut stats = PassStats {
            min_margin: f64::INFINITY,
            count: pairs.len(),
            heads: HeadStats::zeros(pairs.heads.as_ref().map_or(0, |h| h.len())),
            ..Default::default()
        };
        let (_, _, w) = weights.model(k);
        for t in 0..pairs.len() {
            // Without heads the label is the class; with heads each head reads its own.
            let (a, b, y) = (
                pairs.a[t] as usize,
                pairs.b[t] as usize,
                pairs.label[t] as usize,
            );
            let s = pre_activations(&weights, k, pairs, t);
            let hidden: Vec<f64> = s.iter().map(|&x| activate(core.activation, x)).collect();
            let f: Vec<f64> = (0..c_out)
                .map(|c| (0..m).map(|i| w[c * m + i].f64() * hidden[i]).sum())
                .collect();
            let x = dense_input(pairs, t);
            // dL/df for this pair, one softmax (or MSE) per head.
            let mut g = vec![0.0; c_out];
            match &pairs.heads {
                None => {
                    let (loss, margin) = softmax_or_mse(core.loss, &f, y, 1.0 / n, &mut g);
                    stats.loss += loss / n;
                    stats.min_margin = stats.min_margin.min(margin);
                    if margin > 0.0 {
                        stats.correct += 1;
                    }
                }
                Some(heads) => {
                    let mut all_right = true;
                    for (h, head) in heads.heads().iter().enumerate() {
                        let range = head.offset..head.offset + head.size;
                        let (loss, margin) = softmax_or_mse(
                            core.loss,
                            &f[range.clone()],
                            heads.class(h, pairs.label[t]),
                            head.weight / n,
                            &mut g[range],
                        );
                        stats.loss += head.weight * loss / n;
                        stats.heads[h].add_pair(loss / n, margin);
                        stats.min_margin = stats.min_margin.min(margin);
                        all_right &= margin > 0.0;
                    }
                    if all_right {
                        stats.correct += 1;
                    }
                }
            }
            if let Some(grads) = grads.as_deref_mut() {
                let (gu, gv, gw) = grads.model_mut(k);
                for i in 0..m {
                    let mut d = 0.0;
                    for c in 0..c_out {
                        gw[c * m + i] += g[c] * hidden[i];
                        d += g[c] * w[c * m + i].f64();
                    }
                    let ds = d * activate_grad(core.activation, s[i]);
                    match &x {
                        None => {
                            gu[a * m + i] += ds;
                            gv[b * m + i] += ds;
                        }
                        // Dense: dU[j, i] = Σ_t ds_i · x_j; V is absent (its gradient 0).
                        Some(x) => {
                            for (j, xj) in x.iter().enumerate() {
                                gu[j * m + i] += ds * xj;
                            }
                        }
                    }
                }
            }
        }
        all.push(stats);
    }
    all
}

/// One softmax (or MSE) over the logits `f` with correct class `y`: writes
/// `scale · dloss/df` into `g` and returns the loss and the margin `f_y − max_{c≠y} f_c`.
/// The loss is the cross-entropy `log Σ_c e^{f_c} − f_y`, or for MSE the mean over the
/// classes of `(f_c − 1[c = y])²`.
fn softmax_or_mse(loss: Loss, f: &[f64], y: usize, scale: f64, g: &mut [f64]) -> (f64, f64) {
    let other = (0..f.len())
        .filter(|&c| c != y)
        .map(|c| f[c])
        .fold(f64::NEG_INFINITY, f64::max);
    let margin = f[y] - other;
    let value = match loss {
        Loss::CrossEntropy => {
            let max = f.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = f.iter().map(|x| (x - max).exp()).sum();
            for c in 0..f.len() {
                g[c] = ((f[c] - max).exp() / z - if c == y { 1.0 } else { 0.0 }) * scale;
            }
            z.ln() + max - f[y]
        }
        Loss::Mse => {
            let classes = f.len() as f64;
            let mut sq = 0.0;
            for c in 0..f.len() {
                let d = f[c] - if c == y { 1.0 } else { 0.0 };
                sq += d * d;
                g[c] = 2.0 * d * scale / classes;
            }
            sq / classes
        }
    };
    (value, margin)
}
