//! One writer per run directory: a second `train --resume` of a running run and a second
//! `train --out` of the same new directory are refused with exit code 2 naming the
//! directory (and the holder's pid), the first run finishes intact, and a `kill -9`
//! leaves no stale lock behind.

mod common;

use common::{bin, metrics_without_time as metrics, text, train};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the train binary starts")
}

/// Waits until `dir`'s metrics.jsonl has at least `lines` lines.
fn wait_for_lines(dir: &Path, lines: usize, child: &mut Child) {
    let t0 = Instant::now();
    while metrics(dir).len() < lines {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("training exited early with {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "training never got under way"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A small task whose steps take a while on any machine: long enough runs for a second
/// process to meet the first one still training.
const TASK: &[&str] = &[
    "--p",
    "23",
    "--width",
    "96",
    "--set",
    "train.eval_every=500",
    "--set",
    "train.checkpoint_every=5000",
    "-q",
];

#[test]
fn a_second_resume_of_a_running_run_is_refused_and_the_first_finishes_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, straight) = (tmp.path().join("run"), tmp.path().join("straight"));
    let run_s = run.to_str().unwrap();
    let o = train(&[TASK, &["--steps", "500", "--out", run_s]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // The whole run to 1,000,000 steps would take minutes: the first resume is stopped
    // with Ctrl-C once the second has been refused, and then resumed to a shorter end.
    let mut first = spawn(&["--resume", run_s, "--steps", "1000000", "-q"]);
    wait_for_lines(&run, 3, &mut first);
    let second = train(&["--resume", run_s, "--steps", "1000000", "-q"]);
    let stderr = text(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(run_s), "names the directory: {stderr}");
    assert!(
        stderr.contains(&format!("process {}", first.id())),
        "names the holder's pid {}: {stderr}",
        first.id()
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run is still training"
    );

    let kill = Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = first.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    let (step, _) = *clockwork::checkpoint::list(&run).unwrap().last().unwrap();
    let end = (step / 500 + 2) * 500;
    let o = train(&["--resume", run_s, "--steps", &end.to_string(), "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let o = train(
        &[
            TASK,
            &[
                "--steps",
                &end.to_string(),
                "--out",
                straight.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let steps: Vec<u64> = metrics(&run)
        .iter()
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (0..=end / 500).map(|k| k * 500).collect::<Vec<_>>());
    assert_eq!(
        metrics(&run),
        metrics(&straight),
        "the locked-out resume left no trace in metrics.jsonl"
    );
}

#[test]
fn of_two_simultaneous_starts_of_one_new_directory_exactly_one_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let out = tmp.path().join(format!("run{round}"));
        let out_s = out.to_str().unwrap();
        // Longer runs in the first rounds (the loser meets the winner training), short
        // ones after (the two meet at the rename that publishes the directory).
        let steps = if round < 2 { "3000" } else { "20" };
        let args = [TASK, &["--steps", steps, "--out", out_s]].concat();
        let children = [spawn(&args), spawn(&args)];
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
        let winner = codes.iter().position(|c| *c == Some(0));
        let report = || {
            outputs
                .iter()
                .map(|o| text(&o.stderr))
                .collect::<Vec<_>>()
                .join("\n---\n")
        };
        let Some(winner) = winner else {
            panic!("round {round}: no start succeeded: {codes:?}\n{}", report());
        };
        let loser = 1 - winner;
        assert_eq!(codes[loser], Some(2), "round {round}: {}", report());
        let stderr = text(&outputs[loser].stderr);
        assert!(stderr.contains(out_s), "round {round}: {stderr}");
        if stderr.contains("in use") {
            assert!(
                stderr.contains(&format!("process {}", pids[winner])),
                "round {round}: names the winner's pid {}: {stderr}",
                pids[winner]
            );
        }
        // The winner's directory is whole: its config, every evaluation once, the final
        // checkpoint, and nothing of the loser next to it.
        let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
        clockwork::config::RunConfig::from_toml(&config).unwrap();
        let n: u64 = steps.parse().unwrap();
        let logged: Vec<u64> = metrics(&out)
            .iter()
            .map(|l| l["step"].as_u64().unwrap())
            .collect();
        let mut expected: Vec<u64> = (0..=n / 500).map(|k| k * 500).collect();
        if !n.is_multiple_of(500) {
            expected.push(n);
        }
        assert_eq!(logged, expected, "round {round}");
        let (last, _) = *clockwork::checkpoint::list(&out).unwrap().last().unwrap();
        assert_eq!(last, n);
    }
    let mut left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["run0", "run1", "run2", "run3"]);
}

#[test]
fn a_run_killed_with_sigkill_resumes_without_a_stale_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out_s = out.to_str().unwrap();
    let mut child = spawn(
        &[
            TASK,
            &[
                "--steps",
                "100000000",
                "--set",
                "train.checkpoint_every=500",
                "--out",
                out_s,
            ],
        ]
        .concat(),
    );
    // Under way with a checkpoint past step 0 on disk.
    let t0 = Instant::now();
    while clockwork::checkpoint::list(&out)
        .map(|l| l.last().is_none_or(|(s, _)| *s == 0))
        .unwrap_or(true)
    {
        assert!(child.try_wait().unwrap().is_none(), "training exited early");
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no handler runs, nothing is cleaned up
    child.wait().unwrap();
    assert!(out.join("train.lock").is_file(), "the lock file stays");

    let (step, _) = *clockwork::checkpoint::list(&out).unwrap().last().unwrap();
    let target = (step + 30).to_string();
    let o = train(&["--resume", out_s, "--steps", &target, "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let (last, _) = *clockwork::checkpoint::list(&out).unwrap().last().unwrap();
    assert_eq!(last, step + 30);
}
