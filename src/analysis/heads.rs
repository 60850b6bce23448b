//! The analysis of a run on seed 002's table (`task.heads = "primes"`, or one target
//! `task.target_mod`): per model and per head, the final loss and accuracies and the
//! grokking stages (first evaluation with train / test accuracy ≥ 95 %), read from
//! `metrics.jsonl`; the picture of every head's test accuracy over training.
//!
//! Why not the Z_p pipeline: its Fourier basis, phase invariant and γ* describe a table
//! `a ∘ b` of a group on the inputs; `(x0 + x1·p) mod q` is no such table (the output
//! has Σq classes, not p), so those measures would have nothing to compare to. What the
//! seed reports for this task — which targets generalize, and when — is what is here.

use super::plot::head_accuracy;
use super::progress::{self, Stages};
use super::rundir::RunDir;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::task::primes_below;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One head (target) of one model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeadReport {
    /// The head's name, e.g. `"mod 7"`.
    pub name: String,
    /// Its modulus q (number of classes).
    pub q: usize,
    /// Final loss on the training pairs (the head's own, before its 1/ln q weight).
    pub final_train_loss: Option<f64>,
    /// Final accuracy on the training pairs.
    pub final_train_acc: Option<f64>,
    /// Final loss on the held-out pairs.
    pub final_test_loss: Option<f64>,
    /// Final accuracy on the held-out pairs.
    pub final_test_acc: Option<f64>,
    /// First evaluations with train / test accuracy ≥ 95 % (`generalized` is the head's
    /// grokking step).
    pub stages: Stages,
}

/// One model of the run: every head, and the stages of "all heads right".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeadsModel {
    /// Index of the model in the batch.
    pub model: usize,
    /// Seed of the model's initialization and split.
    pub seed: u64,
    /// Stages of the all-heads accuracy (a pair counts when every head is right).
    pub stages: Stages,
    /// Final all-heads test accuracy.
    pub final_test_acc: Option<f64>,
    /// One entry per head, in layout order (ascending q).
    pub heads: Vec<HeadReport>,
}

/// What `summary.json` holds for such a run (and `analyze --json` prints).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeadsSummary {
    /// The run directory as given.
    pub run: String,
    /// The task in words.
    pub task: String,
    /// The base p of the inputs.
    pub p: usize,
    /// Hidden width m.
    pub width: usize,
    /// Activation, as in config.toml.
    pub activation: String,
    /// Share of the pairs trained on.
    pub train_fraction: f64,
    /// Last evaluated step.
    pub final_step: u64,
    /// One report per model.
    pub models: Vec<HeadsModel>,
}

/// The moduli of a run's heads: the primes below p, or the one `target_mod`.
fn moduli(dir: &RunDir) -> Vec<usize> {
    match dir.config.task.target_mod {
        Some(q) => vec![q],
        None => primes_below(dir.config.task.p),
    }
}

/// The per-head report of the run at `path` (its config must be seed 002's table).
pub fn analyze(path: &Path) -> Result<(RunDir, HeadsSummary)> {
    let dir = RunDir::open(path)?;
    let config = &dir.config;
    if !config.is_base_p_task() {
        return Err(Error::config(
            "task.heads",
            "(none)",
            "the per-head analysis is for task.heads or task.target_mod runs",
        ));
    }
    let qs = moduli(&dir);
    let single = config.task.target_mod.is_some();
    let settings = config.model_settings();
    let models = (0..config.models)
        .map(|k| {
            let rows = dir.metrics_of(k);
            let last = rows.last();
            // A single target's head is the model itself; a multi-head run logs each head.
            let head_value =
                |r: &crate::layout::MetricsRecord,
                 h: usize,
                 multi: fn(&crate::layout::MetricsRecord) -> &Option<Vec<Option<f64>>>,
                 plain: fn(&crate::layout::MetricsRecord) -> Option<f64>|
                 -> Option<f64> {
                    if single {
                        plain(r)
                    } else {
                        multi(r).as_ref().and_then(|v| v.get(h).copied().flatten())
                    }
                };
            let heads = qs
                .iter()
                .enumerate()
                .map(|(h, &q)| {
                    let val = |r: &crate::layout::MetricsRecord, which: usize| match which {
                        0 => head_value(r, h, |r| &r.train_head_loss, |r| r.train_loss),
                        1 => head_value(r, h, |r| &r.train_head_acc, |r| r.train_acc),
                        2 => head_value(r, h, |r| &r.test_head_loss, |r| r.test_loss),
                        _ => head_value(r, h, |r| &r.test_head_acc, |r| r.test_acc),
                    };
                    HeadReport {
                        name: format!("mod {q}"),
                        q,
                        final_train_loss: last.and_then(|r| val(r, 0)),
                        final_train_acc: last.and_then(|r| val(r, 1)),
                        final_test_loss: last.and_then(|r| val(r, 2)),
                        final_test_acc: last.and_then(|r| val(r, 3)),
                        stages: progress::stages(
                            rows.iter().map(|r| (r.step, val(r, 1), val(r, 3))),
                        ),
                    }
                })
                .collect();
            HeadsModel {
                model: k,
                seed: settings[k].seed,
                stages: progress::stages(rows.iter().map(|r| (r.step, r.train_acc, r.test_acc))),
                final_test_acc: last.and_then(|r| r.test_acc),
                heads,
            }
        })
        .collect();
    let summary = HeadsSummary {
        run: path.display().to_string(),
        task: config.task_label(),
        p: config.task.p,
        width: config.model.width,
        activation: config.model.activation.to_string(),
        train_fraction: config.task.train_fraction,
        final_step: dir.metrics.iter().map(|r| r.step).max().unwrap_or(0),
        models,
    };
    Ok((dir, summary))
}

/// `heads.csv`: one row per (model, head).
fn heads_csv(s: &HeadsSummary) -> String {
    let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
    let step = |x: Option<u64>| x.map_or(String::new(), |v| v.to_string());
    let mut text = String::from(
        "model,head,q,final_train_acc,final_test_acc,final_test_loss,memorized_step,grok_step\n",
    );
    for m in &s.models {
        for h in &m.heads {
            text.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                m.model,
                h.name,
                h.q,
                opt(h.final_train_acc),
                opt(h.final_test_acc),
                opt(h.final_test_loss),
                step(h.stages.memorized),
                step(h.stages.generalized),
            ));
        }
    }
    text
}

/// The report in words.
pub fn summary_text(s: &HeadsSummary) -> String {
    let pct = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v));
    let step = |x: Option<u64>| x.map_or("never".into(), |v| v.to_string());
    let mut t = format!(
        "{} (width {}, {}, train fraction {}), last step {}\n",
        s.task, s.width, s.activation, s.train_fraction, s.final_step
    );
    for m in &s.models {
        t.push_str(&format!(
            "model {} (seed {}): all heads right on {} of the test pairs; all heads ≥ 95% from \
             step {}\n  head     test acc   train acc  grokked (test ≥ 95%)\n",
            m.model,
            m.seed,
            pct(m.final_test_acc),
            step(m.stages.generalized)
        ));
        for h in &m.heads {
            t.push_str(&format!(
                "  {:<8} {:>8}   {:>8}   {}\n",
                h.name,
                pct(h.final_test_acc),
                pct(h.final_train_acc),
                step(h.stages.generalized)
            ));
        }
    }
    t
}

/// Writes `summary.json`, `heads.csv` and (with `pictures`) `head_accuracy.{png,svg}`
/// into `out`, each temp-then-rename; returns the files written.
pub fn write(dir: &RunDir, s: &HeadsSummary, out: &Path, pictures: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut files = Vec::new();
    let summary = out.join(super::tables::SUMMARY_FILE);
    let json = serde_json::to_string_pretty(s).expect("plain data serializes");
    write_atomic(&summary, json.as_bytes())?;
    files.push(summary);
    let csv = out.join("heads.csv");
    write_atomic(&csv, heads_csv(s).as_bytes())?;
    files.push(csv);
    if pictures {
        if let Some(p) = head_accuracy::render(dir, s, out)? {
            files.push(p.png);
            files.push(p.svg);
        }
    }
    Ok(files)
}
