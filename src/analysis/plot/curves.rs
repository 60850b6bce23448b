//! `curves`: train/test loss (log scale) and accuracy over training, side by side, with
//! the grokking stages of a split run as dashed vertical lines labelled above the panels.

use super::frame::{
    label_style, legend, model_style, series_steps, span, whole_label, Area, Axes, Backend, Chart,
    Draw, Figure, Series, GREY, ORANGE,
};
use super::{drawable, overlaid, Prepared, RunAnalysis};
use crate::analysis::rundir::MetricsRow;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How to read the picture.
pub(super) const CAPTION: &str =
    "Cross-entropy loss (log scale) and accuracy on the training pairs and, for a split run, the \
     held-out pairs, from metrics.jsonl. Dashed vertical lines: end of memorization (train \
     accuracy ≥ 95%) and of generalization (test accuracy ≥ 95%).";

/// Height of one row of stage labels above the curves, pixels.
const STAGE_ROW: u32 = 24;

struct Curves {
    loss: Vec<Series>,
    acc: Vec<Series>,
    /// (step, label) of the grokking stages.
    stages: Vec<(f64, String)>,
    steps: (f64, f64),
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let (models, title) = overlaid(a, "Loss and accuracy over training");
    if a.dir.metrics.is_empty() {
        return (title, Err("no metrics.jsonl in this run".into()));
    }
    let mut evaluated: Vec<u64> = a.dir.metrics.iter().map(|r| r.step).collect();
    evaluated.sort_unstable();
    evaluated.dedup();
    if evaluated.len() < 2 {
        return (
            title,
            Err(format!(
                "metrics.jsonl has a single evaluation (step {}), nothing to follow over training",
                evaluated.first().copied().unwrap_or(0)
            )),
        );
    }
    let split = a
        .dir
        .metrics
        .iter()
        .any(|r| r.test_acc.is_some() || r.test_loss.is_some());
    let mut loss = Vec::new();
    let mut acc = Vec::new();
    let multi = models.len() > 1;
    for &k in &models {
        let rows = a.dir.metrics_of(k);
        let (train_color, suffix) = model_style(k, models.len());
        let test_color = if multi { train_color } else { ORANGE };
        let pts = |f: &dyn Fn(&MetricsRow) -> Option<f64>, scale: f64, positive: bool| {
            rows.iter()
                .filter_map(|r| f(r).map(|v| (r.step as f64, v * scale)))
                .filter(|&(_, v)| v.is_finite() && (!positive || v > 0.0))
                .collect::<Vec<_>>()
        };
        let push = |to: &mut Vec<Series>, label: &str, color, dashed, points: Vec<(f64, f64)>| {
            if !points.is_empty() {
                to.push(Series {
                    label: format!("{label}{suffix}"),
                    color,
                    dashed,
                    points,
                });
            }
        };
        let train_loss = pts(&|r| r.train_loss, 1.0, true);
        push(&mut loss, "train", train_color, false, train_loss);
        let test_loss = pts(&|r| r.test_loss, 1.0, true);
        push(&mut loss, "test", test_color, multi, test_loss);
        let train_acc = pts(&|r| r.train_acc, 100.0, false);
        push(&mut acc, "train", train_color, false, train_acc);
        let test_acc = pts(&|r| r.test_acc, 100.0, false);
        push(&mut acc, "test", test_color, multi, test_acc);
    }
    if loss.is_empty() && acc.is_empty() {
        return (
            title,
            Err("metrics.jsonl has no finite loss or accuracy values".into()),
        );
    }
    let mut stages = Vec::new();
    if split {
        let s = a
            .summary
            .models
            .first()
            .map(|m| m.stages)
            .unwrap_or_default();
        let who = if multi { "model 0 " } else { "" };
        if let Some(step) = s.memorized {
            stages.push((step as f64, format!("{who}memorized · step {step}")));
        }
        if let Some(step) = s.generalized {
            stages.push((step as f64, format!("{who}generalized · step {step}")));
        }
    }
    let steps = series_steps(loss.iter().chain(&acc));
    drawable(
        title,
        Curves {
            loss,
            acc,
            stages,
            steps,
        },
    )
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        (1400, 600)
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
        let (x0, x1) = self.steps;
        let top = 12 + STAGE_ROW * self.stages.len() as u32;

        // Loss, log scale.
        let (lo, hi) = span(self.loss.iter().flat_map(|s| s.points.iter().map(|p| p.1)))
            .unwrap_or((1e-3, 1.0));
        let (lo, hi) = if hi > lo {
            (lo / 1.6, hi * 1.6)
        } else {
            (lo / 10.0, hi * 10.0)
        };
        let mut chart = Axes::over_steps("cross-entropy loss (nats, log scale)")
            .margins(top, 24, 80)
            .draw(&left, x0..x1, (lo..hi).log_scale())?;
        self.draw_panel(root, &mut chart, &self.loss, (lo, hi))?;
        if !self.loss.is_empty() {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }

        // Accuracy.
        let mut chart = Axes::over_steps("accuracy (%)")
            .y_labels(whole_label)
            .margins(top, 24, 70)
            .draw(&right, x0..x1, -2.0..102.0)?;
        self.draw_panel(root, &mut chart, &self.acc, (-2.0, 102.0))?;
        if !self.acc.is_empty() {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    }
}

impl Curves {
    /// The lines of one panel and the stages across it.
    fn draw_panel<'a, DB, Y>(
        &self,
        root: &Area<DB>,
        chart: &mut Chart<'a, DB, RangedCoordf64, Y>,
        lines: &[Series],
        (y_lo, y_hi): (f64, f64),
    ) -> Draw
    where
        DB: Backend + 'a,
        Y: Ranged<ValueType = f64>,
    {
        for s in lines {
            s.draw(chart)?;
        }
        self.draw_stages(root, chart, y_lo, y_hi)
    }

    /// Dashed vertical lines at the stages, labelled above the panel (one row each, so
    /// labels never overlap each other or the curves).
    fn draw_stages<DB, Y>(
        &self,
        root: &Area<DB>,
        chart: &Chart<'_, DB, RangedCoordf64, Y>,
        y_lo: f64,
        y_hi: f64,
    ) -> Draw
    where
        DB: Backend,
        Y: Ranged<ValueType = f64>,
    {
        let (x0, x1) = self.steps;
        let n = self.stages.len() as i32;
        for (j, (x, label)) in self.stages.iter().enumerate() {
            let top = chart.backend_coord(&(*x, y_hi));
            let bottom = chart.backend_coord(&(*x, y_lo));
            let label_y = top.1 - STAGE_ROW as i32 * (n - j as i32);
            dashed_segment(root, (top.0, label_y + 4), bottom, GREY)?;
            let right_half = (*x - x0) > 0.6 * (x1 - x0);
            let (dx, h) = if right_half {
                (-6, HPos::Right)
            } else {
                (6, HPos::Left)
            };
            root.draw(&Text::new(
                label.clone(),
                (top.0 + dx, label_y),
                label_style().color(&GREY).pos(Pos::new(h, VPos::Top)),
            ))?;
        }
        Ok(())
    }
}

/// A dashed segment between two backend pixels (plotters dashes only series in chart
/// coordinates).
fn dashed_segment<DB: Backend>(
    root: &Area<DB>,
    a: (i32, i32),
    b: (i32, i32),
    color: RGBColor,
) -> Draw {
    let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
    let len = (dx * dx + dy * dy).sqrt();
    let (dash, gap) = (7.0, 5.0);
    let at = |s: f64| {
        (
            a.0 + (dx * s / len).round() as i32,
            a.1 + (dy * s / len).round() as i32,
        )
    };
    let mut t = 0.0;
    while t < len {
        let e = (t + dash).min(len);
        root.draw(&PathElement::new(vec![at(t), at(e)], color.stroke_width(2)))?;
        t += dash + gap;
    }
    Ok(())
}
