//! `index.html`: one self-contained page per analyzed run (no external URLs), with a
//! summary table per model and the pictures of [`super::plot`] embedded as PNG data URIs,
//! each linking to its SVG alongside.

use super::pipeline::{ModelReport, RunAnalysis};
use super::plot::{self, Picture};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
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
                embedded.push(Some(base64(&png)));
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

/// Standard base64 (RFC 4648, with padding), for data URIs.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |i: u32| char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]);
        s.push(sextet(0));
        s.push(sextet(1));
        s.push(if chunk.len() > 1 { sextet(2) } else { '=' });
        s.push(if chunk.len() > 2 { sextet(3) } else { '=' });
    }
    s
}

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
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
            if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
                format!("{v:.3e}")
            } else {
                let s = format!("{v:.4}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
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

/// The rows of the summary table of one model: (label, value already escaped).
fn model_rows(a: &RunAnalysis, m: &ModelReport) -> Vec<(&'static str, String)> {
    let s = &a.summary;
    let f = &m.frequencies;
    let lm = m.last_metrics.as_ref();
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
        (
            "train fraction",
            if s.train_fraction < 1.0 {
                pct(Some(s.train_fraction))
            } else {
                "all pairs".into()
            },
        ),
        (
            "steps (final checkpoint)",
            format!("{} ({} checkpoints)", s.final_step, s.checkpoints),
        ),
        (
            "final train loss / accuracy",
            format!(
                "{} / {}",
                num(lm.and_then(|r| r.train_loss)),
                pct(lm.and_then(|r| r.train_acc))
            ),
        ),
    ];
    if lm.is_some_and(|r| r.test_loss.is_some() || r.test_acc.is_some()) {
        rows.push((
            "final test loss / accuracy",
            format!(
                "{} / {}",
                num(lm.and_then(|r| r.test_loss)),
                pct(lm.and_then(|r| r.test_acc))
            ),
        ));
    }
    rows.push((
        "loss / accuracy over all pairs (final checkpoint)",
        format!(
            "{} / {}",
            num(Some(m.margin.loss)),
            pct(Some(m.margin.accuracy))
        ),
    ));
    rows.push(("normalized margin γ (all pairs)", num(Some(m.margin.gamma))));
    if let Some(t) = &m.margin_train {
        rows.push(("normalized margin γ (train pairs)", num(Some(t.gamma))));
    }
    rows.push((
        "γ* (theory)",
        match m.margin.gamma_star {
            Some(g) => num(Some(g)),
            None => "– (theory does not apply to this setup)".into(),
        },
    ));
    if let Some(r) = m.margin.ratio {
        rows.push(("γ / γ*", num(Some(r))));
    }
    rows.push((
        "frequencies used",
        format!(
            "{} of {}: {}",
            f.freqs_used.len(),
            f.max_freq,
            freq_list(&f.freqs_used)
        ),
    ));
    rows.push(("frequencies missing", freq_list(&f.freqs_missing)));
    rows.push((
        "sinusoidal neurons",
        format!(
            "{} (each of u, v, w ≥ {} of its power at one frequency)",
            pct(Some(f.sinusoidal_share)),
            num(Some(f.threshold))
        ),
    ));
    rows.push((
        "shared-frequency neurons (u, v, w same dominant frequency)",
        pct(Some(f.shared_freq_share)),
    ));
    rows.push(("mean IPR of neuron power", num(Some(f.mean_ipr))));
    if let Some(r) = f.residual_mean_abs {
        rows.push((
            "|θu + θv − θw| over sinusoidal neurons (mean / max, rad)",
            format!("{} / {}", num(Some(r)), num(f.residual_max_abs)),
        ));
    }
    let l = &m.lottery;
    rows.push((
        "lottery: final frequency = strongest / best-aligned at init",
        if l.considered == 0 {
            "– (no sinusoidal neurons)".into()
        } else {
            format!(
                "{} / {} of {} sinusoidal neurons (chance {})",
                pct(l.share_strongest),
                pct(l.share_aligned),
                l.considered,
                pct(Some(l.chance))
            )
        },
    ));
    if s.train_fraction < 1.0 {
        let step = |x: Option<u64>| x.map_or("not reached".to_string(), |s| format!("step {s}"));
        rows.push((
            "grokking: memorized (train acc ≥ 95%)",
            step(m.stages.memorized),
        ));
        rows.push((
            "grokking: generalized (test acc ≥ 95%)",
            step(m.stages.generalized),
        ));
    }
    rows.push(("initial weights (lottery check)", esc(&s.init_source)));
    rows
}

/// Tables `pipeline::write_tables` puts next to the report.
const TABLES: [&str; 5] = [
    "summary.json",
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
    h.push_str("<h2>Summary</h2>\n");
    for m in &s.models {
        if s.models.len() > 1 {
            let _ = writeln!(h, "<h3>model {}</h3>", m.model);
        }
        h.push_str("<table>\n");
        for (k, v) in model_rows(a, m) {
            let _ = writeln!(h, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
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

const STYLE: &str = "body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }\n\
table { border-collapse: collapse; margin-bottom: 1.5em; }\n\
th, td { border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left; vertical-align: top; }\n\
th { font-weight: normal; color: #555; }\n\
figure { margin: 2em 0; }\n\
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }\n\
figcaption { color: #444; margin-top: 0.4em; }\n\
.skipped { color: #777; font-style: italic; }\n\
.run { color: #666; }\n.files { color: #666; font-size: 90%; }\n";
