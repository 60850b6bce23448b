//! Seed 002's multi-task heads: the fused CPU pass (f64 and f32) and the engine's plain
//! reference against a plain loop written here from the seed's formula
//! `L = Σ_q (1/ln q) · mean_pairs CE_q`, per-head accuracies and losses, central finite
//! differences through the trainer, and the config's errors.

use clockwork::engine::cpu::{CpuBackend, CpuOptions};
use clockwork::engine::{reference, Backend, CoreSpec, Loss, PassStats};
use clockwork::model::{Activation, ModelSpec, Params, Weights};
use clockwork::prelude::*;
use common::rel_err;

mod common;

/// What the loop below computes for one model: the summed weighted loss, each head's
/// mean CE and correct count, and dL/d(U, V, W).
struct Expected {
    loss: f64,
    head_loss: Vec<f64>,
    head_correct: Vec<usize>,
    all_correct: usize,
    grad: Weights<f64>,
}

/// The seed's loss, straight from its definition and without the engine's head layout:
/// for every pair and every prime q < p, the softmax over the q logits of that head (in
/// order of q, packed one after another) against `(x0 + x1·p) mod q`, divided by `ln q`.
fn seed_loss(act: Activation, weights: &Weights<f64>, k: usize, p: usize) -> Expected {
    let primes: Vec<usize> = (2..p).filter(|&q| (2..q).all(|d| q % d != 0)).collect();
    let (m, n_out) = (weights.width, weights.n_out);
    assert_eq!(n_out, primes.iter().sum::<usize>());
    let (u, v, w) = weights.model(k);
    let n = (p * p) as f64;
    let mut grad = weights.clone();
    grad.u
        .iter_mut()
        .chain(&mut grad.v)
        .chain(&mut grad.w)
        .for_each(|x| *x = 0.0);
    let mut out = Expected {
        loss: 0.0,
        head_loss: vec![0.0; primes.len()],
        head_correct: vec![0; primes.len()],
        all_correct: 0,
        grad: Weights { batch: 1, ..grad },
    };
    out.grad.u.truncate(p * m);
    out.grad.v.truncate(p * m);
    out.grad.w.truncate(n_out * m);
    for x0 in 0..p {
        for x1 in 0..p {
            let s: Vec<f64> = (0..m).map(|i| u[x0 * m + i] + v[x1 * m + i]).collect();
            let h: Vec<f64> = s.iter().map(|&s| reference::activate(act, s)).collect();
            let f: Vec<f64> = (0..n_out)
                .map(|c| (0..m).map(|i| w[c * m + i] * h[i]).sum())
                .collect();
            let mut df = vec![0.0; n_out];
            let mut offset = 0;
            let mut all = true;
            for (j, &q) in primes.iter().enumerate() {
                let y = (x0 + x1 * p) % q;
                let fq = &f[offset..offset + q];
                let z: f64 = fq.iter().map(|x| x.exp()).sum();
                let ce = z.ln() - fq[y];
                out.head_loss[j] += ce / n;
                out.loss += ce / (q as f64).ln() / n;
                let right = (0..q).all(|c| c == y || fq[c] < fq[y]);
                out.head_correct[j] += right as usize;
                all &= right;
                for c in 0..q {
                    let onehot = if c == y { 1.0 } else { 0.0 };
                    df[offset + c] = (fq[c].exp() / z - onehot) / (q as f64).ln() / n;
                }
                offset += q;
            }
            out.all_correct += all as usize;
            for i in 0..m {
                let mut d = 0.0;
                for c in 0..n_out {
                    out.grad.w[c * m + i] += df[c] * h[i];
                    d += df[c] * w[c * m + i];
                }
                let ds = d * reference::activate_grad(act, s[i]);
                out.grad.u[x0 * m + i] += ds;
                out.grad.v[x1 * m + i] += ds;
            }
        }
    }
    out
}

fn setup(p: usize, m: usize, batch: usize, act: Activation) -> (Task, Weights<f64>, CoreSpec) {
    let task = Task::multitask(p).unwrap();
    let spec = ModelSpec {
        n_in: p,
        n_out: task.n_out,
        width: m,
        activation: act,
        tied: false,
        embed_dim: None,
        init_scale: 0.6,
        dense: false,
    };
    let weights = Params::<f64>::init(&spec, batch, 11).unwrap().effective();
    let core = CoreSpec {
        activation: act,
        loss: Loss::CrossEntropy,
    };
    (task, weights, core)
}

fn check_against_seed(stats: &PassStats, expected: &Expected, tol: f64, what: &str) {
    assert!(
        (stats.loss - expected.loss).abs() <= tol * expected.loss,
        "{what}: loss {} vs {}",
        stats.loss,
        expected.loss
    );
    assert_eq!(stats.heads.len(), expected.head_loss.len(), "{what}");
    for (h, head) in stats.heads.iter().enumerate() {
        assert!(
            (head.loss - expected.head_loss[h]).abs() <= tol * expected.head_loss[h],
            "{what}: head {h} loss {} vs {}",
            head.loss,
            expected.head_loss[h]
        );
        assert_eq!(head.correct, expected.head_correct[h], "{what}: head {h}");
    }
    assert_eq!(
        stats.correct, expected.all_correct,
        "{what}: all heads right"
    );
}

fn grad_vec(g: &Weights<f64>, k: usize) -> Vec<f64> {
    let (u, v, w) = g.model(k);
    u.iter().chain(v).chain(w).copied().collect()
}

#[test]
fn fused_cpu_and_reference_match_the_seed_formula_in_f64() {
    for act in [Activation::Square, Activation::Relu] {
        let (task, weights, core) = setup(11, 24, 2, act);
        let backend = CpuBackend::new(CpuOptions {
            tile_rows: 16, // several tiles and chunks per model
            ..CpuOptions::default()
        })
        .unwrap();
        let mut grads = Weights::<f64>::zeros(
            &ModelSpec {
                n_in: 11,
                n_out: task.n_out,
                width: 24,
                activation: act,
                tied: false,
                embed_dim: None,
                init_scale: 1.0,
                dense: false,
            },
            2,
        );
        let stats = backend
            .loss_and_grad(core, &weights, &task.pairs, &mut grads)
            .unwrap();
        let mut ref_grads = grads.clone();
        let ref_stats = reference::loss_and_grad(core, &weights, &task.pairs, Some(&mut ref_grads));
        for k in 0..2 {
            let expected = seed_loss(act, &weights, k, 11);
            check_against_seed(&stats[k], &expected, 1e-12, &format!("cpu {act} model {k}"));
            check_against_seed(
                &ref_stats[k],
                &expected,
                1e-12,
                &format!("ref {act} model {k}"),
            );
            let want = grad_vec(&expected.grad, 0);
            let e = rel_err(&grad_vec(&grads, k), &want);
            assert!(e < 1e-12, "cpu {act} model {k}: gradient rel err {e:e}");
            let e = rel_err(&grad_vec(&ref_grads, k), &want);
            assert!(e < 1e-12, "ref {act} model {k}: gradient rel err {e:e}");
            // Evaluation gives the same figures without gradients.
            let eval = backend.evaluate(core, &weights, &task.pairs).unwrap();
            assert_eq!(eval[k].heads, stats[k].heads);
        }
    }
}

#[test]
fn f32_fast_path_matches_the_f64_reference() {
    let (task, weights64, core) = setup(13, 48, 3, Activation::Square);
    let weights32: Weights<f32> = weights64.cast();
    let exact: Weights<f64> = weights32.cast();
    let backend = CpuBackend::new(CpuOptions::default()).unwrap();
    let mut grads = weights32.clone();
    let stats = backend
        .loss_and_grad(core, &weights32, &task.pairs, &mut grads)
        .unwrap();
    let mut ref_grads = exact.clone();
    let ref_stats = reference::loss_and_grad(core, &exact, &task.pairs, Some(&mut ref_grads));
    let grads: Weights<f64> = grads.cast();
    for k in 0..3 {
        let (s, r) = (&stats[k], &ref_stats[k]);
        assert!((s.loss - r.loss).abs() < 1e-5 * r.loss, "model {k}");
        for (h, (a, b)) in s.heads.iter().zip(&r.heads).enumerate() {
            assert!(
                (a.loss - b.loss).abs() < 1e-5 * b.loss,
                "model {k} head {h}"
            );
            // Only pairs within f32 rounding of a tie may flip; at this init none do.
            assert!(a.correct.abs_diff(b.correct) <= 1, "model {k} head {h}");
        }
        let e = rel_err(&grad_vec(&grads, k), &grad_vec(&ref_grads, k));
        assert!(e < 1e-5, "model {k}: f32 gradient rel err {e:e}");
    }
}

#[test]
fn head_weights_are_one_over_ln_q_and_summed() {
    let (task, weights, core) = setup(7, 8, 1, Activation::Square);
    let heads = task.heads().unwrap();
    let sizes: Vec<usize> = heads.heads().iter().map(|h| h.size).collect();
    assert_eq!(sizes, [2, 3, 5]);
    for h in heads.heads() {
        assert_eq!(h.weight, 1.0 / (h.size as f64).ln());
    }
    let stats = reference::loss_and_grad(core, &weights, &task.pairs, None);
    let summed: f64 = heads
        .heads()
        .iter()
        .zip(&stats[0].heads)
        .map(|(h, s)| h.weight * s.loss)
        .sum();
    assert!((stats[0].loss - summed).abs() < 1e-14);
}

#[test]
fn multitask_gradients_match_finite_differences() {
    for loss in [Loss::CrossEntropy, Loss::Mse] {
        let mut config = common::f64_config(5, 4);
        config.task.heads = Some("primes".into());
        config.task.train_fraction = 0.7;
        config.model.init_scale = 0.7;
        config.train.loss = loss;
        config.seed = 5;
        let mut trainer = Trainer::<f64>::from_config(&config).unwrap();
        let objective = |t: &mut Trainer<f64>| {
            let (train, reg) = t.compute_gradients().unwrap();
            train[0].loss + reg[0]
        };
        objective(&mut trainer);
        let analytic = trainer.param_grads().to_vec();
        let base = trainer.state().unwrap();
        let h = 1e-6;
        let numeric: Vec<f64> = (0..analytic.len())
            .map(|i| {
                let mut at = |delta: f64| {
                    let mut state = base.clone();
                    state.params[i] += delta;
                    trainer.restore(state).unwrap();
                    objective(&mut trainer)
                };
                (at(h) - at(-h)) / (2.0 * h)
            })
            .collect();
        let e = rel_err(&analytic, &numeric);
        assert!(e < 1e-6, "{loss:?}: relative error {e:e}");
    }
}

#[test]
fn trainer_reports_per_head_figures_and_single_targets_run() {
    let mut config = common::config(7, 16, 2);
    config.task.heads = Some("primes".into());
    config.task.train_fraction = 0.5;
    let mut trainer = Trainer::<f32>::from_config(&config).unwrap();
    trainer.advance(5, &mut |_| {}).unwrap();
    let eval = trainer.evaluate().unwrap();
    assert_eq!(eval.train[1].heads.len(), 3);
    assert_eq!(eval.test.as_ref().unwrap()[0].heads.len(), 3);
    assert!(eval.gamma_star.iter().all(Option::is_none));
    config.task.heads = None;
    config.task.target_mod = Some(5);
    let mut trainer = Trainer::<f32>::from_config(&config).unwrap();
    assert_eq!(trainer.task().n_out, 5);
    let eval = trainer.evaluate().unwrap();
    assert!(eval.train[0].heads.is_empty());
}

#[test]
fn config_errors_name_the_key_and_value() {
    let cases: [(&str, &str); 8] = [
        ("heads = \"twos\"", "task.heads = twos"),
        ("heads = \"primes\"\ntarget_mod = 5", "task.target_mod = 5"),
        ("heads = \"primes\"\ngroup = \"S3\"", "task.group = S3"),
        ("heads = \"primes\"\nop = \"mul\"", "task.op = mul"),
        (
            "heads = \"primes\"\nsplit = \"unordered\"",
            "task.split = unordered",
        ),
        ("heads = \"primes\"\np = 9", "task.p = 9"),
        ("target_mod = 4\np = 7", "task.target_mod = 4"),
        ("target_mod = 11\np = 7", "task.target_mod = 11"),
    ];
    for (task, want) in cases {
        let e = RunConfig::from_toml(&format!("[task]\n{task}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{task}: {e}");
    }
    let ok = RunConfig::from_toml("[task]\nheads = \"primes\"\np = 13\n").unwrap();
    assert_eq!(ok.model_spec().n_out, 2 + 3 + 5 + 7 + 11);
}

/// The shipped binaries end to end: a tiny multi-task run writes each head's figures to
/// metrics.jsonl, and `analyze` reports them (summary.json, heads.csv, the picture, the
/// text), each head's grokking step the first evaluation with test accuracy ≥ 95 %.
#[test]
fn train_and_analyze_report_every_head() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = common::train(&[
        "--set",
        "task.heads=primes",
        "--p",
        "7",
        "--width",
        "48",
        "--fraction",
        "0.6",
        "--steps",
        "600",
        "--set",
        "train.eval_every=50",
        "-q",
        "--out",
        run.to_str().unwrap(),
    ]);
    common::assert_success(&out);
    let metrics = common::metrics(&run);
    let last = metrics.last().unwrap();
    let test_heads = last["test_head_acc"].as_array().unwrap();
    assert_eq!(test_heads.len(), 3, "heads mod 2, 3, 5");
    assert_eq!(last["train_head_loss"].as_array().unwrap().len(), 3);
    let analysis = run.join("analysis");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_analyze"))
        .args([run.to_str().unwrap(), "--out", analysis.to_str().unwrap()])
        .output()
        .unwrap();
    common::assert_success(&out);
    let text = common::text(&out.stdout);
    assert!(text.contains("mod 5") && text.contains("grokked"), "{text}");
    for file in [
        "summary.json",
        "heads.csv",
        "head_accuracy.png",
        "head_accuracy.svg",
    ] {
        assert!(analysis.join(file).is_file(), "{file}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(analysis.join("summary.json")).unwrap())
            .unwrap();
    let heads = summary["models"][0]["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 3);
    // Each head's grokking step, recomputed here from metrics.jsonl.
    for (h, head) in heads.iter().enumerate() {
        let first = metrics
            .iter()
            .find(|r| r["test_head_acc"][h].as_f64().is_some_and(|a| a >= 0.95))
            .map(|r| r["step"].as_u64().unwrap());
        assert_eq!(head["stages"]["generalized"].as_u64(), first, "head {h}");
        assert_eq!(head["final_test_acc"].as_f64(), test_heads[h].as_f64());
    }
}
