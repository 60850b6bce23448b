//! `explore.html`: an interactive, self-contained page of one analyzed run (issue 14).
//!
//! One training-step slider (with play/pause) drives four linked views: the curves
//! (loss, accuracy, margin/γ*, IPR) with the step marked; the neuron × frequency power
//! heat map at that step, neurons grouped by final dominant frequency; a neuron
//! inspector (u_i, v_i, w_i, their spectra, dominant frequency, power fraction, phases
//! on a circle); and a logit explorer (pick a, b → logits over c and each frequency
//! group's contribution, the correct answer marked).
//!
//! The page needs no server and no network: the data ([`data::page_data`]) is JSON with
//! base64 typed arrays inside the page, and the JavaScript and CSS (`page.js`,
//! `page.css`, hand-written, built into [`scaffold`]'s frame after the code it shares
//! with the sweep explorer) are compiled into the binary with `include_str!`. The
//! page computes spectra and logits from the embedded weights itself.

pub mod data;
pub mod scaffold;

use super::outdir;
use super::pipeline::RunAnalysis;
use super::report;
use super::tables;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use std::path::{Path, PathBuf};

/// File name of the page (next to `index.html`, which links it when present).
pub const EXPLORE_FILE: &str = "explore.html";

/// The run page's own body, script and style.
const PARTS: scaffold::PageParts = scaffold::PageParts {
    css: include_str!("page.css"),
    body: include_str!("page.html"),
    js: include_str!("page.js"),
};

/// The whole page for `a`.
pub fn explore_html(a: &RunAnalysis) -> Result<String> {
    let data = data::page_data(a)?;
    let title = format!("{} — width {} — explorer", data.task, data.width);
    scaffold::build_page(&title, &PARTS, &data).map_err(|e| Error::BadFile {
        path: a.dir.path.clone(),
        reason: format!("cannot serialize the explorer's data: {e}"),
    })
}

/// Writes `explore.html` for `a` into `out` (created if missing), atomically.
pub fn write_explorer(a: &RunAnalysis, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let path = out.join(EXPLORE_FILE);
    write_atomic(&path, explore_html(a)?.as_bytes())?;
    Ok(path)
}

/// [`outdir::write_analysis`] with the explorer: `explore.html`, the tables and (with
/// `pictures`) the report, built together so `index.html` links the page. Returns the
/// paths written, the explorer first.
pub fn write_analysis_with_explorer(
    a: &RunAnalysis,
    out: &Path,
    pictures: bool,
) -> Result<Vec<PathBuf>> {
    outdir::update_files(out, |dir| {
        let mut files = vec![write_explorer(a, dir)?];
        files.extend(tables::write_tables(a, dir)?);
        if pictures {
            files.extend(report::write_report(a, dir)?);
        }
        Ok(files)
    })
}
