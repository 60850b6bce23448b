//! Run configuration: everything that determines a training run, as one serde struct
//! that round-trips through TOML (`config.toml` in every run directory).
//!
//! Every section rejects unknown keys, and [`RunConfig::validate`] rejects every value
//! the engine cannot honour, naming the key, so a typo never silently becomes a default.

use crate::engine::Loss;
use crate::error::{Error, Result};
use crate::model::{Activation, ModelSpec};
use crate::task::{Op, Task};
use serde::{Deserialize, Serialize};

/// A whole run: task, model, training recipe, optimizer and where it runs.
///
/// This is the `config.toml` of a run directory, section by section (`[task]`,
/// `[model]`, `[train]`, `[optimizer]`); top-level keys are the fields below. Every field
/// has a default ([`RunConfig::default`]), so a TOML file only names what it changes.
/// Build one with [`RunConfig::from_toml`] (which validates) or by struct update from
/// the default, then call [`RunConfig::validate`] before use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Seed of the initialization and of the train/test split.
    pub seed: u64,
    /// Element type: "f32" (fast) or "f64" (reference precision).
    pub dtype: String,
    /// Number of independent models trained together (B). Model k is initialized from
    /// stream k of the seed, so it does not depend on B.
    pub models: usize,
    /// `"cpu"` or `"cuda[:N]"` (see [`parse_device`]).
    pub device: String,
    /// Arithmetic of the CUDA backend's three big products: "fp32" (exact, default),
    /// "tf32" or "bf16" (tensor cores). The CPU backend always computes in `dtype`.
    pub precision: String,
    /// CPU worker threads; 0 = all cores.
    pub threads: usize,
    /// `[task]`: the operation table and the train/test split.
    pub task: TaskConfig,
    /// `[model]`: width, activation, tying and factoring of the MLP.
    pub model: ModelConfig,
    /// `[train]`: loss, regularizer, run length and recording cadence.
    pub train: TrainConfig,
    /// `[optimizer]`: GD or AdamW, learning-rate schedule, Grokfast filter.
    pub optimizer: OptimizerConfig,
}

/// Which table to learn and how much of it to train on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// The binary operation (`"add"`, `"sub"`, `"mul"`, `"div"`, `"quad"`).
    pub op: Op,
    /// The modulus: inputs and labels live in `0..p`, so the model has `n_in = n_out = p`.
    /// Must be at least 2, prime for `mul`/`div`, and at most 65 521.
    pub p: usize,
    /// Fraction of the pairs trained on, in (0, 1]; the rest is the test set.
    pub train_fraction: f64,
}

/// The model's hyperparameters (its input/output sizes come from the task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Number of hidden neurons m. The max-margin construction for addition needs
    /// `m ≥ 4(p−1)`; the default 240 = 8(p−1) for the default p = 31.
    pub width: usize,
    /// Hidden nonlinearity σ, written `"square"`, `"relu"` or `"powK"`.
    pub activation: Activation,
    /// Tied embeddings (`v_i = u_i`, one embedding table for both inputs).
    pub tied: bool,
    /// Factored embedding dimension d (0 = not factored); see [`ModelSpec::embed_dim`].
    pub embed_dim: usize,
    /// Standard deviation of the Gaussian initialization of U, V, W (of their products
    /// when factored). Must be positive.
    pub init_scale: f64,
}

/// Regularizer applied to the effective U, V, W (not to the factors of a factored
/// model), per neuron. In TOML: `"none"`, `"l2"`, `"l23"`. The strength λ is
/// [`TrainConfig::reg_strength`]; see [`crate::regularizer::Regularizer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegularizerKind {
    /// No regularization (`"none"`); `reg_strength` is ignored.
    None,
    /// (λ/2) Σ (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)
    L2,
    /// λ Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{3/2}, the norm of the margin theory.
    L23,
}

/// Loss, regularizer and the length and bookkeeping of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Data loss: `"cross_entropy"` (default) or `"mse"` against one-hot targets.
    pub loss: Loss,
    /// Which weight-norm penalty is added to the loss.
    pub regularizer: RegularizerKind,
    /// λ of the regularizer.
    pub reg_strength: f64,
    /// Number of full-batch optimizer steps of the run.
    pub steps: u64,
    /// Evaluate (train/test loss and accuracy, margin) every this many steps.
    pub eval_every: u64,
    /// Write a checkpoint every this many steps (0 = only at the end).
    pub checkpoint_every: u64,
    /// Record every neuron's Fourier spectrum summary (with margin and accuracy) into
    /// `spectra.jsonl` every this many steps (0 = never), so the evolution of the features
    /// can be plotted without keeping every checkpoint.
    pub spectra_every: u64,
}

/// The update rule (`"gd"` or `"adamw"` in TOML).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Full-batch gradient descent, `θ ← θ − lr·g`. Ignores `beta1`, `beta2`, `eps` and
    /// `weight_decay` (use an L2 regularizer for weight decay under GD).
    Gd,
    /// Adam with decoupled weight decay (PyTorch's AdamW).
    Adamw,
}

/// Optimizer and learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// GD or AdamW.
    pub kind: OptimizerKind,
    /// Learning rate before the first milestone.
    pub lr: f64,
    /// Steps (0-based) from which on the learning rate is multiplied by `lr_factor`
    /// once more: the rate at step `t` is `lr · lr_factor^#{milestones ≤ t}`. Order does
    /// not matter.
    pub lr_milestones: Vec<u64>,
    /// Factor applied at each milestone (2 doubles the rate, as in the blog recipe).
    pub lr_factor: f64,
    /// AdamW's first-moment decay β₁, in [0, 1).
    pub beta1: f64,
    /// AdamW's second-moment decay β₂, in [0, 1).
    pub beta2: f64,
    /// AdamW's ε, added to `√v̂` in the denominator.
    pub eps: f64,
    /// AdamW's decoupled weight decay (θ ← θ·(1 − lr·wd) before the Adam step).
    /// Ignored by GD.
    pub weight_decay: f64,
    /// α of the Grokfast EMA gradient filter μ ← α·μ + (1−α)·g, g ← g + λ·μ (μ starts at
    /// the first gradient), in [0, 1). Only used when `grokfast_lambda > 0`.
    pub grokfast_alpha: f64,
    /// λ of the Grokfast filter, the weight of the EMA added to the gradient. 0 (the
    /// default) disables the filter and keeps no EMA state.
    pub grokfast_lambda: f64,
}

impl Default for RunConfig {
    /// The default run: a+b mod 31 with x², L_{2,3} 1e-4 and the blog's doubling learning
    /// rate (0.05, ×2 at steps 1k..10k), 40k steps, width 8(p−1) = 240 (the exact
    /// max-margin construction's width). It reaches 100% accuracy within ~2k steps and a
    /// normalized margin within 0.1% of γ*; about 30 s on two Zen 4 cores.
    fn default() -> Self {
        RunConfig {
            seed: 0,
            dtype: "f32".into(),
            models: 1,
            device: "cpu".into(),
            precision: "fp32".into(),
            threads: 0,
            task: TaskConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            optimizer: OptimizerConfig::default(),
        }
    }
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            op: Op::Add,
            p: 31,
            train_fraction: 1.0,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            width: 240,
            activation: Activation::Square,
            tied: false,
            embed_dim: 0,
            init_scale: 0.5,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            loss: Loss::CrossEntropy,
            regularizer: RegularizerKind::L23,
            reg_strength: 1e-4,
            steps: 40_000,
            eval_every: 500,
            checkpoint_every: 10_000,
            spectra_every: 500,
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Gd,
            lr: 0.05,
            lr_milestones: (1..=10).map(|k| k * 1000).collect(),
            lr_factor: 2.0,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: 0.0,
            grokfast_alpha: 0.98,
            grokfast_lambda: 0.0,
        }
    }
}

fn finite_nonneg(key: &str, x: f64) -> Result<()> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(key, x, "must be a finite number >= 0"))
    }
}

impl RunConfig {
    /// Parses TOML and [validates](RunConfig::validate) it. Missing keys take their
    /// defaults; unknown keys, syntax and type errors are [`Error::InvalidConfig`] naming
    /// the line and column.
    pub fn from_toml(text: &str) -> Result<RunConfig> {
        let config: RunConfig = toml::from_str(text).map_err(|e| {
            Error::config(
                "config",
                "TOML",
                e.to_string().trim_end().replace('\n', " "),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Serializes every field (defaults included) to TOML; [`RunConfig::from_toml`] reads
    /// it back to an equal config. This is what run directories and checkpoints store.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a RunConfig always serializes")
    }

    /// The model's full spec (the task fixes its input and output sizes).
    pub fn model_spec(&self) -> ModelSpec {
        ModelSpec {
            n_in: self.task.p,
            n_out: self.task.p,
            width: self.model.width,
            activation: self.model.activation,
            tied: self.model.tied,
            embed_dim: (self.model.embed_dim > 0).then_some(self.model.embed_dim),
            init_scale: self.model.init_scale,
        }
    }

    /// The CUDA product precision named by `precision`.
    pub fn precision(&self) -> Result<crate::engine::cuda::Precision> {
        self.precision.parse()
    }

    /// The full operation table of `[task]` (every pair, before the train/test split,
    /// which [`crate::task::Split`] draws from `seed`).
    pub fn build_task(&self) -> Result<Task> {
        Task::modular(self.task.op, self.task.p)
    }

    /// Checks every value the engine cannot honour. The error is
    /// [`Error::InvalidConfig`] with the dotted TOML key (e.g. `optimizer.lr`), the value
    /// and what would be accepted. Does not check that a CUDA device exists.
    pub fn validate(&self) -> Result<()> {
        if self.dtype != "f32" && self.dtype != "f64" {
            return Err(Error::config("dtype", &self.dtype, "expected f32 or f64"));
        }
        if self.models == 0 {
            return Err(Error::config("models", 0, "need at least one model"));
        }
        parse_device(&self.device)?;
        self.precision()?;
        if self.task.p < 2 {
            return Err(Error::config(
                "task.p",
                self.task.p,
                "the modulus must be at least 2",
            ));
        }
        if self.task.p > crate::task::MAX_P {
            return Err(Error::config(
                "task.p",
                self.task.p,
                format!(
                    "the modulus must be at most {} (the p² pair list is held in memory)",
                    crate::task::MAX_P
                ),
            ));
        }
        if self.task.op.needs_prime() && !crate::task::is_prime(self.task.p) {
            return Err(Error::config(
                "task.p",
                self.task.p,
                format!(
                    "op '{}' needs a prime modulus (Z_p must be a field)",
                    self.task.op.name()
                ),
            ));
        }
        let f = self.task.train_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(Error::config(
                "task.train_fraction",
                f,
                "must be in (0, 1] (1 trains on every pair)",
            ));
        }
        if self.model.width == 0 {
            return Err(Error::config(
                "model.width",
                0,
                "the model needs at least one hidden neuron",
            ));
        }
        if !(self.model.init_scale.is_finite() && self.model.init_scale > 0.0) {
            return Err(Error::config(
                "model.init_scale",
                self.model.init_scale,
                "must be a positive finite number",
            ));
        }
        self.model_spec().validate()?;
        finite_nonneg("train.reg_strength", self.train.reg_strength)?;
        if self.train.eval_every == 0 {
            return Err(Error::config("train.eval_every", 0, "must be at least 1"));
        }
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr >= 0.0) {
            return Err(Error::config(
                "optimizer.lr",
                o.lr,
                "must be a finite number >= 0",
            ));
        }
        if !(o.lr_factor.is_finite() && o.lr_factor > 0.0) {
            return Err(Error::config(
                "optimizer.lr_factor",
                o.lr_factor,
                "must be a positive finite number",
            ));
        }
        for (key, b) in [
            ("optimizer.beta1", o.beta1),
            ("optimizer.beta2", o.beta2),
            ("optimizer.grokfast_alpha", o.grokfast_alpha),
        ] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(key, b, "must be in [0, 1)"));
            }
        }
        if !(o.eps.is_finite() && o.eps > 0.0) {
            return Err(Error::config(
                "optimizer.eps",
                o.eps,
                "must be a positive finite number",
            ));
        }
        finite_nonneg("optimizer.weight_decay", o.weight_decay)?;
        if o.kind == OptimizerKind::Gd && o.weight_decay > 0.0 {
            return Err(Error::config(
                "optimizer.weight_decay",
                o.weight_decay,
                "only AdamW applies decoupled weight decay; with optimizer.kind = \"gd\" use \
                 train.regularizer = \"l2\" and train.reg_strength instead",
            ));
        }
        finite_nonneg("optimizer.grokfast_lambda", o.grokfast_lambda)?;
        Ok(())
    }
}

/// Where the engine runs, parsed from [`RunConfig::device`] by [`parse_device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// The CPU backend, on [`RunConfig::threads`] threads.
    Cpu,
    /// CUDA device with this ordinal.
    Cuda(usize),
}

/// Parses "cpu", "cuda" (= "cuda:0") or "cuda:N". Only the syntax is checked, not
/// whether the device exists.
pub fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| Error::config("device", s, "expected cpu, cuda or cuda:N")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml() {
        let c = RunConfig::default();
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = RunConfig::from_toml("[model]\nwidht = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("widht") && e.contains("line 2"), "{e}");
        let e = RunConfig::from_toml("[task]\np = 9\nop = \"div\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("task.p = 9"), "{e}");
        let e = RunConfig::from_toml("[optimizer]\nlr = -1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("optimizer.lr = -1"), "{e}");
        let e = RunConfig::from_toml("[optimizer]\nweight_decay = 0.5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("optimizer.weight_decay = 0.5"), "{e}");
        let e = RunConfig::from_toml("[task]\np = 100003\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("task.p = 100003"), "{e}");
        let e = RunConfig::from_toml("[model]\nwidth = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.width = 0"), "{e}");
    }
}
