//! `analyze RUN --explore` on a run written by `train`: the page is one file with no
//! external URL, index.html links it, and the data it embeds are the run's own: the
//! checkpoint steps, every checkpoint's effective U, V, W within the 8-bit quantization
//! step, the final frequencies of neurons.csv and the task's answers. (The page's
//! JavaScript is checked in a real browser by scripts/browser-test.sh.)

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clockwork::checkpoint::Checkpoint;
use std::path::Path;
use std::process::Command;

fn run_ok(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON inside `<script type="application/json" id="data">`.
fn page_data(html: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"data\">";
    let start = html.find(open).expect("the data element") + open.len();
    let end = start + html[start..].find("</script>").expect("its end");
    serde_json::from_str(&html[start..end]).expect("the data are JSON")
}

#[test]
fn explore_embeds_the_runs_own_weights_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    // Tied, so the page must carry the effective V (= U), not a missing tensor.
    run_ok(
        env!("CARGO_BIN_EXE_train"),
        &[
            "--p",
            "11",
            "--width",
            "40",
            "--steps",
            "300",
            "--set",
            "model.tied=true",
            "--set",
            "train.checkpoint_every=100",
            "--set",
            "train.eval_every=50",
            "--out",
            run_s,
            "-q",
        ],
    );
    run_ok(env!("CARGO_BIN_EXE_analyze"), &[run_s, "--explore"]);
    let analysis = run.join("analysis");
    let html = std::fs::read_to_string(analysis.join("explore.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"));
    let index = std::fs::read_to_string(analysis.join("index.html")).unwrap();
    assert!(index.contains("href=\"explore.html\""));

    let d = page_data(&html);
    let (p, m) = (11usize, 40usize);
    assert_eq!(d["p"], p);
    assert_eq!(d["width"], m);
    assert_eq!(d["basis"]["name"], "additive");
    assert_eq!(d["basis"]["size"], p);
    assert_eq!(d["basis"]["v_sign"], 1.0);
    for j in 0..p {
        assert_eq!(d["basis"]["tokens"][j], j);
    }
    let mut ckpts: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    ckpts.sort();
    let steps: Vec<u64> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(steps.len(), ckpts.len());
    assert_eq!(d["checkpoints_total"], ckpts.len());

    for a in 0..p {
        for b in 0..p {
            assert_eq!(d["answer"][a * p + b], (a + b) % p);
        }
    }

    let model = &d["models"][0];
    let q = STANDARD
        .decode(model["weights_i8"].as_str().unwrap())
        .unwrap();
    let sc = STANDARD
        .decode(model["scales_f32"].as_str().unwrap())
        .unwrap();
    assert_eq!(q.len(), steps.len() * 3 * m * p);
    for (s, path) in ckpts.iter().enumerate() {
        let c = Checkpoint::load(Path::new(path)).unwrap();
        assert_eq!(c.step, steps[s]);
        let (u, v, w) = c.weights.model(0);
        assert_eq!(u, v, "tied: effective v = u");
        for (part, data) in [u, v, w].into_iter().enumerate() {
            for i in 0..m {
                let j = (s * 3 + part) * m + i;
                let scale = f32::from_le_bytes(sc[4 * j..4 * j + 4].try_into().unwrap()) as f64;
                for a in 0..p {
                    let back = (q[j * p + a] as i8) as f64 * scale;
                    let exact = data[a * m + i];
                    assert!(
                        (back - exact).abs() <= 0.5 * scale * (1.0 + 1e-5),
                        "step {} part {part} neuron {i} a {a}: {back} vs {exact}",
                        steps[s]
                    );
                }
            }
        }
    }

    // Final frequencies = neurons.csv's.
    let csv = std::fs::read_to_string(analysis.join("neurons.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (neuron, freq) = (col("neuron"), col("freq"));
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let i: usize = f[neuron].parse().unwrap();
        assert_eq!(model["final_freq"][i].to_string(), f[freq]);
    }
}
