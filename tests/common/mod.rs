//! What the tests of the `train` binary share: running it and reading a run's metrics.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `train` binary of this build.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train"))
}

/// Runs `train` with `args` to the end.
pub fn train(args: &[&str]) -> Output {
    bin().args(args).output().expect("the train binary runs")
}

/// Process output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every line of `dir`'s metrics.jsonl (none when it is missing).
pub fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(clockwork::layout::METRICS_FILE))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Metrics lines without the wall-clock field (what two runs of the same steps share).
pub fn metrics_without_time(dir: &Path) -> Vec<serde_json::Value> {
    let mut lines = metrics(dir);
    for v in &mut lines {
        v.as_object_mut().unwrap().remove("elapsed_s");
    }
    lines
}
