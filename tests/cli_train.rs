//! End-to-end tests of the `train` binary: a run that learns, its run directory, and
//! every kind of bad input (exit code 2, one error line, nothing written), divergence
//! (exit code 1, last good checkpoint kept).

mod common;

use common::{metrics, text, train};

#[test]
fn p23_square_trains_to_full_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train(&[
        "--p",
        "23",
        "--width",
        "176",
        "--steps",
        "2500",
        "--set",
        "train.eval_every=250",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    assert!(stdout.contains("train acc 100.00%"), "{stdout}");
    assert!(stdout.contains("γ*"), "{stdout}");
    assert!(
        stdout.contains(&format!("--bin analyze -- {}", out.display())),
        "{stdout}"
    );

    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    let config = clockwork::config::RunConfig::from_toml(&config).unwrap();
    assert_eq!((config.task.p, config.model.width), (23, 176));

    let lines = metrics(&out);
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, (0..=10).map(|k| k * 250).collect::<Vec<_>>());
    let last = lines.last().unwrap();
    assert_eq!(last["train_acc"].as_f64(), Some(1.0), "{last}");
    assert!(last["test_acc"].is_null() && last["test_loss"].is_null());
    for key in [
        "model",
        "lr",
        "train_loss",
        "margin",
        "gamma_star",
        "reg_loss",
        "elapsed_s",
    ] {
        assert!(last[key].is_number(), "{key} in {last}");
    }
    assert!(last["margin"].as_f64().unwrap() > 0.0, "{last}");
    assert!(out.join("checkpoints/step-00002500.safetensors").is_file());
    let ck =
        clockwork::checkpoint::Checkpoint::load(&out.join("checkpoints/step-00002500.safetensors"))
            .unwrap();
    assert_eq!(ck.step, 2500);
}

#[test]
fn a_split_logs_test_metrics_and_a_config_file_merges_over_the_preset() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let file = tmp.path().join("run.toml");
    std::fs::write(
        &file,
        "[task]\np = 13\ntrain_fraction = 0.5\n[model]\nwidth = 16\n[train]\nsteps = 20\neval_every = 10\n",
    )
    .unwrap();
    let o = train(&[
        "--preset",
        "explainer",
        "--config",
        file.to_str().unwrap(),
        "--set",
        "model.embed_dim=8",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let config = clockwork::config::RunConfig::from_toml(
        &std::fs::read_to_string(out.join("config.toml")).unwrap(),
    )
    .unwrap();
    // From the file, the override and the preset respectively.
    assert_eq!(config.task.p, 13);
    assert_eq!(config.model.embed_dim, 8);
    assert!(config.model.tied);
    let lines = metrics(&out);
    assert_eq!(lines.len(), 3);
    assert!(lines[2]["test_acc"].is_number() && lines[2]["test_loss"].is_number());
    assert!(lines[2]["gamma_star"].is_null(), "ReLU has no γ*");
}

#[test]
fn print_config_shows_the_resolution() {
    let o = train(&[
        "--preset",
        "nanda",
        "--set",
        "optimizer.lr_milestones=[10,20]",
        "--print-config",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let c = clockwork::config::RunConfig::from_toml(&text(&o.stdout)).unwrap();
    assert_eq!((c.task.p, c.task.train_fraction), (113, 0.3));
    assert_eq!(c.optimizer.lr_milestones, vec![10, 20]);
}

#[test]
fn help_lists_every_key_preset_and_exit_code() {
    let o = train(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = text(&o.stdout);
    for (key, _) in clockwork::presets::keys_with_defaults() {
        assert!(help.contains(&key), "--help misses {key}");
    }
    for (name, _) in clockwork::presets::PRESETS {
        assert!(help.contains(name), "--help misses preset {name}");
    }
    assert!(help.contains("EXIT CODES") && help.contains("130"));
}

/// Runs with bad input: exit code 2, a single `error:` line naming the problem, and
/// nothing created next to the intended run directory.
fn rejects(args: &[&str], expected: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut all: Vec<&str> = args.to_vec();
    let out_s = out.to_str().unwrap().to_string();
    if !args.contains(&"--resume") {
        all.extend(["--out", &out_s]);
    }
    let o = train(&all);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {stderr}");
    assert!(
        lines[0].contains(expected),
        "{args:?}: expected {expected:?} in {stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{args:?} left {left:?}");
}

#[test]
fn bad_values_are_named_with_exit_code_2_and_nothing_written() {
    rejects(&["--p", "1"], "task.p = 1");
    rejects(&["--p", "0"], "task.p = 0");
    rejects(&["--p", "9", "--op", "div"], "task.p = 9");
    rejects(&["--p", "10", "--op", "mul"], "task.p = 10");
    rejects(&["--width", "0"], "model.width = 0");
    rejects(&["--lr", "nan"], "optimizer.lr = NaN");
    rejects(&["--lr", "inf"], "optimizer.lr = inf");
    rejects(&["--lr", "-1"], "optimizer.lr = -1");
    rejects(&["--set", "optimizer.lr=-0.5"], "optimizer.lr = -0.5");
    rejects(&["--fraction", "0"], "task.train_fraction = 0");
    rejects(&["--fraction", "1.5"], "task.train_fraction = 1.5");
    rejects(&["--p", "abc"], "task.p = abc");
    rejects(&["--models", "0"], "models = 0");
    rejects(&["--dtype", "f16"], "dtype = f16");
    rejects(&["--activation", "tanh"], "tanh");
}

#[test]
fn unknown_names_are_rejected_with_the_valid_ones() {
    rejects(&["--preset", "blog"], "preset = blog");
    rejects(&["--preset", "blog"], "blog-x2");
    rejects(&["--set", "model.widht=3"], "model.widht");
    rejects(&["--set", "model.widht=3"], "width, activation");
    rejects(&["--set", "modle.width=3"], "unknown section 'modle'");
    rejects(&["--set", "task.p"], "section.key=value");
    rejects(&["--frobnicate"], "--frobnicate");
    rejects(&["--resume", "/nonexistent/run", "--p", "3"], "--p");
}

#[test]
fn config_files_report_unknown_keys_and_syntax_errors_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let unknown = tmp.path().join("unknown.toml");
    std::fs::write(&unknown, "seed = 1\n[model]\nwidht = 3\n").unwrap();
    rejects(&["--config", unknown.to_str().unwrap()], "line 3");
    rejects(&["--config", unknown.to_str().unwrap()], "widht");
    let malformed = tmp.path().join("malformed.toml");
    std::fs::write(&malformed, "[task]\np = 23\nop = add\n").unwrap();
    rejects(&["--config", malformed.to_str().unwrap()], "line 3");
    let badtype = tmp.path().join("badtype.toml");
    std::fs::write(&badtype, "[task]\n\np = \"x\"\n").unwrap();
    rejects(&["--config", badtype.to_str().unwrap()], "line 3");
    let invalid = tmp.path().join("invalid.toml");
    std::fs::write(&invalid, "[task]\np = 1\n").unwrap();
    rejects(&["--config", invalid.to_str().unwrap()], "task.p = 1");
    rejects(
        &["--config", "/nonexistent/run.toml"],
        "/nonexistent/run.toml",
    );
}

#[test]
fn an_existing_directory_is_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let args = ["--steps", "5", "--p", "7", "--width", "8", "-q", "--out"];
    let o = train(&[&args[..], &[out.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--force"), "{}", text(&o.stderr));
    // --force replaces run directories only.
    let o = train(&[&args[..], &[out.to_str().unwrap(), "--force"]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );

    std::fs::remove_file(out.join("notes.txt")).unwrap();
    let o = train(&[&args[..], &[out.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(0), "an empty directory is used");
    let o = train(
        &[
            &args[..],
            &[out.to_str().unwrap(), "--seed", "3", "--force"],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("seed = 3"), "{config}");
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("run")]);
}

#[test]
fn divergence_exits_1_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train(&[
        "--p",
        "23",
        "--width",
        "32",
        "--lr",
        "1e6",
        "--steps",
        "200",
        "--set",
        "train.eval_every=20",
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("diverged"), "{stderr}");
    assert!(stderr.contains("last good state"), "{stderr}");
    let list = clockwork::checkpoint::list(&out).unwrap();
    let (step, path) = list.last().expect("a checkpoint is kept");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    let config = clockwork::checkpoint::Checkpoint::load(path)
        .unwrap()
        .config;
    let state = clockwork::checkpoint::load_state::<f32>(path, &config).unwrap();
    assert_eq!(state.step, *step);
    assert!(state.params.iter().all(|x| x.is_finite()));
    // It is the state of the last logged (finite) evaluation.
    let lines = metrics(&out);
    assert_eq!(lines.last().unwrap()["step"].as_u64(), Some(*step));
}
