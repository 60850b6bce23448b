//! End-to-end tests of the `analyze` binary on real run directories written by `train`:
//! every table and picture (PNG headers decoded), the JSON summary, the max-margin and
//! Gromov constructions, every kind of bad input (exit code 2, one error line naming the
//! problem, nothing written), and the `spectra.jsonl` recorder of `train` across a
//! resume.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn run_bin(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn analyze(args: &[&str]) -> Output {
    run_bin(env!("CARGO_BIN_EXE_analyze"), args)
}

fn train(args: &[&str]) -> Output {
    run_bin(env!("CARGO_BIN_EXE_train"), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A short split run that memorizes (step 75) and generalizes (step 400): p = 23, width
/// 64, AdamW with weight decay 2, train fraction 0.5, 600 steps, evaluations every 25
/// steps, checkpoints every 100 and spectra every 50 steps. Under a second.
const RUN_ARGS: &[&str] = &[
    "--p",
    "23",
    "--width",
    "64",
    "--fraction",
    "0.5",
    "--steps",
    "600",
    "--set",
    "optimizer.kind=adamw",
    "--lr",
    "1e-2",
    "--set",
    "optimizer.weight_decay=2.0",
    "--set",
    "train.eval_every=25",
    "--set",
    "train.checkpoint_every=100",
    "--set",
    "train.spectra_every=50",
    "-q",
];

/// One trained run shared by the tests that only read it (copied before any change).
/// It lives in cargo's per-target scratch directory (statics are never dropped, so a
/// temporary directory would leak) and is retrained once per test process.
fn shared_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli_analyze_run");
        let o = train(&[RUN_ARGS, &["--out", s(&path), "--force"]].concat());
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        path
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A private copy of the shared run, without any analysis in it.
fn run_copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("run");
    copy_dir(shared_run(), &dir);
    let _ = std::fs::remove_dir_all(dir.join("analysis"));
    dir
}

/// Width and height of a PNG, from its signature and IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    Some((be(16), be(20)))
}

/// The files listed after "N files in DIR:" in the human summary.
fn printed_files(stdout: &str, dir: &Path) -> Vec<PathBuf> {
    let mut lines = stdout.lines();
    let header = lines
        .find(|l| l.contains(" files in "))
        .unwrap_or_else(|| panic!("no file list in {stdout}"));
    let n: usize = header.split_whitespace().next().unwrap().parse().unwrap();
    let names: Vec<PathBuf> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|name| dir.join(name))
        .collect();
    assert_eq!(names.len(), n, "{stdout}");
    names
}

/// Checks every file of an analysis directory: tables, summary, index.html, and the
/// pictures (PNG headers decoded, SVG opened by an `<svg` element).
fn check_outputs(dir: &Path, listed: &[PathBuf], with_report: bool) {
    assert!(!listed.is_empty());
    for f in listed {
        assert!(f.is_file(), "{} is listed but missing", f.display());
    }
    for name in [
        "summary.json",
        "neurons.csv",
        "frequencies.csv",
        "checkpoints.csv",
        "timeline.csv",
    ] {
        assert!(listed.contains(&dir.join(name)), "{name} not in {listed:?}");
    }
    let neurons = std::fs::read_to_string(dir.join("neurons.csv")).unwrap();
    assert_eq!(
        neurons.lines().count(),
        1 + 64,
        "header + one row per neuron"
    );
    let checkpoints = std::fs::read_to_string(dir.join("checkpoints.csv")).unwrap();
    assert_eq!(
        checkpoints.lines().count(),
        1 + 6,
        "checkpoints at 100, ..., 600"
    );
    let timeline = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    assert_eq!(
        timeline.lines().count(),
        1 + 13,
        "spectra at 0, 50, ..., 600"
    );
    let ext = |f: &PathBuf, e: &str| f.extension().is_some_and(|x| x == e);
    let pngs: Vec<&PathBuf> = listed.iter().filter(|f| ext(f, "png")).collect();
    let svgs: Vec<&PathBuf> = listed.iter().filter(|f| ext(f, "svg")).collect();
    if with_report {
        assert!(listed.contains(&dir.join("index.html")), "{listed:?}");
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(html.contains("<html") || html.contains("<!DOCTYPE") || html.contains("<!doctype"));
        assert!(!pngs.is_empty() && !svgs.is_empty(), "{listed:?}");
    } else {
        // Not written by this call (an earlier analysis's page and pictures may stay).
        assert!(!listed.contains(&dir.join("index.html")), "{listed:?}");
        assert!(pngs.is_empty() && svgs.is_empty(), "{listed:?}");
    }
    for f in pngs {
        let (w, h) = png_size(&std::fs::read(f).unwrap())
            .unwrap_or_else(|| panic!("{} is not a PNG", f.display()));
        assert!(w > 0 && h > 0, "{}: {w}×{h}", f.display());
    }
    for f in svgs {
        let svg = std::fs::read_to_string(f).unwrap();
        assert!(svg.contains("<svg"), "{} is not an SVG", f.display());
    }
}

#[test]
fn analyze_writes_every_table_and_picture() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_copy(tmp.path());
    let o = analyze(&[s(&run)]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    let dir = run.join("analysis");
    let listed = printed_files(&stdout, &dir);
    check_outputs(&dir, &listed, true);
    for needle in [
        "model 0:",
        "accuracy over all pairs",
        "γ* = 2.5796e-3, γ/γ* = ",
        "frequencies used (",
        "sinusoidal neurons",
        "u, v, w share one frequency",
        "mean IPR",
        "lottery:",
        "grokking: memorized (train ≥ 95%) step 75, generalized (test ≥ 95%) step 400",
        "index.html",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing from\n{stdout}");
    }
    // Running it again rewrites the tables it writes.
    let o = analyze(&[s(&run), "--no-plots"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let listed = printed_files(&text(&o.stdout), &dir);
    check_outputs(&dir, &listed, false);
}

/// Every file of `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path.clone(), std::fs::read(&path).unwrap(), modified)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[test]
fn json_no_plots_keeps_the_pictures_of_an_earlier_analysis() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_copy(tmp.path());
    let dir = run.join("analysis");
    let o = analyze(&[s(&run)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let before = snapshot(&dir);
    let is_picture = |f: &Path| f.extension().is_some_and(|x| x == "png" || x == "svg");
    let pictures: Vec<_> = before.iter().filter(|(f, ..)| is_picture(f)).collect();
    assert!(pictures.len() >= 2, "{before:?}");
    // Mark the JSON so a rewrite is visible whatever its content.
    let json = dir.join("summary.json");
    std::fs::write(&json, "stale").unwrap();

    let o = analyze(&[s(&run), "--json", "--no-plots"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let after = snapshot(&dir);
    let names = |v: &[(PathBuf, Vec<u8>, std::time::SystemTime)]| {
        v.iter().map(|(f, ..)| f.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&after),
        names(&before),
        "the same files, no leftovers"
    );
    for (f, bytes, modified) in &pictures {
        let (_, now, now_modified) = after.iter().find(|(g, ..)| g == f).unwrap();
        assert!(
            now == bytes && now_modified == modified,
            "{} changed",
            f.display()
        );
    }
    let (_, index, _) = after
        .iter()
        .find(|(f, ..)| f.ends_with("index.html"))
        .unwrap();
    let (_, index_before, _) = before
        .iter()
        .find(|(f, ..)| f.ends_with("index.html"))
        .unwrap();
    assert_eq!(
        index, index_before,
        "index.html is not this call's to rewrite"
    );
    let rewritten: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("summary.json rewritten");
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rewritten, printed);
    // No staging directory left next to the analysis.
    let hidden: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn json_summary_has_the_expected_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = analyze(&[
        s(shared_run()),
        "--json",
        "--no-plots",
        "--threshold",
        "0.8",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON only");
    assert_eq!(v["p"], 23);
    assert_eq!(v["width"], 64);
    assert!(v["task"].as_str().unwrap().contains("23"), "{v}");
    assert_eq!(v["train_fraction"], 0.5);
    assert_eq!(v["checkpoints"], 6);
    assert_eq!(v["final_step"], 600);
    assert_eq!(v["threshold"], 0.8);
    assert_eq!(v["init_source"], "re-initialized from seed 0");
    let m = &v["models"][0];
    let margin = &m["margin"];
    assert_eq!(margin["pairs"], "all");
    let ratio = margin["ratio"].as_f64().unwrap();
    let (gamma, star) = (
        margin["gamma"].as_f64().unwrap(),
        margin["gamma_star"].as_f64().unwrap(),
    );
    assert!(
        (ratio - gamma / star).abs() < 1e-12 && ratio <= 1.0,
        "{margin}"
    );
    assert_eq!(m["margin_train"]["pairs"], "train");
    let f = &m["frequencies"];
    assert_eq!(f["max_freq"], 11);
    let used = f["freqs_used"].as_array().unwrap().len();
    let missing = f["freqs_missing"].as_array().unwrap().len();
    assert_eq!(used + missing, 11);
    for key in ["sinusoidal_share", "shared_freq_share", "mean_ipr"] {
        assert!(f[key].is_number(), "{key} in {f}");
    }
    assert!(m["lottery"]["chance"].is_number());
    assert_eq!(m["stages"]["memorized"], 75, "{}", m["stages"]);
    assert_eq!(m["stages"]["generalized"], 400, "{}", m["stages"]);
    assert_eq!(m["last_metrics"]["step"], 600);
    // The same summary went to summary.json.
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(file, v);
}

#[test]
fn construct_writes_a_loadable_run_with_the_known_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("maxmargin-23");
    let o = analyze(&["construct", "--p", "23", "--out", s(&out)]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    for needle in [
        "γ/γ* = 1.000000000",
        "all 11 frequencies 1..=11 present, 16 neurons each",
        "power fraction 1.000000000",
        "residual θu+θv−θw = 0",
        "accuracy 100.00%",
        "frequencies used (11/11): 1-11; missing: none",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing from\n{stdout}");
    }
    let dir = out.join("analysis");
    check_construct_outputs(&dir, &printed_files(&stdout, &dir));

    // The checkpoint loads with the engine's loader and the engine classifies every pair.
    let list = clockwork::checkpoint::list(&out).unwrap();
    assert_eq!(list.len(), 1);
    let ck = clockwork::checkpoint::Checkpoint::load(&list[0].1).unwrap();
    assert_eq!((ck.step, ck.weights.width, ck.weights.n_in), (0, 176, 23));
    let backend = clockwork::engine::open::<f64>(
        clockwork::kinds::Device::Cpu,
        clockwork::kinds::Precision::Fp32,
        0,
    )
    .unwrap();
    let m =
        clockwork::analysis::margin::margins_all_pairs(backend.as_ref(), &ck.config, &ck.weights)
            .unwrap();
    assert_eq!(m[0].accuracy, 1.0);
    assert!((m[0].ratio.unwrap() - 1.0).abs() < 1e-9);

    // analyze reads it like a trained run.
    let o = analyze(&[
        s(&out),
        "--json",
        "--no-plots",
        "--out",
        s(&tmp.path().join("a")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ratio = v["models"][0]["margin"]["ratio"].as_f64().unwrap();
    assert!((ratio - 1.0).abs() < 1e-9, "{ratio}");
    assert_eq!(v["models"][0]["frequencies"]["sinusoidal_share"], 1.0);
    assert_eq!(v["init_source"], "checkpoint at step 0");

    // Existing --out: refused without --force, replaced with it.
    let o = analyze(&["construct", "--p", "23", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.starts_with("error: ") && err.contains(s(&out)) && err.contains("--force"));
    let o = analyze(&[
        "construct",
        "--p",
        "7",
        "--out",
        s(&out),
        "--force",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["p"].as_u64(), v["width"].as_u64()), (Some(7), Some(48)));
}

#[test]
fn construct_gromov_prints_the_draws_and_writes_one_model_per_draw() {
    let tmp = tempfile::tempdir().unwrap();
    // `analyze construct --kind gromov --p 31 ARGS…`.
    let gromov = |args: &[&str]| {
        let head = ["construct", "--kind", "gromov", "--p", "31"];
        analyze(&[&head[..], args].concat())
    };
    // Without --out: the accuracy over the draws, nothing written.
    let o = gromov(&["--width", "12", "--draws", "3", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["spec"]["width"], 12);
    let acc: Vec<f64> = serde_json::from_value(v["accuracy"].clone()).unwrap();
    assert_eq!(acc.len(), 3);
    // Twelve neurons cannot hold addition mod 31 exactly: the draws miss pairs.
    assert!(acc.iter().all(|&a| a > 0.0 && a < 1.0), "{acc:?}");
    let mean = acc.iter().sum::<f64>() / 3.0;
    assert!((v["mean_accuracy"].as_f64().unwrap() - mean).abs() < 1e-12);

    // With --out: a run directory of 3 models that the loader and `analyze` read.
    let out = tmp.path().join("gromov");
    let args = ["--width", "64", "--draws", "3", "--seed", "5", "--no-plots"];
    let o = gromov(&[&args[..], &["--out", s(&out)]].concat());
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    assert!(
        stdout.contains("3 draws of the random phases (seed 5)"),
        "{stdout}"
    );
    let list = clockwork::checkpoint::list(&out).unwrap();
    let ck = clockwork::checkpoint::Checkpoint::load(&list[0].1).unwrap();
    assert_eq!(
        (ck.weights.batch, ck.weights.width, ck.config.models),
        (3, 64, 3)
    );
    assert_eq!(ck.config.train.loss, clockwork::kinds::Loss::Mse);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    assert!(out.join("analysis/summary.json").exists());

    // Bad input: exit 2, one line naming the flag, nothing written.
    let bad = tmp.path().join("bad");
    for (args, needle) in [
        ("--kind gromov", "--width"),
        ("--kind gromov --width 0", "--width"),
        ("--kind gromov --width 100000000", "smaller --width"),
        ("--kind gromov --width 8 --draws 0", "--draws"),
        ("--kind gromov --width 8 --p 2", "--p"),
        ("--kind gromov --width -4", "-4"),
        ("--kind square", "square"),
        ("--p 7 --width 8", "--kind gromov"),
    ] {
        let args: Vec<&str> = ["construct", "--out", s(&bad)]
            .into_iter()
            .chain(args.split(' '))
            .collect();
        refused(&args, &[needle]);
        assert!(!bad.exists(), "{args:?}");
    }
    refused(&["construct", "--p", "7"], &["--out"]);
}

fn check_construct_outputs(dir: &Path, listed: &[PathBuf]) {
    assert!(listed.contains(&dir.join("summary.json")), "{listed:?}");
    assert!(listed.contains(&dir.join("index.html")), "{listed:?}");
    for f in listed
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "png"))
    {
        let (w, h) = png_size(&std::fs::read(f).unwrap()).expect("a PNG");
        assert!(w > 0 && h > 0);
    }
}

/// Runs `analyze` with `args`, expecting exit code 2 and one error line containing
/// every needle; returns stderr.
fn refused(args: &[&str], needles: &[&str]) -> String {
    let o = analyze(args);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(o.stdout.is_empty(), "{args:?}: {}", text(&o.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one error line, got {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: {n:?} missing from {stderr}");
    }
    stderr
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    // A directory that does not exist.
    let missing = t.join("missing");
    refused(&[s(&missing)], &[s(&missing), "no such run directory"]);
    assert!(!missing.exists());

    // A directory without config.toml.
    let empty = t.join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(&[s(&empty)], &["config.toml", "missing"]);
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // A truncated (corrupt) checkpoint.
    let corrupt = t.join("corrupt");
    copy_dir(shared_run(), &corrupt);
    let _ = std::fs::remove_dir_all(corrupt.join("analysis"));
    let ck = corrupt.join("checkpoints/step-00000200.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    refused(&[s(&corrupt)], &["step-00000200.safetensors"]);
    assert!(!corrupt.join("analysis").exists());

    // A checkpoint of another shape than config.toml says.
    let other = t.join("other");
    copy_dir(shared_run(), &other);
    let _ = std::fs::remove_dir_all(other.join("analysis"));
    let narrow = t.join("narrow");
    let o = train(&[
        "--p",
        "23",
        "--width",
        "32",
        "--steps",
        "10",
        "--out",
        s(&narrow),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    std::fs::copy(narrow.join("config.toml"), other.join("config.toml")).unwrap();
    refused(
        &[s(&other)],
        &[
            "checkpoints/step-00000",
            "width = 64",
            "width = 32",
            "config.toml says",
        ],
    );
    assert!(!other.join("analysis").exists());

    // Bad thresholds.
    for bad in ["1.5", "0", "-0.1", "abc", "NaN"] {
        refused(
            &[s(shared_run()), "--threshold", bad],
            &["--threshold", bad],
        );
    }

    // Bad moduli for the construction.
    for bad in ["2", "1", "-3", "4", "8", "x"] {
        let out = t.join(format!("c{bad}"));
        refused(&["construct", "--p", bad, "--out", s(&out)], &["--p", bad]);
        assert!(!out.exists());
    }

    // An existing output directory that is not ours to replace.
    let busy = t.join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    for args in [
        vec!["construct", "--p", "5", "--out", s(&busy)],
        vec!["construct", "--p", "5", "--out", s(&busy), "--force"],
        vec![s(shared_run()), "--out", s(&busy)],
    ] {
        refused(&args, &[s(&busy)]);
        assert_eq!(
            std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    }
    // --out must not be the run itself.
    refused(
        &[s(shared_run()), "--out", s(shared_run())],
        &["run directory"],
    );

    // No leftovers of temporary directories anywhere.
    let leftovers: Vec<String> = std::fs::read_dir(t)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `train` records spectra at step 0, every `spectra_every` steps (evaluating where that
/// is not an evaluation step) and at the end; a resume drops the records past its
/// checkpoint (and a torn last line), so the file ends up byte-identical to an
/// uninterrupted run's.
#[test]
fn spectra_records_survive_a_resume_bit_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = tmp.path().join("straight");
    let split = tmp.path().join("split");
    let args = |steps: &'static str| -> Vec<&'static str> {
        let mut a = RUN_ARGS.to_vec();
        let i = a.iter().position(|&x| x == "--steps").unwrap();
        a[i + 1] = steps;
        let j = a
            .iter()
            .position(|&x| x == "train.spectra_every=50")
            .unwrap();
        a[j] = "train.spectra_every=30"; // not a multiple of eval_every = 25
        a
    };
    let o = train(&[args("330").as_slice(), &["--out", s(&straight)]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = train(&[args("300").as_slice(), &["--out", s(&split)]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let records =
        |dir: &Path| clockwork::analysis::record::read(&dir.join("spectra.jsonl")).unwrap();
    let steps: Vec<u64> = records(&straight).iter().map(|r| r.step).collect();
    let want: Vec<u64> = (0..=11).map(|k| k * 30).collect();
    assert_eq!(steps, want);
    let metrics = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
    for r in records(&straight) {
        assert_eq!((r.p, r.width(), r.model), (23, 64, 0));
        let acc = r.train_acc.unwrap();
        assert!((0.0..=1.0).contains(&acc) && r.test_acc.is_some() && r.margin.is_some());
        // Record steps off the evaluation grid do not add lines to metrics.jsonl.
        let logged = metrics.contains(&format!("\"step\":{},", r.step));
        assert_eq!(logged, r.step % 25 == 0 || r.step == 330, "step {}", r.step);
    }

    // Abandon the continuation past step 200: drop the newer checkpoint and tear the
    // last spectra line, as a crash would.
    std::fs::remove_file(split.join("checkpoints/step-00000300.safetensors")).unwrap();
    let path = split.join("spectra.jsonl");
    let mut text_now = std::fs::read_to_string(&path).unwrap();
    text_now.push_str("{\"step\":310,\"model\":0,\"p\":23,\"fr");
    std::fs::write(&path, text_now).unwrap();
    let o = train(&["--resume", s(&split), "--steps", "330", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read(straight.join("spectra.jsonl")).unwrap(),
        std::fs::read(&path).unwrap(),
        "spectra.jsonl of the resumed run differs from the uninterrupted one"
    );
}

/// `analyze construct --kind group`: the exact max-margin network of S3's table meets the
/// group γ* (theory.md §2) with every neuron in one irrep and every irrep used; the
/// checkpoint reloads and scores the same; groups with complex irreps and flag mix-ups
/// are bad input (exit 2, nothing written).
#[test]
fn construct_group_meets_the_group_gamma_star() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("maxmargin-s3");
    let o = analyze(&[
        "construct",
        "--kind",
        "group",
        "--group",
        "S3",
        "--out",
        s(&out),
    ]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    for needle in [
        "width 18",
        "γ* = 2.3605e-2, γ/γ* = 1.0000",
        "irreps used (2/2): ρ1 ρ2; missing: none",
        "sinusoidal neurons 18 of 18",
        "known answers: γ/γ* = 1.000000000",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing from\n{stdout}");
    }
    let list = clockwork::checkpoint::list(&out).unwrap();
    let ck = clockwork::checkpoint::Checkpoint::load(&list[0].1).unwrap();
    let backend = clockwork::engine::open::<f64>(
        clockwork::kinds::Device::Cpu,
        clockwork::kinds::Precision::Fp32,
        0,
    )
    .unwrap();
    let m =
        clockwork::analysis::margin::margins_all_pairs(backend.as_ref(), &ck.config, &ck.weights)
            .unwrap();
    assert_eq!(m[0].accuracy, 1.0);
    assert!((m[0].ratio.unwrap() - 1.0).abs() < 1e-9);

    for (args, needle) in [
        (vec!["--group", "A4"], "real type"),
        (vec!["--group", "Q8"], "Q8"),
        (vec![], "--group"),
        (vec!["--group", "S3", "--p", "7"], "--kind group takes"),
    ] {
        let bad = tmp.path().join("bad");
        let mut all = vec!["construct", "--kind", "group", "--out", s(&bad)];
        all.extend(args);
        let o = analyze(&all);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{all:?}: {err}"
        );
        assert!(!bad.exists(), "{all:?} wrote {}", bad.display());
    }
}
