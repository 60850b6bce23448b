//! `power_heatmap`: every neuron's share of power at its final frequency over training
//! (rows = neurons grouped by final frequency, columns = snapshots), with a colour bar.

use super::frame::{
    desc_style, label_style, tenth_label, viridis, Area, Axes, Backend, Draw, Figure,
};
use super::{drawable, model0_phrase, ordered_neurons, timeline_reason, Prepared, RunAnalysis};
use crate::analysis::record::SpectraRecord;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How to read the picture, for the analysis basis of the run.
pub(super) fn caption(a: &RunAnalysis) -> String {
    format!(
        "Each row is a neuron, each column a snapshot; colour = share of the neuron's combined \
         u, v, w Fourier power at the frequency it ends on ({} basis, DFT over {}). Rows are \
         grouped by final frequency k (1…{}), strongest first within a group.",
        a.summary.basis.name,
        a.summary.basis.group,
        a.basis.max_freq()
    )
}

/// Most snapshot columns (more are subsampled evenly).
const MAX_HEATMAP_COLUMNS: usize = 300;

/// Most neuron rows (about one pixel each; wider models are sampled evenly along the
/// sorted order).
const MAX_HEATMAP_ROWS: usize = 768;

/// Colour levels of the heat map; equal neighbouring cells are merged into one
/// rectangle, which keeps the SVG small.
const LEVELS: f64 = 64.0;

struct Heatmap {
    /// Column edges in steps (len = columns + 1).
    edges: Vec<f64>,
    /// Per row (top to bottom): the values per column (NaN = no data).
    values: Vec<Vec<f64>>,
    /// (frequency, first row, end row) of each group, top to bottom.
    groups: Vec<(usize, usize, usize)>,
}

/// Records of a timeline subsampled evenly to at most `max` (first and last kept).
fn subsample(records: &[SpectraRecord], max: usize) -> Vec<&SpectraRecord> {
    let n = records.len();
    if n <= max || max < 2 {
        return records.iter().collect();
    }
    let mut idx: Vec<usize> = (0..max)
        .map(|j| ((j as f64) * (n - 1) as f64 / (max - 1) as f64).round() as usize)
        .collect();
    idx.dedup();
    idx.into_iter().filter_map(|i| records.get(i)).collect()
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let title = format!(
        "Power share at each neuron's final frequency{} — {}",
        model0_phrase(a),
        a.summary.task
    );
    if let Some(reason) = timeline_reason(a) {
        return (title, Err(reason));
    }
    let records = subsample(&a.timeline[0], MAX_HEATMAP_COLUMNS);
    let Some(last) = records.last() else {
        return (title, Err("no spectra snapshots".into()));
    };
    let all = ordered_neurons(last);
    let width = all.len();
    // Evenly spaced rows of the sorted order keep every group, in proportion.
    let order: Vec<(usize, usize)> = if width > MAX_HEATMAP_ROWS {
        (0..MAX_HEATMAP_ROWS)
            .filter_map(|r| all.get(r * width / MAX_HEATMAP_ROWS).copied())
            .collect()
    } else {
        all
    };
    let steps: Vec<f64> = records.iter().map(|r| r.step as f64).collect();
    let n = steps.len();
    let mut edges = Vec::with_capacity(n + 1);
    edges.push(steps[0]);
    for j in 1..n {
        edges.push(0.5 * (steps[j - 1] + steps[j]));
    }
    edges.push(steps[n - 1]);
    let values = order
        .iter()
        .map(|&(i, k)| {
            records
                .iter()
                .map(|r| {
                    r.power
                        .get(i)
                        .and_then(|row| row.get(k))
                        .copied()
                        .unwrap_or(f64::NAN)
                })
                .collect()
        })
        .collect();
    let mut groups: Vec<(usize, usize, usize)> = Vec::new();
    for (row, &(_, k)) in order.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.0 == k => g.2 = row + 1,
            _ => groups.push((k, row, row + 1)),
        }
    }
    let title = if order.len() < width {
        format!(
            "{title} ({} of {width} neurons × {} snapshots)",
            order.len(),
            records.len()
        )
    } else {
        format!("{title} ({width} neurons × {} snapshots)", records.len())
    };
    drawable(
        title,
        Heatmap {
            edges,
            values,
            groups,
        },
    )
}

impl Figure for Heatmap {
    fn size(&self) -> (u32, u32) {
        (1200, 860)
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let (w, _) = area.dim_in_pixel();
        let (main, bar) = area.split_horizontally(w.saturating_sub(150));
        let rows = self.values.len().max(1) as f64;
        let x0 = self.edges.first().copied().unwrap_or(0.0);
        let x1 = self.edges.last().copied().unwrap_or(1.0);
        let (x0, x1) = if x1 > x0 {
            (x0, x1)
        } else {
            (x0 - 1.0, x1 + 1.0)
        };
        let mut chart = Axes::over_steps("neurons, grouped by final frequency k")
            .bare_y()
            .margins(12, 20, 90)
            .draw(&main, x0..x1, 0.0..rows)?;
        chart.draw_series(self.cells(rows))?;
        // Group separators and labels (a label only where there is room for it).
        let mut last_label_y: Option<i32> = None;
        for (g, &(k, start, end)) in self.groups.iter().enumerate() {
            if g > 0 {
                let y = rows - start as f64;
                chart.draw_series(LineSeries::new(
                    [(x0, y), (x1, y)],
                    WHITE.mix(0.7).stroke_width(1),
                ))?;
            }
            let mid = rows - 0.5 * (start + end) as f64;
            let at = chart.backend_coord(&(x0, mid));
            if last_label_y.is_none_or(|y| at.1 - y >= 17) {
                root.draw(&Text::new(
                    format!("k={k}"),
                    (at.0 - 8, at.1),
                    label_style().pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
                last_label_y = Some(at.1);
            }
        }
        colour_bar(&bar, "power share at final k")
    }
}

impl Heatmap {
    /// One rectangle per run of equal colour levels in a row; row r (0 = top) spans y in
    /// [rows − r − 1, rows − r].
    fn cells(&self, rows: f64) -> Vec<Rectangle<(f64, f64)>> {
        let level = |v: f64| {
            if v.is_finite() {
                Some((v.clamp(0.0, 1.0) * (LEVELS - 1.0)).round() as i64)
            } else {
                None
            }
        };
        let mut cells = Vec::new();
        for (r, row) in self.values.iter().enumerate() {
            let y_top = rows - r as f64;
            let mut j = 0;
            while j < row.len() {
                let here = level(row[j]);
                let mut e = j + 1;
                while e < row.len() && level(row[e]) == here {
                    e += 1;
                }
                let color = match here {
                    Some(l) => viridis(l as f64 / (LEVELS - 1.0)),
                    None => RGBColor(220, 220, 220),
                };
                if let (Some(&xa), Some(&xb)) = (self.edges.get(j), self.edges.get(e)) {
                    cells.push(Rectangle::new(
                        [(xa, y_top), (xb, y_top - 1.0)],
                        color.filled(),
                    ));
                }
                j = e;
            }
        }
        cells
    }
}

/// The colour scale, 0 to 1, on `bar`, described as `desc` (shared with
/// [`super::irrep_power`]).
pub(super) fn colour_bar<DB: Backend>(bar: &Area<DB>, desc: &str) -> Draw {
    let mut cb = ChartBuilder::on(bar)
        .margin_top(12)
        .margin_bottom(62)
        .margin_left(10)
        .margin_right(10)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_desc(desc)
        .y_label_formatter(&tenth_label)
        .axis_desc_style(desc_style())
        .label_style(label_style())
        .draw()?;
    let n = 100;
    cb.draw_series((0..n).map(|i| {
        let (a, b) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
        Rectangle::new([(0.0, a), (0.6, b)], viridis(0.5 * (a + b)).filled())
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(254, 232, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }
}
