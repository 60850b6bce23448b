//! `explore.html` of a sweep (`sweep FILE --explore`, `sweep report DIR --explore`): the
//! phase diagrams as an interactive page. Per diagram the page shows a heat map of any
//! per-model metric (the mean over each cell's models, the same numbers as the PNG
//! diagrams: [`diagram::stats`]) and the categorical map; clicking a cell shows that
//! cell's models in a table and their curves (loss, accuracy, margin) from the sweep's
//! metric histories, one colour per model.
//!
//! Like the run explorer it is one file that opens from disk with no network: the data
//! is JSON inside the page (curves as base64 little-endian arrays, f64 steps and f32
//! values, NaN = not logged), and the page's hand-written JavaScript and CSS are built
//! into the frame it shares with the run explorer ([`scaffold`]), after their common
//! code (number formatting, base64 arrays, the curve chart).
//!
//! Size: each evaluation of each model costs 28 bytes before base64 (a step and five
//! values). At most [`CURVE_BUDGET`] bytes of them are embedded; a sweep with more keeps
//! evenly spaced evaluations of every model (the first and last always), and says so.

use super::diagram::{self, category_colour};
use super::results::{Category, ModelRow, METRICS};
use super::spec::DiagramSpec;
use super::tables::setting_text;
use crate::analysis::explore::data::spread;
use crate::analysis::explore::scaffold::{self, PageParts};
use crate::analysis::plot::frame::VIRIDIS_STOPS;
use crate::error::Result;
use crate::fsutil::write_atomic;
use crate::layout::MetricsRecord;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the page (next to `index.html`, which links it when present).
pub const EXPLORE_FILE: &str = "explore.html";

/// Most bytes of curve data embedded (before base64, which adds a third).
pub const CURVE_BUDGET: usize = 24_000_000;

/// Most evaluations per model kept (longer histories are thinned evenly).
const MAX_POINTS: usize = 2000;

/// Bytes per embedded evaluation: an f64 step and five f32 values.
const BYTES_PER_POINT: usize = 8 + 5 * 4;

const PARTS: PageParts = PageParts {
    css: include_str!("page.css"),
    body: include_str!("page.html"),
    js: include_str!("page.js"),
};

/// The page's data (JSON in `<script id="data">`).
#[derive(Serialize)]
struct PageData {
    title: String,
    /// The swept keys, in the tables' column order.
    keys: Vec<String>,
    /// Every per-model metric ([`METRICS`]), the order of [`ModelData::metrics`].
    metrics: Vec<&'static str>,
    /// Categories with their colours, in [`Category::ALL`] order.
    categories: Vec<CategoryData>,
    /// Stops of the heat maps' colour scale (viridis, as the PNG diagrams).
    viridis: Vec<[u8; 3]>,
    /// Evaluations per model at most (when the histories were thinned to fit).
    points_kept: usize,
    models: Vec<ModelData>,
    diagrams: Vec<DiagramData>,
}

#[derive(Serialize)]
struct CategoryData {
    name: &'static str,
    color: String,
}

#[derive(Serialize)]
struct ModelData {
    /// Point id.
    model: usize,
    /// Its value of each swept key, as `results.csv` writes it.
    settings: Vec<String>,
    category: &'static str,
    /// Each metric of [`METRICS`] (null = none).
    metrics: Vec<Option<f64>>,
    gamma_star: Option<f64>,
    /// Evaluations in the history (more than the curves hold when thinned).
    evaluations: usize,
    curves: Curves,
}

/// One model's history as base64 arrays of equal length.
#[derive(Serialize)]
struct Curves {
    /// f64 steps.
    step: String,
    /// f32 values, NaN where not logged.
    train_loss: String,
    test_loss: String,
    train_acc: String,
    test_acc: String,
    margin: String,
}

/// Mean, standard deviation and count of one metric per cell, `[y][x]`.
#[derive(Serialize)]
struct CellStats {
    mean: Vec<Vec<Option<f64>>>,
    sd: Vec<Vec<Option<f64>>>,
    n: Vec<Vec<usize>>,
}

#[derive(Serialize)]
struct DiagramData {
    x: String,
    y: String,
    /// The keys' values as `results.csv` writes them, ascending.
    xs: Vec<String>,
    ys: Vec<String>,
    /// The same as tick labels.
    x_labels: Vec<String>,
    y_labels: Vec<String>,
    /// The metrics the sweep file names for this diagram (offered first).
    metrics: Vec<String>,
    /// `[y][x]`: the point ids of the cell's models.
    cells: Vec<Vec<Vec<usize>>>,
    /// Per metric of [`METRICS`].
    stats: BTreeMap<&'static str, CellStats>,
}

fn f32_b64(values: impl Iterator<Item = Option<f64>>) -> String {
    let bytes: Vec<u8> = values
        .flat_map(|v| (v.unwrap_or(f64::NAN) as f32).to_le_bytes())
        .collect();
    STANDARD.encode(bytes)
}

/// The curves of one model's records (step order), `keep` of them at most.
fn curves(records: &[&MetricsRecord], keep: usize) -> Curves {
    let picked: Vec<&MetricsRecord> = spread(records.len(), keep)
        .into_iter()
        .map(|j| records[j])
        .collect();
    let series = |f: fn(&MetricsRecord) -> Option<f64>| f32_b64(picked.iter().map(|r| f(r)));
    let steps: Vec<u8> = picked
        .iter()
        .flat_map(|r| (r.step as f64).to_le_bytes())
        .collect();
    Curves {
        step: STANDARD.encode(steps),
        train_loss: series(|r| r.train_loss),
        test_loss: series(|r| r.test_loss),
        train_acc: series(|r| r.train_acc),
        test_acc: series(|r| r.test_acc),
        margin: series(|r| r.margin),
    }
}

fn diagram_data(rows: &[ModelRow], spec: &DiagramSpec) -> DiagramData {
    let c = diagram::cells(rows, spec);
    let stats = METRICS
        .iter()
        .map(|&m| {
            let mut st = CellStats {
                mean: Vec::new(),
                sd: Vec::new(),
                n: Vec::new(),
            };
            for row in &c.rows {
                let cells: Vec<_> = row.iter().map(|cell| diagram::stats(cell, m)).collect();
                st.mean.push(cells.iter().map(|s| s.0).collect());
                st.sd.push(cells.iter().map(|s| s.1).collect());
                st.n.push(cells.iter().map(|s| s.2).collect());
            }
            (m, st)
        })
        .collect();
    let text = |vals: &[String]| vals.iter().map(|v| setting_text(Some(v))).collect();
    let labels = |vals: &[String]| vals.iter().map(|v| diagram::tick(v)).collect();
    DiagramData {
        x: spec.x.clone(),
        y: spec.y.clone(),
        xs: text(&c.xs),
        ys: text(&c.ys),
        x_labels: labels(&c.xs),
        y_labels: labels(&c.ys),
        metrics: spec.metrics.clone(),
        cells: c
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| cell.iter().map(|r| r.model).collect())
                    .collect()
            })
            .collect(),
        stats,
    }
}

/// The whole page: `rows` sorted by model, `history` by (model, step).
pub fn explore_html(
    title: &str,
    keys: &[String],
    diagrams: &[DiagramSpec],
    rows: &[ModelRow],
    history: &[MetricsRecord],
) -> String {
    let mut by_model: BTreeMap<usize, Vec<&MetricsRecord>> = BTreeMap::new();
    for r in history {
        by_model.entry(r.model).or_default().push(r);
    }
    let keep = (CURVE_BUDGET / (BYTES_PER_POINT * rows.len().max(1))).clamp(2, MAX_POINTS);
    let models = rows
        .iter()
        .map(|row| {
            let records = by_model.get(&row.model).map_or(&[][..], |v| v.as_slice());
            ModelData {
                model: row.model,
                settings: keys.iter().map(|k| setting_text(row.setting(k))).collect(),
                category: row.category.name(),
                metrics: METRICS.iter().map(|m| row.metric(m)).collect(),
                gamma_star: row.gamma_star,
                evaluations: records.len(),
                curves: curves(records, keep),
            }
        })
        .collect();
    let data = PageData {
        title: title.to_string(),
        keys: keys.to_vec(),
        metrics: METRICS.to_vec(),
        categories: Category::ALL
            .iter()
            .map(|&c| {
                let rgb = category_colour(c);
                CategoryData {
                    name: c.name(),
                    color: format!("#{:02x}{:02x}{:02x}", rgb.0, rgb.1, rgb.2),
                }
            })
            .collect(),
        viridis: VIRIDIS_STOPS.iter().map(|&(r, g, b)| [r, g, b]).collect(),
        points_kept: keep,
        models,
        diagrams: diagrams.iter().map(|d| diagram_data(rows, d)).collect(),
    };
    scaffold::build_page(&format!("{title} — explorer"), &PARTS, &data)
        .expect("plain data serializes")
}

/// Writes `explore.html` into `out`, atomically.
pub fn write_explorer(
    out: &Path,
    title: &str,
    keys: &[String],
    diagrams: &[DiagramSpec],
    rows: &[ModelRow],
    history: &[MetricsRecord],
) -> Result<PathBuf> {
    let path = out.join(EXPLORE_FILE);
    write_atomic(
        &path,
        explore_html(title, keys, diagrams, rows, history).as_bytes(),
    )?;
    Ok(path)
}
