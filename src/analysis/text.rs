//! The human-readable report of an analysis (what `analyze RUN` prints), as text any
//! caller can print or log.

use super::pipeline::{ModelReport, RunAnalysis};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `x` as a percentage with two decimals.
pub fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// [`pct`], or `n/a`.
fn opt_pct(x: Option<f64>) -> String {
    x.map_or("n/a".into(), pct)
}

/// Frequencies as runs of ranges (`1-5 7 9-11`), or `none`.
/// [`list`] for text about `basis`: irreps written `ρ1 ρ2`, frequencies as ranges.
fn list_in(basis: &super::basis::BasisReport, xs: &[usize]) -> String {
    if basis.unit == "irrep" && !xs.is_empty() {
        xs.iter()
            .map(|&k| basis.component(k))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        list(xs)
    }
}

fn list(xs: &[usize]) -> String {
    if xs.is_empty() {
        return "none".into();
    }
    // Runs of consecutive frequencies as ranges: 1-5 7 9-11.
    let mut parts = Vec::new();
    let mut i = 0;
    while i < xs.len() {
        let mut j = i;
        while j + 1 < xs.len() && xs[j + 1] == xs[j] + 1 {
            j += 1;
        }
        parts.push(if j > i + 1 {
            format!("{}-{}", xs[i], xs[j])
        } else if j == i + 1 {
            format!("{} {}", xs[i], xs[j])
        } else {
            xs[i].to_string()
        });
        i = j + 1;
    }
    parts.join(" ")
}

/// Models shown one by one; the rest are summarized in one line.
const SHOWN: usize = 8;

/// The human-readable report of an analysis, as `analyze RUN` prints it: the run's
/// setup, then per model (the first eight; the rest in one line of means) accuracy,
/// margins, frequencies, sinusoidal neurons, lottery and grokking stages.
/// `elapsed_s` is how long the analysis took.
pub fn summary_text(a: &RunAnalysis, elapsed_s: f64) -> String {
    let mut t = String::new();
    let s = &a.summary;
    // A [per_model] batch can mix fractions and seeds; then each model names its own.
    let per_model_split = s
        .models
        .windows(2)
        .any(|w| w[0].train_fraction != w[1].train_fraction || w[0].seed != w[1].seed);
    let split = if per_model_split {
        ", train fraction and seed per model".to_string()
    } else if s.train_fraction < 1.0 {
        format!(", train fraction {}", s.train_fraction)
    } else {
        String::new()
    };
    let _ = writeln!(
        t,
        "{}: {}{split}, {}{} width {}, {} checkpoint(s) up to step {}, {} model(s) ({:.2} s)",
        s.run,
        s.task,
        if s.tied { "tied " } else { "" },
        s.activation,
        s.width,
        s.checkpoints,
        s.final_step,
        s.models.len(),
        elapsed_s
    );
    let _ = writeln!(
        t,
        "basis: {} ({}{}); phase invariant: {}",
        s.basis.name,
        s.basis.transform(),
        s.basis
            .generator
            .map_or(String::new(), |g| format!(", generator {g}")),
        s.basis
            .invariant
            .as_deref()
            .unwrap_or("none claimed for this task (no residual reported)")
    );
    let _ = writeln!(
        t,
        "  {}; spectra over training from {}",
        s.basis.note, s.timeline_source
    );
    let _ = writeln!(
        t,
        "sinusoidal = at least {} of the power of each of u, v, w at one {}",
        s.threshold, s.basis.unit
    );
    for m in s.models.iter().take(SHOWN) {
        let f = &m.frequencies;
        let _ = writeln!(t, "model {}:", m.model);
        if per_model_split {
            let _ = writeln!(t, "  train fraction {}, seed {}", m.train_fraction, m.seed);
        }
        let split_acc = match &m.last_metrics {
            Some(r) if r.test_acc.is_some() => format!(
                " (train {}, test {} at step {})",
                opt_pct(r.train_acc),
                opt_pct(r.test_acc),
                r.step
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "  accuracy over all pairs {}{split_acc}",
            pct(m.margin.accuracy)
        );
        let star = match (m.margin.gamma_star, m.margin.ratio) {
            (Some(g), Some(r)) => format!("γ* = {g:.4e}, γ/γ* = {r:.4}"),
            _ => "no γ* for this setup".into(),
        };
        let _ = writeln!(
            t,
            "  normalized margin over all pairs γ = {:.4e}; {star}",
            m.margin.gamma
        );
        if let Some(train) = &m.margin_train {
            let _ = writeln!(
                t,
                "  normalized margin over the training pairs {:.4e}",
                train.gamma
            );
        }
        let _ = writeln!(
            t,
            "  {} used ({}/{}): {}; missing: {}",
            s.basis.units(),
            f.freqs_used.len(),
            f.max_freq,
            list_in(&s.basis, &f.freqs_used),
            list_in(&s.basis, &f.freqs_missing)
        );
        let residual = match (&s.basis.invariant, f.residual_max_abs, f.residual_mean_abs) {
            (Some(inv), Some(mx), Some(mean)) => {
                let lhs = inv.trim_end_matches(" = 0");
                format!("; |{lhs}| of those: max {mx:.2e}, mean {mean:.2e}")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "  sinusoidal neurons {} of {} ({}){residual}",
            f.sinusoidal_per_freq.iter().sum::<usize>(),
            f.neurons,
            pct(f.sinusoidal_share)
        );
        let _ = writeln!(
            t,
            "  u, v, w share one {}: {}; mean IPR {:.3}",
            s.basis.unit,
            pct(f.shared_freq_share),
            f.mean_ipr
        );
        if let (Some((lo, hi)), Some((alo, ahi))) = (f.norm_share_range, f.amplitude_share_range) {
            let _ = writeln!(
                t,
                "  per used {}, × the equal share 1/{}: Σ n_i {lo:.2}× to {hi:.2}×, \
                 Σ n_i^(3/2) (logit amplitude) {alo:.2}× to {ahi:.2}×; neurons {} to {}",
                s.basis.unit,
                f.max_freq,
                f.freqs_used
                    .iter()
                    .map(|&k| f.neurons_per_freq[k])
                    .min()
                    .unwrap_or(0),
                f.freqs_used
                    .iter()
                    .map(|&k| f.neurons_per_freq[k])
                    .max()
                    .unwrap_or(0),
            );
        }
        if !s.basis.excluded.is_empty() {
            let _ = writeln!(
                t,
                "  weight on input/output 0 (outside the {} basis): mean {}, max {} of a neuron's norm²",
                s.basis.name,
                pct(f.excluded_share_mean),
                pct(f.excluded_share_max)
            );
        }
        let l = &m.lottery;
        let aligned = match l.same_as_aligned {
            Some(n) => format!(
                ", {n} on their best-aligned one ({})",
                opt_pct(l.share_aligned)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            t,
            "  lottery: of {} sinusoidal neurons, {} end on their strongest init frequency ({}){aligned}; \
             chance {}",
            l.considered,
            l.same_as_strongest,
            opt_pct(l.share_strongest),
            pct(l.chance)
        );
        let step = |x: Option<u64>| x.map_or("not reached".into(), |s| format!("step {s}"));
        if m.train_fraction < 1.0 {
            let _ = writeln!(
                t,
                "  grokking: memorized (train ≥ 95%) {}, generalized (test ≥ 95%) {}",
                step(m.stages.memorized),
                step(m.stages.generalized)
            );
        } else {
            let _ = writeln!(
                t,
                "  training: train accuracy ≥ 95% {} (no test split)",
                step(m.stages.memorized)
            );
        }
    }
    if s.models.len() > SHOWN {
        let rest = &s.models[SHOWN..];
        let n = rest.len() as f64;
        let mean = |f: &dyn Fn(&ModelReport) -> f64| rest.iter().map(f).sum::<f64>() / n;
        let _ = writeln!(
            t,
            "... {} more models: mean accuracy {}, mean sinusoidal share {}, mean γ {:.4e}",
            rest.len(),
            pct(mean(&|m| m.margin.accuracy)),
            pct(mean(&|m| m.frequencies.sinusoidal_share)),
            mean(&|m| m.margin.gamma)
        );
    }
    t
}

/// The list of files an analysis wrote into `out` (names relative to `out`), and where
/// to open `index.html` when there is one.
pub fn files_text(files: &[PathBuf], out: &Path) -> String {
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(out)
                .unwrap_or(f)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut t = format!(
        "{} files in {}:\n  {}\n",
        files.len(),
        out.display(),
        names.join(" ")
    );
    let index = out.join(super::report::INDEX_FILE);
    if index.is_file() {
        let _ = writeln!(t, "open {}", index.display());
    }
    t
}
