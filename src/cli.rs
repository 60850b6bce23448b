//! What the command-line front ends (`train`, `analyze`, `sweep`) share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A command-line parser's multi-line report (clap's) as one line: the message and its
/// indented details, without the usage and the "for more information" tail, so every
/// bad-input error is the one `error:` line the binaries promise.
pub fn one_line(report: &str) -> String {
    report
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}

/// Installs the Ctrl-C handler the training binaries share: the first interrupt sets the
/// returned flag (the loop finishes its step and checkpoints) and prints `on_first`; a
/// second exits at once with 130. If no handler can be installed, says so on stderr with
/// `without` (what an interrupt will cost) and returns a flag nothing sets.
pub fn interrupt_flag(on_first: &'static str, without: &str) -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    let installed = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond interrupt: exiting without a new checkpoint");
            std::process::exit(130);
        }
        eprintln!("\n{on_first}");
    });
    if let Err(e) = installed {
        eprintln!("warning: cannot handle Ctrl-C ({e}){without}");
    }
    interrupt
}
