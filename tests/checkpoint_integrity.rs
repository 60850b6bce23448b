//! Checkpoints notice damage: a byte flipped inside any tensor's data makes
//! `train --resume` and `analyze` refuse the run (exit code 2, an `error:` line naming the
//! tensor and the file) without changing anything in the run directory, where before the
//! flip was resumed from silently.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn train(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_train"), args)
}

fn analyze(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_analyze"), args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` with its bytes, except the one-writer lock file (which holds
/// the pid of whichever process last took the lock, refused resumes included).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.file_name() != Some(clockwork::layout::LOCK_FILE.as_ref()) {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Each tensor's data range in the file, read from the safetensors header (8-byte
/// little-endian header length, the JSON header, then the data its `data_offsets` are
/// relative to).
fn tensor_ranges(bytes: &[u8]) -> Vec<(String, Range<usize>)> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out: Vec<(String, Range<usize>)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(name, info)| {
            let offsets = &info["data_offsets"];
            let start = offsets[0].as_u64().unwrap() as usize;
            let end = offsets[1].as_u64().unwrap() as usize;
            (name.clone(), 8 + n + start..8 + n + end)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_flipped_byte_in_any_tensor_is_refused_by_resume_and_analyze() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let dir = out.to_str().unwrap();
    // AdamW with Grokfast, so the checkpoint holds every kind of tensor.
    let o = train(&[
        "--p",
        "7",
        "--width",
        "8",
        "--steps",
        "20",
        "--set",
        "optimizer.kind=adamw",
        "--lr",
        "3e-3",
        "--set",
        "optimizer.grokfast_lambda=2",
        "--set",
        "train.eval_every=10",
        "--set",
        "train.checkpoint_every=10",
        "--out",
        dir,
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let file = "step-00000020.safetensors";
    let ck = out.join("checkpoints").join(file);
    let good = std::fs::read(&ck).unwrap();
    let ranges = tensor_ranges(&good);
    let names: Vec<&str> = ranges.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["adam_m", "adam_v", "grokfast_ema", "params", "u", "v", "w"]
    );

    for (name, range) in &ranges {
        let mut bytes = good.clone();
        // One byte inside the tensor's data: the header stays valid, so only the
        // checksum can notice.
        bytes[range.start + range.len() / 2] ^= 0x10;
        std::fs::write(&ck, &bytes).unwrap();
        let before = snapshot(&out);

        let o = train(&["--resume", dir, "--steps", "40"]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "tensor {name}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            stderr.contains(&format!("tensor '{name}' fails its checksum")),
            "{stderr}"
        );
        assert!(stderr.contains(file), "{stderr}");
        assert!(stderr.contains("the file is damaged"), "{stderr}");
        assert!(
            snapshot(&out) == before,
            "a refused resume changed the run directory (tensor {name})"
        );

        let o = analyze(&[dir, "--no-plots"]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "tensor {name}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            stderr.contains(&format!("tensor '{name}' fails its checksum")),
            "{stderr}"
        );
        assert!(stderr.contains(file), "{stderr}");
        assert!(
            snapshot(&out) == before,
            "a refused analysis changed the run directory (tensor {name})"
        );
    }

    // The refusals were the damage's doing: the repaired file resumes.
    std::fs::write(&ck, &good).unwrap();
    let o = train(&["--resume", dir, "--steps", "30", "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(out.join("checkpoints/step-00000030.safetensors").exists());
}

/// `analyze` reads every checkpoint of a run, so damage to an earlier one is refused too
/// (resume reads only the last one, which is intact here).
#[test]
fn analyze_refuses_a_damaged_earlier_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let dir = out.to_str().unwrap();
    let o = train(&[
        "--p",
        "7",
        "--width",
        "8",
        "--steps",
        "20",
        "--set",
        "train.checkpoint_every=10",
        "--out",
        dir,
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let file = "step-00000010.safetensors";
    let ck = out.join("checkpoints").join(file);
    let mut bytes = std::fs::read(&ck).unwrap();
    let (name, range) = tensor_ranges(&bytes)
        .into_iter()
        .find(|(n, _)| n == "w")
        .unwrap();
    bytes[range.end - 1] ^= 0x80;
    std::fs::write(&ck, &bytes).unwrap();
    let before = snapshot(&out);
    let o = analyze(&[dir, "--json", "--no-plots"]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("tensor '{name}' fails its checksum")),
        "{stderr}"
    );
    assert!(stderr.contains(file), "{stderr}");
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    assert!(
        snapshot(&out) == before,
        "analyze changed the run directory"
    );
}
