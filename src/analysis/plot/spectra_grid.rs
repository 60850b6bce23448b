//! `spectra_grid`: the final power spectrum of a sample of neurons, one small bar chart
//! each, in rows by dominant frequency (or in plain rows when there are too many
//! frequencies for one row each).

use super::frame::{
    desc_style, label_style, title_style, Area, Backend, Draw, Fallible, Figure, BLUE, GREY, ORANGE,
};
use super::{drawable, model0_phrase, ordered_neurons, Prepared, RunAnalysis, MAX_GRID_PANELS};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How to read the picture, in the words of the run's basis.
pub(super) fn caption(a: &RunAnalysis) -> String {
    let u = super::units(a);
    format!(
        "Final {} of individual neurons in the analysis basis (combined u, v, w power per \
         {} k, as shares of the neuron's power in that basis); the dominant {} is \
         highlighted. Panels are grouped by dominant {} and sampled evenly across each group.",
        u.spectrum, u.one, u.one, u.one
    )
}

/// Left label column, bottom axis strip and top title strip of the grid, pixels.
const GRID_LEFT: u32 = 150;
const GRID_BOTTOM: u32 = 70;
const GRID_TOP: u32 = 50;

struct Panel {
    neuron: usize,
    freq: usize,
    frac: f64,
    power: Vec<f64>,
}

struct Grid {
    panels: Vec<Panel>,
    /// Rows of panel indices; with `row_labels`, one row per frequency group.
    rows: Vec<Vec<usize>>,
    row_labels: Option<Vec<String>>,
    cols: usize,
    max_freq: usize,
    /// The frequency axis of the analysis basis, e.g. `frequency k (log basis, Z_22 = Z_p−1)`.
    freq_label: String,
}

/// How many neurons each group shows: as even as possible across groups, never more
/// than a group has; with more groups than panels, one neuron from each of `cap` evenly
/// spaced groups.
fn quotas(sizes: &[usize], cap: usize) -> Vec<usize> {
    let mut quota = vec![0usize; sizes.len()];
    if sizes.len() > cap {
        for j in 0..cap {
            if let Some(q) = quota.get_mut(j * sizes.len() / cap) {
                *q = 1;
            }
        }
    } else {
        let mut left = cap;
        while left > 0 {
            let mut gave = false;
            for (q, &size) in quota.iter_mut().zip(sizes) {
                if left > 0 && *q < size {
                    *q += 1;
                    left -= 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
    }
    quota
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let base = format!("Final power spectra of neurons{}", model0_phrase(a));
    let Some(last) = a.timeline.first().and_then(|t| t.last()) else {
        return (base, Err("no spectra of the final checkpoint".into()));
    };
    let m = last.width();
    if m == 0 {
        return (base, Err("the model has no neurons".into()));
    }
    // Groups of neuron indices in the sorted order.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, k) in ordered_neurons(last) {
        match groups.last_mut() {
            Some(g) if g.0 == k => g.1.push(i),
            _ => groups.push((k, vec![i])),
        }
    }
    let sizes: Vec<usize> = groups.iter().map(|g| g.1.len()).collect();
    let quota = quotas(&sizes, MAX_GRID_PANELS.min(m));
    let by_group = groups.len() <= 16;
    let mut panels = Vec::new();
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for ((k, members), &q) in groups.iter().zip(&quota) {
        // Evenly across the group (sorted strongest first), so the worst show too.
        let picked: Vec<usize> = (0..q)
            .map(|j| {
                if q == 1 {
                    0
                } else {
                    ((j as f64) * (members.len() - 1) as f64 / (q - 1) as f64).round() as usize
                }
            })
            .filter_map(|j| members.get(j).copied())
            .collect();
        let mut row = Vec::new();
        for i in picked {
            row.push(panels.len());
            panels.push(Panel {
                neuron: i,
                freq: *k,
                frac: last.frac.get(i).copied().unwrap_or(0.0),
                power: last.power.get(i).cloned().unwrap_or_default(),
            });
        }
        labels.push(format!("k={k}\n{} neurons", members.len()));
        rows.push(row);
    }
    let n = panels.len();
    let (rows, row_labels, cols) = if by_group {
        let cols = rows.iter().map(Vec::len).max().unwrap_or(1).clamp(1, 8);
        // A group with more panels than columns wraps onto extra rows.
        let mut wrapped = Vec::new();
        let mut wrapped_labels = Vec::new();
        for (row, label) in rows.into_iter().zip(labels) {
            for (c, chunk) in row.chunks(cols).enumerate() {
                wrapped.push(chunk.to_vec());
                wrapped_labels.push(if c == 0 { label.clone() } else { String::new() });
            }
        }
        (wrapped, Some(wrapped_labels), cols)
    } else {
        let cols = 6.min(n.max(1));
        let rows = (0..n)
            .collect::<Vec<_>>()
            .chunks(cols)
            .map(|c| c.to_vec())
            .collect();
        (rows, None, cols)
    };
    let title = format!(
        "{base} at step {} — showing {n} of {m} neurons, grouped by dominant frequency",
        last.step
    );
    drawable(
        title,
        Grid {
            panels,
            rows,
            row_labels,
            cols,
            max_freq: last.p / 2,
            freq_label: a.basis.freq_label(),
        },
    )
}

impl Figure for Grid {
    fn size(&self) -> (u32, u32) {
        let w = 1400;
        let h = GRID_TOP + GRID_BOTTOM + self.row_height() * self.rows.len().max(1) as u32;
        (w, h)
    }

    /// The title in a fixed strip at the top, its size fixed: the panels below are laid
    /// out by pixel on the whole picture.
    fn title<DB: Backend>(&self, root: &Area<DB>, title: &str) -> Fallible<Area<DB>> {
        let (w, _) = root.dim_in_pixel();
        root.draw(&Text::new(
            title.to_string(),
            (w as i32 / 2, 12),
            title_style().pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        Ok(root.clone())
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>, _area: &Area<DB>) -> Draw {
        let (w, h) = root.dim_in_pixel();
        let rh = self.row_height() as i32;
        let cols = self.cols.max(1) as i32;
        let cw = (w as i32 - GRID_LEFT as i32 - 20) / cols;
        let ticks = self.ticks();
        for (r, row) in self.rows.iter().enumerate() {
            let y0 = GRID_TOP as i32 + r as i32 * rh;
            if let Some(label) = self.row_labels.as_ref().and_then(|l| l.get(r)) {
                for (line, text) in label.lines().enumerate() {
                    root.draw(&Text::new(
                        text.to_string(),
                        (GRID_LEFT as i32 - 46, y0 + rh / 2 - 10 + 20 * line as i32),
                        (if line == 0 {
                            desc_style()
                        } else {
                            label_style().color(&GREY)
                        })
                        .pos(Pos::new(HPos::Right, VPos::Center)),
                    ))?;
                }
            }
            for (c, &pi) in row.iter().enumerate() {
                let Some(panel) = self.panels.get(pi) else {
                    continue;
                };
                let x0 = GRID_LEFT as i32 + c as i32 * cw;
                let cell = root.clone().shrink((x0, y0), (cw as u32, rh as u32));
                // x ticks under every panel with no panel below it.
                let last_row = self.rows.get(r + 1).is_none_or(|next| next.len() <= c);
                let x_ticks: &[usize] = if last_row { &ticks } else { &[] };
                self.draw_panel(root, &cell, panel, c == 0, x_ticks)?;
            }
        }
        let bottom = h as i32 - 16;
        root.draw(&Text::new(
            format!(
                "{}, 0 … {}; bar height = share of the neuron's power; orange = dominant k",
                self.freq_label, self.max_freq
            ),
            (GRID_LEFT as i32 + (w as i32 - GRID_LEFT as i32) / 2, bottom),
            desc_style().pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
        Ok(())
    }
}

impl Grid {
    fn row_height(&self) -> u32 {
        let r = self.rows.len().max(1) as u32;
        (1500 / r).clamp(95, 170)
    }

    /// At most four ticks per panel, at round numbers.
    fn ticks(&self) -> Vec<usize> {
        let raw = (self.max_freq / 3).max(1);
        let step = [1, 2, 5]
            .iter()
            .flat_map(|&b| (0..7).map(move |e| b * 10usize.pow(e)))
            .filter(|&s| s >= raw)
            .min()
            .unwrap_or(raw);
        (0..=self.max_freq).filter(|k| k % step == 0).collect()
    }

    /// One neuron's spectrum on `cell`, with y labels in the first column and the
    /// frequency ticks `x_ticks` below it.
    fn draw_panel<DB: Backend>(
        &self,
        root: &Area<DB>,
        cell: &Area<DB>,
        panel: &Panel,
        first_column: bool,
        x_ticks: &[usize],
    ) -> Draw {
        let kmax = self.max_freq as f64;
        let rh = self.row_height();
        let mut chart = ChartBuilder::on(cell)
            .margin(6)
            .margin_top(24)
            .build_cartesian_2d(-0.7..(kmax + 0.7), 0.0..1.05)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_labels(3)
            .x_labels(0)
            .bold_line_style(BLACK.mix(0.08))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        // Bars under half a pixel are left out (they would not show, and at large p they
        // would make the SVG huge).
        let min_share = 0.5 / f64::from(rh.max(1));
        // Bars at least ~2 pixels wide, however many frequencies share the panel.
        let (px_range, _) = chart.plotting_area().get_pixel_range();
        let px_per_k = f64::from((px_range.end - px_range.start).max(1)) / (kmax + 1.4);
        let half = (1.0 / px_per_k).max(0.42);
        chart.draw_series(
            panel
                .power
                .iter()
                .enumerate()
                .filter(|&(k, &v)| k == panel.freq || v >= min_share)
                .map(|(k, &v)| {
                    let color = if k == panel.freq { ORANGE } else { BLUE };
                    Rectangle::new(
                        [
                            (k as f64 - half, 0.0),
                            (k as f64 + half, v.clamp(0.0, 1.05)),
                        ],
                        color.filled(),
                    )
                }),
        )?;
        let (px, py) = chart.plotting_area().get_pixel_range();
        root.draw(&Rectangle::new(
            [(px.start, py.start), (px.end, py.end)],
            BLACK.mix(0.35).stroke_width(1),
        ))?;
        root.draw(&Text::new(
            if self.row_labels.is_some() {
                format!("#{} · {:.0}%", panel.neuron, 100.0 * panel.frac)
            } else {
                format!(
                    "#{} · k={} · {:.0}%",
                    panel.neuron,
                    panel.freq,
                    100.0 * panel.frac
                )
            },
            ((px.start + px.end) / 2, py.start - 3),
            label_style().pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
        if first_column {
            for (v, s) in [(0.0, "0"), (1.0, "1")] {
                let at = chart.backend_coord(&(-0.7, v));
                root.draw(&Text::new(
                    s,
                    (at.0 - 5, at.1),
                    label_style().pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
            }
        }
        for &k in x_ticks {
            let at = chart.backend_coord(&(k as f64, 0.0));
            root.draw(&PathElement::new(
                vec![at, (at.0, at.1 + 4)],
                BLACK.stroke_width(1),
            ))?;
            root.draw(&Text::new(
                k.to_string(),
                (at.0, at.1 + 6),
                label_style().pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        Ok(())
    }
}
