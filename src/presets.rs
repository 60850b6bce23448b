//! Where a [`RunConfig`] comes from: named presets for the setups of the seed material,
//! TOML files merged over them, and `section.key=value` overrides.
//!
//! (Over 600 lines: the seven presets with their sources, `KEY_DOCS` (the reference of every
//! config key that `train --help` prints), the merging of files and overrides, and their
//! tests — all of it the one job of saying where a config comes from.)
//!
//! Resolution order (what the `train` binary does, and what any other front end should
//! do through [`resolve`]): a preset (default: `default`) → a TOML file, merged key by key
//! over the preset so it can set just a few keys → overrides, in order. Every step checks
//! keys against the schema (the keys of [`RunConfig::default`]) and names the offending
//! key; the result is validated with [`RunConfig::validate`].
//!
//! [`KEY_DOCS`] documents every key; [`key_reference`] renders it with the defaults
//! (taken from `RunConfig::default()` serialized, so the list never goes stale).

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::kinds::Loss;
use crate::kinds::{OptimizerKind, RegularizerKind};
use crate::model::Activation;
use crate::task::SplitKind;
use serde::Deserialize;
use std::path::Path;

/// The presets: name and one-line description (with its source).
pub const PRESETS: &[(&str, &str)] = &[
    (
        "default",
        "a+b mod 31, x², width 240 = 8(p−1), GD lr 0.05 doubled at 1k..10k, L_{2,3} 1e-4, 40k \
         steps: the blog recipe (seed 000) at a size that runs in about a minute on 2 cores; \
         100% accuracy within ~2k steps, then γ/γ* → 1",
    ),
    (
        "blog-x2",
        "seed 000 (margin-maximization blog), x²: a+b mod 71, width 500, full table, GD lr \
         0.05 doubled at steps 1k, 2k, ..., 10k, L_{2,3} 1e-4, 40k steps",
    ),
    (
        "blog-relu",
        "seed 000, ReLU: as blog-x2 with σ = ReLU (the blog's ReLU figure; same L_{2,3} 1e-4 \
         as theory.md §3; the ReLU-matched L2 with --set train.regularizer=l2). γ* does not \
         apply to ReLU",
    ),
    (
        "nanda",
        "Nanda et al. (progress measures) hyperparameters on this MLP: a+b mod 113, train \
         fraction 0.3, AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), full batch, CE, no \
         other regularizer, 40k steps; an untied ReLU MLP of width 512 stands in for their \
         1-layer transformer (our choice). Groks: 100% train within 1k steps, test \
         accuracy near 0 for thousands of steps, then 100%",
    ),
    (
        "explainer",
        "seed 003 (PAIR grokking explainer) main model, from its training colab: a+b mod 67, \
         tied ReLU MLP with 24 neurons over a factored tied embedding of size 500, unordered \
         split (40% of the pairs a ≤ b, mirrors on the same side), the colab's init, AdamW \
         lr 1e-3, weight decay 1, betas (0.9, 0.98), full batch, 50k steps. Groks: 100% \
         train by step 250, test at chance (~1.5%) to ~5k, ≥ 95% at ~22k, 100% by 35k, on \
         4 key frequencies",
    ),
    (
        "gromov-mse",
        "Gromov (2023), 'Grokking modular arithmetic': x², MSE loss against one-hot, plain \
         full-batch GD with no regularization, a+b mod 97, width 512, train fraction 0.5; \
         his 1/(D·N) output scale as init std (DN)^(−1/3) and lr η·(DN)^(−2/3), D = 2p, \
         N = 512, 5k steps. 100% train at ~1k steps, 100% test ~200 steps later",
    ),
    (
        "s4-x2",
        "finite group (seed 001, universality): a·b in S4 (24 elements), x², width 126 = \
         theory.md §2's minimum for S4's max-margin solution, the default's GD recipe (lr \
         0.05 doubled at 1k..10k, L_{2,3} 1e-4, 40k steps); every neuron ends in one irrep, \
         γ/γ* ≈ 0.86 (γ* = 2.0766e-3) in ~15 s on 2 cores",
    ),
];

/// The names of the presets, comma-separated (for error messages).
pub fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The config of a named preset.
///
/// Notes on fidelity (where a source's setup cannot be copied exactly):
/// - `explainer` follows its colab (seed 003's `MLP_Modular_Addition.ipynb`): unordered
///   split of the pairs a ≤ b (`task.split = "unordered"`; the colab trains on the pairs
///   a ≤ b only, this engine on both orders of each, which weighs the diagonal half as
///   much), embedding std √(2/67) (haiku VarianceScaling(2)), input projection std
///   1/√500 and output projection std 1/√24 (haiku Linear defaults; haiku draws
///   truncated normals, this engine plain ones). Its loss is the cross-entropy ÷ 67,
///   reproduced exactly by AdamW's ε ×67. Its split is seeded by numpy, so the pairs
///   differ.
/// - `nanda`: Nanda et al. train a one-layer transformer; the optimizer, split and
///   modulus are theirs, the model is this engine's untied, unfactored ReLU MLP (width
///   512 is our choice).
/// - `gromov-mse`: Gromov's 1/(D·N) output factor is carried by the init and the
///   learning rate ([`gromov_scaling`]), which is exact for GD. The rate is our choice.
///   Overriding `task.p` or `model.width` does not rescale them.
pub fn preset(name: &str) -> Result<RunConfig> {
    let mut c = RunConfig::default();
    match name {
        "default" => {}
        "blog-x2" | "blog-relu" => {
            c.task.p = 71;
            c.model.width = 500;
            if name == "blog-relu" {
                c.model.activation = Activation::Relu;
            }
            // Optimizer (GD, 0.05 ×2 at 1k..10k), L_{2,3} 1e-4 and 40k steps are the
            // default's, which is this recipe.
            c.train.eval_every = 500;
        }
        "nanda" => {
            c.task.p = 113;
            c.task.train_fraction = 0.3;
            c.model.width = 512;
            c.model.activation = Activation::Relu;
            c.train.regularizer = RegularizerKind::None;
            c.train.reg_strength = 0.0;
            c.train.steps = 40_000;
            c.train.eval_every = 250;
            adamw(&mut c, 1e-3, 1.0);
        }
        "explainer" => {
            c.task.p = 67;
            c.task.train_fraction = 0.4;
            c.model.width = EXPLAINER_WIDTH;
            c.model.activation = Activation::Relu;
            c.model.tied = true;
            c.model.embed_dim = EXPLAINER_EMBED;
            // haiku's VarianceScaling(2) on the 67 × 500 embedding: std √(2/67).
            c.model.init_scale = (2.0 / 67.0f64).sqrt();
            // haiku's Linear default on the output projection, fan-in m = 24: std 1/√24.
            c.model.init_scale_out = 1.0 / (EXPLAINER_WIDTH as f64).sqrt();
            c.task.split = SplitKind::Unordered;
            c.train.regularizer = RegularizerKind::None;
            c.train.reg_strength = 0.0;
            c.train.steps = 50_000;
            c.train.eval_every = 250;
            adamw(&mut c, 1e-3, 1.0);
            // The colab's loss is the cross-entropy divided by 67 (a mean over classes
            // too); Adam on g/67 with ε is exactly Adam on g with 67·ε.
            c.optimizer.eps = 67.0 * 1e-8;
        }
        "gromov-mse" => {
            c.task.p = GROMOV_P;
            c.task.train_fraction = 0.5;
            c.model.width = GROMOV_WIDTH;
            c.model.activation = Activation::Square;
            let (init_scale, lr) = gromov_scaling(GROMOV_P, GROMOV_WIDTH);
            c.model.init_scale = init_scale;
            c.train.loss = Loss::Mse;
            c.train.regularizer = RegularizerKind::None;
            c.train.reg_strength = 0.0;
            c.train.steps = 5_000;
            c.train.eval_every = 100;
            c.optimizer.kind = OptimizerKind::Gd;
            c.optimizer.lr = lr;
            c.optimizer.lr_milestones = Vec::new();
        }
        "s4-x2" => {
            c.task.group = Some("S4".into());
            c.model.width = 126;
        }
        _ => {
            return Err(Error::config(
                "preset",
                name,
                format!("unknown preset; expected one of {}", preset_names()),
            ))
        }
    }
    Ok(c)
}

/// Hidden width and embedding size of seed 003's main model (its colab's `hidden_size`
/// and `embed_size`).
const EXPLAINER_WIDTH: usize = 24;
const EXPLAINER_EMBED: usize = 500;

/// Modulus and width of the `gromov-mse` preset (width ≥ 200, where Gromov's analytic
/// solution is 100 % accurate at p = 97).
const GROMOV_P: usize = 97;
const GROMOV_WIDTH: usize = 512;

/// Gromov's learning rate in his units, per D·N (see [`gromov_scaling`]); our choice,
/// from a sweep of the rate here over 0.5 … 512 (η/(D·N) ≈ 0.01 … 11) for 1.5k steps:
/// only ≈ 512 fit the training set by then, and the full run at it is stable.
const GROMOV_ETA_PER_DN: f64 = 11.0;

/// Init std and learning rate that make this engine's unscaled `f = Σ_i w_i σ(u_i[a] +
/// v_i[b])` follow Gromov's `f = (1/(D·N))·W₂(W₁x)²` (unit-variance weights, GD at rate η,
/// D = 2p inputs, N = m neurons) exactly: f is 3-homogeneous, so θ = c·θ_G with
/// c³ = 1/(D·N) gives the same function, c = (DN)^{−1/3}; the gradient scales by 1/c,
/// so GD at rate η on θ_G is GD at rate c²·η = η·(DN)^{−2/3} on θ. With η = 11·D·N
/// (mean-field scaling of the rate with width) the rate here is 11·(DN)^{1/3}.
fn gromov_scaling(p: usize, width: usize) -> (f64, f64) {
    let dn = (2 * p * width) as f64;
    let c = dn.powf(-1.0 / 3.0);
    (c, GROMOV_ETA_PER_DN * dn * c * c)
}

fn adamw(c: &mut RunConfig, lr: f64, weight_decay: f64) {
    c.optimizer.kind = OptimizerKind::Adamw;
    c.optimizer.lr = lr;
    c.optimizer.lr_milestones = Vec::new();
    c.optimizer.lr_factor = 1.0;
    c.optimizer.weight_decay = weight_decay;
    c.optimizer.beta1 = 0.9;
    c.optimizer.beta2 = 0.98;
}

/// What every config key means (dotted names; top-level keys have no section).
pub const KEY_DOCS: &[(&str, &str)] = &[
    (
        "seed",
        "seed of the initialization and of the train/test split",
    ),
    (
        "dtype",
        "element type: f32 (fast) or f64 (reference precision)",
    ),
    (
        "models",
        "number of independent models trained together (model k uses stream k of the seed)",
    ),
    ("device", "cpu, cuda or cuda:N"),
    (
        "precision",
        "CUDA product arithmetic: fp32 (exact), tf32 or bf16 (tensor cores)",
    ),
    ("threads", "CPU worker threads (0 = all cores)"),
    (
        "task.op",
        "the table: add, sub, mul, div (mul/div need p prime) or quad",
    ),
    ("task.p", "the modulus (inputs and labels are 0..p-1)"),
    (
        "task.group",
        "a finite group's table a·b instead of task.op/task.p: C<n>, D<n> (order 2n), S<n>, A<n>, products joined by x (e.g. S4, D7, A4, C5xC5); at most 128 elements",
    ),
    (
        "task.train_fraction",
        "fraction of the p² pairs trained on, in (0, 1]; the rest is the test set",
    ),
    (
        "task.split",
        "ordered (each pair (a,b) drawn alone) or unordered (pairs {a,b} drawn, (a,b) and (b,a) on one side; commutative ops only — with a tied model an ordered split leaks mirror pairs into the test set)",
    ),
    ("model.width", "hidden neurons m"),
    ("model.activation", "σ: square (x²), relu or powK (x^K)"),
    ("model.tied", "tied embeddings: v_i = u_i"),
    (
        "model.embed_dim",
        "factored embedding dimension d, U = (E·P_u)ᵀ etc. (0 = not factored)",
    ),
    (
        "model.init_scale",
        "std of the Gaussian init of U, V, W (of E when factored)",
    ),
    (
        "model.init_scale_out",
        "std of the init of W (of P_out when factored, W = E·P_out); 0 = the init_scale rule (init_scale for W, 1/√d for P_out)",
    ),
    (
        "model.init",
        "gaussian (std init_scale) or fourier-sparse (each neuron's u, v, w one cosine of amplitude init_scale at its own frequency, the peer's single-freq init; unfactored, p ≥ 3)",
    ),
    ("train.loss", "cross_entropy or mse (against one-hot)"),
    (
        "train.regularizer",
        "none, l2 ((λ/2)Σ‖·‖²), l23 (λ Σ_i n_i^{3/2}, n_i = ‖u_i‖²+‖v_i‖²+‖w_i‖²) or l2k (λ Σ_i n_i^{q/2}, q = train.reg_q)",
    ),
    ("train.reg_strength", "λ of the regularizer"),
    (
        "train.reg_q",
        "exponent q ≥ 1 of l2k; 0 = the activation's degree, the margin's norm (x² 3, x^k k+1, ReLU 2)",
    ),
    ("train.steps", "full-batch steps to take"),
    (
        "train.eval_every",
        "evaluate (loss, accuracy, margin) and log to metrics.jsonl every N steps",
    ),
    (
        "train.checkpoint_every",
        "write a checkpoint every N steps (0 = only at the end)",
    ),
    (
        "train.spectra_every",
        "record every neuron's Fourier spectrum, margin and accuracy to spectra.jsonl every N steps (0 = never)",
    ),
    (
        "train.early_stop_patience",
        "freeze a model whose test loss (train loss without a split) has not improved by early_stop_min_delta for N steps (a multiple of eval_every; 0 = never)",
    ),
    (
        "train.early_stop_min_delta",
        "the loss improvement that resets the early-stop patience",
    ),
    (
        "train.early_stop_start",
        "no early stop before this step",
    ),
    (
        "optimizer.kind",
        "gd (full-batch gradient descent) or adamw",
    ),
    ("optimizer.lr", "learning rate"),
    (
        "optimizer.lr_milestones",
        "steps at which the learning rate is multiplied by lr_factor",
    ),
    (
        "optimizer.lr_factor",
        "learning-rate multiplier at each milestone",
    ),
    (
        "optimizer.warmup_steps",
        "linear warm-up: the learning rate times step/N before step N (0 = none)",
    ),
    ("optimizer.beta1", "AdamW β1"),
    ("optimizer.beta2", "AdamW β2"),
    ("optimizer.eps", "AdamW ε"),
    (
        "optimizer.weight_decay",
        "AdamW decoupled weight decay (θ ← θ·(1 − lr·wd))",
    ),
    (
        "optimizer.grokfast",
        "Grokfast filter: ema (μ ← αμ + (1−α)g) or ma (mean of the last grokfast_window gradients)",
    ),
    ("optimizer.grokfast_alpha", "Grokfast EMA factor α"),
    (
        "optimizer.grokfast_lambda",
        "Grokfast amplification λ (0 = filter off)",
    ),
    (
        "optimizer.grokfast_window",
        "gradients the Grokfast-MA filter averages (this step's included)",
    ),
    (
        "optimizer.grokfast_warmup",
        "Grokfast-MA: no filtering until the window is full (true, as the reference) or the mean so far (false)",
    ),
];

/// The schema: `RunConfig::default()` as a TOML table.
fn schema() -> toml::Table {
    match toml::Value::try_from(RunConfig::default()).expect("a RunConfig serializes") {
        toml::Value::Table(t) => t,
        _ => unreachable!("a struct serializes to a table"),
    }
}

/// Every config key (dotted) with its default value, in the order of `config.toml`
/// (the structs' field order: top-level keys, then `[task]`, `[model]`, `[train]`,
/// `[optimizer]`).
pub fn keys_with_defaults() -> Vec<(String, toml::Value)> {
    let schema = schema();
    let lookup = |key: &str| -> Option<toml::Value> {
        match key.split_once('.') {
            None => schema.get(key).cloned(),
            Some((s, k)) => schema.get(s).and_then(|t| t.get(k)).cloned(),
        }
    };
    let mut out: Vec<(String, toml::Value)> = Vec::new();
    let mut section = String::new();
    for line in RunConfig::default().to_toml().lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, _)) = line.split_once(" = ") {
            let key = format!("{section}{}", key.trim());
            if let Some(v) = lookup(&key) {
                out.push((key, v));
            }
        }
    }
    // Anything the text walk missed (it should miss nothing), in table order.
    for (k, v) in &schema {
        let mut add = |key: String, v: &toml::Value| {
            if !out.iter().any(|(x, _)| *x == key) {
                out.push((key, v.clone()));
            }
        };
        match v {
            toml::Value::Table(t) => t.iter().for_each(|(n, v)| add(format!("{k}.{n}"), v)),
            v => add(k.clone(), v),
        }
    }
    // Optional keys the default leaves out of its TOML (absent = unused), typed by an
    // empty value, after the key they replace.
    if !out.iter().any(|(k, _)| k == "task.group") {
        let at = out
            .iter()
            .position(|(k, _)| k == "task.op")
            .map_or(out.len(), |i| i + 1);
        out.insert(
            at,
            ("task.group".into(), toml::Value::String(String::new())),
        );
    }
    out
}

/// A default value as written in the help (floats in Rust's shortest form: 1e-8).
fn show_value(v: &toml::Value) -> String {
    match v {
        toml::Value::Float(x) => format!("{x:?}"),
        v => v.to_string(),
    }
}

/// The meaning of a key, if documented.
pub fn key_doc(key: &str) -> Option<&'static str> {
    KEY_DOCS.iter().find(|(k, _)| *k == key).map(|(_, d)| *d)
}

/// A help text listing every key, its default and its meaning.
pub fn key_reference() -> String {
    let keys = keys_with_defaults();
    let cells: Vec<String> = keys
        .iter()
        .map(|(k, v)| format!("{k} = {}", show_value(v)))
        .collect();
    let width = cells
        .iter()
        .map(|c| c.chars().count())
        .filter(|&n| n <= 36)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for ((key, _), cell) in keys.iter().zip(&cells) {
        let doc = key_doc(key).unwrap_or("");
        let pad = width.saturating_sub(cell.chars().count());
        if cell.chars().count() > width {
            out.push_str(&format!("  {cell}\n  {:width$}  {doc}\n", ""));
        } else {
            out.push_str(&format!("  {cell}{:pad$}  {doc}\n", ""));
        }
    }
    out
}

/// The default value of a key (its type is the key's type), or an error naming the valid
/// keys nearby, e.g. `invalid model.widht = 3: unknown key; [model] has width, ...`.
fn check_key(key: &str, raw: &str) -> Result<toml::Value> {
    let keys = keys_with_defaults();
    if let Some((_, v)) = keys.iter().find(|(k, _)| k == key) {
        return Ok(v.clone());
    }
    let in_section = |section: &str| -> Vec<String> {
        keys.iter()
            .filter_map(|(k, _)| {
                k.strip_prefix(section)
                    .and_then(|r| r.strip_prefix('.'))
                    .map(str::to_string)
            })
            .collect()
    };
    let top: Vec<&str> = keys
        .iter()
        .filter(|(k, _)| !k.contains('.'))
        .map(|(k, _)| k.as_str())
        .collect();
    let mut sections: Vec<&str> = Vec::new();
    for (k, _) in &keys {
        if let Some((s, _)) = k.split_once('.') {
            if !sections.contains(&s) {
                sections.push(s);
            }
        }
    }
    let reason = match key.split_once('.') {
        None if sections.contains(&key) => format!(
            "[{key}] is a section; set one of its keys: {}",
            in_section(key)
                .iter()
                .map(|k| format!("{key}.{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "unknown key; top-level keys are {}, and the sections {} have their own (write section.key)",
            top.join(", "),
            sections.join(", ")
        ),
        Some((section, _)) if sections.contains(&section) => format!(
            "unknown key; [{section}] has {}",
            in_section(section).join(", ")
        ),
        Some((section, _)) => format!(
            "unknown section '{section}'; sections are {}, and top-level keys {}",
            sections.join(", "),
            top.join(", ")
        ),
    };
    Err(Error::config(key, raw, reason))
}

/// Parses an override value as TOML (`[1, 2]`, `1e-3`, `true`, `"x"`), falling back to
/// a plain string for a bare word that is not TOML.
fn parse_value(raw: &str) -> Option<toml::Value> {
    let wrapped = format!("v = {raw}");
    toml::from_str::<toml::Table>(&wrapped)
        .ok()
        .and_then(|mut t| t.remove("v"))
}

/// Coerces an override's value to the type the schema has for its key.
fn coerce(key: &str, raw: &str, like: &toml::Value) -> Result<toml::Value> {
    let parsed = parse_value(raw);
    let bad = |what: &str| Error::config(key, raw, format!("expected {what}"));
    Ok(match like {
        toml::Value::String(_) => match parsed {
            Some(toml::Value::String(s)) => toml::Value::String(s),
            _ => toml::Value::String(raw.to_string()),
        },
        toml::Value::Integer(_) => match parsed {
            Some(toml::Value::Integer(i)) => toml::Value::Integer(i),
            _ => return Err(bad("an integer")),
        },
        toml::Value::Float(_) => match parsed {
            Some(toml::Value::Float(x)) => toml::Value::Float(x),
            Some(toml::Value::Integer(i)) => toml::Value::Float(i as f64),
            _ => return Err(bad("a number (nan and inf are written nan, inf)")),
        },
        toml::Value::Boolean(_) => match parsed {
            Some(toml::Value::Boolean(b)) => toml::Value::Boolean(b),
            _ => return Err(bad("true or false")),
        },
        toml::Value::Array(_) => match parsed {
            Some(v @ toml::Value::Array(_)) => v,
            _ => return Err(bad("an array, e.g. [1000, 2000]")),
        },
        _ => parsed.ok_or_else(|| bad("a TOML value"))?,
    })
}

/// Sets `key` (dotted) in a config table.
fn set_key(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((section, name)) => {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(name.to_string(), value);
            }
        }
    }
}

/// Merges `over` into `base` key by key (tables recursively).
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Deserializes a table into a config without validating it.
fn from_table(table: &toml::Table) -> std::result::Result<RunConfig, String> {
    RunConfig::deserialize(toml::Value::Table(table.clone()))
        .map_err(|e| e.to_string().trim().replace('\n', " "))
}

/// Turns toml's multi-line error report into `line L, column C: message`.
fn compact_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Reads a TOML config file as a table of overrides, checking its syntax and its keys
/// (both reported with the line).
pub fn read_config_file(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.into(),
        source: e,
    })?;
    let bad = |reason: String| Error::BadFile {
        path: path.into(),
        reason,
    };
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| bad(compact_toml_error(&e, &text)))?;
    // Keys and types: deserializing the file alone (every section has defaults) reports
    // an unknown key or a wrong type with its line.
    if let Err(e) = toml::from_str::<RunConfig>(&text) {
        return Err(bad(compact_toml_error(&e, &text)));
    }
    Ok(table)
}

/// An override `key=value` as given on the command line.
pub fn parse_assignment(s: &str) -> Result<(String, String)> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        Error::config(
            "--set",
            s,
            "expected section.key=value (e.g. task.p=23; top-level keys have no section)",
        )
    })?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// Resolves a config: `preset` → `file` (merged over it) → `overrides` (`key`, raw
/// value; applied in order), then validates it.
pub fn resolve(
    preset_name: &str,
    file: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<RunConfig> {
    resolve_over(preset(preset_name)?, file, overrides)
}

/// [`resolve`] starting from a config in hand instead of a preset, for front ends that
/// refine a config step by step (the Python package's `Config.with_`): `file` is merged
/// over `base`, then `overrides` are applied, each checked as [`resolve`] checks them.
pub fn resolve_over(
    base: RunConfig,
    file: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<RunConfig> {
    let mut table = match toml::Value::try_from(&base).expect("a RunConfig serializes") {
        toml::Value::Table(t) => t,
        _ => unreachable!("a struct serializes to a table"),
    };
    if let Some(path) = file {
        let over = read_config_file(path)?;
        merge(&mut table, over);
        from_table(&table).map_err(|e| Error::BadFile {
            path: path.into(),
            reason: e,
        })?;
    }
    for (key, raw) in overrides {
        let like = check_key(key, raw)?;
        let value = coerce(key, raw, &like)?;
        set_key(&mut table, key, value);
        from_table(&table).map_err(|e| {
            // Keep the reason only: "invalid activation = tanh: expected ... in `model.activation`".
            let e = e.split(" in `").next().unwrap_or(&e).to_string();
            let marker = format!("= {raw}: ");
            let reason = e
                .find(&marker)
                .map_or(e.clone(), |i| e[i + marker.len()..].to_string());
            Error::config(key, raw, reason)
        })?;
    }
    let config = from_table(&table).map_err(|e| Error::config("config", "TOML", e))?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error message of resolving `preset_name` with `overrides` (which must fail).
    fn resolve_error(preset_name: &str, overrides: &[(&str, &str)]) -> String {
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(preset_name, None, &overrides)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_key_is_documented_and_every_doc_is_a_key() {
        let keys: Vec<String> = keys_with_defaults().into_iter().map(|(k, _)| k).collect();
        for k in &keys {
            assert!(key_doc(k).is_some(), "config key '{k}' has no description");
        }
        for (k, _) in KEY_DOCS {
            assert!(
                keys.iter().any(|x| x == k),
                "KEY_DOCS names '{k}', not a key"
            );
        }
        let reference = key_reference();
        for k in &keys {
            assert!(reference.contains(k.as_str()), "{k} missing from the help");
        }
    }

    #[test]
    fn every_preset_is_valid_and_listed() {
        for (name, _) in PRESETS {
            let c = preset(name).unwrap();
            c.validate()
                .unwrap_or_else(|e| panic!("preset {name}: {e}"));
        }
        assert_eq!(preset("default").unwrap(), RunConfig::default());
        let e = preset("blog").unwrap_err().to_string();
        assert!(e.contains("blog") && e.contains("blog-x2"), "{e}");
    }

    #[test]
    fn overrides_parse_as_toml_values_and_are_type_checked() {
        let set = |k: &str, v: &str| (k.to_string(), v.to_string());
        let c = resolve(
            "blog-x2",
            None,
            &[
                set("optimizer.lr_milestones", "[100, 200]"),
                set("model.activation", "relu"),
                set("optimizer.lr", "1"),
                set("seed", "7"),
                set("device", "cpu"),
            ],
        )
        .unwrap();
        assert_eq!(c.optimizer.lr_milestones, vec![100, 200]);
        assert_eq!(c.model.activation, Activation::Relu);
        assert_eq!(c.optimizer.lr, 1.0);
        assert_eq!(c.seed, 7);
        assert_eq!(c.task.p, 71);

        let e = resolve_error("default", &[("model.widht", "3")]);
        assert!(e.contains("model.widht") && e.contains("width"), "{e}");
        let e = resolve_error("default", &[("modle.width", "3")]);
        assert!(e.contains("modle") && e.contains("model"), "{e}");
        let e = resolve_error("default", &[("task.p", "abc")]);
        assert!(e.contains("task.p = abc"), "{e}");
        let e = resolve_error("default", &[("task.op", "pow")]);
        assert!(e.contains("task.op = pow"), "{e}");
        let e = resolve_error("default", &[("optimizer.lr", "nan")]);
        assert!(e.contains("optimizer.lr = NaN"), "{e}");
    }

    #[test]
    fn a_file_sets_only_its_keys_over_the_preset() {
        let dir = std::env::temp_dir().join(format!("clockwork-presets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.toml");
        std::fs::write(&path, "seed = 3\n[model]\nwidth = 64\n").unwrap();
        let c = resolve(
            "explainer",
            Some(&path),
            &[("train.steps".into(), "10".into())],
        )
        .unwrap();
        assert_eq!((c.seed, c.model.width, c.train.steps), (3, 64, 10));
        assert_eq!((c.task.p, c.model.embed_dim), (67, 500));

        std::fs::write(&path, "[model]\nwidth = 64\nwidht = 3\n").unwrap();
        let e = resolve("default", Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("widht"), "{e}");
        std::fs::write(&path, "[model]\nwidth = = 64\n").unwrap();
        let e = resolve("default", Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn explainer_follows_its_colab() {
        let c = preset("explainer").unwrap();
        assert_eq!(c.task.split, SplitKind::Unordered);
        assert_eq!((c.task.p, c.model.width, c.model.embed_dim), (67, 24, 500));
        assert!(c.model.tied);
        assert!((c.optimizer.eps - 6.7e-7).abs() < 1e-20);
        // The draws: E std √(2/67), P_u std 1/√500 (the default rule), P_out std 1/√24.
        let params = c.init_params::<f64>().unwrap();
        let std = |name: &str| {
            let t = params.tensor(0, name).unwrap();
            (t.iter().map(|x| x * x).sum::<f64>() / t.len() as f64).sqrt()
        };
        for (name, want) in [
            ("embed", (2.0f64 / 67.0).sqrt()),
            ("proj_u", 1.0 / 500f64.sqrt()),
            ("proj_out", 1.0 / 24f64.sqrt()),
        ] {
            let got = std(name);
            assert!(
                (got / want - 1.0).abs() < 0.03,
                "{name}: std {got}, want {want}"
            );
        }
        // Without init_scale_out, P_out keeps the 1/√d rule.
        let mut plain = c.clone();
        plain.model.init_scale_out = 0.0;
        let t = plain
            .init_params::<f64>()
            .unwrap()
            .tensor(0, "proj_out")
            .unwrap();
        let got = (t.iter().map(|x| x * x).sum::<f64>() / t.len() as f64).sqrt();
        assert!((got * 500f64.sqrt() - 1.0).abs() < 0.03, "{got}");
    }

    #[test]
    fn gromov_scaling_is_his_output_factor() {
        let (c, lr) = gromov_scaling(97, 512);
        let dn = (2 * 97 * 512) as f64;
        // c³ = 1/(D·N): his f with unit weights is this f with weights c.
        assert!((c.powi(3) * dn - 1.0).abs() < 1e-12);
        // lr = η·c² with η = GROMOV_ETA_PER_DN·D·N.
        assert!((lr / (GROMOV_ETA_PER_DN * dn * c * c) - 1.0).abs() < 1e-12);
        let p = preset("gromov-mse").unwrap();
        assert_eq!((p.model.init_scale, p.optimizer.lr), (c, lr));
        assert_eq!(p.train.regularizer, RegularizerKind::None);
        assert_eq!(p.train.loss, Loss::Mse);
    }

    #[test]
    fn an_unordered_split_of_a_non_commutative_op_is_refused() {
        let set = |k: &str, v: &str| (k.to_string(), v.to_string());
        let e = resolve_error("explainer", &[("task.op", "sub")]);
        assert!(e.contains("task.split") && e.contains("sub"), "{e}");
        let e = resolve_error("default", &[("task.split", "sideways")]);
        assert!(e.contains("task.split = sideways"), "{e}");
        let c = resolve("default", None, &[set("task.split", "unordered")]).unwrap();
        assert_eq!(c.task.split, SplitKind::Unordered);
        let e = resolve_error("default", &[("model.init_scale_out", "-1")]);
        assert!(e.contains("model.init_scale_out"), "{e}");
    }
}
