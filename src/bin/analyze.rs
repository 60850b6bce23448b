//! `analyze`: the Fourier, margin and progress analysis of a run directory, and the
//! constructions (the exact max-margin network, Gromov's analytic solution).
//!
//! ```text
//! analyze RUN [--out DIR] [--json] [--threshold 0.9] [--no-plots] [--explore]
//! analyze construct --p P --out DIR [--force] [--json] [--no-plots]
//! analyze construct --kind gromov --width N [--p 97] [--draws 10] [--seed S] [--out DIR]
//! ```
//!
//! A thin command line: it parses the flags, opens the f64 CPU backend and prints what
//! [`clockwork::analysis::command`] returns (the analysis, the output directory and the
//! constructions live in the library).
//!
//! Exit codes: 0 done; 2 bad input (one `error:` line naming the bad path or value,
//! nothing written); 1 any other failure.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use clockwork::analysis::command::{self, ConstructFlags, Failure, Printed, Settings};
use clockwork::analysis::summary;
use clockwork::engine;
use clockwork::kinds::{Device, Precision};
use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Kind {
    /// The exact max-margin network of theory.md §2 (width 8(P−1); needs --p and --out)
    Maxmargin,
    /// Gromov's analytic solution with random phases (needs --width)
    Gromov,
    /// The exact max-margin network of a group's table, γ = γ* (needs --group and --out)
    Group,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a constructed network as a run directory: by default the exact max-margin
    /// network of addition mod P (γ/γ* = 1, every frequency, pure sinusoids); with
    /// --kind gromov, Gromov's analytic solution, scored over --draws draws of its phases
    Construct {
        /// Which construction
        #[arg(long, value_enum, default_value_t = Kind::Maxmargin)]
        kind: Kind,

        /// The modulus: odd and ≥ 3 for maxmargin (no field needed); ≥ 3 for gromov
        /// [gromov default: 97]
        #[arg(long, value_name = "P", allow_negative_numbers = true)]
        p: Option<i64>,

        /// Run directory to create (its analysis goes to DIR/analysis); optional for gromov
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,

        /// Replace an existing run directory at --out
        #[arg(long)]
        force: bool,

        /// gromov: the number of neurons N
        #[arg(long, value_name = "N")]
        width: Option<usize>,

        /// gromov: independent draws of the random phases, one model each [default: 10]
        #[arg(long, value_name = "D")]
        draws: Option<usize>,

        /// gromov: seed of the draws [default: 0]
        #[arg(long, value_name = "S")]
        seed: Option<u64>,

        /// group: the group, e.g. S3, S4, D5 (irreps all of real type)
        #[arg(long, value_name = "G")]
        group: Option<String>,

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

fn main() -> ExitCode {
    let command = Cli::command().after_help(
        "EXAMPLES:\n  analyze runs/default-20250101-120000\n  analyze RUN --json > summary.json\n  \
         analyze construct --p 23 --out runs/maxmargin-23\n  \
         analyze construct --kind gromov --width 97 --draws 10\n  \
         analyze construct --kind group --group S4 --out runs/maxmargin-s4\n\n\
         OUTPUT (in --out): summary.json, neurons.csv, frequencies.csv, checkpoints.csv, \
         timeline.csv,\n  the pictures (PNG and SVG) and index.html.\n\n\
         EXIT CODES: 0 done; 2 bad input (one `error:` line; nothing written); 1 other failures.",
    );
    let parsed = command
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let m = clockwork::cli::one_line(&e.to_string());
            return fail(Failure::input(format!("{m} (see analyze --help)")));
        }
    };
    match run(cli) {
        Ok(Printed { stdout, stderr }) => {
            print!("{stdout}");
            eprint!("{stderr}");
            ExitCode::SUCCESS
        }
        Err(f) => fail(f),
    }
}

fn run(cli: Cli) -> Result<Printed, Failure> {
    match cli.command {
        None => {
            let run = cli.run.expect("clap requires RUN without a subcommand");
            let out = cli
                .out
                .unwrap_or_else(|| run.join(clockwork::layout::ANALYSIS_DIR));
            let (backend, s) = open(&cli.common)?;
            let s = Settings {
                explore: cli.explore,
                ..s
            };
            command::analyze_run(backend.as_ref(), &run, &out, &s)
        }
        Some(Command::Construct {
            kind,
            p,
            out,
            force,
            width,
            draws,
            seed,
            group,
            common,
        }) => {
            if (kind == Kind::Group) != group.is_some() {
                return Err(Failure::input(
                    "--kind group needs --group G, and --group belongs to --kind group",
                ));
            }
            let flags = ConstructFlags {
                gromov: kind == Kind::Gromov,
                p,
                out,
                force,
                width,
                draws,
                seed,
                group,
            };
            let (backend, s) = open(&common)?;
            command::construct(backend.as_ref(), &flags, &s)
        }
    }
}

/// The f64 CPU backend the margins are evaluated with, and the shared settings.
fn open(common: &Common) -> Result<(Box<dyn engine::Backend<f64>>, Settings), Failure> {
    let backend = engine::open::<f64>(Device::Cpu, Precision::Fp32, common.threads)
        .map_err(Failure::other)?;
    let settings = Settings {
        json: common.json,
        threshold: common.threshold,
        pictures: !common.no_plots,
        explore: false,
    };
    Ok((backend, settings))
}

fn fail(Failure { code, message }: Failure) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
