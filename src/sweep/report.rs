//! `index.html` of a sweep: counts per category, a link to `explore.html` when the
//! directory has one, every diagram with its caption, and the results table, sortable by any column with a few lines of inline script (no network,
//! no external files but the pictures beside it).

use super::diagram::Diagram;
use super::results::{Category, ModelRow};
use super::tables::results_csv;
use crate::analysis::report::esc;
use crate::error::Result;
use crate::fsutil::write_atomic;
use std::path::{Path, PathBuf};

/// File name of the page.
pub const INDEX_FILE: &str = "index.html";

/// Sorts the table by the clicked column: numerically where both cells are numbers,
/// else as text; a second click reverses.
const SORT_JS: &str = r#"
document.querySelectorAll('table.sortable th').forEach((th, col) => {
  th.addEventListener('click', () => {
    const body = th.closest('table').tBodies[0];
    const rows = Array.from(body.rows);
    const dir = th.dataset.dir === 'asc' ? -1 : 1;
    th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.dir);
    th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    const key = r => r.cells[col].textContent;
    rows.sort((a, b) => {
      const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      if (x === '' && y !== '') return 1;
      if (y === '' && x !== '') return -1;
      if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
      return dir * x.localeCompare(y);
    });
    rows.forEach(r => body.appendChild(r));
  });
});
"#;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px}\
img{max-width:100%;border:1px solid #ddd}\
table{border-collapse:collapse;font-size:13px}\
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}\
th{background:#f0f0f0;cursor:pointer;position:sticky;top:0}\
th[data-dir=asc]::after{content:' ▲'}th[data-dir=desc]::after{content:' ▼'}\
figure{margin:1.5em 0}figcaption{color:#444;max-width:900px}";

/// Writes `index.html` into `out`.
pub fn write_index(
    out: &Path,
    title: &str,
    notes: &[String],
    rows: &[ModelRow],
    keys: &[String],
    diagrams: &[Diagram],
) -> Result<PathBuf> {
    let mut h = String::new();
    h.push_str(&format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1>",
        t = esc(title)
    ));
    for n in notes {
        h.push_str(&format!("<p>{}</p>", esc(n)));
    }
    let counts: Vec<String> = Category::ALL
        .iter()
        .map(|c| {
            let n = rows.iter().filter(|r| r.category == *c).count();
            format!("{} {}", n, c.name())
        })
        .collect();
    h.push_str(&format!(
        "<p>{} models: {}.</p>",
        rows.len(),
        esc(&counts.join(", "))
    ));
    if out.join(super::explore::EXPLORE_FILE).is_file() {
        h.push_str(&format!(
            "<p class=\"explore\"><a href=\"{0}\">Open the interactive explorer ({0})</a>: \
             the diagrams for any metric; click a cell for its models' curves.</p>",
            super::explore::EXPLORE_FILE
        ));
    }
    if diagrams.is_empty() {
        h.push_str("<p>No diagrams: they need two swept keys besides the seed (or [[diagrams]] in the sweep file).</p>");
    }
    for d in diagrams {
        h.push_str(&format!(
            "<figure><img src=\"{n}.png\" alt=\"{t}\"><figcaption>{c} (<a href=\"{n}.svg\">SVG</a>)</figcaption></figure>",
            n = esc(&d.name),
            t = esc(&d.title),
            c = esc(&d.caption)
        ));
    }
    h.push_str("<h2>Models</h2><p>Click a column to sort. The same table: <a href=\"results.csv\">results.csv</a>, <a href=\"results.jsonl\">results.jsonl</a>; every evaluation: <a href=\"histories.jsonl\">histories.jsonl</a>.</p>");
    h.push_str("<table class=\"sortable\"><thead><tr>");
    let csv = results_csv(rows, keys);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes());
    for (i, rec) in reader.records().enumerate() {
        let Ok(rec) = rec else { continue };
        let tag = if i == 0 { "th" } else { "td" };
        if i == 1 {
            h.push_str("</tr></thead><tbody><tr>");
        } else if i > 1 {
            h.push_str("<tr>");
        }
        for field in rec.iter() {
            h.push_str(&format!("<{tag}>{}</{tag}>", esc(field)));
        }
        if i > 0 {
            h.push_str("</tr>");
        }
    }
    if rows.is_empty() {
        h.push_str("</tr></thead><tbody>");
    }
    h.push_str("</tbody></table>");
    h.push_str(&format!("<script>{SORT_JS}</script></body></html>\n"));
    let path = out.join(INDEX_FILE);
    write_atomic(&path, h.as_bytes())?;
    Ok(path)
}
