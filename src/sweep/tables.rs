//! The sweep's tables: `results.csv` and `results.jsonl` (one row per model with its
//! swept settings) and `histories.jsonl` (every evaluation of every model, one line
//! each, the fields of `metrics.jsonl` with `model` = the point id). All are written
//! atomically, rows ordered by model id, so two runs with the same results write the same
//! bytes.

use super::results::{ModelRow, METRICS};
use crate::error::Result;
use crate::fsutil::write_atomic;
use crate::layout::MetricsRecord;
use std::path::{Path, PathBuf};

/// File names of the tables.
pub const RESULTS_CSV: &str = "results.csv";
/// One JSON object per model.
pub const RESULTS_JSONL: &str = "results.jsonl";
/// One JSON object per (model, evaluation).
pub const HISTORIES_JSONL: &str = "histories.jsonl";

/// The columns after the swept keys and the metrics ([`METRICS`]); `seed` only when it
/// is not swept (then it is the base's).
const EXTRA_COLUMNS: [&str; 4] = ["gamma_star", "freqs_used", "category", "seed"];

/// The metrics that count steps or frequencies (written as integers).
const WHOLE: [&str; 6] = [
    "steps",
    "memorization_step",
    "grok_step",
    "n_freqs_used",
    "diverged_step",
    "stop_step",
];

/// A cell's text: numbers in Rust's shortest round-trip form, empty when absent.
fn cell(row: &ModelRow, column: &str) -> String {
    match column {
        "freqs_used" => row
            .freqs_used
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        "category" => row.category.name().to_string(),
        "gamma_star" => row.gamma_star.map(|g| g.to_string()).unwrap_or_default(),
        "seed" => row.setting("seed").unwrap_or("").to_string(),
        c if WHOLE.contains(&c) => row
            .metric(c)
            .map(|x| (x as u64).to_string())
            .unwrap_or_default(),
        m => row.metric(m).map(|x| x.to_string()).unwrap_or_default(),
    }
}

fn columns(keys: &[String]) -> Vec<&str> {
    METRICS
        .iter()
        .chain(&EXTRA_COLUMNS)
        .copied()
        .filter(|c| *c != "seed" || !keys.iter().any(|k| k == "seed"))
        .collect()
}

/// A swept value as `results.csv` writes it: its TOML spelling, a string without its
/// quotes, empty when the model has no value for the key.
pub fn setting_text(raw: Option<&str>) -> String {
    raw.unwrap_or("").trim_matches('"').to_string()
}

/// `results.csv`: model, group, batch, each swept key, then the metrics.
pub fn results_csv(rows: &[ModelRow], keys: &[String]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let cols = columns(keys);
    let mut header: Vec<String> = vec!["model".into(), "group".into(), "batch".into()];
    header.extend(keys.iter().cloned());
    header.extend(cols.iter().map(|c| c.to_string()));
    w.write_record(&header).expect("writing to memory");
    for row in rows {
        let mut rec = vec![
            row.model.to_string(),
            row.group.to_string(),
            row.batch.to_string(),
        ];
        rec.extend(keys.iter().map(|k| setting_text(row.setting(k))));
        rec.extend(cols.iter().map(|c| cell(row, c)));
        w.write_record(&rec).expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("CSV of UTF-8 cells")
}

/// A swept value as JSON (its TOML spelling parsed; the text itself if that fails).
fn json_value(raw: &str) -> serde_json::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_else(|| serde_json::Value::String(raw.to_string()))
}

/// `results.jsonl`: the CSV's columns as one JSON object per model (absent = null,
/// `freqs_used` an array).
pub fn results_jsonl(rows: &[ModelRow], keys: &[String]) -> String {
    let mut out = String::new();
    for row in rows {
        let mut o = serde_json::Map::new();
        o.insert("model".into(), row.model.into());
        o.insert("group".into(), row.group.into());
        o.insert("batch".into(), row.batch.into());
        for k in keys {
            let v = row.setting(k).map_or(serde_json::Value::Null, json_value);
            o.insert(k.clone(), v);
        }
        for c in columns(keys) {
            let v = match c {
                "freqs_used" => serde_json::to_value(&row.freqs_used).expect("numbers"),
                "category" => row.category.name().into(),
                "seed" => row
                    .setting("seed")
                    .map_or(serde_json::Value::Null, json_value),
                "gamma_star" => row.gamma_star.into(),
                m if WHOLE.contains(&m) => row.metric(m).map(|x| x as u64).into(),
                m if METRICS.contains(&m) => row.metric(m).into(),
                _ => serde_json::Value::Null,
            };
            o.insert(c.to_string(), v);
        }
        out.push_str(&serde_json::Value::Object(o).to_string());
        out.push('\n');
    }
    out
}

/// `histories.jsonl`: one `metrics.jsonl` record per line.
pub fn histories_jsonl(history: &[MetricsRecord]) -> String {
    let mut out = String::with_capacity(history.len() * 200);
    for r in history {
        out.push_str(&serde_json::to_string(r).expect("plain numbers serialize"));
        out.push('\n');
    }
    out
}

/// Writes the three tables into `out`; returns their paths.
pub fn write_tables(
    out: &Path,
    rows: &[ModelRow],
    history: &[MetricsRecord],
    keys: &[String],
) -> Result<Vec<PathBuf>> {
    let files = [
        (RESULTS_CSV, results_csv(rows, keys)),
        (RESULTS_JSONL, results_jsonl(rows, keys)),
        (HISTORIES_JSONL, histories_jsonl(history)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(name);
        write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
