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

/// A group's table: the page works in the group's irreps — it embeds an orthonormal basis
/// of each irrep's matrix-element subspace (together a basis of the functions on G), the
/// answers are the Cayley table, and the final dominant "frequency" is neurons.csv's irrep.
#[test]
fn explore_of_a_group_run_embeds_its_irreps_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    run_ok(
        env!("CARGO_BIN_EXE_train"),
        &[
            "--group",
            "S3",
            "--width",
            "24",
            "--steps",
            "200",
            "--set",
            "train.checkpoint_every=100",
            "--out",
            run_s,
            "-q",
        ],
    );
    run_ok(env!("CARGO_BIN_EXE_analyze"), &[run_s, "--explore"]);
    let html = std::fs::read_to_string(run.join("analysis").join("explore.html")).unwrap();
    let d = page_data(&html);
    let n = 6usize;
    assert_eq!(d["p"], n);
    let irreps = d["basis"]["irreps"]
        .as_array()
        .expect("irreps for a group run");
    assert_eq!(irreps.len(), 3, "S3: trivial, sign, standard");
    let vectors: Vec<Vec<f64>> = irreps
        .iter()
        .flat_map(|r| {
            let b: Vec<f64> = r["basis"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(b.len() % n, 0);
            b.chunks(n).map(<[f64]>::to_vec).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(vectors.len(), n, "Σ isotypic dims = |G|");
    for (i, x) in vectors.iter().enumerate() {
        for (j, y) in vectors.iter().enumerate() {
            let dot: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-9, "⟨b{i}, b{j}⟩ = {dot}");
        }
    }
    let group = clockwork::task::Group::named("S3").unwrap();
    for a in 0..n {
        for b in 0..n {
            assert_eq!(d["answer"][a * n + b], group.mul(a, b));
        }
    }
    let csv = std::fs::read_to_string(run.join("analysis").join("neurons.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let i: usize = f[col("neuron")].parse().unwrap();
        assert_eq!(d["models"][0]["final_freq"][i].to_string(), f[col("freq")]);
    }
}
