//! The reference of every config key: [`KEY_DOCS`] (what `train --help` prints),
//! each key with its default, and lookups by name.

use super::*;

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
        "task.heads",
        "\"primes\": seed 002's multi-task table: inputs x0, x1 < p (p prime), one output head per prime q < p with target (x0 + x1·p) mod q, each head's CE ÷ ln q, summed; per-head loss/accuracy in metrics.jsonl",
    ),
    (
        "task.target_mod",
        "one of the multi-task targets alone: label (x0 + x1·p) mod q for this prime q < p (n_out = q)",
    ),
    (
        "task.train_fraction",
        "fraction of the p² pairs trained on, in (0, 1]; the rest is the test set",
    ),
    (
        "task.split",
        "ordered (each pair (a,b) drawn alone) or unordered (pairs {a,b} drawn, (a,b) and (b,a) on one side; commutative ops only — with a tied model an ordered split leaks mirror pairs into the test set)",
    ),
    (
        "task.bits",
        "a bit-string task instead of a table: n input bits (1..32), label = parity of the first task.parity_k bits, 2 classes, dense first layer; the full population of 2^n strings (n <= 22) unless task.train_size",
    ),
    ("task.parity_k", "bit-string tasks: bits whose parity is the label (default 3)"),
    (
        "task.encoding",
        "bit-string tasks: pm1 (bit 0 -> +1, 1 -> -1; default) or 01",
    ),
    (
        "task.train_size",
        "bit-string tasks: train on N sampled strings (a fixed pool of N + test_size strings; each model's seed picks its N, the rest is its test set)",
    ),
    (
        "task.test_size",
        "bit-string tasks with train_size: held-out strings (default 1000)",
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
    for (key, empty) in [
        ("task.heads", toml::Value::String(String::new())),
        ("task.target_mod", toml::Value::Integer(0)),
    ] {
        if !out.iter().any(|(k, _)| k == key) {
            let at = out
                .iter()
                .position(|(k, _)| k == "task.group")
                .map_or(out.len(), |i| i + 1);
            out.insert(at, (key.into(), empty));
        }
    }
    // The bit-string keys, absent from the default (a table task), after task.split.
    let optional = [
        ("task.bits", toml::Value::Integer(0)),
        ("task.parity_k", toml::Value::Integer(0)),
        ("task.encoding", toml::Value::String(String::new())),
        ("task.train_size", toml::Value::Integer(0)),
        ("task.test_size", toml::Value::Integer(0)),
    ];
    let mut at = out
        .iter()
        .position(|(k, _)| k == "task.split")
        .map_or(out.len(), |i| i + 1);
    for (key, value) in optional {
        if !out.iter().any(|(k, _)| k == key) {
            out.insert(at, (key.into(), value));
            at += 1;
        }
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
