//! The sweep machinery end to end: shards merged equal one unsharded run row for row;
//! a diverging model is cut out and the others' results do not change; an interrupted
//! sweep resumes to the same results and a finished one is never retrained; bad sweep
//! files and mismatched shards are refused, naming the key and value, before anything
//! is trained; `sweep report --explore` rewrites a finished directory (sweep or merged)
//! to the same tables, with the explorer linked from index.html, and refuses an
//! unfinished one; a bit-string sweep lands its models in the memorize / generalize /
//! fail regions.

use clockwork::sweep::plan::Shard;
use clockwork::sweep::{self, merge, rewrite, Sweep, SweepOptions, SweepStatus};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A small x² task: 2 learning rates × 2 fractions × 2 seeds = 8 models, 3 per batch.
const SMALL: &str = r#"
batch_max = 3
[base.set]
"task.p" = 11
"model.width" = 40
"train.steps" = 240
"train.eval_every" = 40
"train.checkpoint_every" = 80
"train.spectra_every" = 0
"optimizer.lr_milestones" = []
[axes]
"optimizer.lr" = [0.1, 0.3]
"task.train_fraction" = [0.5, 1.0]
seed = { seeds = 2 }
"#;

fn sweep_of(text: &str) -> Sweep {
    let spec = sweep::spec::SweepSpec::parse(text, "t", Path::new(".")).unwrap();
    Sweep::new(spec, text.to_string()).unwrap()
}

fn quiet() -> SweepOptions {
    SweepOptions {
        progress: clockwork::run::Progress::Off,
        interrupt: None,
        quiet: true,
        explore: false,
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn shards_merged_equal_one_unsharded_run_row_for_row() {
    let tmp = tempfile::tempdir().unwrap();
    let s = sweep_of(SMALL);
    assert_eq!(s.points.len(), 8);
    assert_eq!(s.plan.groups.len(), 1);
    assert_eq!(s.plan.batches.len(), 3);
    let whole = tmp.path().join("whole");
    let r = sweep::run(&s, &whole, Shard::ALL, &quiet()).unwrap();
    assert_eq!((r.status, r.models), (SweepStatus::Completed, 8));

    let shards: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("shard{i}")))
        .collect();
    for (i, dir) in shards.iter().enumerate() {
        let r = sweep::run(&s, dir, Shard { index: i, count: 2 }, &quiet()).unwrap();
        assert_eq!(r.status, SweepStatus::Completed);
    }
    // Disjoint slices: shard 0 has batches 0 and 2, shard 1 batch 1.
    let rows0 = read(shards[0].join("results.csv")).lines().count() - 1;
    let rows1 = read(shards[1].join("results.csv")).lines().count() - 1;
    assert_eq!((rows0, rows1), (5, 3));

    let merged = tmp.path().join("merged");
    // Given in either order.
    let report = merge::merge(&[shards[1].clone(), shards[0].clone()], &merged, false).unwrap();
    assert_eq!(report.models, 8);
    for file in ["results.csv", "results.jsonl", "histories.jsonl"] {
        assert_eq!(read(merged.join(file)), read(whole.join(file)), "{file}");
    }
    let csv = read(whole.join("results.csv"));
    assert_eq!(csv.lines().count(), 9);
    assert!(csv.lines().next().unwrap().contains("grok_step"));
    assert!(whole.join("index.html").exists());
    assert!(merged
        .join("categories_optimizer-lr_task-train-fraction.png")
        .exists());

    // `sweep report DIR --explore`, on the sweep and on the merge: the same tables, and
    // the explorer, linked from index.html, with every model.
    assert!(!whole.join("explore.html").exists());
    assert!(!read(whole.join("index.html")).contains("explore.html"));
    let tables = ["results.csv", "results.jsonl", "histories.jsonl"];
    let before: Vec<String> = tables.iter().map(|f| read(whole.join(f))).collect();
    for dir in [&whole, &merged] {
        let r = rewrite::rewrite(dir, true).unwrap();
        assert_eq!(r.models, 8);
        for (file, text) in tables.iter().zip(&before) {
            assert_eq!(&read(dir.join(file)), text, "{file}");
        }
        // Cells [fraction][lr]: the two seeds of each setting.
        let page = read(dir.join("explore.html"));
        assert!(
            page.contains(r#""cells":[[[0,1],[4,5]],[[2,3],[6,7]]]"#),
            "{dir:?}"
        );
        assert!(read(dir.join("index.html")).contains(r#"<a href="explore.html">"#));
    }
    // Once there, a rerun without --explore keeps the page current rather than stale.
    std::fs::write(whole.join("explore.html"), "stale").unwrap();
    let r = sweep::run(&s, &whole, Shard::ALL, &quiet()).unwrap();
    assert_eq!(r.trained, 0);
    assert!(read(whole.join("explore.html")).contains("\"models\":[{\"model\":0"));
    let e = rewrite::rewrite(tmp.path(), true).unwrap_err().to_string();
    assert!(e.contains("not a sweep directory"), "{e}");
}

#[test]
fn a_diverging_model_is_cut_out_and_the_others_do_not_change() {
    let tmp = tempfile::tempdir().unwrap();
    let base = SMALL.replace("batch_max = 3", "batch_max = 8");
    let with = base.replace("[0.1, 0.3]", "[0.1, 1e5]");
    let without = base.replace("[0.1, 0.3]", "[0.1]");
    let (a, b) = (sweep_of(&with), sweep_of(&without));
    assert_eq!(a.plan.batches.len(), 1);
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    sweep::run(&a, &da, Shard::ALL, &quiet()).unwrap();
    sweep::run(&b, &db, Shard::ALL, &quiet()).unwrap();
    let rows = |d: &Path| -> Vec<serde_json::Value> {
        read(d.join("results.jsonl"))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (ra, rb) = (rows(&da), rows(&db));
    let diverged: Vec<&serde_json::Value> = ra
        .iter()
        .filter(|r| r["optimizer.lr"].as_f64() == Some(1e5))
        .collect();
    assert_eq!(diverged.len(), 4);
    for r in &diverged {
        assert_eq!(r["category"], "diverged", "{r}");
        assert!(r["diverged_step"].as_u64().is_some(), "{r}");
    }
    // The lr = 0.1 models: the same numbers as in the sweep without the diverging ones
    // (only their ids and batch differ).
    let strip = |r: &serde_json::Value| {
        let mut r = r.clone();
        for k in ["model", "batch", "group"] {
            r.as_object_mut().unwrap().remove(k);
        }
        r
    };
    let kept: Vec<serde_json::Value> = ra
        .iter()
        .filter(|r| r["optimizer.lr"].as_f64() == Some(0.1))
        .map(strip)
        .collect();
    let alone: Vec<serde_json::Value> = rb.iter().map(strip).collect();
    assert_eq!(kept, alone);
    assert!(kept.iter().all(|r| r["steps"] == 240), "{kept:?}");
}

#[test]
fn an_interrupted_sweep_resumes_to_the_same_results_and_finished_batches_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let s = sweep_of(SMALL);
    let whole = tmp.path().join("whole");
    sweep::run(&s, &whole, Shard::ALL, &quiet()).unwrap();

    let dir = tmp.path().join("stopped");
    let flag = Arc::new(AtomicBool::new(true));
    let options = SweepOptions {
        interrupt: Some(flag.clone()),
        ..quiet()
    };
    // The flag is up from the start: the first batch stops after step 0 with a checkpoint.
    let r = sweep::run(&s, &dir, Shard::ALL, &options).unwrap();
    assert_eq!(r.status, SweepStatus::Interrupted);
    assert!(!dir.join("results.csv").exists());
    let e = rewrite::rewrite(&dir, true).unwrap_err().to_string();
    assert!(e.contains("batch 0 of shard 0/1 is not finished"), "{e}");
    flag.store(false, Ordering::SeqCst);
    let r = sweep::run(&s, &dir, Shard::ALL, &options).unwrap();
    assert_eq!(
        (r.status, r.trained, r.skipped),
        (SweepStatus::Completed, 3, 0)
    );
    for file in ["results.csv", "results.jsonl", "histories.jsonl"] {
        assert_eq!(read(dir.join(file)), read(whole.join(file)), "{file}");
    }
    let r = sweep::run(&s, &dir, Shard::ALL, &options).unwrap();
    assert_eq!((r.trained, r.skipped), (0, 3));

    // Another sweep into the same directory is refused.
    let other = sweep_of(&SMALL.replace("[0.1, 0.3]", "[0.1, 0.2]"));
    let e = sweep::run(&other, &dir, Shard::ALL, &quiet())
        .unwrap_err()
        .to_string();
    assert!(e.contains("another sweep"), "{e}");
}

#[test]
fn bad_sweep_files_are_refused_naming_key_and_value() {
    let cases = [
        ("[axes]\n\"model.widht\" = [8]\n", "model.widht"),
        ("[axes]\n\"model.width\" = []\n", "axes.model.width"),
        ("[axes]\n\"optimizer.lr\" = [0.1, -2.0]\n", "optimizer.lr = -2"),
        ("[base.set]\n\"task.op\" = \"div\"\n[axes]\n\"task.p\" = [7, 9]\n", "task.p = 9"),
        ("[axes]\n\"model.activation\" = [\"square\", \"tanh\"]\n", "model.activation = \"tanh\""),
        ("[[diagrams]]\nx = \"seed\"\ny = \"task.p\"\n", "diagrams[0].x"),
        ("[axes]\nseed = [0, 1]\n\"task.p\" = [5, 7]\n[[diagrams]]\nx = \"seed\"\ny = \"task.p\"\nmetrics = [\"accuracy\"]\n", "accuracy"),
        ("[categories]\ntest_acc = 1.5\n", "categories.test_acc = 1.5"),
        ("[base]\npreset = \"nope\"\n", "nope"),
    ];
    for (text, needle) in cases {
        let e = sweep::spec::SweepSpec::parse(text, "t", Path::new("."))
            .and_then(|spec| Sweep::new(spec, text.into()))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }
}

#[test]
fn mismatched_shards_are_refused_at_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let s = sweep_of(SMALL);
    let t = sweep_of(&SMALL.replace("[0.1, 0.3]", "[0.1, 0.2]"));
    let dir = |n: &str| tmp.path().join(n);
    sweep::run(&s, &dir("s0"), Shard { index: 0, count: 2 }, &quiet()).unwrap();
    sweep::run(&t, &dir("t1"), Shard { index: 1, count: 2 }, &quiet()).unwrap();
    let e = merge::merge(&[dir("s0"), dir("t1")], &dir("m"), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fingerprint") && e.contains("t1"), "{e}");
    let e = merge::merge(&[dir("s0")], &dir("m"), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1/2") && e.contains("missing"), "{e}");
    let e = merge::merge(&[dir("s0"), dir("s0")], &dir("m"), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("each shard once"), "{e}");
    assert!(!dir("m").exists());
}

#[test]
fn the_binary_dry_runs_and_refuses_bad_files_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("small.toml");
    std::fs::write(&file, SMALL).unwrap();
    let bin = env!("CARGO_BIN_EXE_sweep");
    let o = std::process::Command::new(bin)
        .args([file.to_str().unwrap(), "--dry-run"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("8 models, 1 shape group(s), 3 batch(es)"),
        "{stdout}"
    );
    assert!(stdout.contains("estimated time"), "{stdout}");
    assert!(!tmp.path().join("sweeps").exists());

    std::fs::write(&file, "[axes]\n\"task.p\" = [7, -1]\n").unwrap();
    let o = std::process::Command::new(bin)
        .args([file.to_str().unwrap()])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("task.p = -1"), "{stderr}");
    assert!(!tmp.path().join("sweeps").exists());
    let o = std::process::Command::new(bin)
        .args([file.to_str().unwrap(), "--shard", "2/2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--shard"));
}

/// Divergence after training has gone on (a Grokfast EMA in the state): the learning
/// rates are multiplied by 1e4 at step 100, which only the models at lr 0.1 do not
/// survive; the others continue from the last good checkpoint with their EMA.
#[test]
fn a_late_divergence_continues_the_others_from_their_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let base = SMALL
        .replace("batch_max = 3", "batch_max = 8")
        .replace(
            "\"optimizer.lr_milestones\" = []",
            "\"optimizer.lr_milestones\" = [100]\n\"optimizer.lr_factor\" = 1e4\n\
             \"optimizer.grokfast_lambda\" = 0.5",
        )
        .replace("\"task.train_fraction\" = [0.5, 1.0]\n", "");
    let with = base.replace("[0.1, 0.3]", "[1e-5, 0.1]");
    let without = base.replace("[0.1, 0.3]", "[1e-5]");
    let (a, b) = (sweep_of(&with), sweep_of(&without));
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    sweep::run(&a, &da, Shard::ALL, &quiet()).unwrap();
    sweep::run(&b, &db, Shard::ALL, &quiet()).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&read(da.join("batches/b00000/state.json"))).unwrap();
    let diverged = state["diverged"].as_array().unwrap();
    assert_eq!(diverged.len(), 2, "{state}");
    for d in diverged {
        assert!(d["step"].as_u64().unwrap() >= 100, "{state}");
        assert!(d["checkpoint"].as_u64().unwrap() >= 80, "{state}");
    }
    let strip = |text: String| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
                for k in ["model", "batch", "group"] {
                    r.as_object_mut().unwrap().remove(k);
                }
                r
            })
            .filter(|r| r["optimizer.lr"].as_f64() == Some(1e-5))
            .collect()
    };
    let kept = strip(read(da.join("results.jsonl")));
    assert_eq!(kept.len(), 2);
    assert_eq!(kept, strip(read(db.join("results.jsonl"))));
}

/// Seed 003's setting in miniature, end to end through the sweep: 10-bit strings,
/// label = parity of the first two, sampled training sets of 12 or 400 strings (each
/// seed its own), L1 1e-4 or 1, two seeds, three models to a batch so batches mix
/// training-set sizes. The three regions must come out where they belong: 12 strings
/// memorize, 400 generalize, L1 = 1 fails; and the table carries the bit task's columns
/// (no Fourier figures) and the category map is drawn.
#[test]
fn a_bit_string_sweep_finds_memorize_generalize_and_fail() {
    const BITS: &str = r#"
batch_max = 3
[base.set]
"task.bits" = 10
"task.parity_k" = 2
"task.test_size" = 200
"model.width" = 32
"optimizer.kind" = "adamw"
"optimizer.lr" = 0.01
"optimizer.lr_milestones" = []
"train.regularizer" = "l1"
"train.steps" = 600
"train.eval_every" = 50
"train.checkpoint_every" = 300
"train.spectra_every" = 0
[axes]
"task.train_size" = [12, 400]
"train.reg_strength" = [1e-4, 1.0]
seed = { seeds = 2 }
[categories]
train_acc = 0.95
test_acc = 0.95
"#;
    let tmp = tempfile::tempdir().unwrap();
    let s = sweep_of(BITS);
    assert_eq!(s.points.len(), 8);
    let dir = tmp.path().join("bits");
    let r = sweep::run(&s, &dir, Shard::ALL, &quiet()).unwrap();
    assert_eq!((r.status, r.models), (SweepStatus::Completed, 8));
    let mut table = csv::Reader::from_path(dir.join("results.csv")).unwrap();
    let header = table.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    let (size, l1, category) = (
        col("task.train_size"),
        col("train.reg_strength"),
        col("category"),
    );
    let (test_acc, freqs) = (col("final_test_acc"), col("n_freqs_used"));
    let mut seen = 0;
    for row in table.records() {
        let row = row.unwrap();
        let (n, lambda): (usize, f64) = (row[size].parse().unwrap(), row[l1].parse().unwrap());
        let expected = match (n, lambda > 0.5) {
            (_, true) => "fails",
            (12, false) => "memorizes",
            _ => "generalizes",
        };
        assert_eq!(&row[category], expected, "{row:?}");
        let acc: f64 = row[test_acc].parse().unwrap();
        if expected == "generalizes" {
            assert!(acc >= 0.95, "{row:?}");
        } else {
            assert!(acc < 0.9, "{row:?}");
        }
        // Bit strings have no Fourier basis: the column is left empty.
        assert!(row[freqs].is_empty() || &row[freqs] == "0", "{row:?}");
        seen += 1;
    }
    assert_eq!(seen, 8);
    assert!(dir
        .join("categories_task-train-size_train-reg-strength.png")
        .exists());
}
