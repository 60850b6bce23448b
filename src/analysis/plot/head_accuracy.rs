//! `head_accuracy`: a multi-task run's test accuracy over training, one curve per head
//! (target `(x0 + x1·p) mod q`), coloured by q on the viridis scale, model 0 only; the
//! all-heads accuracy (a pair counts when every head is right) in black.

use super::frame::{
    legend, render as render_files, series_steps, viridis, whole_label, Area, Axes, Backend, Draw,
    Figure, Series,
};
use super::PictureFiles;
use crate::analysis::heads::HeadsSummary;
use crate::analysis::rundir::RunDir;
use crate::error::Result;
use plotters::prelude::*;
use std::path::Path;

/// How to read the picture.
pub const CAPTION: &str =
    "Test accuracy of each head over training (model 0), from metrics.jsonl: one curve per \
     target (x0 + x1·p) mod q, colour by q (dark: small q, yellow: large q); black: all heads \
     right at once.";

struct HeadCurves {
    series: Vec<Series>,
    steps: (f64, f64),
}

impl Figure for HeadCurves {
    fn size(&self) -> (u32, u32) {
        (1200, 700)
    }

    fn draw<DB: Backend>(&self, _root: &Area<DB>, area: &Area<DB>) -> Draw {
        let (x0, x1) = self.steps;
        let mut chart = Axes::over_steps("test accuracy (%)")
            .y_labels(whole_label)
            .margins(12, 150, 70)
            .draw(area, x0..x1, -2.0..102.0)?;
        for s in &self.series {
            s.draw(&mut chart)?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}

/// Draws `head_accuracy.{png,svg}` into `out`; None when the run has fewer than two
/// evaluations with a test accuracy (nothing to follow over training).
pub fn render(dir: &RunDir, s: &HeadsSummary, out: &Path) -> Result<Option<PictureFiles>> {
    let rows = dir.metrics_of(0);
    let Some(model) = s.models.first() else {
        return Ok(None);
    };
    let n = model.heads.len();
    let single = dir.config.task.target_mod.is_some();
    let mut series: Vec<Series> = model
        .heads
        .iter()
        .enumerate()
        .map(|(h, head)| Series {
            label: head.name.clone(),
            color: viridis(if n > 1 {
                h as f64 / (n - 1) as f64
            } else {
                0.0
            }),
            dashed: false,
            points: rows
                .iter()
                .filter_map(|r| {
                    let acc = if single {
                        r.test_acc
                    } else {
                        r.test_head_acc.as_ref()?.get(h).copied().flatten()
                    };
                    acc.map(|a| (r.step as f64, 100.0 * a))
                })
                .collect(),
        })
        .collect();
    if !single {
        series.push(Series {
            label: "all heads".into(),
            color: BLACK,
            dashed: true,
            points: rows
                .iter()
                .filter_map(|r| r.test_acc.map(|a| (r.step as f64, 100.0 * a)))
                .collect(),
        });
    }
    if series.iter().all(|s| s.points.len() < 2) {
        return Ok(None);
    }
    super::frame::ensure_font()?;
    let steps = series_steps(&series);
    let title = format!("Test accuracy per head — {}", s.task);
    Ok(Some(render_files(
        &HeadCurves { series, steps },
        &title,
        out,
        "head_accuracy",
    )?))
}
