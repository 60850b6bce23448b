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

/// Evaluations kept per model when a sweep has `models` of them: all (up to
/// [`MAX_POINTS`]) while they fit [`CURVE_BUDGET`], never fewer than the first and last.
fn points_per_model(models: usize) -> usize {
    (CURVE_BUDGET / (BYTES_PER_POINT * models.max(1))).clamp(2, MAX_POINTS)
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
    let keep = points_per_model(rows.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::results::Category;

    fn row(model: usize, x: &str, y: &str, test_acc: Option<f64>) -> ModelRow {
        ModelRow {
            model,
            group: 0,
            batch: 0,
            settings: vec![
                ("a".into(), x.into()),
                ("b".into(), y.into()),
                ("seed".into(), (model % 2).to_string()),
            ],
            steps: 100,
            final_train_loss: Some(0.5),
            final_test_loss: None,
            final_train_acc: Some(1.0),
            final_test_acc: test_acc,
            best_train_acc: None,
            best_test_acc: None,
            memorization_step: None,
            grok_step: None,
            margin: None,
            gamma_star: None,
            reg_loss: None,
            freqs_used: vec![],
            sinusoidal_share: None,
            diverged_step: None,
            stop_step: None,
            category: Category::Memorizes,
        }
    }

    fn record(model: usize, step: u64, test_acc: Option<f64>) -> MetricsRecord {
        MetricsRecord {
            step,
            model,
            lr: None,
            train_loss: Some(1.0 / (1 + step) as f64),
            train_acc: Some(1.0),
            test_loss: None,
            test_acc,
            margin: None,
            gamma_star: None,
            reg_loss: None,
            elapsed_s: None,
            stopped_at: None,
            ..MetricsRecord::default()
        }
    }

    fn f32s(b64: &serde_json::Value) -> Vec<f32> {
        STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// The JSON the page embeds.
    fn data_of(page: &str) -> serde_json::Value {
        let start = page
            .find(r#"<script type="application/json" id="data">"#)
            .unwrap();
        let json = &page[start..];
        let json = &json[json.find('>').unwrap() + 1..json.find("</script>").unwrap()];
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_page_holds_the_cells_means_and_every_models_curves() {
        let rows = vec![
            row(0, "0.1", "\"x\"", Some(0.5)),
            row(1, "0.1", "\"x\"", Some(0.7)),
            row(2, "0.2", "\"x\"", None),
            row(3, "0.2", "\"x\"", Some(1.0)),
        ];
        let history: Vec<MetricsRecord> = (0..4)
            .flat_map(|m| (0..3).map(move |e| record(m, 10 * e, (e == 1).then_some(0.25))))
            .collect();
        let spec = DiagramSpec {
            x: "a".into(),
            y: "b".into(),
            metrics: vec!["final_test_acc".into()],
        };
        let keys = ["a".to_string(), "b".to_string(), "seed".to_string()];
        let page = explore_html("Sweep t", &keys, &[spec], &rows, &history);
        assert!(page.contains("<title>Sweep t — explorer</title>"));
        let d = data_of(&page);
        let diagram = &d["diagrams"][0];
        assert_eq!(diagram["xs"], serde_json::json!(["0.1", "0.2"]));
        assert_eq!(diagram["ys"], serde_json::json!(["x"]));
        assert_eq!(diagram["cells"], serde_json::json!([[[0, 1], [2, 3]]]));
        let st = &diagram["stats"]["final_test_acc"];
        assert_eq!(st["mean"][0][0].as_f64(), Some(0.6));
        // Model 2 has no test accuracy: the mean of one value, counted as one of two.
        assert_eq!(
            (st["mean"][0][1].as_f64(), &st["n"][0][1]),
            (Some(1.0), &serde_json::json!(1))
        );
        let m2 = &d["models"][2];
        assert_eq!(m2["settings"], serde_json::json!(["0.2", "x", "0"]));
        assert_eq!(m2["evaluations"], 3);
        let acc = f32s(&m2["curves"]["test_acc"]);
        assert!(acc[0].is_nan() && acc[1] == 0.25 && acc[2].is_nan());
        assert_eq!(f32s(&m2["curves"]["train_loss"])[2], 1.0 / 21.0);
        assert_eq!(d["metrics"].as_array().unwrap().len(), METRICS.len());
    }

    #[test]
    fn long_histories_are_thinned_to_the_budget_keeping_the_ends() {
        let records: Vec<MetricsRecord> = (0..5000).map(|e| record(0, e, None)).collect();
        let refs: Vec<&MetricsRecord> = records.iter().collect();
        let c = curves(&refs, 7);
        let steps: Vec<f64> = STANDARD
            .decode(&c.step)
            .unwrap()
            .chunks(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!((steps.len(), steps[0], steps[6]), (7, 0.0, 4999.0));
        // The number kept per model: all (up to MAX_POINTS) for a few models, fewer for many.
        assert_eq!(points_per_model(8), 2000);
        let k = points_per_model(1000);
        assert!(k * 1000 * BYTES_PER_POINT <= CURVE_BUDGET, "{k}");
        assert!((k + 1) * 1000 * BYTES_PER_POINT > CURVE_BUDGET, "{k}");
        assert_eq!(points_per_model(10_000_000), 2);
    }
}
