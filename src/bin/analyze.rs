//! `analyze`: the Fourier, margin and progress analysis of a run directory, and the
//! exact max-margin construction as a run directory.
//!
//! ```text
//! analyze RUN [--out DIR] [--json] [--threshold 0.9] [--no-plots]
//! analyze construct --p P --out DIR [--force] [--json] [--no-plots]
//! ```
//!
//! A thin command line over [`clockwork::analysis::pipeline`] (the numbers and tables),
//! [`clockwork::analysis::report`] (pictures and `index.html`) and
//! [`clockwork::analysis::construct`]. Outputs are built under a temporary name next to
//! the output directory and renamed into place at the end, so a failure never leaves a
//! half-written directory behind.
//!
//! Exit codes: 0 done; 2 bad input (one `error:` line naming the bad path or value,
//! nothing written); 1 any other failure.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use clockwork::analysis::pipeline::{self, Options, RunAnalysis};
use clockwork::analysis::{construct, report, summary};
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
    /// directory is replaced only when it holds an earlier analysis (summary.json)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

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

    /// Write the tables and summary.json only (no pictures, no index.html)
    #[arg(long)]
    no_plots: bool,
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

/// Why the command failed, and so its exit code.
enum Failure {
    /// Bad input: exit code 2, nothing written.
    Input(String),
    /// Anything else: exit code 1.
    Other(String),
}

impl Failure {
    /// Errors of reading and analyzing a run: bad input unless the compute backend or
    /// the machine failed.
    fn reading(e: Error) -> Failure {
        match e {
            Error::Backend(_) => Failure::Other(e.to_string()),
            _ => Failure::Input(e.to_string()),
        }
    }
    fn other(e: impl std::fmt::Display) -> Failure {
        Failure::Other(e.to_string())
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
            Err(e) => return fail(&Failure::Input(clap_message(&e.to_string()))),
        },
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            _ => {
                return fail(&Failure::Input(format!(
                    "{} (see analyze --help)",
                    clap_message(&e.to_string())
                )))
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
            run_analyze(&run, &out, &cli.common)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(&f),
    }
}

fn fail(f: &Failure) -> ExitCode {
    match f {
        Failure::Input(m) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Failure::Other(m) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

/// `analyze RUN`.
fn run_analyze(run: &Path, out: &Path, common: &Common) -> Result<(), Failure> {
    check_analysis_out(run, out)?;
    let t0 = Instant::now();
    let analysis = pipeline::analyze(
        run,
        &Options {
            threshold: common.threshold,
        },
    )
    .map_err(Failure::reading)?;
    let analyzed_s = t0.elapsed().as_secs_f64();
    let files = write_outputs(&analysis, out, common.no_plots)?;
    report_done(&analysis, &files, out, common, analyzed_s)
}

/// `analyze construct`.
fn run_construct(p: i64, out: &Path, force: bool, common: &Common) -> Result<(), Failure> {
    let p = usize::try_from(p)
        .ok()
        .filter(|&p| p >= 3 && p % 2 == 1)
        .ok_or_else(|| {
            Failure::Input(format!(
                "invalid --p {p}: the max-margin construction needs an odd p >= 3"
            ))
        })?;
    check_run_out(out, force)?;
    let t0 = Instant::now();
    replace_dir(out, |tmp| {
        construct::write_run(p, tmp).map_err(Failure::other)
    })?;
    // From here on the run directory is in place; a failure is a bug, not bad input.
    let analysis = pipeline::analyze(
        out,
        &Options {
            threshold: common.threshold,
        },
    )
    .map_err(Failure::other)?;
    let analyzed_s = t0.elapsed().as_secs_f64();
    let dir = out.join(clockwork::layout::ANALYSIS_DIR);
    let files = write_outputs(&analysis, &dir, common.no_plots)?;
    check_construction(&analysis)?;
    if !common.json {
        println!(
            "wrote the max-margin construction of addition mod {p} (x², width {}) to {}",
            construct::width(p),
            out.display()
        );
    }
    report_done(&analysis, &files, &dir, common, analyzed_s)?;
    if !common.json {
        print_construction_check(&analysis);
    }
    Ok(())
}

/// The construction's known answers: γ/γ* = 1, every frequency used, every neuron a
/// pure sinusoid with θu + θv = θw. A miss is a bug (exit code 1).
fn check_construction(a: &RunAnalysis) -> Result<(), Failure> {
    let m = &a.summary.models[0];
    let ratio = m.margin.ratio.unwrap_or(f64::NAN);
    let min_fraction = a.neurons[0]
        .iter()
        .map(|f| f.min_fraction)
        .fold(f64::INFINITY, f64::min);
    let max_residual = a.neurons[0]
        .iter()
        .map(|f| f.residual.abs())
        .fold(0.0, f64::max);
    if (ratio - 1.0).abs() > 1e-9
        || !m.frequencies.freqs_missing.is_empty()
        || (min_fraction - 1.0).abs() > 1e-9
        || max_residual > 1e-9
        || m.margin.accuracy != 1.0
    {
        return Err(Failure::Other(format!(
            "the construction misses its known answer: γ/γ* = {ratio}, missing frequencies \
             {:?}, smallest power fraction {min_fraction}, largest |residual| {max_residual}, \
             accuracy {}",
            m.frequencies.freqs_missing, m.margin.accuracy
        )));
    }
    Ok(())
}

fn print_construction_check(a: &RunAnalysis) {
    let m = &a.summary.models[0];
    let f = &m.frequencies;
    let neurons = &a.neurons[0];
    let min_fraction = neurons
        .iter()
        .map(|f| f.min_fraction)
        .fold(f64::INFINITY, f64::min);
    let max_residual = neurons.iter().map(|f| f.residual.abs()).fold(0.0, f64::max);
    let ratio = m.margin.ratio.unwrap_or(f64::NAN);
    println!("known answers:");
    println!(
        "  γ/γ* = {ratio:.9} (|γ/γ* − 1| = {:.1e}); accuracy {}",
        (ratio - 1.0).abs(),
        pct(m.margin.accuracy)
    );
    println!(
        "  all {} frequencies 1..={} present, {} neurons each",
        f.freqs_used.len(),
        f.max_freq,
        f.neurons_per_freq.get(1).copied().unwrap_or(0)
    );
    println!(
        "  every neuron: power fraction {min_fraction:.9} (smallest over u, v, w and neurons), \
         residual θu+θv−θw = 0 (largest |residual| {max_residual:.1e})"
    );
}

/// The analysis output may be new, empty, or an earlier analysis (it is replaced); it
/// must not be or contain the run itself.
fn check_analysis_out(run: &Path, out: &Path) -> Result<(), Failure> {
    if !run.is_dir() {
        // Reported by the pipeline with the run's own message.
        return Ok(());
    }
    check_name(out)?;
    if !out.exists() {
        return Ok(());
    }
    if let (Ok(r), Ok(o)) = (run.canonicalize(), out.canonicalize()) {
        if r.starts_with(&o) {
            return Err(Failure::Input(format!(
                "{}: --out is the run directory or contains it; choose another --out",
                out.display()
            )));
        }
    }
    if !out.is_dir() {
        return Err(Failure::Input(format!(
            "{}: --out exists and is not a directory",
            out.display()
        )));
    }
    if is_empty_dir(out)? || out.join(clockwork::layout::SUMMARY_FILE).is_file() {
        return Ok(());
    }
    Err(Failure::Input(format!(
        "{}: --out already exists and is not an earlier analysis (no summary.json); \
         choose another --out",
        out.display()
    )))
}

/// A new run directory may be new or empty; an existing run directory is replaced only
/// under `--force`.
fn check_run_out(out: &Path, force: bool) -> Result<(), Failure> {
    check_name(out)?;
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(Failure::Input(format!(
            "{}: --out exists and is not a directory",
            out.display()
        )));
    }
    if is_empty_dir(out)? {
        return Ok(());
    }
    if !force {
        return Err(Failure::Input(format!(
            "{}: --out already exists and is not empty (pass --force to replace it)",
            out.display()
        )));
    }
    if !out.join(clockwork::layout::CONFIG_FILE).is_file() {
        return Err(Failure::Input(format!(
            "{}: refusing to replace it: not a run directory (no config.toml), and --force \
             only replaces run directories",
            out.display()
        )));
    }
    Ok(())
}

fn check_name(out: &Path) -> Result<(), Failure> {
    if out.file_name().is_none() {
        return Err(Failure::Input(format!(
            "{}: not usable as an output directory name",
            out.display()
        )));
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> Result<bool, Failure> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| Failure::Input(format!("{}: {e}", dir.display())))?
        .next()
        .is_none())
}

/// Builds a directory with `build` under a temporary name next to `out`, then moves it
/// into place, replacing what was there. On failure nothing changes at `out`.
fn replace_dir<T>(
    out: &Path,
    build: impl FnOnce(&Path) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.partial-{pid}"));
    let old = parent.join(format!(".{name}.replaced-{pid}"));
    std::fs::create_dir_all(parent)
        .map_err(|e| Failure::Other(format!("{}: {e}", parent.display())))?;
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| Failure::Other(format!("{}: {e}", tmp.display())))?;
    let result = build(&tmp).and_then(|value| {
        if out.exists() {
            std::fs::rename(out, &old)
                .map_err(|e| Failure::Other(format!("{}: {e}", out.display())))?;
        }
        std::fs::rename(&tmp, out)
            .map_err(|e| Failure::Other(format!("{}: {e}", out.display())))?;
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

/// Tables, then (unless `no_plots`) pictures and index.html, into `dir`; the paths written.
fn write_files(a: &RunAnalysis, dir: &Path, no_plots: bool) -> Result<Vec<PathBuf>, Failure> {
    let mut files = pipeline::write_tables(a, dir).map_err(Failure::other)?;
    if !no_plots {
        files.extend(report::write_report(a, dir).map_err(Failure::other)?);
    }
    Ok(files)
}

/// [`write_files`] into `out` by way of a temporary directory; the final paths.
fn write_outputs(a: &RunAnalysis, out: &Path, no_plots: bool) -> Result<Vec<PathBuf>, Failure> {
    let written = replace_dir(out, |tmp| {
        let files = write_files(a, tmp, no_plots)?;
        Ok(files
            .into_iter()
            .map(|f| match f.strip_prefix(tmp) {
                Ok(rel) => out.join(rel),
                Err(_) => f,
            })
            .collect::<Vec<_>>())
    })?;
    Ok(written)
}

/// Prints the summary (human or JSON) of a finished analysis.
fn report_done(
    a: &RunAnalysis,
    files: &[PathBuf],
    out: &Path,
    common: &Common,
    analyzed_s: f64,
) -> Result<(), Failure> {
    if common.json {
        let json = serde_json::to_string_pretty(&a.summary).map_err(Failure::other)?;
        println!("{json}");
        eprintln!(
            "analysis written to {} ({} files)",
            out.display(),
            files.len()
        );
    } else {
        print_human(a, files, out, analyzed_s);
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn opt_pct(x: Option<f64>) -> String {
    x.map_or("n/a".into(), pct)
}

fn list(xs: &[usize]) -> String {
    if xs.is_empty() {
        return "none".into();
    }
    // Runs of consecutive frequencies as ranges: 1-5 7 9-11.
    let mut parts = Vec::new();
    let mut i = 0;
    while i < xs.len() {
        let mut j = i;
        while j + 1 < xs.len() && xs[j + 1] == xs[j] + 1 {
            j += 1;
        }
        parts.push(if j > i + 1 {
            format!("{}-{}", xs[i], xs[j])
        } else if j == i + 1 {
            format!("{} {}", xs[i], xs[j])
        } else {
            xs[i].to_string()
        });
        i = j + 1;
    }
    parts.join(" ")
}

/// Models shown one by one; the rest are summarized in one line.
const SHOWN: usize = 8;

fn print_human(a: &RunAnalysis, files: &[PathBuf], out: &Path, analyzed_s: f64) {
    let s = &a.summary;
    let split = if s.train_fraction < 1.0 {
        format!(", train fraction {}", s.train_fraction)
    } else {
        String::new()
    };
    println!(
        "{}: {}{split}, {}{} width {}, {} checkpoint(s) up to step {}, {} model(s) ({:.2} s)",
        s.run,
        s.task,
        if s.tied { "tied " } else { "" },
        s.activation,
        s.width,
        s.checkpoints,
        s.final_step,
        s.models.len(),
        analyzed_s
    );
    println!(
        "sinusoidal = at least {} of the power of each of u, v, w at one frequency",
        s.threshold
    );
    for m in s.models.iter().take(SHOWN) {
        let f = &m.frequencies;
        println!("model {}:", m.model);
        let split_acc = match &m.last_metrics {
            Some(r) if r.test_acc.is_some() => format!(
                " (train {}, test {} at step {})",
                opt_pct(r.train_acc),
                opt_pct(r.test_acc),
                r.step
            ),
            _ => String::new(),
        };
        println!(
            "  accuracy over all pairs {}{split_acc}",
            pct(m.margin.accuracy)
        );
        let star = match (m.margin.gamma_star, m.margin.ratio) {
            (Some(g), Some(r)) => format!("γ* = {g:.4e}, γ/γ* = {r:.4}"),
            _ => "no γ* for this setup".into(),
        };
        println!(
            "  normalized margin over all pairs γ = {:.4e}; {star}",
            m.margin.gamma
        );
        if let Some(t) = &m.margin_train {
            println!(
                "  normalized margin over the training pairs {:.4e}",
                t.gamma
            );
        }
        println!(
            "  frequencies used ({}/{}): {}; missing: {}",
            f.freqs_used.len(),
            f.max_freq,
            list(&f.freqs_used),
            list(&f.freqs_missing)
        );
        let residual = match (f.residual_max_abs, f.residual_mean_abs) {
            (Some(mx), Some(mean)) => {
                format!("; |θu+θv−θw| of those: max {mx:.2e}, mean {mean:.2e}")
            }
            _ => String::new(),
        };
        println!(
            "  sinusoidal neurons {} of {} ({}){residual}",
            f.sinusoidal_per_freq.iter().sum::<usize>(),
            f.neurons,
            pct(f.sinusoidal_share)
        );
        println!(
            "  u, v, w share one frequency: {}; mean IPR {:.3}",
            pct(f.shared_freq_share),
            f.mean_ipr
        );
        if let Some((lo, hi)) = f.norm_share_range {
            println!(
                "  weight norm² per used frequency: {lo:.2}× to {hi:.2}× the equal share 1/{}",
                f.max_freq
            );
        }
        let l = &m.lottery;
        println!(
            "  lottery: of {} sinusoidal neurons, {} end on their strongest init frequency ({}), \
             {} on their best-aligned one ({}); chance {}",
            l.considered,
            l.same_as_strongest,
            opt_pct(l.share_strongest),
            l.same_as_aligned,
            opt_pct(l.share_aligned),
            pct(l.chance)
        );
        let step = |x: Option<u64>| x.map_or("not reached".into(), |s| format!("step {s}"));
        if s.train_fraction < 1.0 {
            println!(
                "  grokking: memorized (train ≥ 95%) {}, generalized (test ≥ 95%) {}",
                step(m.stages.memorized),
                step(m.stages.generalized)
            );
        } else {
            println!(
                "  training: train accuracy ≥ 95% {} (no test split)",
                step(m.stages.memorized)
            );
        }
    }
    if s.models.len() > SHOWN {
        let rest = &s.models[SHOWN..];
        let n = rest.len() as f64;
        let mean = |f: &dyn Fn(&pipeline::ModelReport) -> f64| rest.iter().map(f).sum::<f64>() / n;
        println!(
            "... {} more models: mean accuracy {}, mean sinusoidal share {}, mean γ {:.4e}",
            rest.len(),
            pct(mean(&|m| m.margin.accuracy)),
            pct(mean(&|m| m.frequencies.sinusoidal_share)),
            mean(&|m| m.margin.gamma)
        );
    }
    println!("{} files in {}:", files.len(), out.display());
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(out)
                .unwrap_or(f)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    println!("  {}", names.join(" "));
    let index = out.join("index.html");
    if index.is_file() {
        println!("open {}", index.display());
    }
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
