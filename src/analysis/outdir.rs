//! Writing an analysis directory the way `analyze` does, for any caller.
//!
//! ```no_run
//! use clockwork::analysis::{outdir, pipeline};
//! use clockwork::kinds::{Device, Precision};
//! use std::path::Path;
//!
//! # fn main() -> clockwork::Result<()> {
//! let run = Path::new("runs/blog-x2");
//! let out = run.join("analysis");
//! outdir::check_analysis_dir(run, &out)?;
//! let backend = clockwork::engine::open::<f64>(Device::Cpu, Precision::Fp32, 0)?;
//! let analysis = pipeline::analyze(backend.as_ref(), run, &pipeline::Options::default())?;
//! let files = outdir::write_analysis(&analysis, &out, true)?;
//! # Ok(()) }
//! ```
//!
//! Every file is built in a staging directory next to `out` and then renamed into
//! place one by one, so a reader never sees half a file, a failure while building
//! changes nothing at `out`, and the files of `out` this call does not write (the
//! pictures of an earlier analysis, when this one skips them) stay as they were.

use super::pipeline::RunAnalysis;
use super::{report, tables};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A refusal about `dir`, phrased for the person who named it.
fn refuse(dir: &Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        path: dir.into(),
        reason: reason.into(),
    }
}

/// Checks that `out` can take the analysis of the run at `run`: it is new, empty, or
/// an earlier analysis (it holds `summary.json`), and it neither is nor contains the
/// run. A `run` that is not a directory passes (the pipeline reports it in its own
/// words).
pub fn check_analysis_dir(run: &Path, out: &Path) -> Result<()> {
    if !run.is_dir() {
        return Ok(());
    }
    check_name(out)?;
    if !out.exists() {
        return Ok(());
    }
    if let (Ok(r), Ok(o)) = (run.canonicalize(), out.canonicalize()) {
        if r.starts_with(&o) {
            return Err(refuse(
                out,
                "the output directory is the run directory or contains it; choose another \
                 output directory (--out)",
            ));
        }
    }
    if !out.is_dir() {
        return Err(refuse(out, "exists and is not a directory"));
    }
    if is_empty_dir(out)? || out.join(tables::SUMMARY_FILE).is_file() {
        return Ok(());
    }
    Err(refuse(
        out,
        format!(
            "already exists and is not an earlier analysis (no {}); choose another output \
             directory (--out)",
            tables::SUMMARY_FILE
        ),
    ))
}

/// Checks that a run directory may be written at `out`: it is new or empty, or it is
/// a run directory (holds `config.toml`) and `replace` says to replace it.
pub fn check_new_run_dir(out: &Path, replace: bool) -> Result<()> {
    check_name(out)?;
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(refuse(out, "exists and is not a directory"));
    }
    if is_empty_dir(out)? {
        return Ok(());
    }
    if !replace {
        return Err(refuse(
            out,
            "already exists and is not empty (pass --force, or replace = true, to replace it)",
        ));
    }
    if !out.join(crate::layout::CONFIG_FILE).is_file() {
        return Err(refuse(
            out,
            "refusing to replace it: not a run directory (no config.toml), and --force only \
             replaces run directories",
        ));
    }
    Ok(())
}

/// The last component of `out` names the staging directories next to it.
fn check_name(out: &Path) -> Result<()> {
    if out.file_name().is_none() {
        return Err(refuse(out, "not usable as an output directory name"));
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .next()
        .is_none())
}

/// Hidden names next to `out` for a directory being built and one being replaced; the
/// process id keeps two processes writing next to each other apart.
fn side_names(out: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (parent, name) = crate::fsutil::dir_and_name(out);
    let pid = std::process::id();
    (
        parent.to_path_buf(),
        parent.join(format!(".{name}.partial-{pid}")),
        parent.join(format!(".{name}.replaced-{pid}")),
    )
}

/// Creates an empty staging directory next to `out` (and `out`'s parent if missing).
fn staging_dir(out: &Path) -> Result<PathBuf> {
    check_name(out)?;
    let (parent, tmp, _) = side_names(out);
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
    Ok(tmp)
}

/// Builds a whole directory with `build` in a staging directory next to `out`, then
/// moves it into place, replacing what was there. On failure nothing changes at `out`.
pub fn replace_dir<T>(out: &Path, build: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let tmp = staging_dir(out)?;
    let (_, _, old) = side_names(out);
    let result = build(&tmp).and_then(|value| {
        if out.exists() {
            std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
        }
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
        Ok(value)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if old.exists() && !out.exists() {
            let _ = std::fs::rename(&old, out);
        }
    }
    if old.exists() {
        let _ = std::fs::remove_dir_all(&old);
    }
    result
}

/// Builds files with `build` in a staging directory next to `out`, then renames each
/// into `out` (created if missing), replacing only those files. `build` returns the
/// paths it wrote inside the staging directory; the result is their paths in `out`. On
/// a failure while building nothing changes at `out`; a failure while moving leaves
/// the files already moved in place (each one whole).
pub fn update_files(
    out: &Path,
    build: impl FnOnce(&Path) -> Result<Vec<PathBuf>>,
) -> Result<Vec<PathBuf>> {
    if !out.exists() {
        // Nothing to keep: the whole directory appears at once.
        return replace_dir(out, |tmp| Ok(relocate(build(tmp)?, tmp, out)));
    }
    let tmp = staging_dir(out)?;
    let result = build(&tmp).and_then(|files| {
        let mut moved = Vec::with_capacity(files.len());
        for file in files {
            let Ok(rel) = file.strip_prefix(&tmp) else {
                // Written elsewhere by `build`: already where it belongs.
                moved.push(file);
                continue;
            };
            let target = out.join(rel);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            std::fs::rename(&file, &target).map_err(|e| Error::io(&target, e))?;
            moved.push(target);
        }
        Ok(moved)
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// `files` under `from` as the same paths under `to`.
fn relocate(files: Vec<PathBuf>, from: &Path, to: &Path) -> Vec<PathBuf> {
    files
        .into_iter()
        .map(|f| match f.strip_prefix(from) {
            Ok(rel) => to.join(rel),
            Err(_) => f,
        })
        .collect()
}

/// Writes the tables of [`tables::write_tables`] and, with `pictures`, the pictures
/// and `index.html` of [`report::write_report`] into `out` by way of
/// [`update_files`]: files of `out` this call does not write are kept. Check `out`
/// with [`check_analysis_dir`] first. Returns the paths written, tables first.
pub fn write_analysis(a: &RunAnalysis, out: &Path, pictures: bool) -> Result<Vec<PathBuf>> {
    update_files(out, |dir| {
        let mut files = tables::write_tables(a, dir)?;
        if pictures {
            files.extend(report::write_report(a, dir)?);
        }
        Ok(files)
    })
}
