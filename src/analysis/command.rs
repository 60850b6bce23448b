//! What the `analyze` command does, as library calls: the binary parses the flags,
//! opens the backend, prints what these return and exits with [`Failure::code`].
//!
//! Each call checks its input before writing anything: a [`Failure`] with code 2 means
//! bad input and nothing written; code 1 means the machine or the code failed.

use super::construct::{self, KnownAnswers};
use super::construct_gromov::{self, GromovDraws, GromovSpec};
use super::construct_group;
use super::pipeline::{self, Options, RunAnalysis};
use super::{outdir, tables, text};
use crate::engine::Backend;
use crate::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The flags every form of the command shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Print the summary as JSON on stdout (and nothing else on stdout).
    pub json: bool,
    /// Power fraction above which a neuron counts as sinusoidal.
    pub threshold: f64,
    /// Write the pictures and index.html (not only the tables and summary.json).
    pub pictures: bool,
    /// Also write `explore.html`, the interactive page ([`super::explore`]; `analyze
    /// RUN` only).
    pub explore: bool,
}

/// What a successful call prints.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Printed {
    /// For stdout.
    pub stdout: String,
    /// For stderr (a note that keeps stdout pure JSON).
    pub stderr: String,
}

/// Why a call failed: the message of its one `error:` line and the exit code (2 bad
/// input, nothing written; 1 anything else).
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// The message (without the `error: ` prefix).
    pub message: String,
}

impl Failure {
    /// Bad input (exit 2).
    pub fn input(m: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: m.to_string(),
        }
    }
    /// Anything else (exit 1).
    pub fn other(m: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: m.to_string(),
        }
    }
    /// Errors of checking, reading and analyzing the input: bad input unless the
    /// compute backend or the machine failed.
    pub fn reading(e: Error) -> Failure {
        match e {
            Error::Backend(_) => Failure::other(e),
            _ => Failure::input(e),
        }
    }
}

/// `analyze RUN --out OUT`: the analysis of a run directory.
pub fn analyze_run(
    backend: &dyn Backend<f64>,
    run: &Path,
    out: &Path,
    s: &Settings,
) -> Result<Printed, Failure> {
    // The explorer page reads spectra over Z_p or a group's irreps: bit strings and
    // seed 002's table get their own reports and no page, and say so.
    let without_page = |mut printed: Printed, what: &str| {
        if s.explore {
            printed.stderr.push_str(&format!(
                "note: --explore: no explorer page for {what} runs (it needs an operation or \
                 group table); the analysis above is complete\n"
            ));
        }
        printed
    };
    if super::bits::is_bits_run(run) {
        return super::bits::analyze_run(backend, run, out, s)
            .map(|p| without_page(p, "bit-string"));
    }
    outdir::check_analysis_dir(run, out).map_err(Failure::reading)?;
    if let Some(printed) = heads_run(run, out, s)? {
        return Ok(without_page(printed, "multi-task"));
    }
    let t0 = Instant::now();
    let analysis = pipeline::analyze(backend, run, &options(s)).map_err(Failure::reading)?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    let files = if s.explore {
        super::explore::write_analysis_with_explorer(&analysis, out, s.pictures)
    } else {
        outdir::write_analysis(&analysis, out, s.pictures)
    }
    .map_err(Failure::other)?;
    report(&analysis, &files, out, s, elapsed_s)
}

/// A run on seed 002's table gets the per-head report ([`super::heads`]); None for any
/// other run (or one whose config cannot be read: the pipeline reports that).
fn heads_run(run: &Path, out: &Path, s: &Settings) -> Result<Option<Printed>, Failure> {
    let is_heads = std::fs::read_to_string(run.join(crate::layout::CONFIG_FILE))
        .ok()
        .and_then(|t| crate::config::RunConfig::from_toml(&t).ok())
        .is_some_and(|c| c.is_base_p_task());
    if !is_heads {
        return Ok(None);
    }
    let (dir, summary) = super::heads::analyze(run).map_err(Failure::reading)?;
    let files = super::heads::write(&dir, &summary, out, s.pictures).map_err(Failure::other)?;
    let mut written = text::files_text(&files, out);
    if s.pictures {
        written.push_str(&format!(
            "head_accuracy: {}\n",
            super::plot::head_accuracy::CAPTION
        ));
    }
    Ok(Some(if s.json {
        Printed {
            stdout: serde_json::to_string_pretty(&summary).map_err(Failure::other)?,
            stderr: written,
        }
    } else {
        Printed {
            stdout: super::heads::summary_text(&summary) + &written,
            stderr: String::new(),
        }
    }))
}

/// The flags of `analyze construct`, as given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConstructFlags {
    /// `--kind gromov` (else the max-margin construction).
    pub gromov: bool,
    /// `--p` (required for max-margin; 97 for gromov when absent).
    pub p: Option<i64>,
    /// `--out` (required for max-margin).
    pub out: Option<PathBuf>,
    /// `--force`: replace an existing run directory at `--out`.
    pub force: bool,
    /// `--width` (gromov only, required there).
    pub width: Option<usize>,
    /// `--draws` (gromov only; 10 when absent).
    pub draws: Option<usize>,
    /// `--seed` (gromov only; 0 when absent).
    pub seed: Option<u64>,
    /// `--kind group --group G`: the exact max-margin network of G's table.
    pub group: Option<String>,
}

/// `analyze construct`: checks the flags of the chosen kind, then runs it.
pub fn construct(
    backend: &dyn Backend<f64>,
    f: &ConstructFlags,
    s: &Settings,
) -> Result<Printed, Failure> {
    if let Some(group) = &f.group {
        if f.gromov || f.p.is_some() || f.width.is_some() || f.draws.is_some() || f.seed.is_some() {
            return Err(Failure::input(
                "--kind group takes --group G and --out DIR only (its width is 2·Σ d³ over \
                 the group's nontrivial irreps)",
            ));
        }
        let out = f
            .out
            .as_deref()
            .ok_or_else(|| Failure::input("construct --kind group needs --out DIR"))?;
        return construct_group_run(backend, group, out, f.force, s);
    }
    if f.gromov {
        let width = f
            .width
            .ok_or_else(|| Failure::input("--kind gromov needs --width N"))?;
        let p = f.p.unwrap_or(97);
        let spec = GromovSpec {
            p: usize::try_from(p).map_err(|_| Failure::input(format!("invalid --p {p}")))?,
            width,
            draws: f.draws.unwrap_or(10),
            seed: f.seed.unwrap_or(0),
        };
        return construct_gromov(backend, spec, f.out.as_deref(), f.force, s);
    }
    if f.width.is_some() || f.draws.is_some() || f.seed.is_some() {
        return Err(Failure::input(
            "--width, --draws and --seed belong to --kind gromov (the max-margin \
             construction's width is 8(p−1))",
        ));
    }
    let p = f.p.ok_or_else(|| Failure::input("construct needs --p P"))?;
    let out = f
        .out
        .as_deref()
        .ok_or_else(|| Failure::input("construct needs --out DIR"))?;
    construct_max_margin(backend, p, out, f.force, s)
}

/// `analyze construct --kind maxmargin --p P --out OUT [--force]`: the exact max-margin
/// network as a run directory, analyzed, with its known answers checked.
pub fn construct_max_margin(
    backend: &dyn Backend<f64>,
    p: i64,
    out: &Path,
    force: bool,
    s: &Settings,
) -> Result<Printed, Failure> {
    let p = usize::try_from(p)
        .ok()
        .filter(|&p| p >= 3 && p % 2 == 1)
        .ok_or_else(|| {
            Failure::input(format!(
                "invalid --p {p}: the max-margin construction needs an odd p >= 3"
            ))
        })?;
    outdir::check_new_run_dir(out, force).map_err(Failure::reading)?;
    let t0 = Instant::now();
    // Past the checks a failure is a bug, not bad input.
    let (analysis, files, known) =
        construct::write_and_analyze(backend, p, out, &options(s), s.pictures)
            .map_err(Failure::other)?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    if let Some(miss) = known.miss() {
        return Err(Failure::other(miss));
    }
    let mut printed = report(&analysis, &files, &out.join("analysis"), s, elapsed_s)?;
    if !s.json {
        printed.stdout = format!(
            "wrote the max-margin construction of addition mod {p} (x², width {}) to {}\n{}{}",
            construct::width(p),
            out.display(),
            printed.stdout,
            KnownAnswers::text(&known)
        );
    }
    Ok(printed)
}

/// `analyze construct --kind group --group G --out OUT [--force]`: the exact max-margin
/// network of a group's table (src/analysis/construct_group.rs) as a run directory,
/// analyzed in the group's irreps, with γ = γ* checked.
pub fn construct_group_run(
    backend: &dyn Backend<f64>,
    group: &str,
    out: &Path,
    force: bool,
    s: &Settings,
) -> Result<Printed, Failure> {
    // Bad names and groups with complex irreps are input errors, reported before
    // anything is written.
    let width = construct_group::width(group).map_err(Failure::input)?;
    outdir::check_new_run_dir(out, force).map_err(Failure::reading)?;
    let t0 = Instant::now();
    outdir::replace_dir(out, |tmp| construct_group::write_run(backend, group, tmp))
        .map_err(Failure::other)?;
    let analysis = pipeline::analyze(backend, out, &options(s)).map_err(Failure::other)?;
    let files = outdir::write_analysis(&analysis, &out.join("analysis"), s.pictures)
        .map_err(Failure::other)?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    let margin = analysis
        .summary
        .models
        .first()
        .map(|m| m.margin.clone())
        .ok_or_else(|| Failure::other("the constructed run has no model"))?;
    // Past the checks a miss is a bug, not bad input.
    let ratio = margin.ratio.unwrap_or(f64::NAN);
    if (ratio - 1.0).abs() > 1e-9 || margin.accuracy < 1.0 {
        return Err(Failure::other(format!(
            "the construction of {group} misses its known answer: γ/γ* = {ratio}, accuracy {}",
            margin.accuracy
        )));
    }
    let mut printed = report(&analysis, &files, &out.join("analysis"), s, elapsed_s)?;
    if !s.json {
        printed.stdout = format!(
            "wrote the max-margin construction of {group}'s table (x², width {width}) to {}\n{}\
             known answers: γ/γ* = {ratio:.12} (|γ/γ* − 1| ≤ 1e-9), accuracy 100%\n",
            out.display(),
            printed.stdout,
        );
    }
    Ok(printed)
}

/// `analyze construct --kind gromov --width N [--p P] [--draws D] [--seed S] [--out OUT]`:
/// Gromov's analytic solution, its accuracy over the draws of its random phases, and
/// with `out` the draws as a run directory (one model each), analyzed.
pub fn construct_gromov(
    backend: &dyn Backend<f64>,
    spec: GromovSpec,
    out: Option<&Path>,
    force: bool,
    s: &Settings,
) -> Result<Printed, Failure> {
    spec.validate().map_err(Failure::input)?;
    let Some(out) = out else {
        let draws = GromovDraws::measure(backend, spec).map_err(Failure::other)?;
        return gromov_printed(&draws, s, String::new());
    };
    outdir::check_new_run_dir(out, force).map_err(Failure::reading)?;
    let draws = outdir::replace_dir(out, |tmp| construct_gromov::write_run(backend, spec, tmp))
        .map_err(Failure::other)?;
    let analysis = pipeline::analyze(backend, out, &options(s)).map_err(Failure::other)?;
    let dir = out.join("analysis");
    let files = outdir::write_analysis(&analysis, &dir, s.pictures).map_err(Failure::other)?;
    let written = format!(
        "wrote the {} draws to {} (one model each)\n{}",
        spec.draws,
        out.display(),
        text::files_text(&files, &dir)
    );
    gromov_printed(&draws, s, written)
}

fn gromov_printed(draws: &GromovDraws, s: &Settings, written: String) -> Result<Printed, Failure> {
    Ok(if s.json {
        Printed {
            stdout: draws.json().map_err(Failure::other)?,
            stderr: written,
        }
    } else {
        Printed {
            stdout: draws.text() + &written,
            stderr: String::new(),
        }
    })
}

fn options(s: &Settings) -> Options {
    Options {
        threshold: s.threshold,
    }
}

/// The summary (human or JSON) of a finished analysis.
fn report(
    a: &RunAnalysis,
    files: &[PathBuf],
    out: &Path,
    s: &Settings,
    elapsed_s: f64,
) -> Result<Printed, Failure> {
    Ok(if s.json {
        Printed {
            stdout: tables::summary_json(a).map_err(Failure::other)?,
            stderr: format!(
                "analysis written to {} ({} files)\n",
                out.display(),
                files.len()
            ),
        }
    } else {
        Printed {
            stdout: text::summary_text(a, elapsed_s) + &text::files_text(files, out),
            stderr: String::new(),
        }
    })
}
