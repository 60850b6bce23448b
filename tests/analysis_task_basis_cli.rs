//! `analyze` on runs of a−b, a·b and a²+ab+b² written by `train`: the summary names the
//! basis and invariant the task calls for (issue 10), and the pictures follow it.

use std::path::Path;
use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let o = Command::new(bin)
        .args(args)
        .output()
        .expect("the binary runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Trains `op` mod 23 (x², the default GD recipe) for `steps` steps into `dir` and
/// returns `analyze --json` of it (pictures written too).
fn trained_summary(op: &str, width: &str, steps: &str, dir: &Path) -> serde_json::Value {
    let d = dir.to_str().unwrap();
    run(
        env!("CARGO_BIN_EXE_train"),
        &[
            "--set",
            &format!("task.op={op}"),
            "--p",
            "23",
            "--width",
            width,
            "--steps",
            steps,
            "--set",
            "train.checkpoint_every=1000",
            "--out",
            d,
            "-q",
        ],
    );
    serde_json::from_str(&run(env!("CARGO_BIN_EXE_analyze"), &[d, "--json"])).unwrap()
}

#[test]
fn analyze_uses_the_basis_of_the_task() {
    let tmp = tempfile::tempdir().unwrap();

    let mul = trained_summary("mul", "88", "3000", &tmp.path().join("mul"));
    let b = &mul["basis"];
    assert_eq!(b["name"], "discrete log", "{b}");
    assert_eq!(
        (b["group"].as_str(), b["size"].as_u64()),
        (Some("Z_22"), Some(22))
    );
    assert_eq!(b["generator"], 5);
    assert_eq!(b["invariant"], "θu + θv − θw = 0");
    assert_eq!(b["excluded"], serde_json::json!([0]));
    let f = &mul["models"][0]["frequencies"];
    assert_eq!(f["max_freq"], 11);
    assert!(f["excluded_share_mean"].is_number());
    assert!(f["amplitude_share_per_freq"].as_array().unwrap().len() == 12);
    assert!(mul["timeline_source"]
        .as_str()
        .unwrap()
        .starts_with("checkpoints"));
    let html = std::fs::read_to_string(tmp.path().join("mul/analysis/index.html")).unwrap();
    assert!(html.contains("discrete log") && html.contains("generator g = 5"));
    assert!(tmp
        .path()
        .join("mul/analysis/phase_residuals.png")
        .is_file());

    let sub = trained_summary("sub", "96", "8000", &tmp.path().join("sub"));
    assert_eq!(sub["basis"]["name"], "additive");
    assert_eq!(sub["basis"]["invariant"], "θu − θv − θw = 0");
    let f = &sub["models"][0]["frequencies"];
    // After 8000 steps the a−b clocks already satisfy θu − θv = θw closely.
    let mean = f["residual_mean_abs"].as_f64().unwrap();
    assert!(mean < 0.1, "{f}");

    let quad = trained_summary("quad", "96", "3000", &tmp.path().join("quad"));
    assert_eq!(quad["basis"]["name"], "additive");
    assert!(quad["basis"]["invariant"].is_null());
    let f = &quad["models"][0]["frequencies"];
    assert!(f["residual_max_abs"].is_null() && f["residual_mean_abs"].is_null());
    assert!(!tmp
        .path()
        .join("quad/analysis/phase_residuals.png")
        .exists());
    let html = std::fs::read_to_string(tmp.path().join("quad/analysis/index.html")).unwrap();
    assert!(
        html.contains("no phase invariant"),
        "the skipped picture says why"
    );
}
