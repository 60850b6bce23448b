//! Phase diagrams: a per-model metric over two swept keys as a heat map (the mean over
//! the models of each cell, usually the seeds, beside their spread), and the categorical
//! map (each cell striped by its models' categories: generalizes, memorizes, fails,
//! diverged). Drawn with the analysis' shared frame (font, title, colour scale), written
//! as PNG and SVG.

use super::results::{Category, ModelRow};
use super::spec::DiagramSpec;
use crate::analysis::plot::frame::{
    desc_style, ensure_font, fmt_num, label_style, render, span, viridis, Area, Backend, Draw,
    Fallible, Figure,
};
use crate::analysis::plot::PictureFiles;
use crate::error::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A drawn diagram.
#[derive(Clone, Debug)]
pub struct Diagram {
    /// File stem.
    pub name: String,
    /// Title drawn above it.
    pub title: String,
    /// How to read it.
    pub caption: String,
    /// The PNG and SVG.
    pub files: PictureFiles,
}

/// The two keys of a diagram and their values, in ascending order.
struct Grid {
    x_key: String,
    y_key: String,
    xs: Vec<String>,
    ys: Vec<String>,
}

impl Grid {
    fn of(rows: &[ModelRow], x_key: &str, y_key: &str) -> Grid {
        Grid {
            x_key: x_key.into(),
            y_key: y_key.into(),
            xs: values_of(rows, x_key),
            ys: values_of(rows, y_key),
        }
    }

    /// The rows of cell (x index, y index).
    fn cell<'a>(&self, rows: &'a [ModelRow], i: usize, j: usize) -> Vec<&'a ModelRow> {
        rows.iter()
            .filter(|r| {
                r.setting(&self.x_key) == Some(self.xs[i].as_str())
                    && r.setting(&self.y_key) == Some(self.ys[j].as_str())
            })
            .collect()
    }
}

/// The distinct values of a key, numerically ascending where they are numbers.
fn values_of(rows: &[ModelRow], key: &str) -> Vec<String> {
    let mut vals: Vec<String> = Vec::new();
    for r in rows {
        if let Some(v) = r.setting(key) {
            if !vals.iter().any(|x| x == v) {
                vals.push(v.to_string());
            }
        }
    }
    vals.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
    vals
}

/// The cells of a diagram: each key's values (ascending) and the rows of every cell.
pub struct Cells<'a> {
    /// Values of the x key, in TOML spelling.
    pub xs: Vec<String>,
    /// Values of the y key.
    pub ys: Vec<String>,
    /// `[y index][x index]`: the rows of that cell (the seeds and any other swept key).
    pub rows: Vec<Vec<Vec<&'a ModelRow>>>,
}

/// The cells of `spec` over `rows`.
pub fn cells<'a>(rows: &'a [ModelRow], spec: &DiagramSpec) -> Cells<'a> {
    let g = Grid::of(rows, &spec.x, &spec.y);
    let cells = (0..g.ys.len())
        .map(|j| (0..g.xs.len()).map(|i| g.cell(rows, i, j)).collect())
        .collect();
    Cells {
        xs: g.xs,
        ys: g.ys,
        rows: cells,
    }
}

/// A value as a tick label (strings without their quotes).
pub fn tick(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(x) => fmt_num(x),
        Err(_) => v.trim_matches('"').to_string(),
    }
}

/// A cell's value in about six characters (5000, 733, 0.92, 7.8e-3).
fn cell_num(v: f64) -> String {
    if v.abs() >= 100.0 && v.abs() < 1e5 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 && v.abs() < 100.0 {
        format!("{v:.1}")
    } else if v != 0.0 && v.abs() < 1e-2 {
        // Two significant digits: a cell holds ~6 characters (7.8e-3, not 7.81e-3).
        format!("{v:.1e}")
    } else {
        fmt_num(v)
    }
}

/// Mean and standard deviation (over the models that have the metric), and how many do.
pub fn stats(cell: &[&ModelRow], metric: &str) -> (Option<f64>, Option<f64>, usize) {
    let xs: Vec<f64> = cell
        .iter()
        .filter_map(|r| r.metric(metric))
        .filter(|x| x.is_finite())
        .collect();
    if xs.is_empty() {
        return (None, None, 0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (Some(mean), Some(var.sqrt()), xs.len())
}

/// One heat map: a value per cell (`[y][x]`) and the note printed under it.
struct Panel {
    title: String,
    values: Vec<Vec<Option<f64>>>,
    notes: Vec<Vec<String>>,
}

struct HeatFigure {
    grid: Grid,
    panels: Vec<Panel>,
}

struct CategoryFigure {
    grid: Grid,
    /// `[y][x]`: the categories of the cell's models, in [`Category::ALL`] order.
    cells: Vec<Vec<Vec<Category>>>,
}

/// The colour of a category (the categorical map, and the sweep explorer's).
pub(crate) fn category_colour(c: Category) -> RGBColor {
    match c {
        Category::Generalizes => RGBColor(44, 160, 44),
        Category::Memorizes => RGBColor(255, 127, 14),
        Category::Fails => RGBColor(150, 150, 150),
        Category::Diverged => RGBColor(214, 39, 40),
    }
}

/// Width of the row labels' area: the longest label (about 7 px a character at the
/// label size) plus room for the axis name, so labels like `relu_single_freq` fit.
fn y_label_px(grid: &Grid) -> u32 {
    let longest = grid
        .ys
        .iter()
        .map(|v| tick(v).chars().count())
        .max()
        .unwrap_or(0) as u32;
    (7 * longest + 40).clamp(96, 240)
}

fn cell_px(grid: &Grid) -> (u32, u32) {
    let w = (560 / grid.xs.len().max(1) as u32).clamp(58, 110); // 58: "7.8e-3" fits
    let h = (460 / grid.ys.len().max(1) as u32).clamp(28, 80);
    (w, h)
}

/// A chart over cells `[0, nx) × [0, ny)` with the keys' values as tick labels.
fn cell_chart<'a, DB: Backend>(
    root: &Area<DB>,
    area: &'a Area<DB>,
    grid: &Grid,
) -> Fallible<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let (nx, ny) = (grid.xs.len() as f64, grid.ys.len() as f64);
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(16)
        .x_label_area_size(64)
        .y_label_area_size(y_label_px(grid))
        .build_cartesian_2d(0.0..nx, 0.0..ny)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc(grid.x_key.as_str())
        .y_desc(grid.y_key.as_str())
        .axis_desc_style(desc_style())
        .draw()?;
    for (i, v) in grid.xs.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            tick(v),
            (x, y + 6),
            label_style().pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    for (j, v) in grid.ys.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, j as f64 + 0.5));
        root.draw(&Text::new(
            tick(v),
            (x - 6, y),
            label_style().pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    Ok(chart)
}

impl Figure for HeatFigure {
    fn size(&self) -> (u32, u32) {
        let (cw, ch) = cell_px(&self.grid);
        let panel_w = cw * self.grid.xs.len() as u32 + y_label_px(&self.grid) + 26 + 110;
        let h = ch * self.grid.ys.len() as u32 + 64 + 20 + 90;
        (panel_w * self.panels.len() as u32, h.max(360))
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let parts = area.split_evenly((1, self.panels.len()));
        for (panel, part) in self.panels.iter().zip(&parts) {
            let part = part.titled(&panel.title, desc_style())?;
            let (w, _) = part.dim_in_pixel();
            let (main, bar) = part.split_horizontally(w.saturating_sub(110));
            let mut chart = cell_chart(root, &main, &self.grid)?;
            let all = panel.values.iter().flatten().filter_map(|v| *v);
            let (lo, hi) = span(all).unwrap_or((0.0, 1.0));
            let t = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            for (j, row) in panel.values.iter().enumerate() {
                for (i, v) in row.iter().enumerate() {
                    let (x, y) = (i as f64, j as f64);
                    let colour = v.map_or(RGBColor(225, 225, 225), |v| viridis(t(v)));
                    chart.draw_series([Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        colour.filled(),
                    )])?;
                    let ink = match v {
                        Some(v) if t(*v) > 0.6 => BLACK,
                        Some(_) => WHITE,
                        None => BLACK,
                    };
                    let text = v.map_or("–".to_string(), cell_num);
                    let at = chart.backend_coord(&(x + 0.5, y + 0.5));
                    root.draw(&Text::new(
                        text,
                        (at.0, at.1 - 2),
                        label_style()
                            .color(&ink)
                            .pos(Pos::new(HPos::Center, VPos::Bottom)),
                    ))?;
                    let note = &panel.notes[j][i];
                    if !note.is_empty() {
                        root.draw(&Text::new(
                            note.clone(),
                            (at.0, at.1 + 1),
                            ("sans-serif", 14.0)
                                .into_font()
                                .color(&ink)
                                .pos(Pos::new(HPos::Center, VPos::Top)),
                        ))?;
                    }
                }
            }
            colour_scale(&bar, lo, hi)?;
        }
        Ok(())
    }
}

/// A vertical colour scale from `lo` to `hi`.
fn colour_scale<DB: Backend>(bar: &Area<DB>, lo: f64, hi: f64) -> Draw {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let mut cb = ChartBuilder::on(bar)
        .margin_top(10)
        .margin_bottom(74)
        .margin_left(4)
        .right_y_label_area_size(78)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|v: &f64| fmt_num(*v))
        .label_style(label_style())
        .draw()?;
    let n = 64;
    cb.draw_series((0..n).map(|k| {
        let (a, b) = (k as f64 / n as f64, (k + 1) as f64 / n as f64);
        let (ya, yb) = (lo + a * (hi - lo), lo + b * (hi - lo));
        Rectangle::new([(0.0, ya), (0.8, yb)], viridis(0.5 * (a + b)).filled())
    }))?;
    Ok(())
}

impl Figure for CategoryFigure {
    fn size(&self) -> (u32, u32) {
        let (cw, ch) = cell_px(&self.grid);
        let w = cw * self.grid.xs.len() as u32 + y_label_px(&self.grid) + 26 + 190;
        let h = ch * self.grid.ys.len() as u32 + 64 + 20 + 60;
        (w.max(520), h.max(360))
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let (w, _) = area.dim_in_pixel();
        let (main, side) = area.split_horizontally(w.saturating_sub(190));
        let mut chart = cell_chart(root, &main, &self.grid)?;
        let mut counts = [0usize; 4];
        for (j, row) in self.cells.iter().enumerate() {
            for (i, cats) in row.iter().enumerate() {
                let (x, y) = (i as f64, j as f64);
                if cats.is_empty() {
                    chart.draw_series([Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        RGBColor(235, 235, 235).filled(),
                    )])?;
                }
                let k = cats.len().max(1) as f64;
                for (s, c) in cats.iter().enumerate() {
                    counts[Category::ALL.iter().position(|a| a == c).unwrap_or(0)] += 1;
                    let (xa, xb) = (x + s as f64 / k, x + (s + 1) as f64 / k);
                    chart.draw_series([Rectangle::new(
                        [(xa, y), (xb, y + 1.0)],
                        category_colour(*c).filled(),
                    )])?;
                }
                chart.draw_series([Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    WHITE.stroke_width(2),
                )])?;
            }
        }
        for (n, (c, count)) in Category::ALL.iter().zip(counts).enumerate() {
            let y = 40 + 30 * n as i32;
            side.draw(&Rectangle::new(
                [(14, y - 8), (38, y + 8)],
                category_colour(*c).filled(),
            ))?;
            side.draw(&Text::new(
                format!("{} ({count})", c.name()),
                (46, y),
                label_style().pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        Ok(())
    }
}

/// Unit of a metric in captions.
fn metric_phrase(metric: &str) -> String {
    metric.replace('_', " ")
}

/// File-name form of a key.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Draws every diagram of `specs` over `rows` into `out`: per spec, one heat map per
/// metric (mean and spread) and one categorical map.
pub fn draw_all(rows: &[ModelRow], specs: &[DiagramSpec], out: &Path) -> Result<Vec<Diagram>> {
    ensure_font()?;
    let mut drawn = Vec::new();
    for spec in specs {
        let grid = || Grid::of(rows, &spec.x, &spec.y);
        let cells = cells(rows, spec).rows;
        let per_cell = cells.iter().flatten().map(Vec::len).max().unwrap_or(0);
        for metric in &spec.metrics {
            let mut mean = Panel {
                title: format!("mean of {}", metric_phrase(metric)),
                values: Vec::new(),
                notes: Vec::new(),
            };
            let mut spread = Panel {
                title: "spread (standard deviation)".into(),
                values: Vec::new(),
                notes: Vec::new(),
            };
            for row in &cells {
                let (mut mv, mut mn, mut sv, mut sn) = (vec![], vec![], vec![], vec![]);
                for cell in row {
                    let (m, s, n) = stats(cell, metric);
                    let note = if n < cell.len() {
                        format!("{n} of {}", cell.len())
                    } else {
                        String::new()
                    };
                    mv.push(m);
                    sv.push(s);
                    mn.push(note.clone());
                    sn.push(note);
                }
                mean.values.push(mv);
                mean.notes.push(mn);
                spread.values.push(sv);
                spread.notes.push(sn);
            }
            let name = format!("heat_{}_{}_{}", slug(metric), slug(&spec.x), slug(&spec.y));
            let title = format!(
                "{} over {} × {} ({} model{} per cell)",
                metric_phrase(metric),
                spec.x,
                spec.y,
                per_cell,
                if per_cell == 1 { "" } else { "s" }
            );
            // With one model per cell the spread is zero everywhere: leave it out.
            let one_per_cell = per_cell <= 1;
            let panels = if one_per_cell {
                vec![mean]
            } else {
                vec![mean, spread]
            };
            let fig = HeatFigure {
                grid: grid(),
                panels,
            };
            let files = render(&fig, &title, out, &name)?;
            drawn.push(Diagram {
                name,
                title,
                caption: if one_per_cell {
                    format!(
                        "The {m} of each cell's one model; grey: it has no value (e.g. no \
                         grokking step for a model that did not grok).",
                        m = metric_phrase(metric)
                    )
                } else {
                    format!(
                        "Left: the mean of {m} over the models of each cell (the seeds and any \
                         other swept key); right: their standard deviation. \"k of n\": only k \
                         of the cell's n models have a value (e.g. a grokking step only for \
                         models that grokked); grey: none has.",
                        m = metric_phrase(metric)
                    )
                },
                files,
            });
        }
        let fig = CategoryFigure {
            grid: grid(),
            cells: cells
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|cell| {
                            let mut cats: Vec<Category> = cell.iter().map(|r| r.category).collect();
                            cats.sort_by_key(|c| Category::ALL.iter().position(|a| a == c));
                            cats
                        })
                        .collect()
                })
                .collect(),
        };
        let name = format!("categories_{}_{}", slug(&spec.x), slug(&spec.y));
        let title = format!("What the models do over {} × {}", spec.x, spec.y);
        let files = render(&fig, &title, out, &name)?;
        drawn.push(Diagram {
            name,
            title,
            caption: "Each cell is split into one stripe per model (its seeds), coloured by \
                      category: generalizes (train and test accuracy reach the thresholds), \
                      memorizes (train only), fails (neither), diverged (NaN/inf loss)."
                .into(),
            files,
        });
    }
    Ok(drawn)
}
