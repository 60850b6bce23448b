//! `analyze`: the Fourier, margin and progress analysis of a run directory, and the
//! exact max-margin construction as a run directory.
//!
//! ```text
//! analyze RUN [--out DIR] [--json] [--threshold 0.9] [--no-plots] [--explore]
//! analyze construct --p P --out DIR [--force] [--json] [--no-plots]
//! ```
//!
//! A thin command line over [`clockwork::analysis::pipeline`] (the analysis),
//! [`clockwork::analysis::outdir`] (checking and writing the output directory: only the
//! files this call writes are replaced, each atomically, so `--json --no-plots` keeps
//! the pictures of an earlier run), [`clockwork::analysis::text`] (what is printed) and
//! [`clockwork::analysis::construct`].
//!
//! Exit codes: 0 done; 2 bad input (one `error:` line naming the bad path or value,
//! nothing written); 1 any other failure.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use clockwork::analysis::construct;
use clockwork::analysis::pipeline::{self, Options, RunAnalysis};
use clockwork::analysis::{outdir, summary, tables, text};
use clockwork::engine::{self, Backend};
use clockwork::kinds::{Device, Precision};
use clockwork::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "analyze",
    about = "Fourier features, normalized margins and training progress of a run directory",
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Run directory written by `train` (or `analyze construct`)
    #[arg(value_name = "RUN", required = true)]
    run: Option<PathBuf>,

    /// Where the tables, pictures and index.html go [default: RUN/analysis]. An existing
    /// directory must hold an earlier analysis (summary.json); only the files this call
    /// writes are replaced
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Also write explore.html: one self-contained interactive page (training-step slider,
    /// heat map, neuron inspector, logits), linked from index.html
    #[arg(long)]
    explore: bool,

    #[command(flatten)]
    common: Common,
}

/// Flags shared by both forms.
#[derive(clap::Args, Debug)]
struct Common {
    /// Print the run summary as JSON on stdout (and nothing else on stdout)
    #[arg(long)]
    json: bool,

    /// Power fraction at one frequency (in each of u, v, w) above which a neuron counts
    /// as sinusoidal
    #[arg(long, value_name = "F", default_value_t = summary::DEFAULT_THRESHOLD,
          value_parser = parse_threshold, allow_negative_numbers = true)]
    threshold: f64,

    /// Write the tables and summary.json only (no pictures, no index.html; those of an
    /// earlier analysis are kept)
    #[arg(long)]
    no_plots: bool,

    /// CPU threads for the margins (0 = all cores)
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the exact max-margin network of addition mod P (width 8(P−1), theory.md §2)
    /// as a run directory, then analyze it (γ/γ* = 1, every frequency, pure sinusoids)
    Construct {
        /// The modulus, odd and ≥ 3 (any odd p: the construction needs no field)
        #[arg(long, value_name = "P", allow_negative_numbers = true)]
        p: i64,

        /// Run directory to create (its analysis goes to DIR/analysis)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,

        /// Replace an existing run directory at --out
        #[arg(long)]
        force: bool,

        #[command(flatten)]
        common: Common,
    },
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number; expected a fraction in (0, 1]"))?;
    if x > 0.0 && x <= 1.0 {
        Ok(x)
    } else {
        Err(format!("{s} is outside (0, 1]"))
    }
}

/// Why the command failed: the message of its one `error:` line and its exit code (2
/// bad input, nothing written; 1 anything else).
struct Failure(u8, String);

impl Failure {
    fn input(m: impl std::fmt::Display) -> Failure {
        Failure(2, m.to_string())
    }
    fn other(m: impl std::fmt::Display) -> Failure {
        Failure(1, m.to_string())
    }
    /// Errors of checking, reading and analyzing the input: bad input unless the
    /// compute backend or the machine failed.
    fn reading(e: Error) -> Failure {
        match e {
            Error::Backend(_) => Failure::other(e),
            _ => Failure::input(e),
        }
    }
}

fn main() -> ExitCode {
    let command = Cli::command().after_help(
        "EXAMPLES:\n  analyze runs/default-20250101-120000\n  analyze RUN --json > summary.json\n  \
         analyze construct --p 23 --out runs/maxmargin-23\n\n\
         OUTPUT (in --out): summary.json, neurons.csv, frequencies.csv, checkpoints.csv, \
         timeline.csv,\n  the pictures (PNG and SVG) and index.html.\n\n\
         EXIT CODES: 0 done; 2 bad input (one `error:` line; nothing written); 1 other failures.",
    );
    let cli = match command.try_get_matches() {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => return fail(Failure::input(clap_message(&e.to_string()))),
        },
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            _ => {
                let m = clap_message(&e.to_string());
                return fail(Failure::input(format!("{m} (see analyze --help)")));
            }
        },
    };
    let result = match cli.command {
        Some(Command::Construct {
            p,
            out,
            force,
            common,
        }) => run_construct(p, &out, force, &common),
        None => {
            let run = cli.run.expect("clap requires RUN without a subcommand");
            let out = cli
                .out
                .unwrap_or_else(|| run.join(clockwork::layout::ANALYSIS_DIR));
            run_analyze(&run, &out, &cli.common, cli.explore)
        }
    };
    result.map_or_else(fail, |()| ExitCode::SUCCESS)
}

fn fail(Failure(code, message): Failure) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// Opens the f64 CPU backend the margins are evaluated with.
fn open_backend(common: &Common) -> Result<Box<dyn Backend<f64>>, Failure> {
    engine::open::<f64>(Device::Cpu, Precision::Fp32, common.threads).map_err(Failure::other)
}

/// `analyze RUN`.
fn run_analyze(run: &Path, out: &Path, common: &Common, explore: bool) -> Result<(), Failure> {
    outdir::check_analysis_dir(run, out).map_err(Failure::reading)?;
    let backend = open_backend(common)?;
    let t0 = Instant::now();
    let analysis =
        pipeline::analyze(backend.as_ref(), run, &options(common)).map_err(Failure::reading)?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    let files = if explore {
        clockwork::analysis::explore::write_analysis_with_explorer(&analysis, out, !common.no_plots)
    } else {
        outdir::write_analysis(&analysis, out, !common.no_plots)
    }
    .map_err(Failure::other)?;
    report_done(&analysis, &files, out, common, elapsed_s)
}

/// `analyze construct`.
fn run_construct(p: i64, out: &Path, force: bool, common: &Common) -> Result<(), Failure> {
    let p = usize::try_from(p)
        .ok()
        .filter(|&p| p >= 3 && p % 2 == 1)
        .ok_or_else(|| {
            Failure::input(format!(
                "invalid --p {p}: the max-margin construction needs an odd p >= 3"
            ))
        })?;
    outdir::check_new_run_dir(out, force).map_err(Failure::reading)?;
    let backend = open_backend(common)?;
    let t0 = Instant::now();
    // Past the checks a failure is a bug, not bad input.
    let (analysis, files, known) =
        construct::write_and_analyze(backend.as_ref(), p, out, &options(common), !common.no_plots)
            .map_err(Failure::other)?;
    let elapsed_s = t0.elapsed().as_secs_f64();
    if let Some(miss) = known.miss() {
        return Err(Failure::other(miss));
    }
    if !common.json {
        let width = construct::width(p);
        println!(
            "wrote the max-margin construction of addition mod {p} (x², width {width}) to {}",
            out.display()
        );
    }
    report_done(&analysis, &files, &out.join("analysis"), common, elapsed_s)?;
    if !common.json {
        print!("{}", known.text());
    }
    Ok(())
}

fn options(common: &Common) -> Options {
    Options {
        threshold: common.threshold,
    }
}

/// Prints the summary (human or JSON) of a finished analysis.
fn report_done(
    a: &RunAnalysis,
    files: &[PathBuf],
    out: &Path,
    common: &Common,
    elapsed_s: f64,
) -> Result<(), Failure> {
    if common.json {
        print!("{}", tables::summary_json(a).map_err(Failure::other)?);
        eprintln!(
            "analysis written to {} ({} files)",
            out.display(),
            files.len()
        );
    } else {
        print!("{}", text::summary_text(a, elapsed_s));
        print!("{}", text::files_text(files, out));
    }
    Ok(())
}

/// Clap's multi-line report as one line: the message and its indented details, without
/// the usage and the "for more information" tail.
fn clap_message(s: &str) -> String {
    s.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}
