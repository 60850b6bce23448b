//! `sweep`: train every model of a sweep file in batched passes and draw its phase
//! diagrams; `sweep merge` joins the directories of its shards; `sweep report` writes a
//! finished directory's outputs again (with `--explore`, its interactive page).
//!
//! A thin command line over [`clockwork::sweep`] (the file format is in its docs).

use clap::{Parser, Subcommand};
use clockwork::run::Progress;
use clockwork::sweep::plan::Shard;
use clockwork::sweep::{self, estimate, merge, rewrite, Sweep, SweepOptions, SweepStatus};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "sweep",
    about = "Train a grid of models (a TOML sweep file) in batched passes: tables, phase diagrams, index.html",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The sweep file (format: see the README's Sweeps section)
    #[arg(required = true, value_name = "FILE")]
    file: Option<PathBuf>,

    /// Check the file, print the model count, the shape groups and a time estimate
    /// (a few steps of each group are timed); trains nothing
    #[arg(long)]
    dry_run: bool,

    /// Train only slice i of n (0-based): batches whose index is i modulo n
    #[arg(long, value_name = "i/n")]
    shard: Option<String>,

    /// Sweep directory (default: sweeps/NAME, or sweeps/NAME-shard-i-of-n); rerunning
    /// the same command resumes it
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// No progress output
    #[arg(long)]
    quiet: bool,

    /// Also write explore.html: the phase diagrams for any metric, a click on a cell shows
    /// its models' curves (one self-contained page, no network)
    #[arg(long)]
    explore: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join the directories of all shards of one sweep into one table and one set of diagrams
    Merge {
        /// The shard directories (one per shard)
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Where the merged tables and diagrams go (a new directory)
        #[arg(long, value_name = "DIR", required = true)]
        out: PathBuf,
        /// Also write explore.html (the interactive page)
        #[arg(long)]
        explore: bool,
    },
    /// Write the tables, diagrams and index.html of a finished sweep (or merged)
    /// directory again from what it holds, training nothing
    Report {
        /// The sweep directory
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Also write explore.html (the interactive page)
        #[arg(long)]
        explore: bool,
    },
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{}m {:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{}h {:02.0}m", (s / 3600.0).floor(), (s % 3600.0) / 60.0)
    }
}

fn dry_run(sweep: &Sweep, shard: Shard) -> ExitCode {
    let plan = match estimate::dry_run(sweep, shard, true) {
        Ok(p) => p,
        Err(e) => return fail(1, e),
    };
    println!(
        "sweep {}: {} models, {} shape group(s), {} batch(es) of at most {} (fingerprint {})",
        plan.name,
        plan.models,
        plan.groups.len(),
        plan.batches,
        plan.batch_max,
        plan.fingerprint
    );
    if !plan.axes.is_empty() {
        let axes: Vec<String> = plan
            .axes
            .iter()
            .map(|(key, n)| format!("{key} ({n})"))
            .collect();
        println!("axes: {}", axes.join(" × "));
    }
    if plan.explicit_points > 0 {
        println!("explicit points: {}", plan.explicit_points);
    }
    if shard.count > 1 {
        println!("shard {shard}: {} batch(es)", plan.shard_batches);
    }
    for e in &plan.estimates {
        println!(
            "group {}: {} models in {} batch(es), {:.3} ms/step at the largest batch, ~{}\n  {}",
            e.group,
            e.models,
            e.batches,
            1e3 * e.step_s,
            duration(e.total_s),
            plan.groups[e.group].describe
        );
    }
    println!(
        "estimated time: ~{} (steps and evaluations timed on this machine just now)",
        duration(plan.estimated_s.unwrap_or(0.0))
    );
    ExitCode::SUCCESS
}

/// The explorer's path, when it was asked for.
fn print_explorer(dir: &Path, explore: bool) {
    if explore {
        println!(
            "explorer: {}",
            dir.join(sweep::explore::EXPLORE_FILE).display()
        );
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            _ => {
                // The message up to the usage: its first line and what it lists below it
                // (e.g. the missing argument's name).
                let text = e.to_string();
                let message: Vec<&str> = text
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                let message = message.join(" ");
                let message = message.trim_start_matches("error: ");
                return fail(2, format!("{message} (see sweep --help)"));
            }
        },
    };
    match &cli.command {
        Some(Command::Merge { dirs, out, explore }) => {
            return match merge::merge(dirs, out, *explore) {
                Ok(r) => {
                    println!(
                        "merged {} shard(s): {} models → {}",
                        dirs.len(),
                        r.models,
                        out.join(sweep::report::INDEX_FILE).display()
                    );
                    print_explorer(out, *explore);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(2, e),
            };
        }
        Some(Command::Report { dir, explore }) => {
            return match rewrite::rewrite(dir, *explore) {
                Ok(r) => {
                    println!(
                        "{} models → {}",
                        r.models,
                        dir.join(sweep::report::INDEX_FILE).display()
                    );
                    print_explorer(dir, *explore);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(2, e),
            };
        }
        None => {}
    }
    let file = cli.file.expect("clap requires FILE without a subcommand");
    let shard = match cli.shard.as_deref().map(Shard::parse).transpose() {
        Ok(s) => s.unwrap_or(Shard::ALL),
        Err(e) => return fail(2, e),
    };
    let sweep = match Sweep::load(&file) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    if cli.dry_run {
        return dry_run(&sweep, shard);
    }
    let interrupt = clockwork::cli::interrupt_flag(
        "interrupt: writing a checkpoint of the current batch (Ctrl-C again to quit now)",
        "",
    );
    let out = cli.out.unwrap_or_else(|| sweep::default_out(&sweep, shard));
    let options = SweepOptions {
        progress: if cli.quiet {
            Progress::Off
        } else {
            Progress::Auto
        },
        interrupt: Some(interrupt),
        quiet: cli.quiet,
        explore: cli.explore,
    };
    match sweep::run(&sweep, &out, shard, &options) {
        Ok(r) if r.status == SweepStatus::Interrupted => {
            eprintln!(
                "interrupted after {} batch(es); run the same command again to continue",
                r.trained
            );
            ExitCode::from(130)
        }
        Ok(r) => {
            println!(
                "done: {} models ({} batch(es) trained now, {} already done) in {}",
                r.models,
                r.trained,
                r.skipped,
                duration(r.elapsed_s)
            );
            println!(
                "results: {}",
                out.join(sweep::tables::RESULTS_CSV).display()
            );
            println!("page:    {}", out.join(sweep::report::INDEX_FILE).display());
            print_explorer(&out, cli.explore);
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
}
