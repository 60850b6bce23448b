//! `phase_residuals`: histogram of the task's phase residual over the sinusoidal neurons
//! (θu + θv − θw for a+b and a·b, θu − θv − θw for a−b and a/b, in the analysis basis;
//! a spike at 0 for the max-margin solution), with a zoomed panel when the residuals are
//! concentrated. A task without an invariant (a²+ab+b²) gets no histogram.

use super::frame::{fmt_num, whole_label, x_ticks, Area, Axes, Backend, Draw, Figure, BLUE, GREY};
use super::{drawable, model0_phrase, quantile, Prepared, RunAnalysis};
use plotters::prelude::*;
use std::f64::consts::PI;

/// How to read the picture.
pub(super) const CAPTION: &str =
    "The task's phase residual wrapped to (−π, π] over sinusoidal neurons at their \
     frequency, in the analysis basis: θu + θv − θw for a+b (and a·b in the discrete-log \
     basis), θu − θv − θw for a−b (and a/b). A network built from clocks that compute \
     the task has residual 0, i.e. a spike at 0.";

/// Bins of the full-range residual histogram (and of the zoomed one).
const PHASE_BINS: usize = 72;
const ZOOM_BINS: usize = 40;

struct Phases {
    /// The residual as a formula (`θu − θv − θw`).
    formula: &'static str,
    /// θu + θv − θw of the sinusoidal neurons, in (−π, π].
    residuals: Vec<f64>,
    /// Half-width of the zoomed panel, when the residuals are concentrated enough for
    /// one to help.
    zoom: Option<f64>,
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let Some(formula) = a.basis.residual_formula() else {
        return (
            format!("Phase residual{} — {}", model0_phrase(a), a.summary.task),
            Err(format!(
                "{} has no phase invariant in the {} basis, so no residual is claimed",
                a.summary.task, a.summary.basis.name
            )),
        );
    };
    let base = format!(
        "Phase residual {formula} of sinusoidal neurons{} — {}, {} basis",
        model0_phrase(a),
        a.summary.task,
        a.summary.basis.name
    );
    let Some(neurons) = a.neurons.first() else {
        return (base, Err("no models in the analysis".into()));
    };
    let residuals: Vec<f64> = neurons
        .iter()
        .filter(|f| f.sinusoidal)
        .filter_map(|f| f.residual.filter(|r| r.is_finite()))
        .collect();
    if residuals.is_empty() {
        return (
            base,
            Err(format!(
                "no sinusoidal neurons (each of u, v, w ≥ {} of its power at one frequency) in model 0",
                a.summary.threshold
            )),
        );
    }
    let mut abs: Vec<f64> = residuals.iter().map(|r| r.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let mean = abs.iter().sum::<f64>() / abs.len() as f64;
    // Zoom on the central 98% when it is much narrower than the full circle.
    let q = quantile(&abs, 0.98);
    let zoom = (q < PI / 8.0).then(|| {
        let half = (1.3 * q).max(1e-3);
        // A round number of the scale of `half`, so the zoomed axis has clean ticks.
        let scale = 10f64.powf(half.log10().floor());
        (half / scale).ceil() * scale
    });
    let title = format!(
        "{base}: {} of {} neurons, mean |{formula}| = {} rad",
        residuals.len(),
        neurons.len(),
        fmt_num(mean)
    );
    drawable(
        title,
        Phases {
            formula,
            residuals,
            zoom,
        },
    )
}

/// Counts of `values` in `bins` equal bins over (lo, hi] (values outside are dropped).
fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        if v < lo || v > hi {
            continue;
        }
        // (lo, hi] → bins; lo itself goes to the first.
        let b = (((v - lo) / width).ceil() as isize - 1).clamp(0, bins as isize - 1);
        counts[b as usize] += 1;
    }
    counts
}

impl Figure for Phases {
    fn size(&self) -> (u32, u32) {
        if self.zoom.is_some() {
            (1400, 600)
        } else {
            (1000, 600)
        }
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let full_ticks: Vec<(f64, String)> = [
            (-PI, "−π"),
            (-PI / 2.0, "−π/2"),
            (0.0, "0"),
            (PI / 2.0, "π/2"),
            (PI, "π"),
        ]
        .iter()
        .map(|&(v, s)| (v, s.to_string()))
        .collect();
        let full = (-PI, PI);
        let full_desc = format!("{} (radians, wrapped to (−π, π])", self.formula);
        let Some(half) = self.zoom else {
            return self.panel(root, area, full, PHASE_BINS, &full_ticks, &full_desc);
        };
        let (left, right) = area.split_horizontally(area.dim_in_pixel().0 * 11 / 20);
        self.panel(root, &left, full, PHASE_BINS, &full_ticks, &full_desc)?;
        let ticks: Vec<(f64, String)> = [-1.0, -0.5, 0.0, 0.5, 1.0]
            .iter()
            .map(|&f| (f * half, fmt_num(f * half)))
            .collect();
        let outside = self.residuals.iter().filter(|r| r.abs() > half).count();
        let mut desc = format!("zoom: |{}| ≤ {} rad", self.formula, fmt_num(half));
        if outside > 0 {
            desc.push_str(&format!(" ({outside} outside)"));
        }
        let zoomed = (-1.08 * half, 1.08 * half);
        self.panel(root, &right, zoomed, ZOOM_BINS, &ticks, &desc)
    }
}

impl Phases {
    /// The histogram of the residuals over `lo..hi` on `area`.
    fn panel<DB: Backend>(
        &self,
        root: &Area<DB>,
        area: &Area<DB>,
        (lo, hi): (f64, f64),
        bins: usize,
        ticks: &[(f64, String)],
        desc: &str,
    ) -> Draw {
        let counts = histogram(&self.residuals, lo, hi, bins);
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        let mut chart = Axes::own_x_ticks(desc, "neurons")
            .y_labels(whole_label)
            .margins(12, 40, 70)
            .draw(area, lo..hi, 0.0..top)?;
        x_ticks(root, &chart, ticks)?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (0.0, top)],
            8,
            6,
            GREY.stroke_width(1),
        ))?;
        let width = (hi - lo) / bins as f64;
        chart.draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(b, &c)| {
                    let x = lo + b as f64 * width;
                    Rectangle::new([(x, 0.0), (x + width, c as f64)], BLUE.filled())
                }),
        )?;
        Ok(())
    }
}
