//! The fused host step (src/train/host.rs: regularizer, chain rule, optimizer and
//! effective weights per model, as the CPU backend hands each model's gradient over)
//! against the plain step (one batch-wide loop each), bit for bit: the same reports, the
//! same parameters and optimizer state after every step, and the same divergence.
//!
//! The plain step runs on the same CPU backend behind a wrapper that does not offer
//! `Backend::loss_and_grad_each`, which is how a trainer on any other backend steps.

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::engine::AsPairSet;
use clockwork::model::{AsWeightsView, GradsBuffer};
use clockwork::prelude::*;
use clockwork::real::Real;

mod common;

/// The CPU backend without its per-model pass: trainers over it take the plain step.
struct PlainStep(CpuBackend);

impl<F: Real> Backend<F> for PlainStep {
    fn describe(&self) -> String {
        format!("{} (plain step)", Backend::<F>::describe(&self.0))
    }

    fn loss_and_grad(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
        grads: &mut dyn GradsBuffer<F>,
    ) -> Result<Vec<PassStats>> {
        self.0.loss_and_grad(core, weights, pairs, grads)
    }

    fn evaluate(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
    ) -> Result<Vec<PassStats>> {
        self.0.evaluate(core, weights, pairs)
    }

    fn grouped_pass(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        groups: &[(&[usize], &dyn AsPairSet)],
        grads: Option<&mut dyn GradsBuffer<F>>,
    ) -> Option<Result<Vec<PassStats>>> {
        self.0.grouped_pass(core, weights, groups, grads)
    }
}

fn cpu() -> CpuBackend {
    CpuBackend::new(CpuOptions {
        threads: Some(2),
        ..CpuOptions::default()
    })
    .unwrap()
}

/// Every step's report and the final state (or the error that stopped it).
type Run<F> = (
    Vec<StepReport>,
    std::result::Result<TrainerState<F>, String>,
);

fn run<F: Real>(config: &RunConfig, backend: Box<dyn Backend<F>>, steps: usize) -> Run<F> {
    let mut trainer = Trainer::<F>::with_backend(config, backend).unwrap();
    let mut reports = Vec::new();
    for _ in 0..steps {
        match trainer.step() {
            Ok(r) => reports.push(r),
            Err(e) => return (reports, Err(e.to_string())),
        }
    }
    (reports, Ok(trainer.state().unwrap()))
}

/// Trains `config` both ways and asserts identical reports and states.
fn same_bits<F: Real>(name: &str, config: &RunConfig, steps: usize) -> Run<F> {
    let fused = run::<F>(config, Box::new(cpu()), steps);
    let plain = run::<F>(config, Box::new(PlainStep(cpu())), steps);
    assert_eq!(fused.0.len(), plain.0.len(), "{name}: steps taken");
    for (a, b) in fused.0.iter().zip(&plain.0) {
        assert_eq!(a, b, "{name}: report of step {}", a.step);
    }
    assert_eq!(fused.1, plain.1, "{name}: final state");
    fused
}

fn base(p: usize, width: usize, models: usize) -> RunConfig {
    let mut c = common::config(p, width, models);
    c.optimizer.lr_milestones = vec![4, 9];
    c
}

/// Eight models under `kind` with eight different settings (lr, weight decay, λ,
/// Grokfast λ, init scale) and four splits, p = 13, m = 24.
fn eight_models(kind: OptimizerKind) -> RunConfig {
    let lr = if kind == OptimizerKind::Adamw {
        3e-3
    } else {
        0.05
    };
    let mut c = base(13, 24, 8);
    c.optimizer.kind = kind;
    c.per_model = clockwork::config::PerModelConfig {
        seed: vec![0, 1, 2, 2, 4, 2, 6, 7],
        train_fraction: vec![1.0, 0.5, 0.7, 0.7, 1.0, 0.7, 0.9, 0.6],
        ..common::eight_settings(kind, lr)
    };
    c
}

/// GD and AdamW, x² and ReLU, every regularizer, per-model settings and splits.
#[test]
fn fused_step_equals_plain_step() {
    for kind in [OptimizerKind::Gd, OptimizerKind::Adamw] {
        let regularizers = [
            (RegularizerKind::L23, 0.0),
            (RegularizerKind::L2, 0.0),
            (RegularizerKind::L2k, 4.0),
            (RegularizerKind::L1, 0.0),
            (RegularizerKind::None, 0.0),
        ];
        for (reg, q) in regularizers {
            let mut c = eight_models(kind);
            c.per_model.grokfast_lambda.clear();
            c.train.regularizer = reg;
            c.train.reg_q = q;
            c.optimizer.warmup_steps = 3;
            if reg == RegularizerKind::L1 {
                c.per_model.reg_strength = vec![1e-3; 8];
            }
            let name = format!("{kind:?} {reg:?}");
            same_bits::<f32>(&name, &c, 12).1.expect("trains");
            c.model.activation = Activation::Relu;
            c.dtype = Dtype::F64;
            same_bits::<f64>(&format!("{name} relu f64"), &c, 6)
                .1
                .expect("trains");
        }
    }
}

/// The Grokfast-EMA filter runs per model in the fused step (λ per model, some 0, from
/// its fresh first step on); the MA filter, whose window ring the batch shares, takes the
/// plain step.
#[test]
fn fused_step_equals_plain_step_with_grokfast() {
    for kind in [OptimizerKind::Gd, OptimizerKind::Adamw] {
        let mut c = eight_models(kind);
        c.optimizer.grokfast_alpha = 0.8;
        same_bits::<f32>(&format!("{kind:?} grokfast ema"), &c, 12)
            .1
            .expect("trains");
        c.optimizer.grokfast = clockwork::kinds::GrokfastKind::Ma;
        c.optimizer.grokfast_window = 3;
        same_bits::<f32>(&format!("{kind:?} grokfast ma"), &c, 8)
            .1
            .expect("trains");
    }
}

/// Tied and factored embeddings (the chain rule through the factors), and a
/// bit-string task with its dense first layer under L1.
#[test]
fn fused_step_equals_plain_step_for_factored_tied_and_dense_models() {
    let mut c = base(13, 24, 8);
    c.model.tied = true;
    c.model.embed_dim = 6;
    c.train.regularizer = RegularizerKind::L2k;
    c.train.reg_q = 4.0;
    c.train.reg_strength = 1e-3;
    same_bits::<f32>("tied factored", &c, 10).1.expect("trains");
    c.model.tied = false;
    same_bits::<f32>("factored", &c, 10).1.expect("trains");

    let mut bits = RunConfig::default();
    bits.task.bits = Some(10);
    bits.task.parity_k = Some(2);
    bits.task.train_size = Some(200);
    bits.task.test_size = Some(100);
    bits.model.width = 16;
    bits.model.activation = Activation::Relu;
    bits.models = 8;
    bits.optimizer.kind = OptimizerKind::Adamw;
    bits.optimizer.lr = 1e-2;
    bits.optimizer.weight_decay = 0.1;
    bits.train.regularizer = RegularizerKind::L1;
    bits.train.reg_strength = 1e-4;
    bits.per_model.seed = (0..8).collect();
    same_bits::<f32>("bit strings", &bits, 10)
        .1
        .expect("trains");
}

/// Models cut into several chunks (their gradients summed per thread before the
/// consumer sees them), and a batch too small for the per-model pass (the backend
/// declines it and the trainer takes the plain step).
#[test]
fn fused_step_equals_plain_step_for_chunked_models() {
    let mut c = base(41, 48, 8);
    c.per_model.lr = (0..8).map(|k| 0.02 + 0.01 * k as f64).collect();
    same_bits::<f32>("chunked, 8 models", &c, 4)
        .1
        .expect("trains");
    c.models = 2;
    c.per_model.lr.truncate(2);
    same_bits::<f32>("chunked, 2 models", &c, 4)
        .1
        .expect("trains");
}

/// A model that diverges stops both steps at the same step with the same error, and
/// leaves every model's parameters as they were after the last finite step.
#[test]
fn a_divergence_keeps_the_last_finite_state_in_the_fused_step() {
    let mut c = base(13, 24, 8);
    c.per_model.lr = vec![0.05, 0.05, 0.05, 1e6, 0.05, 0.05, 0.05, 0.05];
    c.optimizer.lr_milestones.clear();
    let (reports, end) = same_bits::<f32>("diverging", &c, 40);
    let Err(error) = end else {
        panic!("an lr of 1e6 did not diverge in 40 steps");
    };
    assert!(error.contains("model 3"), "{error}");
    // The state at the error is the one after the last reported step.
    let mut again = Trainer::<f32>::with_backend(&c, Box::new(cpu())).unwrap();
    for _ in 0..reports.len() {
        again.step().unwrap();
    }
    let at_error = again.state().unwrap();
    assert!(again.step().is_err());
    assert_eq!(
        again.state().unwrap(),
        at_error,
        "nothing moved at the error"
    );
}
