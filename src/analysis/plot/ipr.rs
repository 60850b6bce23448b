//! `ipr`: how concentrated the neurons' spectra are over training — the mean inverse
//! participation ratio with a 10th–90th percentile band, against a spectrum spread
//! evenly.

use super::frame::{
    dashed_level, fmt_num, legend, line_legend, model_style, step_range, tenth_label, Area, Axes,
    Backend, Draw, Figure, GREY,
};
use super::{drawable, overlaid, quantile, timeline_reason, Prepared, RunAnalysis};
use crate::analysis::progress;
use plotters::prelude::*;

/// How to read the picture, in the words of the run's basis.
pub(super) fn caption(a: &RunAnalysis) -> String {
    format!(
        "Inverse participation ratio Σ P_k² / (Σ P_k)² of each neuron's combined power \
         spectrum (1 = all power at one {}); line = mean over neurons, band = 10th to 90th \
         percentile.",
        super::units(a).one
    )
}

struct IprLine {
    label: String,
    color: RGBColor,
    /// (step, mean, p10, p90).
    points: Vec<(f64, f64, f64, f64)>,
}

struct IprFig {
    lines: Vec<IprLine>,
    /// IPR of a spectrum spread evenly over all ⌊p/2⌋ + 1 frequencies.
    uniform: f64,
    steps: (f64, f64),
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let (models, title) = overlaid(a, "Concentration of neuron spectra (IPR) over training");
    if let Some(reason) = timeline_reason(a) {
        return (title, Err(reason));
    }
    let mut lines = Vec::new();
    for &k in &models {
        let Some(records) = a.timeline.get(k) else {
            continue;
        };
        let points: Vec<(f64, f64, f64, f64)> = records
            .iter()
            .filter(|r| r.width() > 0)
            .map(|r| {
                let mut v: Vec<f64> = r.power.iter().map(|p| progress::ipr(p)).collect();
                v.sort_by(f64::total_cmp);
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                (r.step as f64, mean, quantile(&v, 0.1), quantile(&v, 0.9))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let (color, _) = model_style(k, models.len());
        let label = if models.len() == 1 {
            "mean IPR over neurons (band: 10th–90th percentile)".to_string()
        } else {
            format!("model {k}: mean (band: 10th–90th pct.)")
        };
        lines.push(IprLine {
            label,
            color,
            points,
        });
    }
    if lines.is_empty() {
        return (title, Err("the spectra snapshots have no neurons".into()));
    }
    let steps = step_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    drawable(
        title,
        IprFig {
            lines,
            uniform: 1.0 / (a.summary.p / 2 + 1) as f64,
            steps,
        },
    )
}

impl Figure for IprFig {
    fn draw<DB: Backend>(&self, _root: &Area<DB>, area: &Area<DB>) -> Draw {
        let (x0, x1) = self.steps;
        let mut chart = Axes::over_steps("inverse participation ratio")
            .y_labels(tenth_label)
            .draw(area, x0..x1, 0.0..1.05)?;
        for l in &self.lines {
            let mut band: Vec<(f64, f64)> = l.points.iter().map(|p| (p.0, p.3)).collect();
            band.extend(l.points.iter().rev().map(|p| (p.0, p.2)));
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                l.color.mix(0.2).filled(),
            )))?;
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().map(|p| (p.0, p.1)),
                    l.color.stroke_width(2),
                ))?
                .label(l.label.clone())
                .legend(line_legend(l.color, 2));
        }
        let u = self.uniform;
        let label = format!("power spread evenly over all k: {}", fmt_num(u));
        dashed_level(&mut chart, u, GREY, label)?;
        // The mean climbs from the bottom left to the top right and the uniform line runs
        // along the bottom: the middle right is the one place a legend covers neither.
        legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        Ok(())
    }
}
