//! `analyze RUN` for a bit-string (parity) run: accuracy, memorization and
//! generalization steps, normalized margins (with γ/γ* where the theory gives γ*), and
//! which input bits the neurons use — the norm of the first layer's weights per input
//! bit, and a picture of U (neurons × bits), seed 003's view of its 1s-and-0s model.
//!
//! The Z_p Fourier analysis of the table runs does not apply (the inputs are bits, not
//! residues) and is skipped with a note in the summary.

use super::command::{Failure, Printed, Settings};
use super::margin::{self, MarginReport, SplitPart};
use super::progress;
use super::rundir::RunDir;
use crate::config::RunConfig;
use crate::engine::Backend;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why the Fourier analysis is absent, in the summary and the printed report.
pub const FOURIER_NOTE: &str =
    "Z_p Fourier analysis skipped: a bit-string task's inputs are bits, not residues mod p";

/// One model of a bit-string run, at its last checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct BitModelReport {
    /// Index in the batch.
    pub model: usize,
    /// Its seed (initialization and training strings).
    pub seed: u64,
    /// First evaluated step with train accuracy ≥ 95 %.
    pub memorized_step: Option<u64>,
    /// First evaluated step with test accuracy ≥ 95 %.
    pub generalized_step: Option<u64>,
    /// Margin over every string of the task, with γ* where the theory gives it
    /// (population task trained on every string).
    pub margin_all: MarginReport,
    /// Margin over its training strings (None when it trains on all of them).
    pub margin_train: Option<MarginReport>,
    /// Margin over its held-out strings.
    pub margin_test: Option<MarginReport>,
    /// ‖U[j, ·]‖₂ for each input bit j: how much the neurons use bit j.
    pub bit_norms: Vec<f64>,
    /// Share of the first layer's squared norm on the parity bits `0..k`
    /// (k/n for an unstructured model, 1 for one that ignores the distractors).
    pub parity_share: f64,
}

/// The summary of a bit-string run.
#[derive(Clone, Debug, Serialize)]
pub struct BitsSummary {
    /// The run directory.
    pub run: String,
    /// The task in words.
    pub task: String,
    /// Input bits n.
    pub bits: usize,
    /// Parity subset size k.
    pub parity_k: usize,
    /// Hidden width.
    pub width: usize,
    /// Activation.
    pub activation: String,
    /// Step of the analyzed checkpoint.
    pub final_step: u64,
    /// [`FOURIER_NOTE`].
    pub note: &'static str,
    /// One entry per model.
    pub models: Vec<BitModelReport>,
}

/// The config of the run at `run`, when its `config.toml` reads as one; used to route
/// `analyze` (a bad file is left for the full analysis to report).
pub fn is_bits_run(run: &Path) -> bool {
    std::fs::read_to_string(run.join("config.toml"))
        .ok()
        .and_then(|t| RunConfig::from_toml(&t).ok())
        .is_some_and(|c| c.task.bits.is_some())
}

/// Computes the summary of a bit-string run directory.
pub fn summarize(backend: &dyn Backend<f64>, run: &Path) -> Result<BitsSummary> {
    let dir = RunDir::open(run)?;
    let config = &dir.config;
    let parity = config
        .parity()
        .ok_or_else(|| Error::config("task.bits", "absent", "not a bit-string run"))?;
    let (step, path) = dir
        .checkpoints
        .last()
        .cloned()
        .ok_or_else(|| Error::config("run", run.display(), "holds no checkpoint"))?;
    let weights = dir.load(&path)?.weights;
    let task = config.build_task()?;
    let all = margin::margins_with(
        backend,
        &weights,
        config.model.activation,
        &task.pairs,
        "all",
        margin::gamma_star(config),
    )?;
    let train = margin::margins_on_split(backend, config, &weights, SplitPart::Train)?;
    let test = margin::margins_on_split(backend, config, &weights, SplitPart::Test)?;
    let settings = config.model_settings();
    let (n, m) = (weights.n_in, weights.width);
    let models = (0..weights.batch)
        .map(|k| {
            let (u, _, _) = weights.model(k);
            let sq: Vec<f64> = (0..n)
                .map(|j| u[j * m..(j + 1) * m].iter().map(|x| x * x).sum())
                .collect();
            let total: f64 = sq.iter().sum();
            let metrics = dir.metrics_of(k);
            let stages =
                progress::stages(metrics.iter().map(|r| (r.step, r.train_acc, r.test_acc)));
            BitModelReport {
                model: k,
                seed: settings[k].seed,
                memorized_step: stages.memorized,
                generalized_step: stages.generalized,
                margin_all: all[k].clone(),
                margin_train: train[k].clone(),
                margin_test: test[k].clone(),
                parity_share: sq[..parity.k].iter().sum::<f64>() / total.max(f64::MIN_POSITIVE),
                bit_norms: sq.iter().map(|s| s.sqrt()).collect(),
            }
        })
        .collect();
    Ok(BitsSummary {
        run: dir.path.display().to_string(),
        task: task.name,
        bits: parity.n,
        parity_k: parity.k,
        width: m,
        activation: config.model.activation.to_string(),
        final_step: step,
        note: FOURIER_NOTE,
        models,
    })
}

/// `analyze RUN --out OUT` for a bit-string run: `summary.json` and, with pictures,
/// `bit_weights.png` (model 0's U).
pub fn analyze_run(
    backend: &dyn Backend<f64>,
    run: &Path,
    out: &Path,
    s: &Settings,
) -> std::result::Result<Printed, Failure> {
    super::outdir::check_analysis_dir(run, out).map_err(Failure::reading)?;
    let summary = summarize(backend, run).map_err(Failure::reading)?;
    let files = write(run, &summary, out, s.pictures).map_err(Failure::other)?;
    let json = serde_json::to_string_pretty(&summary).map_err(Failure::other)?;
    Ok(if s.json {
        Printed {
            stdout: json + "\n",
            stderr: format!("analysis written to {}\n", out.display()),
        }
    } else {
        Printed {
            stdout: text(&summary, &files),
            stderr: String::new(),
        }
    })
}

fn write(run: &Path, summary: &BitsSummary, out: &Path, pictures: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let json = serde_json::to_string_pretty(summary)
        .map_err(|e| Error::config("summary", "json", e.to_string()))?;
    let mut files = vec![out.join("summary.json")];
    write_atomic(&files[0], json.as_bytes())?;
    if pictures {
        let dir = RunDir::open(run)?;
        let (_, path) = dir
            .checkpoints
            .last()
            .cloned()
            .expect("checked by summarize");
        let weights = dir.load(&path)?.weights;
        let png = out.join("bit_weights.png");
        draw_weights(
            &weights.u[..weights.n_in * weights.width],
            weights.n_in,
            summary,
            &png,
        )?;
        files.push(png);
    }
    Ok(files)
}

/// Model 0's first layer as a heat map: one row per live neuron (sorted by its weight on
/// the parity bits, strongest first), one column per input bit; red positive, blue
/// negative. Only the fewest neurons holding 99.9 % of ‖U‖² are drawn (L1 leaves most of
/// them near zero); the title counts them, so the live ones get the height.
fn draw_weights(u: &[f64], n: usize, summary: &BitsSummary, path: &Path) -> Result<()> {
    let m = u.len() / n;
    // The fewest neurons holding 99.9 % of ‖U‖² (L1 leaves the rest near zero).
    let sq_norm = |i: usize| -> f64 { (0..n).map(|j| u[j * m + i].powi(2)).sum() };
    let mut by_norm: Vec<usize> = (0..m).collect();
    by_norm.sort_by(|&a, &b| sq_norm(b).total_cmp(&sq_norm(a)));
    let total: f64 = (0..m).map(sq_norm).sum();
    let mut held = 0.0;
    let mut order: Vec<usize> = by_norm
        .into_iter()
        .take_while(|&i| {
            let keep = held < 0.999 * total || total == 0.0;
            held += sq_norm(i);
            keep
        })
        .collect();
    let parity_weight =
        |i: usize| -> f64 { (0..summary.parity_k).map(|j| u[j * m + i].powi(2)).sum() };
    order.sort_by(|&a, &b| parity_weight(b).total_cmp(&parity_weight(a)));
    let rows = order.len();
    let max = u.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-12);
    let (cell_w, cell_h) = (24u32, (600 / rows as u32).clamp(3, 40));
    let (left, top, bottom) = (60u32, 50u32, 40u32);
    let size = (
        // Wide enough for the title and the axis note even with a few bits.
        (left + cell_w * n as u32 + 20).max(760),
        top + cell_h * rows as u32 + bottom,
    );
    super::plot::frame::ensure_font()?;
    let tmp = path.with_extension("tmp.png");
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!(
            "U of model 0, step {}: {rows} of {m} neurons × {n} bits (label: parity of bits 0–{})",
            summary.final_step,
            summary.parity_k - 1
        );
        root.draw(&Text::new(title, (10, 10), ("sans-serif", 16)))?;
        for (r, &i) in order.iter().enumerate() {
            for j in 0..n {
                let x = u[j * m + i] / max;
                let t = x.abs().min(1.0);
                let fade = |c: u8| (255.0 - t * (255.0 - c as f64)) as u8;
                let colour = if x >= 0.0 {
                    RGBColor(fade(178), fade(24), fade(43))
                } else {
                    RGBColor(fade(33), fade(102), fade(172))
                };
                let x0 = (left + j as u32 * cell_w) as i32;
                let y0 = (top + r as u32 * cell_h) as i32;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cell_w as i32, y0 + cell_h as i32)],
                    colour.filled(),
                ))?;
            }
        }
        for j in (0..n).step_by(if n > 16 { 5 } else { 1 }) {
            let x = (left + j as u32 * cell_w + 4) as i32;
            let y = (top + cell_h * rows as u32 + 6) as i32;
            root.draw(&Text::new(format!("{j}"), (x, y), ("sans-serif", 12)))?;
        }
        root.draw(&Text::new(
            "neurons",
            (6, (top + 10) as i32),
            ("sans-serif", 12),
        ))?;
        root.draw(&Text::new(
            format!(
                "input bit  (|U| max {max:.3}; drawn: the fewest neurons holding 99.9 % of ‖U‖²)"
            ),
            (left as i32, (size.1 - 16) as i32),
            ("sans-serif", 12),
        ))?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| Error::backend(format!("cannot draw {}: {e}", path.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn text(s: &BitsSummary, files: &[PathBuf]) -> String {
    let mut t = format!(
        "{} — {} width {}, step {}\n{}\n",
        s.task, s.activation, s.width, s.final_step, s.note
    );
    let pct = |r: &Option<MarginReport>| {
        r.as_ref()
            .map_or("—".to_string(), |m| format!("{:.2}%", 100.0 * m.accuracy))
    };
    for m in &s.models {
        let ratio = m
            .margin_all
            .ratio
            .map_or(String::new(), |r| format!(", γ/γ* = {r:.4}"));
        t += &format!(
            "  model {}: train {} test {} (all {:.2}%), memorized at {}, generalized at {}; \
             γ (all strings) = {:.4e}{ratio}; parity-bit share of |U|² = {:.3}\n",
            m.model,
            pct(&m.margin_train),
            pct(&m.margin_test),
            100.0 * m.margin_all.accuracy,
            m.memorized_step.map_or("—".into(), |x| x.to_string()),
            m.generalized_step.map_or("—".into(), |x| x.to_string()),
            m.margin_all.gamma,
            m.parity_share,
        );
    }
    for f in files {
        t += &format!("wrote {}\n", f.display());
    }
    t
}
