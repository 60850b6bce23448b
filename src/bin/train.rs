//! `train`: train MLPs on modular arithmetic and write a run directory.
//!
//! A thin command line over [`clockwork::presets`] (config resolution) and
//! [`clockwork::run`] (the loop). `cargo run --release --bin train -- --help` lists every
//! preset and config key.

// The doc comments on `Cli` are clap's --help text, written for a terminal, not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use clap::{CommandFactory, FromArgMatches, Parser};
use clockwork::layout::{
    CHECKPOINTS_DIR, CHECKPOINT_PREFIX, CHECKPOINT_SUFFIX, CONFIG_FILE, LOCK_FILE, METRICS_FILE,
    SPECTRA_FILE,
};
use clockwork::presets;
use clockwork::run::{self, Progress, RunError, RunFailure, RunOptions, RunStatus, RunSummary};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "train",
    about = "Train two-layer MLPs on modular arithmetic (full-batch, every pair) and write a run directory",
    long_about = None,
)]
struct Cli {
    /// Start from this preset (listed below)
    #[arg(long, default_value = "default", value_name = "NAME")]
    preset: String,

    /// TOML file merged over the preset (it may set just a few keys)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Override a config key, e.g. --set task.p=23 --set optimizer.lr_milestones=[1000,2000]
    /// (repeatable; values are TOML, a bare word is a string)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,

    /// = --set task.p=P
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    p: Option<String>,
    /// = --set task.op=OP (add, sub, mul, div, quad)
    #[arg(long, value_name = "OP")]
    op: Option<String>,
    /// = --set task.group=G: a finite group's table a·b instead of an op mod p, e.g. S4,
    /// D7, A4, C5xC5 (C/D/S/A with a degree, 'x' for products; at most 128 elements)
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// = --set task.train_fraction=F
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    fraction: Option<String>,
    /// = --set model.width=M
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    width: Option<String>,
    /// = --set model.activation=A (square, relu, powK)
    #[arg(long, value_name = "A")]
    activation: Option<String>,
    /// = --set train.steps=N (with --resume: continue up to N steps)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    steps: Option<String>,
    /// = --set optimizer.lr=LR
    #[arg(long, value_name = "LR", allow_negative_numbers = true)]
    lr: Option<String>,
    /// = --set device=D (cpu, cuda, cuda:N)
    #[arg(long, value_name = "D")]
    device: Option<String>,
    /// = --set precision=P (CUDA products: fp32, tf32, bf16)
    #[arg(long, value_name = "P")]
    precision: Option<String>,
    /// = --set dtype=T (f32, f64)
    #[arg(long, value_name = "T")]
    dtype: Option<String>,
    /// = --set models=B (models trained together)
    #[arg(long, value_name = "B", allow_negative_numbers = true)]
    models: Option<String>,
    /// = --set seed=S
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    seed: Option<String>,
    /// = --set threads=T (CPU threads, 0 = all cores)
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    threads: Option<String>,

    /// Run directory to create [default: runs/<preset>-<UTC time>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Replace an existing run directory at --out
    #[arg(long)]
    force: bool,

    /// Continue the run in DIR from its newest checkpoint (only --steps may change)
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = [
            "preset", "config", "set", "p", "op", "fraction", "width", "activation",
            "lr", "device", "precision", "dtype", "models", "seed", "threads", "out", "force", "print_config",
        ]
    )]
    resume: Option<PathBuf>,

    /// Print the resolved config.toml and exit without training
    #[arg(long)]
    print_config: bool,

    /// No progress output (the final summary is still printed)
    #[arg(long, short)]
    quiet: bool,
}

fn after_help() -> String {
    let mut s = String::from("PRESETS (--preset NAME):\n");
    for (name, doc) in presets::PRESETS {
        s.push_str(&format!("  {name:<11} {doc}\n"));
    }
    s.push_str(
        "\nCONFIG KEYS (--set KEY=VALUE, or in a --config file under [section]; default shown):\n",
    );
    s.push_str(&presets::key_reference());
    s.push_str(&format!(
        "\nResolution order: preset → --config file → --set overrides in order → the \
         convenience flags (--p, --width, ...).\n\
         \n\
         RUN DIRECTORY: {CONFIG_FILE} (resolved), {METRICS_FILE} (one JSON line per \
         evaluation and model),\n  {CHECKPOINTS_DIR}/{CHECKPOINT_PREFIX}XXXXXXXX{CHECKPOINT_SUFFIX} (every \
         train.checkpoint_every steps and at the end),\n  {SPECTRA_FILE} (every \
         train.spectra_every steps), {LOCK_FILE} (held while a process trains it:\n  a \
         second train --resume or --out on it is refused with exit code 2).\n\
         \n\
         EXIT CODES: 0 done; 1 the run failed (e.g. NaN/inf loss: the last good checkpoint \
         is kept);\n  2 bad input or a run directory another process is training (one \
         `error:` line; nothing written); 130 interrupted by \
         Ctrl-C (checkpoint written; --resume continues).\n\
         \n\
         EXAMPLES:\n  train                                   # the default run, about a minute\n  \
         train --preset blog-relu --steps 10000\n  \
         train --config run.toml --set optimizer.lr=0.1 --out runs/mine\n  \
         train --resume runs/mine --steps 80000\n",
    ));
    s
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // The handler goes in first, so a Ctrl-C at any point after start-up is ours.
    let interrupt = clockwork::cli::interrupt_flag(
        "interrupt: finishing the current step and writing a checkpoint (Ctrl-C again to quit now)",
        "; an interrupt will lose progress since the last checkpoint",
    );

    let command = Cli::command().after_help(after_help());
    let cli = match command.try_get_matches() {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => return fail(first_line(&e.to_string())),
        },
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            _ => {
                return fail(format!(
                    "{} (see train --help)",
                    clockwork::cli::one_line(&e.to_string())
                ))
            }
        },
    };

    let options = RunOptions {
        progress: if cli.quiet {
            Progress::Off
        } else {
            Progress::Auto
        },
        force: cli.force,
        interrupt: Some(interrupt),
        // The loop records spectra through the analysis (it cannot import it itself).
        spectra: Some(clockwork::analysis::record::open_sink),
    };

    let result = if let Some(dir) = &cli.resume {
        let steps = match cli.steps.as_deref().map(str::parse::<u64>).transpose() {
            Ok(s) => s,
            Err(_) => {
                return fail(format!(
                    "invalid --steps {}: expected a non-negative integer",
                    cli.steps.as_deref().unwrap_or("")
                ))
            }
        };
        run::resume(dir, steps, &options)
    } else {
        let mut overrides = Vec::new();
        for s in &cli.set {
            match presets::parse_assignment(s) {
                Ok(kv) => overrides.push(kv),
                Err(e) => return fail(e),
            }
        }
        for (key, value) in [
            ("task.p", &cli.p),
            ("task.op", &cli.op),
            ("task.group", &cli.group),
            ("task.train_fraction", &cli.fraction),
            ("model.width", &cli.width),
            ("model.activation", &cli.activation),
            ("train.steps", &cli.steps),
            ("optimizer.lr", &cli.lr),
            ("device", &cli.device),
            ("precision", &cli.precision),
            ("dtype", &cli.dtype),
            ("models", &cli.models),
            ("seed", &cli.seed),
            ("threads", &cli.threads),
        ] {
            if let Some(v) = value {
                overrides.push((key.to_string(), v.clone()));
            }
        }
        let config = match presets::resolve(&cli.preset, cli.config.as_deref(), &overrides) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        if cli.print_config {
            print!("{}", config.to_toml());
            return ExitCode::SUCCESS;
        }
        let out = cli.out.clone().unwrap_or_else(|| {
            // A group run is named by its group too: runs/<preset>-<group>-<time>.
            let label = match &config.task.group {
                Some(g) => format!("{}-{g}", cli.preset),
                None => cli.preset.clone(),
            };
            run::default_out_dir(std::path::Path::new("runs"), &label)
        });
        run::start(&config, &out, &options)
    };

    match result {
        Ok(summary) => {
            print_summary(&summary);
            match summary.status {
                RunStatus::Completed => ExitCode::SUCCESS,
                RunStatus::Interrupted => ExitCode::from(130),
            }
        }
        Err(e @ RunError::Input(_)) => fail(e),
        Err(RunError::Failed(failure)) => {
            let RunFailure {
                error,
                dir,
                checkpoint,
            } = *failure;
            eprintln!("error: {error}");
            match checkpoint {
                Some(path) => eprintln!(
                    "the last good state is in {} (run directory {})",
                    path.display(),
                    dir.display()
                ),
                None => eprintln!(
                    "no checkpoint was written (run directory {})",
                    dir.display()
                ),
            }
            ExitCode::from(1)
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

fn fmt_acc(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn print_summary(s: &RunSummary) {
    let dir = s.dir.display();
    match s.status {
        RunStatus::Completed => println!(
            "done: {} steps ({} in this call, {:.1} s, {:.0} steps/s)",
            s.step,
            s.session_steps,
            s.session_s,
            s.steps_per_s()
        ),
        RunStatus::Interrupted => println!(
            "interrupted at step {} of {} ({:.0} steps/s); checkpoint {}",
            s.step,
            s.total_steps,
            s.steps_per_s(),
            s.checkpoint.display()
        ),
    }
    let shown = s.models.len().min(8);
    for (k, m) in s.models.iter().take(shown).enumerate() {
        let label = if s.models.len() > 1 {
            format!("model {k}: ")
        } else {
            String::new()
        };
        let test = match (m.test_loss, m.test_acc) {
            (Some(l), Some(a)) => format!("test loss {l:.4e}, test acc {}", fmt_acc(a)),
            _ => "no test split".to_string(),
        };
        let margin = match m.gamma_star {
            Some(g) => format!(
                "normalized margin {:.4e} = {:.4} γ* (γ* = {g:.4e})",
                m.margin,
                m.margin / g
            ),
            None => format!(
                "normalized margin {:.4e} (no γ* formula for this setup)",
                m.margin
            ),
        };
        println!(
            "  {label}train loss {:.4e}, train acc {}, {test}; {margin}",
            m.train_loss,
            fmt_acc(m.train_acc)
        );
    }
    if s.models.len() > shown {
        let n = s.models.len();
        let all = |f: &dyn Fn(&run::ModelSummary) -> f64| {
            let v: Vec<f64> = s.models.iter().map(f).collect();
            (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().sum::<f64>() / n as f64,
            )
        };
        let (amin, amean) = all(&|m| m.train_acc);
        println!(
            "  ... {} more; over all {n} models train acc min {}, mean {}",
            n - shown,
            fmt_acc(amin),
            fmt_acc(amean)
        );
    }
    println!("run directory: {dir}");
    match s.status {
        RunStatus::Completed => {
            println!("analyze it:    cargo run --release --bin analyze -- {dir}")
        }
        RunStatus::Interrupted => {
            println!("resume it:     cargo run --release --bin train -- --resume {dir}")
        }
    }
}
