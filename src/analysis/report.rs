//! `index.html`: one self-contained page per analyzed run (no external URLs): a table of
//! the run's setup, a table of each model's final state (one column per model), and the
//! pictures of [`super::plot`] embedded as PNG data URIs, each linking to its SVG
//! alongside, or the reason a picture was not drawn. Everything taken from the config or
//! the file system is HTML-escaped.

use super::pipeline::{ModelReport, RunAnalysis};
use super::plot::{self, Picture};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// File name of the page.
pub const INDEX_FILE: &str = "index.html";

/// Writes every picture (PNG and SVG) and index.html for one analyzed run into `out`
/// (created if missing); returns the paths written.
pub fn write_report(analysis: &RunAnalysis, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let pictures = plot::render_all(analysis, out)?;
    let mut written = Vec::new();
    let mut embedded = Vec::with_capacity(pictures.len());
    for pic in &pictures {
        match &pic.outcome {
            Ok(files) => {
                let png = std::fs::read(&files.png).map_err(|e| Error::io(&files.png, e))?;
                embedded.push(Some(STANDARD.encode(&png)));
                written.push(files.png.clone());
                written.push(files.svg.clone());
            }
            Err(_) => embedded.push(None),
        }
    }
    let html = index_html(analysis, &pictures, &embedded, out);
    let path = out.join(INDEX_FILE);
    write_atomic(&path, html.as_bytes())?;
    written.push(path);
    Ok(written)
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number to 4 significant digits ("–" when missing or not finite).
fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => {
            let a = v.abs();
            let s = if a == 0.0 {
                "0".to_string()
            } else if (1e-2..1e5).contains(&a) {
                let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
                let s = format!("{v:.decimals$}");
                if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    s
                }
            } else {
                format!("{v:.3e}")
            };
            s.replace('-', "\u{2212}")
        }
        _ => "–".into(),
    }
}

/// A share as a percentage.
fn pct(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{:.1}%", 100.0 * v),
        _ => "–".into(),
    }
}

/// Frequencies as a compact list ("none" when empty).
fn freq_list(f: &[usize]) -> String {
    if f.is_empty() {
        "none".into()
    } else {
        f.iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The rows of the run table: (label, value already escaped).
fn run_rows(a: &RunAnalysis) -> Vec<(&'static str, String)> {
    let s = &a.summary;
    let mut rows: Vec<(&'static str, String)> = vec![
        ("task", esc(&s.task)),
        ("p", s.p.to_string()),
        (
            "width m",
            format!(
                "{}{}{}",
                s.width,
                if s.tied { " (tied u = v)" } else { "" },
                if s.embed_dim > 0 {
                    format!(", embedding dim {}", s.embed_dim)
                } else {
                    String::new()
                }
            ),
        ),
        ("activation", esc(&s.activation)),
    ];
    if s.train_fraction < 1.0 {
        rows.push((
            "train fraction",
            format!("{} (the rest is the test set)", pct(Some(s.train_fraction))),
        ));
    } else {
        rows.push(("train fraction", "all pairs".into()));
    }
    rows.push(("models", s.models.len().to_string()));
    rows.push((
        "steps (final checkpoint)",
        format!(
            "{} ({} checkpoint{})",
            s.final_step,
            s.checkpoints,
            if s.checkpoints == 1 { "" } else { "s" }
        ),
    ));
    rows.push((
        "γ* (theory, margin over all pairs)",
        match a.gamma_star {
            Some(g) => num(Some(g)),
            None => "– (the theory does not cover this setup)".into(),
        },
    ));
    rows.push((
        "Fourier basis",
        format!(
            "{} — DFT over {}{}. {}",
            esc(&s.basis.name),
            esc(&s.basis.group),
            s.basis
                .generator
                .map_or(String::new(), |g| format!(" (generator g = {g})")),
            esc(&s.basis.note)
        ),
    ));
    rows.push((
        "phase invariant",
        match &s.basis.invariant {
            Some(inv) => esc(inv),
            None => "none claimed for this task (no residual reported)".into(),
        },
    ));
    rows.push(("spectra over training", esc(&s.timeline_source)));
    rows.push((
        "sinusoidal neuron",
        format!(
            "each of u, v, w keeps ≥ {} of its power at one frequency",
            num(Some(s.threshold))
        ),
    ));
    rows.push(("initial weights (lottery check)", esc(&s.init_source)));
    rows
}

/// One row of the model table: a label and one value (already escaped) per model.
type ModelRow = (String, Vec<String>);

/// The rows of the model table for `models`.
fn model_rows(a: &RunAnalysis, models: &[ModelReport]) -> Vec<ModelRow> {
    let split = a.summary.train_fraction < 1.0;
    let has_test = models.iter().any(|m| {
        m.last_metrics
            .as_ref()
            .is_some_and(|r| r.test_loss.is_some() || r.test_acc.is_some())
    });
    let row = |label: &'static str, f: &dyn Fn(&ModelReport) -> String| -> ModelRow {
        (label.to_string(), models.iter().map(f).collect())
    };
    let loss_acc = |loss: Option<f64>, acc: Option<f64>| format!("{} / {}", num(loss), pct(acc));
    let mut rows = vec![row("final train loss / accuracy", &|m| {
        let r = m.last_metrics.as_ref();
        loss_acc(r.and_then(|r| r.train_loss), r.and_then(|r| r.train_acc))
    })];
    if has_test {
        rows.push(row("final test loss / accuracy", &|m| {
            let r = m.last_metrics.as_ref();
            loss_acc(r.and_then(|r| r.test_loss), r.and_then(|r| r.test_acc))
        }));
    }
    rows.push(row(
        "loss / accuracy over all pairs (final checkpoint)",
        &|m| loss_acc(Some(m.margin.loss), Some(m.margin.accuracy)),
    ));
    rows.push(row("normalized margin γ over all pairs", &|m| {
        num(Some(m.margin.gamma))
    }));
    if split {
        rows.push(row("normalized margin γ over the training pairs", &|m| {
            num(m.margin_train.as_ref().map(|t| t.gamma))
        }));
    }
    if models.iter().any(|m| m.margin.ratio.is_some()) {
        rows.push(row("γ / γ* (all pairs)", &|m| num(m.margin.ratio)));
    }
    rows.push(row("frequencies used", &|m| {
        let f = &m.frequencies;
        format!(
            "{} of {}: {}",
            f.freqs_used.len(),
            f.max_freq,
            freq_list(&f.freqs_used)
        )
    }));
    rows.push(row("frequencies missing", &|m| {
        freq_list(&m.frequencies.freqs_missing)
    }));
    rows.push(row("sinusoidal neurons", &|m| {
        pct(Some(m.frequencies.sinusoidal_share))
    }));
    rows.push(row(
        "shared-frequency neurons (u, v, w same dominant frequency)",
        &|m| pct(Some(m.frequencies.shared_freq_share)),
    ));
    let range = |r: Option<(f64, f64)>| match r {
        Some((lo, hi)) => format!("{lo:.2} / {hi:.2}"),
        None => "–".into(),
    };
    rows.push(row(
        "Σ n_i (n_i = ‖u_i‖²+‖v_i‖²+‖w_i‖²) per used frequency, min / max (× equal share)",
        &|m| range(m.frequencies.norm_share_range),
    ));
    rows.push(row(
        "Σ n_i^3/2 (logit amplitude) per used frequency, min / max (× equal share)",
        &|m| range(m.frequencies.amplitude_share_range),
    ));
    if !a.summary.basis.excluded.is_empty() {
        rows.push(row(
            "share of a neuron's norm² on input/output 0 (outside the basis), mean / max",
            &|m| {
                let f = &m.frequencies;
                format!(
                    "{} / {}",
                    pct(Some(f.excluded_share_mean)),
                    pct(Some(f.excluded_share_max))
                )
            },
        ));
    }
    rows.push(row("mean IPR of the neurons' power", &|m| {
        num(Some(m.frequencies.mean_ipr))
    }));
    if let Some(inv) = &a.summary.basis.invariant {
        let label = format!(
            "|{}| over sinusoidal neurons, mean / max (rad)",
            inv.trim_end_matches(" = 0")
        );
        rows.push((
            label,
            models
                .iter()
                .map(|m| {
                    let f = &m.frequencies;
                    match f.residual_mean_abs {
                        Some(r) => format!("{} / {}", num(Some(r)), num(f.residual_max_abs)),
                        None => "–".into(),
                    }
                })
                .collect(),
        ));
    }
    rows.push(row(
        "lottery: final frequency = strongest / best-aligned one at init",
        &|m| {
            let l = &m.lottery;
            if l.considered == 0 {
                "– (no sinusoidal neurons)".into()
            } else {
                format!(
                    "{} / {} of {} sinusoidal neurons (chance {})",
                    pct(l.share_strongest),
                    match l.same_as_aligned {
                        Some(_) => pct(l.share_aligned),
                        None => "– (no invariant)".into(),
                    },
                    l.considered,
                    pct(Some(l.chance))
                )
            }
        },
    ));
    if split {
        let step = |x: Option<u64>| x.map_or("not reached".to_string(), |s| format!("step {s}"));
        rows.push(row("grokking: memorized (train accuracy ≥ 95%)", &|m| {
            step(m.stages.memorized)
        }));
        rows.push(row("grokking: generalized (test accuracy ≥ 95%)", &|m| {
            step(m.stages.generalized)
        }));
    }
    rows
}

/// Most model columns per table (more models continue in further tables).
const MODEL_COLUMNS: usize = 6;

/// Tables `pipeline::write_tables` puts next to the report.
const TABLES: [&str; 5] = [
    crate::layout::SUMMARY_FILE,
    "neurons.csv",
    "frequencies.csv",
    "checkpoints.csv",
    "timeline.csv",
];

/// The page: title, summary tables, pictures (embedded PNG, linked SVG) or why each was
/// skipped, and links to the machine-readable tables found in `out`.
fn index_html(
    a: &RunAnalysis,
    pictures: &[Picture],
    embedded: &[Option<String>],
    out: &Path,
) -> String {
    let s = &a.summary;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <h1>{title}</h1>\n<p class=\"run\">run: <code>{run}</code></p>\n",
        title = esc(&format!("{} — width {}, {}", s.task, s.width, s.activation)),
        run = esc(&s.run),
    );
    h.push_str("<h2>Run</h2>\n<table>\n");
    for (k, v) in run_rows(a) {
        let _ = writeln!(h, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
    }
    h.push_str("</table>\n<h2>Final state</h2>\n");
    for chunk in s.models.chunks(MODEL_COLUMNS) {
        h.push_str("<table>\n");
        if s.models.len() > 1 {
            h.push_str("<tr><th></th>");
            for m in chunk {
                let _ = write!(h, "<th class=\"model\">model {}</th>", m.model);
            }
            h.push_str("</tr>\n");
        }
        for (k, values) in model_rows(a, chunk) {
            let _ = write!(h, "<tr><th>{}</th>", esc(&k));
            for v in values {
                let _ = write!(h, "<td>{v}</td>");
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    let tables: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| out.join(t).is_file())
        .collect();
    if !tables.is_empty() {
        h.push_str("<p>Tables: ");
        let links: Vec<String> = tables
            .iter()
            .map(|t| format!("<a href=\"{0}\">{0}</a>", esc(t)))
            .collect();
        h.push_str(&links.join(" · "));
        h.push_str("</p>\n");
    }
    if out.join(super::explore::EXPLORE_FILE).is_file() {
        let _ = writeln!(
            h,
            "<p class=\"explore\"><a href=\"{0}\">Open the interactive explorer ({0})</a>: \
             scrub through training, inspect any neuron, ask the network any pair.</p>",
            super::explore::EXPLORE_FILE
        );
    }
    h.push_str("<h2>Pictures</h2>\n");
    for (pic, data) in pictures.iter().zip(embedded) {
        let name = esc(pic.name);
        match (&pic.outcome, data) {
            (Ok(files), Some(data)) => {
                let _ = write!(
                    h,
                    "<figure id=\"{name}\">\n<h3>{title}</h3>\n\
                     <a href=\"{name}.svg\"><img src=\"data:image/png;base64,{data}\" \
                     width=\"{w}\" height=\"{hh}\" alt=\"{title}\"></a>\n\
                     <figcaption>{caption} <span class=\"files\">[<a href=\"{name}.svg\">{name}.svg</a> · \
                     <a href=\"{name}.png\">{name}.png</a>]</span></figcaption>\n</figure>\n",
                    title = esc(&pic.title),
                    caption = esc(&pic.caption),
                    w = files.size.0,
                    hh = files.size.1,
                );
            }
            (Err(reason), _) => {
                let _ = writeln!(
                    h,
                    "<p class=\"skipped\" id=\"{name}\"><b>{name}</b>: not drawn — {}.</p>",
                    esc(reason)
                );
            }
            (Ok(_), None) => {}
        }
    }
    h.push_str("</body>\n</html>\n");
    h
}

const STYLE: &str = "body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }\n\
table { border-collapse: collapse; margin-bottom: 1.5em; }\n\
th, td { border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left; vertical-align: top; }\n\
th { font-weight: normal; color: #555; }\n\
th.model { font-weight: bold; color: #222; }\n\
figure { margin: 2em 0; }\n\
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }\n\
figcaption { color: #444; margin-top: 0.4em; }\n\
.skipped { color: #777; font-style: italic; }\n\
.run { color: #666; }\n.files { color: #666; font-size: 90%; }\n";
