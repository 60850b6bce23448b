//! Run configuration: everything that determines a training run, as one serde struct
//! that round-trips through TOML (`config.toml` in every run directory).
//!
//! Every section rejects unknown keys, and [`RunConfig::validate`] rejects every value
//! the engine cannot honour, naming the key, so a typo never silently becomes a default.

use crate::error::{Error, Result};
use crate::kinds::{Device, Dtype, GrokfastKind, Loss, OptimizerKind, Precision, RegularizerKind};
use crate::model::{Activation, InitKind, ModelInit, ModelSpec, Params};
use crate::task::{Group, GroupName, Op, SplitKind, Task};
use serde::{Deserialize, Serialize};

mod validate;

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
    pub dtype: Dtype,
    /// Number of independent models trained together (B). Model k is initialized from
    /// stream k of the seed, so it does not depend on B.
    pub models: usize,
    /// `"cpu"` or `"cuda[:N]"`.
    pub device: Device,
    /// Arithmetic of the CUDA backend's three big products: "fp32" (exact, default),
    /// "tf32" or "bf16" (tensor cores). The CPU backend always computes in `dtype`.
    pub precision: Precision,
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
    /// `[per_model]`: settings that differ between the B models of the batch (absent
    /// from `config.toml` when every model uses the scalar settings above).
    #[serde(skip_serializing_if = "PerModelConfig::is_empty")]
    pub per_model: PerModelConfig,
}

/// Settings that differ between the models of one batch, so a sweep over them trains in
/// one batched pass instead of B separate runs.
///
/// Each list is either empty (every model uses the scalar key of the same name) or holds
/// exactly `models` values, value `k` for model `k`. With `seed` given, model `k` is the
/// model a one-model run with `seed = seed[k]` would train (initialization *and* split);
/// without it, model `k` draws its initialization from stream `k` of the one `seed` and
/// all models share that seed's split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerModelConfig {
    /// Seeds of the initialization and the split, per model (see the type's docs).
    pub seed: Vec<u64>,
    /// Learning rate per model (`optimizer.lr`; the milestones and factor are shared).
    pub lr: Vec<f64>,
    /// AdamW decoupled weight decay per model (`optimizer.weight_decay`).
    pub weight_decay: Vec<f64>,
    /// Regularizer strength λ per model (`train.reg_strength`).
    pub reg_strength: Vec<f64>,
    /// Grokfast λ per model (`optimizer.grokfast_lambda`).
    pub grokfast_lambda: Vec<f64>,
    /// Initialization scale per model (`model.init_scale`).
    pub init_scale: Vec<f64>,
    /// Fraction of the table trained on, per model (`task.train_fraction`).
    pub train_fraction: Vec<f64>,
}

impl PerModelConfig {
    /// True when no list is given (every model uses the scalar settings).
    pub fn is_empty(&self) -> bool {
        self.lists().iter().all(|(_, len)| *len == 0)
    }

    fn lists(&self) -> [(&'static str, usize); 7] {
        [
            ("seed", self.seed.len()),
            ("lr", self.lr.len()),
            ("weight_decay", self.weight_decay.len()),
            ("reg_strength", self.reg_strength.len()),
            ("grokfast_lambda", self.grokfast_lambda.len()),
            ("init_scale", self.init_scale.len()),
            ("train_fraction", self.train_fraction.len()),
        ]
    }
}

/// One model's resolved settings: the scalar config keys with its `[per_model]` values
/// applied ([`RunConfig::model_settings`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelSettings {
    /// Seed of the model's initialization and split.
    pub seed: u64,
    /// Stream of the seed's generator its initialization draws from.
    pub stream: u64,
    /// Learning rate before the first milestone.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Regularizer strength λ.
    pub reg_strength: f64,
    /// Grokfast λ.
    pub grokfast_lambda: f64,
    /// Standard deviation of the initialization.
    pub init_scale: f64,
    /// Fraction of the table trained on.
    pub train_fraction: f64,
}

/// Which table to learn and how much of it to train on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// The binary operation (`"add"`, `"sub"`, `"mul"`, `"div"`, `"quad"`).
    pub op: Op,
    /// A finite group instead of an operation mod p: its Cayley table `a·b`, e.g.
    /// `"S4"`, `"D7"`, `"A4"`, `"C5xC5"` ([`GroupName`]); inputs and labels are its
    /// elements, so `n_in = n_out = |G|`. Excludes `op` and `p` (leave them out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `"primes"`: seed 002's multi-task table ([`Task::multitask`]): inputs `x0, x1 < p`,
    /// one output head per prime `q < p` with target `(x0 + x1·p) mod q`, each head's
    /// cross-entropy divided by `ln q` and the heads summed. Needs a prime p ≥ 3;
    /// excludes `op`, `group`, `target_mod` and an unordered split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heads: Option<String>,
    /// One of the multi-task targets on its own ([`Task::mod_target`]): label
    /// `(x0 + x1·p) mod target_mod`, a prime below p; `n_out = target_mod`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_mod: Option<usize>,
    /// The modulus: inputs and labels live in `0..p`, so the model has `n_in = n_out = p`.
    /// Must be at least 2, prime for `mul`/`div`, and at most 65 521.
    pub p: usize,
    /// Fraction of the pairs trained on, in (0, 1]; the rest is the test set.
    pub train_fraction: f64,
    /// `"ordered"` (default): each ordered pair (a, b) is drawn on its own;
    /// `"unordered"`: unordered pairs {a, b} are drawn, a pair and its mirror on the same
    /// side (commutative ops only; see [`SplitKind`]). Applies to every model's split,
    /// whatever its `[per_model]` seed and fraction.
    pub split: SplitKind,
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
    /// Standard deviation of the output weights' draw: of W, or of the factor P_out when
    /// factored (W = E·P_out). 0 (the default) keeps the rule of `init_scale` (std
    /// `init_scale` for W, 1/√d for P_out). The `explainer` preset sets 1/√m, its colab's
    /// Linear-layer init of the output projection. See [`ModelInit::init_scale_out`].
    pub init_scale_out: f64,
    /// How the weights are drawn: `"gaussian"` (default, std `init_scale`) or
    /// `"fourier-sparse"`: every neuron's u, v, w one cosine of amplitude `init_scale`
    /// at one frequency per neuron (frequencies balanced over the neurons, phases
    /// uniform), the peer's "single-freq" start (see [`InitKind::FourierSparse`]).
    /// Fourier-sparse needs an unfactored model and p ≥ 3.
    pub init: InitKind,
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
    /// The exponent q of the `l2k` regularizer λ Σ_i n_i^{q/2} (finite, ≥ 1), or 0 for
    /// the activation's homogeneity degree (x² → 3, x^k → k+1, ReLU → 2), the norm its
    /// normalized margin divides by; [`RunConfig::reg_q`] resolves it. Must stay 0 with
    /// any other regularizer.
    pub reg_q: f64,
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
    /// Early stop per model: a model whose test loss (its train loss when it trains on
    /// the whole table) has not dropped by more than `early_stop_min_delta` below its
    /// best for this many steps is frozen, its stop step reported; the others train on
    /// with unchanged bits, and the run ends when all have stopped. Checked at the
    /// evaluations, so a multiple of `eval_every`; 0 (the default) never stops.
    pub early_stop_patience: u64,
    /// The improvement (absolute, in loss) that resets the patience; finite, ≥ 0. Only
    /// with `early_stop_patience > 0`.
    pub early_stop_min_delta: f64,
    /// No model stops before this step (its best loss is still tracked from step 0):
    /// room for a transient, such as the test loss rising while a grokking run
    /// memorizes (the peer's precompute waits 10 000 epochs). Only with
    /// `early_stop_patience > 0`.
    pub early_stop_start: u64,
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
    /// Linear learning-rate warm-up over the first this many steps (0 = none): the rate
    /// of step `t < warmup_steps` is multiplied by `t / warmup_steps`, on top of the
    /// milestones. Step 0 thus takes no step, as in the PyTorch recipe it mirrors
    /// (`LambdaLR(lambda s: min(s / W, 1))`, stepped after each update, which the
    /// modular-addition-feature-learning precompute uses with W = 10).
    pub warmup_steps: u64,
    /// AdamW's first-moment decay β₁, in [0, 1).
    pub beta1: f64,
    /// AdamW's second-moment decay β₂, in [0, 1).
    pub beta2: f64,
    /// AdamW's ε, added to `√v̂` in the denominator.
    pub eps: f64,
    /// AdamW's decoupled weight decay (θ ← θ·(1 − lr·wd) before the Adam step).
    /// Ignored by GD.
    pub weight_decay: f64,
    /// Which Grokfast gradient filter runs when `grokfast_lambda > 0`: `"ema"` (the
    /// default) or `"ma"` (windowed mean). Shared by the batch (it decides the state
    /// every model keeps); λ may differ per model.
    pub grokfast: GrokfastKind,
    /// α of the Grokfast EMA gradient filter μ ← α·μ + (1−α)·g, g ← g + λ·μ (μ starts at
    /// the first gradient), in [0, 1). Only used with `grokfast = "ema"`.
    pub grokfast_alpha: f64,
    /// λ of the Grokfast filter, the weight of the slow gradient added to the gradient.
    /// 0 (the default) disables the filter and keeps no filter state.
    pub grokfast_lambda: f64,
    /// Gradients the Grokfast-MA filter averages, this step's included (≥ 1; the
    /// published default is 100). Only used with `grokfast = "ma"`; the window is kept
    /// for every parameter of every model (`window × params` values, in checkpoints too).
    pub grokfast_window: usize,
    /// Grokfast-MA only: leave the gradient unfiltered until the window is full (true,
    /// the default, as the reference `gradfilter_ma(warmup=True)`), or filter from the
    /// first step with the mean of the gradients held so far (false).
    pub grokfast_warmup: bool,
}

impl Default for RunConfig {
    /// The default run: a+b mod 31 with x², L_{2,3} 1e-4 and the blog's doubling learning
    /// rate (0.05, ×2 at steps 1k..10k), 40k steps, width 8(p−1) = 240 (the exact
    /// max-margin construction's width). It reaches 100% accuracy within ~2k steps and a
    /// normalized margin within 0.1% of γ*; about 30 s on two Zen 4 cores.
    fn default() -> Self {
        RunConfig {
            seed: 0,
            dtype: Dtype::F32,
            models: 1,
            device: Device::Cpu,
            precision: Precision::Fp32,
            threads: 0,
            task: TaskConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            optimizer: OptimizerConfig::default(),
            per_model: PerModelConfig::default(),
        }
    }
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            op: Op::Add,
            group: None,
            heads: None,
            target_mod: None,
            p: 31,
            train_fraction: 1.0,
            split: SplitKind::Ordered,
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
            init_scale_out: 0.0,
            init: InitKind::Gaussian,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            loss: Loss::CrossEntropy,
            regularizer: RegularizerKind::L23,
            reg_strength: 1e-4,
            reg_q: 0.0,
            steps: 40_000,
            eval_every: 500,
            checkpoint_every: 10_000,
            spectra_every: 500,
            early_stop_patience: 0,
            early_stop_min_delta: 0.0,
            early_stop_start: 0,
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
            warmup_steps: 0,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: 0.0,
            grokfast: GrokfastKind::Ema,
            grokfast_alpha: 0.98,
            grokfast_lambda: 0.0,
            grokfast_window: 100,
            grokfast_warmup: true,
        }
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

    /// The group of `task.group`, parsed (`None` for an operation mod p). Fails on a
    /// name [`RunConfig::validate`] would refuse.
    pub fn group_name(&self) -> Result<Option<GroupName>> {
        self.task.group.as_deref().map(str::parse).transpose()
    }

    /// Size of the input (and output) vocabulary: |G| for a group, else p.
    pub fn n_tokens(&self) -> usize {
        match self.group_name() {
            Ok(Some(g)) => g.order(),
            // An unparsable name is refused by validate; p keeps the spec well-formed.
            _ => self.task.p,
        }
    }

    /// Number of output classes: the input vocabulary for an operation table or a group,
    /// the sum of the primes below p for `task.heads`, `target_mod` for one target.
    pub fn n_out(&self) -> usize {
        if self.task.heads.is_some() {
            crate::task::primes_below(self.task.p)
                .iter()
                .sum::<usize>()
                .max(1)
        } else if let Some(q) = self.task.target_mod {
            q.max(1)
        } else {
            self.n_tokens()
        }
    }

    /// Whether the task is seed 002's table (multi-task or one of its targets), whose
    /// labels are not an operation of the inputs' group: no Fourier spectra or γ*.
    pub fn is_base_p_task(&self) -> bool {
        self.task.heads.is_some() || self.task.target_mod.is_some()
    }

    /// The task in words for run descriptions: `group S4` or `add mod 31`.
    pub fn task_label(&self) -> String {
        match (&self.task.group, &self.task.heads, self.task.target_mod) {
            (Some(g), _, _) => format!("group {g}"),
            (_, Some(_), _) => format!("multi-task (x0+x1*p) mod primes < {}", self.task.p),
            (_, _, Some(q)) => format!("(x0+x1*p) mod {q}, p = {}", self.task.p),
            _ => format!("{} mod {}", self.task.op.name(), self.task.p),
        }
    }

    /// The model's full spec (the task fixes its input and output sizes).
    pub fn model_spec(&self) -> ModelSpec {
        ModelSpec {
            n_in: self.n_tokens(),
            n_out: self.n_out(),
            width: self.model.width,
            activation: self.model.activation,
            tied: self.model.tied,
            embed_dim: (self.model.embed_dim > 0).then_some(self.model.embed_dim),
            init_scale: self.model.init_scale,
        }
    }

    /// Every model's settings, model `k` at index `k`: the scalar keys, overridden by the
    /// `[per_model]` lists that are given. Call after [`RunConfig::validate`] (a list of
    /// the wrong length is an error there; here it would be cut short or ignored).
    pub fn model_settings(&self) -> Vec<ModelSettings> {
        let pm = &self.per_model;
        let pick = |list: &[f64], k: usize, scalar: f64| list.get(k).copied().unwrap_or(scalar);
        (0..self.models)
            .map(|k| ModelSettings {
                seed: pm.seed.get(k).copied().unwrap_or(self.seed),
                stream: if pm.seed.is_empty() { k as u64 } else { 0 },
                lr: pick(&pm.lr, k, self.optimizer.lr),
                weight_decay: pick(&pm.weight_decay, k, self.optimizer.weight_decay),
                reg_strength: pick(&pm.reg_strength, k, self.train.reg_strength),
                grokfast_lambda: pick(&pm.grokfast_lambda, k, self.optimizer.grokfast_lambda),
                init_scale: pick(&pm.init_scale, k, self.model.init_scale),
                train_fraction: pick(&pm.train_fraction, k, self.task.train_fraction),
            })
            .collect()
    }

    /// Every model's initial parameters, drawn from its seed, stream and scale
    /// ([`RunConfig::model_settings`]).
    pub fn init_params<F: crate::real::Real>(&self) -> Result<Params<F>> {
        let inits: Vec<ModelInit> = self
            .model_settings()
            .iter()
            .map(|s| ModelInit {
                seed: s.seed,
                stream: s.stream,
                init_scale: s.init_scale,
                init_scale_out: (self.model.init_scale_out > 0.0)
                    .then_some(self.model.init_scale_out),
                kind: self.model.init,
            })
            .collect();
        Params::init_each(&self.model_spec(), &inits)
    }

    /// The full operation table of `[task]` (every pair, before the train/test split,
    /// which [`crate::task::Split`] draws from `seed`).
    pub fn build_task(&self) -> Result<Task> {
        if self.task.heads.is_some() {
            return Task::multitask(self.task.p);
        }
        if let Some(q) = self.task.target_mod {
            return Task::mod_target(self.task.p, q);
        }
        match self.group_name()? {
            Some(g) => Group::build(&g).task(),
            None => Task::modular(self.task.op, self.task.p),
        }
    }

    /// The exponent q of the `l2k` regularizer: `train.reg_q`, or the activation's
    /// homogeneity degree when that is 0 (the matched norm of theory.md §4).
    pub fn reg_q(&self) -> f64 {
        if self.train.reg_q == 0.0 {
            self.model.activation.homogeneity()
        } else {
            self.train.reg_q
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_group_sets_the_table_and_excludes_op_and_p() {
        let c = RunConfig::from_toml("[task]\ngroup = \"S4\"\n").unwrap();
        assert_eq!(
            (c.n_tokens(), c.model_spec().n_in, c.model_spec().n_out),
            (24, 24, 24)
        );
        assert_eq!(c.build_task().unwrap().len(), 576);
        assert_eq!(c.task_label(), "group S4");
        // Round trip: the group survives, and a modular config writes no group key.
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c);
        assert!(!RunConfig::default().to_toml().contains("group"));
        let err = |text: &str| RunConfig::from_toml(text).unwrap_err().to_string();
        let e = err("[task]\ngroup = \"S9\"\n");
        assert!(e.contains("task.group") && e.contains("too big"), "{e}");
        let e = err("[task]\ngroup = \"S4\"\nop = \"mul\"\n");
        assert!(e.contains("task.op = mul") && e.contains("S4"), "{e}");
        let e = err("[task]\ngroup = \"S4\"\np = 7\n");
        assert!(e.contains("task.p = 7") && e.contains("|G| = 24"), "{e}");
        let e = err("[task]\ngroup = \"S3\"\nsplit = \"unordered\"\n");
        assert!(e.contains("task.split") && e.contains("not abelian"), "{e}");
        let ok = "[task]\ngroup = \"C5xC5\"\nsplit = \"unordered\"\n";
        assert_eq!(RunConfig::from_toml(ok).unwrap().n_tokens(), 25);
    }

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

    /// Every bad Grokfast setting is named with its key and value; an unknown filter
    /// kind is a parse error naming the key.
    #[test]
    fn bad_grokfast_settings_are_named() {
        let named = |text: &str, want: &str| {
            let e = RunConfig::from_toml(&format!("[optimizer]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text}: {e}");
        };
        named(
            "grokfast = \"ma\"\ngrokfast_window = 0",
            "optimizer.grokfast_window = 0",
        );
        named("grokfast_lambda = -2.0", "optimizer.grokfast_lambda = -2");
        named("grokfast_alpha = 1.0", "optimizer.grokfast_alpha = 1");
        named("grokfast_alpha = -0.5", "optimizer.grokfast_alpha = -0.5");
        named("grokfast = \"median\"", "grokfast");
        named("grokfast_window = -3", "grokfast_window");
        let e = RunConfig::from_toml("models = 2\n[per_model]\ngrokfast_lambda = [1.0, -1.0]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("per_model.grokfast_lambda[1] = -1"), "{e}");
        let c =
            RunConfig::from_toml("[optimizer]\ngrokfast = \"ma\"\ngrokfast_window = 7\n").unwrap();
        assert_eq!(c.optimizer.grokfast, GrokfastKind::Ma);
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c, "round trip");
    }

    #[test]
    fn reg_q_defaults_to_the_activation_degree_and_is_checked() {
        let with = |text: &str| RunConfig::from_toml(text);
        let c = with("[train]\nregularizer = \"l2k\"\n").unwrap();
        assert_eq!(c.reg_q(), 3.0, "x²");
        let c = with("[model]\nactivation = \"relu\"\n[train]\nregularizer = \"l2k\"\n").unwrap();
        assert_eq!(c.reg_q(), 2.0, "ReLU");
        let c = with("[train]\nregularizer = \"l2k\"\nreg_q = 2.5\n").unwrap();
        assert_eq!(c.reg_q(), 2.5);
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c, "round trip");
        for bad in ["0.5", "-3.0", "nan", "inf"] {
            let e = with(&format!("[train]\nregularizer = \"l2k\"\nreg_q = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("train.reg_q") && e.contains(">= 1"),
                "{bad}: {e}"
            );
        }
        let e = with("[train]\nregularizer = \"l23\"\nreg_q = 3.0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("train.reg_q = 3") && e.contains("\"l23\""),
            "{e}"
        );
    }
}
