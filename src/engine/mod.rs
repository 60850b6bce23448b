//! The compute engine: loss and gradients of a batch of models over a set of pairs.
//!
//! [`Backend`] is the one interface the training code talks to; the CPU backend
//! ([`cpu::CpuBackend`]) implements it with fused, tiled loops, and
//! [`reference`](mod@reference) holds the plain-loop version every fast path is tested against.

pub mod cpu;
pub mod cuda;
mod pairs;
pub mod reference;
pub mod stepper;

use crate::error::{Error, Result};
pub use crate::kinds::Loss;
use crate::kinds::{Device, Precision};
use crate::model::{Activation, AsWeightsView, GradsBuffer, WeightsView};
use crate::real::Real;
pub use crate::task::Heads;
use crate::task::PairSet;
pub use pairs::{AsPairSet, FrozenPairs, PairsStamp};
use stepper::{Stepper, StepperSetup};

/// What the fused core computes: the activation and the loss. Passed with every call,
/// so one backend serves models of any activation and loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoreSpec {
    /// The hidden nonlinearity σ.
    pub activation: Activation,
    /// The data loss whose gradient the pass computes.
    pub loss: Loss,
}

/// Per-model statistics of one pass over a pair set.
///
/// Under a head layout ([`crate::task::Heads`]) the top-level fields describe the whole
/// model: `loss` is the weighted sum of the heads' mean losses (the objective), a pair is
/// `correct` when every head classifies it correctly, and `min_margin` is the smallest
/// head margin; `heads` holds each head's own figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassStats {
    /// Mean data loss over the pairs (no regularizer); for MSE the mean is over pairs
    /// and classes. Under heads, `Σ_h weight_h · heads[h].loss`.
    pub loss: f64,
    /// Pairs whose correct logit is strictly above every other logit (of every head).
    pub correct: usize,
    /// Number of pairs.
    pub count: usize,
    /// Smallest margin `f_y − max_{c≠y} f_c` over the pairs (unnormalized; negative while
    /// some pair is misclassified). Divide by [`crate::theory::margin_norm`] for the
    /// scale-invariant γ.
    pub min_margin: f64,
    /// One entry per head of the pair set's head layout, in layout order; empty without
    /// one.
    pub heads: Vec<HeadStats>,
}

/// One head's statistics in a [`PassStats`] (the pass's pair count applies).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeadStats {
    /// Mean of the head's own loss over the pairs, before its weight.
    pub loss: f64,
    /// Pairs the head classifies correctly (its correct logit strictly above the head's
    /// other logits).
    pub correct: usize,
    /// Smallest margin of the head over the pairs.
    pub min_margin: f64,
}

impl HeadStats {
    /// Adds one pair's figures: its loss contribution (already divided by the pair
    /// count) and its margin.
    #[inline(always)]
    pub fn add_pair(&mut self, loss: f64, margin: f64) {
        self.loss += loss;
        if margin > 0.0 {
            self.correct += 1;
        }
        if margin < self.min_margin {
            self.min_margin = margin;
        }
    }

    /// Adds another part of the same pass (a chunk's figures).
    pub fn merge(&mut self, other: &HeadStats) {
        self.loss += other.loss;
        self.correct += other.correct;
        self.min_margin = self.min_margin.min(other.min_margin);
    }

    /// Empty figures for `n` heads (margins at +∞, ready for [`HeadStats::add_pair`]).
    pub fn zeros(n: usize) -> Vec<HeadStats> {
        vec![
            HeadStats {
                min_margin: f64::INFINITY,
                ..Default::default()
            };
            n
        ]
    }
}

impl PassStats {
    /// Head `h`'s accuracy, `heads[h].correct / count`; NaN for an empty pass.
    pub fn head_accuracy(&self, h: usize) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.heads[h].correct as f64 / self.count as f64
        }
    }

    /// Fraction of pairs classified correctly, `correct / count`, in [0, 1]; NaN for an
    /// empty pass.
    pub fn accuracy(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.correct as f64 / self.count as f64
        }
    }
}

/// A compute backend. It never sees optimizers, regularizers or factorizations: only
/// the effective `U, V, W` of B models and a list of pairs.
///
/// The weights are borrowed: pass `&Weights` or a [`WeightsView`] of slices the caller
/// owns ([`crate::model::AsWeightsView`]); nothing is copied on the host. The pairs are a
/// `&PairSet` or a [`FrozenPairs`], which a device backend keeps resident between calls
/// ([`AsPairSet`]).
///
/// Both calls return one [`PassStats`] per model and fail with [`Error::Shape`] when a
/// weight slice does not match its shape or a pair indexes outside the weights, or an
/// error for an empty pair set.
///
/// Multi-head pair sets: when `pairs` carries a head layout ([`crate::task::Heads`],
/// which must cover exactly the weights' `n_out` outputs) the loss of a pair is
/// `Σ_h weight_h · loss_h`, each head's softmax-CE (or MSE) taken over its own slice of
/// the logits against class `label mod size_h`, still in one pass; the stats then carry
/// one [`HeadStats`] per head. Every backend implements this (a backend that could not
/// would have to refuse such a pair set, never ignore its layout).
pub trait Backend<F: Real>: Send + Sync {
    /// Short description for logs, e.g. `"cpu (2 threads, avx2)"`.
    fn describe(&self) -> String;

    /// Runs `work` on the threads this backend's passes use, so that every parallel loop
    /// inside it (the passes, and the caller's host loops between them) stays there.
    /// Why: from a thread outside the pool, each pass and each parallel loop is handed
    /// to a pool thread and waited for, a sleep and a wake-up of tens of microseconds
    /// (~100 µs on a shared 2-vCPU VM); a one-model p = 23 step (0.1 ms) ran 3× slower
    /// with `threads = 1`. A caller pays that once per call, so it should give `work`
    /// many steps ([`crate::engine::stepper::Stepper::preferred_batch`]). The default
    /// runs `work` in place.
    fn within(&self, work: &mut (dyn FnMut() + Send)) {
        work()
    }

    /// Loss, accuracy and margins of every model on `pairs`, and the gradient of the mean
    /// data loss with respect to the weights, written into `grads` (engine layout, see
    /// [`crate::model::Weights`]): an owned `Weights` is reshaped to the weights' shape, a
    /// [`crate::model::WeightsViewMut`] must have it already ([`GradsBuffer`]). For a tied
    /// model the `u` and `v` gradients come back separately; the caller sums them.
    fn loss_and_grad(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
        grads: &mut dyn GradsBuffer<F>,
    ) -> Result<Vec<PassStats>>;

    /// Forward only: loss, accuracy and margins of every model on `pairs`.
    fn evaluate(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
    ) -> Result<Vec<PassStats>>;

    /// One pass over a batch whose models train on different pairs: `groups[g] =
    /// (models, pairs)`, every model of the batch in exactly one group; with `grads` a
    /// [`Backend::loss_and_grad`], without an [`Backend::evaluate`], each model on its
    /// group's pairs. `None` (the default) when the backend has no such pass: the caller
    /// then makes one pass per group over sub-batches. The CPU backend runs every group
    /// in one pass (one task per model), so a sweep over splits or training sets batches
    /// like one over learning rates.
    fn grouped_pass(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        groups: &[(&[usize], &dyn AsPairSet)],
        grads: Option<&mut dyn GradsBuffer<F>>,
    ) -> Option<Result<Vec<PassStats>>> {
        let _ = (core, weights, groups, grads);
        None
    }

    /// A training pass that hands each model's statistics and gradient to `each`
    /// (`each(k, &stats, grads)`) as soon as that model's gradient is complete, on the
    /// thread that computed it, instead of writing every gradient into one batch buffer.
    /// Why: the caller's per-model work (regularizer, chain rule, optimizer) then runs
    /// while the model is in that core's cache, and no batch-sized gradient array
    /// streams through memory (27 MB per step for 1024 models at p = 23, m = 96).
    ///
    /// `groups` is as in [`Backend::grouped_pass`] (one group for a batch on one split).
    /// `each` is called exactly once per model, in no set order, possibly from several
    /// threads at once; the gradient is the one [`Backend::loss_and_grad`] would write,
    /// bit for bit, and is the consumer's to modify. Returns the statistics of every
    /// model. `None` (the default) when the backend has no such pass, or none that pays
    /// for this batch: the caller then uses [`Backend::loss_and_grad`].
    fn loss_and_grad_each(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        groups: &[(&[usize], &dyn AsPairSet)],
        each: &GradConsumer<'_, F>,
    ) -> Option<Result<Vec<PassStats>>> {
        let _ = (core, weights, groups, each);
        None
    }

    /// A stepper that keeps the whole training step on this backend's device, when it
    /// has one for `setup` (CUDA: f32, unfactored models, one split for the batch).
    /// `None` (the default) means the trainer steps on the host over this backend's
    /// passes, which every backend supports.
    fn resident_stepper(&self, setup: &StepperSetup<F>) -> Result<Option<Box<dyn Stepper<F>>>> {
        let _ = setup;
        Ok(None)
    }
}

/// One model's gradient as [`Backend::loss_and_grad_each`] hands it over: the gradient
/// of the mean data loss with respect to the model's effective `u`, `v`, `w` (engine
/// layout, as in [`crate::model::Weights::model`]), in the backend's workspace.
pub struct ModelGrads<'a, F> {
    /// dL/du, `n_in × m`.
    pub u: &'a mut [F],
    /// dL/dv, `n_in × m` (separate from `u` also for a tied model).
    pub v: &'a mut [F],
    /// dL/dw, `n_out × m`.
    pub w: &'a mut [F],
}

/// The receiver of each model's statistics and gradient in a
/// [`Backend::loss_and_grad_each`] pass: `each(k, &stats, grads)` for model `k`.
pub type GradConsumer<'c, F> = dyn Fn(usize, &PassStats, ModelGrads<'_, F>) + Sync + 'c;

/// Opens the backend for `device`: the CPU backend on `threads` worker threads (0 = all
/// cores), or the CUDA backend on `cuda:N` computing its products in `precision`. This
/// is the one place outside `engine/` that a device is turned into code; everything
/// above talks to the returned [`Backend`].
///
/// Fails with [`Error::Backend`] when CUDA is asked for and cannot be used (no driver,
/// no NVRTC, no such device), or when the CPU thread pool cannot start.
pub fn open<F: Real>(
    device: Device,
    precision: Precision,
    threads: usize,
) -> Result<Box<dyn Backend<F>>> {
    match device {
        Device::Cpu => Ok(Box::new(cpu::CpuBackend::new(cpu::CpuOptions {
            threads: (threads > 0).then_some(threads),
            ..cpu::CpuOptions::default()
        })?)),
        Device::Cuda(n) => Ok(Box::new(cuda::CudaBackend::new(n, precision)?)),
    }
}

/// Checks a pass's inputs (a library caller can hand us anything): the weight slices
/// against their shape, the pair lists against each other and their indices against
/// the weights, and that there is at least one pair.
pub(crate) fn check_pass<F>(weights: &WeightsView<'_, F>, pairs: &PairSet) -> Result<()> {
    weights.check()?;
    if pairs.a.len() != pairs.label.len() || pairs.b.len() != pairs.label.len() {
        return Err(Error::Shape {
            what: "pairs".into(),
            expected: "a, b and label of equal length".into(),
            got: format!(
                "{}, {}, {}",
                pairs.a.len(),
                pairs.b.len(),
                pairs.label.len()
            ),
        });
    }
    if let Some((n, _)) = pairs.inputs.bits() {
        check_dense_inputs(weights, pairs, n)?;
    }
    let max_in = match pairs.inputs.bits() {
        // Masks, checked above; the token bound does not apply.
        Some(_) => 0,
        None => pairs.a.iter().chain(&pairs.b).copied().max().unwrap_or(0) as usize,
    };
    // Under a head layout a label is read modulo each head's size: any value is valid,
    // but the layout must cover the output exactly.
    let max_label = match &pairs.heads {
        None => pairs.label.iter().copied().max().unwrap_or(0) as usize,
        Some(heads) => {
            if heads.n_out() != weights.n_out() {
                return Err(Error::Shape {
                    what: "pairs".into(),
                    expected: format!("a head layout of {} outputs", weights.n_out()),
                    got: format!("{} heads of {} outputs", heads.len(), heads.n_out()),
                });
            }
            0
        }
    };
    if max_in >= weights.n_in() || max_label >= weights.n_out() {
        return Err(Error::Shape {
            what: "pairs".into(),
            expected: format!(
                "inputs < {} and labels < {}",
                weights.n_in(),
                weights.n_out()
            ),
            got: format!("max input {max_in}, max label {max_label}"),
        });
    }
    if pairs.is_empty() {
        return Err(Error::config(
            "pairs",
            0,
            "cannot run a pass over zero pairs",
        ));
    }
    Ok(())
}

/// A bit-string pair set against the weights: `n` bits is the model's `n_in` (at most
/// 32), every mask below 2ⁿ and every `b` 0.
fn check_dense_inputs<F>(weights: &WeightsView<'_, F>, pairs: &PairSet, n: usize) -> Result<()> {
    if n != weights.n_in() || n == 0 || n > crate::task::MAX_BITS {
        return Err(Error::Shape {
            what: "bit-string pairs".into(),
            expected: format!("{} input bits (the weights' n_in, 1..=32)", weights.n_in()),
            got: format!("{n} bits"),
        });
    }
    let limit = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
    if let Some(t) = (0..pairs.len()).find(|&t| pairs.a[t] > limit || pairs.b[t] != 0) {
        return Err(Error::Shape {
            what: "bit-string pairs".into(),
            expected: format!("masks below 2^{n} in a, b = 0"),
            got: format!("example {t}: a = {}, b = {}", pairs.a[t], pairs.b[t]),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelSpec, Params, Weights, WeightsViewMut};
    use crate::task::Task;

    fn setup() -> (CoreSpec, Weights<f64>, Task, cpu::CpuBackend) {
        let spec = ModelSpec {
            n_in: 7,
            n_out: 7,
            width: 5,
            activation: Activation::Relu,
            tied: false,
            embed_dim: None,
            dense: false,
            init_scale: 0.7,
        };
        let weights = Params::<f64>::init(&spec, 2, 3).unwrap().effective();
        let core = CoreSpec {
            activation: spec.activation,
            loss: Loss::CrossEntropy,
        };
        let task = Task::modular(crate::task::Op::Sub, 7).unwrap();
        let backend = cpu::CpuBackend::new(cpu::CpuOptions::default()).unwrap();
        (core, weights, task, backend)
    }

    #[test]
    fn caller_owned_slices_give_the_bits_of_owned_weights() {
        let (core, weights, task, backend) = setup();
        let mut owned_grads = weights.clone(); // reshaped and overwritten
        let owned = backend
            .loss_and_grad(core, &weights, &task.pairs, &mut owned_grads)
            .unwrap();
        // The caller's own buffers, and frozen pairs.
        let (u, v, w) = (weights.u.clone(), weights.v.clone(), weights.w.clone());
        let (mut gu, mut gv, mut gw) = (vec![7.0; u.len()], vec![7.0; v.len()], vec![7.0; w.len()]);
        let view = WeightsView::new(weights.shape(), &u, &v, &w).unwrap();
        let mut grads = WeightsViewMut::new(weights.shape(), &mut gu, &mut gv, &mut gw).unwrap();
        let pairs = FrozenPairs::new(task.pairs.clone());
        let borrowed = backend
            .loss_and_grad(core, &view, &pairs, &mut grads)
            .unwrap();
        assert_eq!(owned, borrowed);
        assert_eq!((gu, gv, gw), (owned_grads.u, owned_grads.v, owned_grads.w));
        assert_eq!(
            backend.evaluate(core, &view, &pairs).unwrap(),
            backend.evaluate(core, &weights, &task.pairs).unwrap()
        );
    }

    #[test]
    fn bad_lengths_and_shapes_are_errors_not_panics() {
        let (core, weights, task, backend) = setup();
        let shape = weights.shape();
        let short = &weights.v[1..];
        let e = WeightsView::new(shape, &weights.u, short, &weights.w).unwrap_err();
        assert!(
            matches!(&e, Error::Shape { what, .. } if what == "v"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains(&format!("got {} values", short.len())),
            "{e}"
        );
        // A gradient buffer of another shape.
        let (mut gu, mut gv, mut gw) = (vec![0.0; 35], vec![0.0; 35], vec![0.0; 35]);
        let one = crate::model::WeightsShape { batch: 1, ..shape };
        let mut grads = WeightsViewMut::new(one, &mut gu, &mut gv, &mut gw).unwrap();
        let e = backend
            .loss_and_grad(core, &weights, &task.pairs, &mut grads)
            .unwrap_err();
        assert!(e.to_string().contains("gradient buffer"), "{e}");
        // Owned weights whose public fields were edited out of shape.
        let mut broken = weights.clone();
        broken.w.pop();
        let e = backend.evaluate(core, &broken, &task.pairs).unwrap_err();
        assert!(
            matches!(&e, Error::Shape { what, .. } if what == "w"),
            "{e}"
        );
        // A shape too large to exist.
        let huge = crate::model::WeightsShape {
            batch: usize::MAX,
            ..shape
        };
        assert!(WeightsView::new(huge, &weights.u, &weights.v, &weights.w).is_err());
    }
}
