//! `margin`: the normalized margin γ over training against the theory's γ*, from the
//! densest record the run has (metrics, spectra or checkpoints), with the checkpoints'
//! margins over all pairs as markers.

use super::frame::{
    dashed_level, fmt_num, label_style, legend, model_style, padded, series_steps, span, Area,
    Axes, Backend, Draw, Figure, Series, RED,
};
use super::{drawable, overlaid, plural, Prepared, RunAnalysis};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How to read the picture.
pub(super) const CAPTION: &str =
    "Normalized margin γ = min over pairs of (f_y − max_{c≠y} f_c) / Σ_i (‖u_i‖² + ‖v_i‖² + \
     ‖w_i‖²)^{h/2}. The dashed line is the maximum γ* of the theory where it applies \
     (x² over all pairs: a+b and a−b mod p, S3, S4, S5).";

struct MarginFig {
    lines: Vec<Series>,
    /// Checkpoint margins over all pairs, as markers.
    marks: Vec<Series>,
    gamma_star: Option<f64>,
    /// Trained on a subset of the pairs (γ over the training pairs may exceed γ*).
    split: bool,
    steps: (f64, f64),
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let (models, title) = overlaid(a, "Normalized margin over training");
    let split = a.summary.train_fraction < 1.0;
    let mut lines = Vec::new();
    let mut marks = Vec::new();
    for &k in &models {
        let (color, suffix) = model_style(k, models.len());
        let from_metrics: Vec<(f64, f64)> = a
            .dir
            .metrics_of(k)
            .iter()
            .filter_map(|r| r.margin.map(|m| (r.step as f64, m)))
            .filter(|p| p.1.is_finite())
            .collect();
        let from_timeline: Vec<(f64, f64)> = a
            .timeline
            .get(k)
            .map(|t| {
                t.iter()
                    .filter_map(|r| r.margin.map(|m| (r.step as f64, m)))
                    .filter(|p| p.1.is_finite())
                    .collect()
            })
            .unwrap_or_default();
        let ckpts: Vec<(f64, f64)> = a
            .checkpoints
            .iter()
            .filter(|r| r.model == k && r.gamma.is_finite())
            .map(|r| (r.step as f64, r.gamma))
            .collect();
        let pairs = if split { "training pairs" } else { "all pairs" };
        let ckpt_label = format!("γ over all pairs at checkpoints{suffix}");
        let (line, label) = if from_metrics.len() >= from_timeline.len() && from_metrics.len() >= 2
        {
            (
                from_metrics,
                format!("γ over {pairs} (metrics.jsonl){suffix}"),
            )
        } else if from_timeline.len() >= 2 {
            (from_timeline, format!("γ (spectra.jsonl){suffix}"))
        } else if ckpts.len() >= 2 {
            (ckpts.clone(), ckpt_label.clone())
        } else {
            (Vec::new(), String::new())
        };
        let line_is_ckpts = label == ckpt_label;
        if !line.is_empty() {
            lines.push(Series {
                label,
                color,
                dashed: false,
                points: line,
            });
        }
        if !line_is_ckpts && !ckpts.is_empty() {
            marks.push(Series {
                label: ckpt_label,
                color,
                dashed: false,
                points: ckpts,
            });
        }
    }
    if lines.is_empty() {
        let count = |n: usize| format!("{n} value{}", plural(n));
        let in_metrics = a.dir.metrics.iter().filter(|r| r.margin.is_some()).count();
        let in_spectra = a.dir.spectra.iter().filter(|r| r.margin.is_some()).count();
        return (
            title,
            Err(format!(
                "a margin curve needs two steps; this run has {} in metrics.jsonl, {} in {} and {} \
                 checkpoint{}",
                count(in_metrics),
                count(in_spectra),
                crate::analysis::record::SPECTRA_FILE,
                a.summary.checkpoints,
                plural(a.summary.checkpoints)
            )),
        );
    }
    let steps = series_steps(lines.iter().chain(&marks));
    drawable(
        title,
        MarginFig {
            lines,
            marks,
            gamma_star: a.gamma_star.filter(|g| g.is_finite()),
            split,
            steps,
        },
    )
}

impl Figure for MarginFig {
    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let (x0, x1) = self.steps;
        let (lo, hi) = span(
            self.lines
                .iter()
                .chain(&self.marks)
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .chain(self.gamma_star),
        )
        .unwrap_or((0.0, 1.0));
        let (lo, hi) = padded(lo, hi, 0.06);
        let mut chart = Axes::over_steps("normalized margin γ")
            .margins(12, 30, 90)
            .draw(area, x0..x1, lo..hi)?;
        if lo < 0.0 && hi > 0.0 {
            chart.draw_series(LineSeries::new(
                [(x0, 0.0), (x1, 0.0)],
                BLACK.mix(0.5).stroke_width(1),
            ))?;
        }
        if let Some(g) = self.gamma_star {
            let label = if self.split {
                format!("γ* (theory; bounds γ over all pairs) = {}", fmt_num(g))
            } else {
                format!("γ* (theory) = {}", fmt_num(g))
            };
            dashed_level(&mut chart, g, RED, label)?;
            let at = chart.backend_coord(&(x0, g));
            root.draw(&Text::new(
                "γ* (theory)",
                (at.0 + 10, at.1 - 6),
                label_style()
                    .color(&RED)
                    .pos(Pos::new(HPos::Left, VPos::Bottom)),
            ))?;
        }
        for s in &self.lines {
            s.draw(&mut chart)?;
        }
        for s in &self.marks {
            let color = s.color;
            chart
                .draw_series(s.points.iter().map(|&pt| {
                    EmptyElement::at(pt)
                        + Circle::new((0, 0), 5, color.filled())
                        + Circle::new((0, 0), 5, BLACK.stroke_width(1))
                }))?
                .label(s.label.clone())
                .legend(move |(x, y)| Circle::new((x + 12, y), 5, color.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}
