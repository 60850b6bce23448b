//! `irrep_power`: every neuron's final power share in each component of the analysis
//! basis (rows = neurons grouped by dominant component, columns = irreps ρ0… of a group,
//! or frequencies 0… of Z_p), the universality paper's per-neuron picture.

use super::frame::{label_style, viridis, x_ticks, Area, Axes, Backend, Draw, Figure};
use super::power_heatmap::colour_bar;
use super::{drawable, model0_phrase, ordered_neurons, Prepared, RunAnalysis};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How to read the picture.
pub(super) fn caption(a: &RunAnalysis) -> String {
    format!(
        "Each row is a neuron at the final snapshot, each column a component of the {} \
         basis ({}); colour = the share of the neuron's combined ‖u_i‖²+‖v_i‖²+‖w_i‖² in \
         that component (column 0: the mean). Rows are grouped by the dominant component, \
         strongest first within a group; a neuron that uses one irrep is one bright cell.",
        a.summary.basis.name,
        a.summary.basis.transform()
    )
}

/// Most neuron rows drawn (wider models are sampled evenly along the sorted order).
const MAX_ROWS: usize = 768;

struct Shares {
    /// Per row (top to bottom): the share per component.
    values: Vec<Vec<f64>>,
    /// Column labels (`ρ0`, `ρ1 (dim 2)`, … or `0`, `1`, …).
    columns: Vec<String>,
    /// (component, first row, end row) of each group, top to bottom.
    groups: Vec<(usize, usize, usize)>,
    /// The component naming, e.g. `ρ` (for the group labels).
    prefix: &'static str,
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let title = format!(
        "Power share per neuron and {}{} — {}",
        a.summary.basis.unit,
        model0_phrase(a),
        a.summary.task
    );
    let Some(last) = a.timeline.first().and_then(|t| t.last()) else {
        return (title, Err("no spectra snapshot".into()));
    };
    let all = ordered_neurons(last);
    let width = all.len();
    if width == 0 {
        return (title, Err("the model has no neurons".into()));
    }
    let order: Vec<(usize, usize)> = if width > MAX_ROWS {
        (0..MAX_ROWS)
            .filter_map(|r| all.get(r * width / MAX_ROWS).copied())
            .collect()
    } else {
        all
    };
    let values: Vec<Vec<f64>> = order
        .iter()
        .map(|&(i, _)| last.power.get(i).cloned().unwrap_or_default())
        .collect();
    let k = values.iter().map(Vec::len).max().unwrap_or(0);
    let columns = match a.basis.irreps() {
        Some(r) => r
            .irreps
            .iter()
            .map(|i| format!("{} d={}", i.name, i.dim))
            .collect(),
        None => (0..k).map(|c| c.to_string()).collect(),
    };
    let mut groups: Vec<(usize, usize, usize)> = Vec::new();
    for (row, &(_, c)) in order.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.0 == c => g.2 = row + 1,
            _ => groups.push((c, row, row + 1)),
        }
    }
    let title = format!("{title} ({} of {width} neurons)", order.len());
    drawable(
        title,
        Shares {
            values,
            columns,
            groups,
            prefix: if a.basis.irreps().is_some() {
                "ρ"
            } else {
                "k="
            },
        },
    )
}

impl Figure for Shares {
    fn size(&self) -> (u32, u32) {
        (1000, 860)
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let (w, _) = area.dim_in_pixel();
        let (main, bar) = area.split_horizontally(w.saturating_sub(150));
        let rows = self.values.len().max(1) as f64;
        let cols = self.columns.len().max(1) as f64;
        let mut chart = Axes::own_x_ticks("", "neurons, grouped by dominant component")
            .bare_y()
            .margins(12, 20, 90)
            .draw(&main, 0.0..cols, 0.0..rows)?;
        let mut cells = Vec::new();
        for (r, row) in self.values.iter().enumerate() {
            let y = rows - r as f64;
            for (c, &v) in row.iter().enumerate() {
                cells.push(Rectangle::new(
                    [(c as f64, y), (c as f64 + 1.0, y - 1.0)],
                    viridis(v.clamp(0.0, 1.0)).filled(),
                ));
            }
        }
        chart.draw_series(cells)?;
        let ticks: Vec<(f64, String)> = self
            .columns
            .iter()
            .enumerate()
            .map(|(c, name)| (c as f64 + 0.5, name.clone()))
            .collect();
        x_ticks(root, &chart, &ticks)?;
        let mut last_label_y: Option<i32> = None;
        for (g, &(c, start, end)) in self.groups.iter().enumerate() {
            if g > 0 {
                let y = rows - start as f64;
                chart.draw_series(LineSeries::new(
                    [(0.0, y), (cols, y)],
                    WHITE.mix(0.7).stroke_width(1),
                ))?;
            }
            let at = chart.backend_coord(&(0.0, rows - 0.5 * (start + end) as f64));
            if last_label_y.is_none_or(|y| at.1 - y >= 17) {
                root.draw(&Text::new(
                    format!("{}{c}", self.prefix),
                    (at.0 - 8, at.1),
                    label_style().pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
                last_label_y = Some(at.1);
            }
        }
        colour_bar(&bar, "power share")
    }
}
