//! Where a [`RunConfig`] comes from: named presets for the setups of the seed material,
//! TOML files merged over them, and `section.key=value` overrides.
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

mod keys;

pub use keys::{key_doc, key_reference, keys_with_defaults, KEY_DOCS};

/// The presets: name and one-line description (with its source).
pub const PRESETS: &[(&str, &str)] = &[
    (
        "default",
        "a+b mod 31, x², width 240 = 8(p−1), GD lr 0.05 doubled at 1k..10k, L_{2,3} 1e-4, 40k \
         steps: the blog recipe (seed 000) at a size that runs in under half a minute on 2 cores; \
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
    (
        "multitask",
        "seed 002's multi-task table at p = 37 (seed 002: 113): inputs x0, x1 < 37, one head \
         per prime q < 37 (11 heads, 160 outputs) with target (x0 + 37·x1) mod q, each head's \
         CE ÷ ln q, summed; train fraction 0.3 as in seed 002; x², width 256, GD lr 0.05 \
         doubled at 1k, 2k, 3k, L_{2,3} 1e-3, 15k steps. Per-head accuracy and grokking step \
         in metrics.jsonl and analyze; see the README's Multi-task section for which heads \
         generalize",
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
///   learning rate (`gromov_scaling`), which is exact for GD. The rate is our choice.
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
        "multitask" => {
            c.task.heads = Some("primes".into());
            c.task.p = 37;
            c.task.train_fraction = 0.3;
            c.model.width = 256;
            c.train.reg_strength = 1e-3;
            c.train.steps = 15_000;
            c.train.eval_every = 250;
            // The default's doubling stops at 0.4: at 0.05·2^10 the 160-output x² net
            // diverged (p = 37, L_{2,3} 1e-3, step 7022).
            c.optimizer.lr_milestones = vec![1000, 2000, 3000];
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
mod tests;
