//! `train --resume`: a run cut in two is bit-identical to an uninterrupted one; Ctrl-C
//! writes a resumable checkpoint and exits 130; a corrupt checkpoint is refused.

mod common;

use common::{bin, metrics_without_time as metrics, text, train};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every tensor of a checkpoint, by name, as raw bytes.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    out.sort();
    out
}

const BASE: &[&str] = &[
    "--p",
    "23",
    "--width",
    "48",
    "--fraction",
    "0.6",
    "--set",
    "optimizer.kind=adamw",
    "--lr",
    "3e-3",
    "--set",
    "optimizer.weight_decay=0.5",
    "--set",
    "optimizer.grokfast_lambda=2",
    "--set",
    "train.eval_every=100",
    "--set",
    "train.checkpoint_every=200",
    "--models",
    "2",
    "-q",
];

/// Trains 600 steps straight and 300 + 300 resumed with `extra` settings over BASE, and
/// checks the two final checkpoints (which must hold the optimizer tensors `state`) and
/// logs are identical.
fn resumed_equals_straight(extra: &[&str], state: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let straight = tmp.path().join("straight");
    let split = tmp.path().join("split");
    let run = |out: &Path, steps: &str| {
        let o = train(
            &[
                BASE,
                extra,
                &["--steps", steps, "--out", out.to_str().unwrap()],
            ]
            .concat(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    };
    run(&straight, "600");
    run(&split, "300");
    let o = train(&["--resume", split.to_str().unwrap(), "--steps", "600", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("300 in this call"),
        "{}",
        text(&o.stdout)
    );

    let last = "checkpoints/step-00000600.safetensors";
    let a = tensors(&straight.join(last));
    let b = tensors(&split.join(last));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    for name in ["params", "u", "v", "w"].iter().chain(state) {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    assert!(a == b, "final checkpoints differ");
    assert_eq!(metrics(&straight), metrics(&split));
    assert_eq!(
        std::fs::read_to_string(straight.join("config.toml")).unwrap(),
        std::fs::read_to_string(split.join("config.toml")).unwrap(),
        "the resumed run's config.toml records the new train.steps"
    );
    // Nothing left to do: resuming a finished run changes nothing.
    let before = std::fs::read_to_string(split.join("metrics.jsonl")).unwrap();
    let o = train(&["--resume", split.to_str().unwrap(), "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(split.join("metrics.jsonl")).unwrap(),
        before
    );
}

#[test]
fn a_resumed_run_is_bit_identical_to_an_uninterrupted_one() {
    resumed_equals_straight(&[], &["adam_m", "adam_v", "grokfast_ema"]);
}

/// Grokfast-MA: the window is part of the checkpoint. Window 128 is full and has wrapped
/// at the cut (step 300); window 500 without warmup is still filling there.
#[test]
fn a_resumed_grokfast_ma_run_is_bit_identical() {
    let ma = [
        "--set",
        "optimizer.grokfast=ma",
        "--set",
        "optimizer.grokfast_lambda=5",
    ];
    resumed_equals_straight(
        &[&ma[..], &["--set", "optimizer.grokfast_window=128"]].concat(),
        &["adam_m", "adam_v", "grokfast_window"],
    );
    resumed_equals_straight(
        &[
            &ma[..],
            &[
                "--set",
                "optimizer.grokfast_window=500",
                "--set",
                "optimizer.grokfast_warmup=false",
            ],
        ]
        .concat(),
        &["adam_m", "adam_v", "grokfast_window"],
    );
}

#[test]
fn ctrl_c_writes_a_checkpoint_exits_130_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut child = bin()
        .args(["--p", "23", "--width", "64", "--steps", "100000000"])
        .args([
            "--set",
            "train.eval_every=50",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training is under way (a few evaluations logged).
    let t0 = Instant::now();
    while std::fs::read_to_string(out.join("metrics.jsonl"))
        .map(|s| s.lines().count() < 3)
        .unwrap_or(true)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "training never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("interrupted at step"), "{stdout}");
    assert!(stdout.contains("--resume"), "{stdout}");

    let list = clockwork::checkpoint::list(&out).unwrap();
    let (step, _) = *list.last().expect("a checkpoint on interrupt");
    assert!(step >= 100, "interrupted at step {step}");
    let target = (step + 30).to_string();
    let o = train(&["--resume", out.to_str().unwrap(), "--steps", &target, "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let list = clockwork::checkpoint::list(&out).unwrap();
    assert_eq!(list.last().unwrap().0, step + 30);
    // The log has every evaluation once, in order.
    let steps: Vec<u64> = metrics(&out)
        .iter()
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(*steps.last().unwrap(), step + 30);
}

#[test]
fn a_corrupt_checkpoint_or_missing_run_is_refused_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train(&[
        "--p",
        "7",
        "--width",
        "8",
        "--steps",
        "20",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let ck = out.join("checkpoints/step-00000020.safetensors");
    let good = std::fs::read(&ck).unwrap();
    let mut bytes = good.clone();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&ck, &bytes).unwrap();
    let before = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let o = train(&["--resume", out.to_str().unwrap(), "--steps", "40"]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: ") || stderr.contains("\nerror: "),
        "{stderr}"
    );
    assert!(stderr.contains("step-00000020.safetensors"), "{stderr}");
    advice_once(&stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl")).unwrap(),
        before,
        "a refused resume changes nothing"
    );
    // A flipped byte in the last tensor's data: refused by its checksum, with the
    // advice said once (the checkpoint's own message used to add a second one).
    bytes = good.clone();
    *bytes.last_mut().unwrap() ^= 0x10;
    std::fs::write(&ck, &bytes).unwrap();
    let o = train(&["--resume", out.to_str().unwrap(), "--steps", "40"]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("fails its checksum"), "{stderr}");
    advice_once(&stderr);
    assert!(std::fs::read_to_string(out.join("config.toml"))
        .unwrap()
        .contains("steps = 20"));

    let missing = tmp.path().join("missing");
    let o = train(&["--resume", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no such run directory"),
        "{}",
        text(&o.stderr)
    );
    assert!(!missing.exists());
}

/// What to do about a refused checkpoint is said exactly once.
fn advice_once(stderr: &str) {
    assert_eq!(
        stderr
            .matches("delete it to resume from the previous checkpoint")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("earlier checkpoint"), "{stderr}");
}

/// A run resumed from its step-0 checkpoint (`--steps 0`, or Ctrl-C before the first
/// step) logs and records step 0 once, and matches an uninterrupted run.
#[test]
fn resuming_from_step_zero_writes_step_zero_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (cut, whole) = (tmp.path().join("cut"), tmp.path().join("whole"));
    let common = [
        "--p",
        "7",
        "--width",
        "24",
        "-q",
        "--set",
        "train.eval_every=10",
    ];
    let run = |args: &[&str]| {
        let o = train(&[&common[..], args].concat());
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    run(&["--steps", "0", "--out", cut.to_str().unwrap()]);
    let o = train(&["--resume", cut.to_str().unwrap(), "--steps", "30", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    run(&["--steps", "30", "--out", whole.to_str().unwrap()]);
    let steps = |dir: &Path| -> Vec<u64> {
        metrics(dir)
            .iter()
            .map(|v| v["step"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(steps(&cut), vec![0, 10, 20, 30]);
    assert_eq!(metrics(&cut), metrics(&whole));
    let spectra_steps = |dir: &Path| -> Vec<u64> {
        std::fs::read_to_string(dir.join("spectra.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(spectra_steps(&cut), spectra_steps(&whole));
}
