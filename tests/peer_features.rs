//! The three features the peer-precompute sweep needs (issue 11 part 9): the linear
//! learning-rate warm-up, the Fourier-sparse initialization and the per-model early stop
//! — each against what it promises, through the public library API.

use clockwork::analysis::fourier::{spectra, FourierPlan, Part};
use clockwork::checkpoint;
use clockwork::config::RunConfig;
use clockwork::kinds::{Dtype, OptimizerKind, RegularizerKind};
use clockwork::model::{Activation, InitKind};
use clockwork::run::{self, Progress, RunOptions, RunSummary};
use clockwork::train::Trainer;
use std::path::Path;

fn fourier_config(p: usize, width: usize, tied: bool) -> RunConfig {
    let mut c = RunConfig::default();
    c.task.p = p;
    c.model.width = width;
    c.model.tied = tied;
    c.model.init = InitKind::FourierSparse;
    c.model.init_scale = 0.3;
    c.dtype = Dtype::F64;
    c
}

/// Every neuron's u, v and w hold all their power at one frequency k ≥ 1 (the same for
/// the three), the frequencies are balanced over the neurons, each vector is a cosine of
/// amplitude init_scale (squared norm s²·p/2), and the draw is a function of the seed.
#[test]
fn fourier_sparse_init_puts_each_neurons_power_at_one_frequency() {
    for tied in [false, true] {
        let (p, m) = (13, 40);
        let config = fourier_config(p, m, tied);
        config.validate().unwrap();
        let weights = config.init_params::<f64>().unwrap().effective();
        let plan = FourierPlan::new(p).unwrap();
        let s = spectra(&plan, &weights, 0).unwrap();
        let mut per_freq = vec![0usize; plan.n_freq()];
        for i in 0..m {
            let mut freq = None;
            for part in [Part::U, Part::V, Part::W] {
                let power = s.power(i, part);
                let total: f64 = power.iter().sum();
                let (k, top) = power
                    .iter()
                    .copied()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap();
                assert!(k >= 1, "neuron {i} {part:?}: power at the constant");
                assert!(
                    top >= total * (1.0 - 1e-12),
                    "neuron {i} {part:?}: {top} of {total}"
                );
                assert_eq!(*freq.get_or_insert(k), k, "neuron {i}: parts disagree");
            }
            per_freq[freq.unwrap()] += 1;
            let u: f64 = (0..p).map(|x| weights.u_array(0)[[i, x]].powi(2)).sum();
            let expected = 0.3f64.powi(2) * p as f64 / 2.0;
            assert!(
                (u - expected).abs() < 1e-12,
                "‖u_{i}‖² = {u}, want {expected}"
            );
        }
        // 40 neurons over the 6 frequencies 1..=6: 6 or 7 each.
        assert_eq!(per_freq[0], 0);
        assert!(
            per_freq[1..].iter().all(|&n| n == 6 || n == 7),
            "{per_freq:?}"
        );
    }
    let draw = |seed: u64| {
        let mut c = fourier_config(13, 40, false);
        c.seed = seed;
        c.init_params::<f64>().unwrap().data
    };
    assert_eq!(draw(5), draw(5));
    assert_ne!(draw(5), draw(6));
}

/// A config error names `model.init` for a model the init cannot shape.
#[test]
fn fourier_sparse_refuses_factored_models_and_p_2() {
    let mut c = fourier_config(13, 40, false);
    c.model.embed_dim = 4;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("model.init") && e.contains("embed_dim"), "{e}");
    let e = fourier_config(2, 4, false)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.init") && e.contains("p >= 3"), "{e}");
    let e = RunConfig::from_toml("[model]\ninit = \"fourier\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("fourier") && e.contains("fourier-sparse"), "{e}");
}

/// The warm-up reaches the update: a GD step at step 0 of a 4-step warm-up changes
/// nothing, the step at 2 moves the parameters half as far as without warm-up.
#[test]
fn warmup_scales_the_first_updates() {
    let mut c = fourier_config(7, 8, false);
    c.model.init = InitKind::Gaussian;
    c.optimizer.lr_milestones.clear();
    c.train.regularizer = RegularizerKind::None;
    c.optimizer.warmup_steps = 4;
    let mut t = Trainer::<f64>::from_config(&c).unwrap();
    let start = t.state().unwrap().params;
    let r = t.step().unwrap();
    assert_eq!(r.lr, vec![0.0]);
    assert_eq!(
        t.state().unwrap().params,
        start,
        "step 0 of the warm-up moves nothing"
    );
    let lrs: Vec<f64> = (1..6).map(|_| t.step().unwrap().lr[0]).collect();
    let want = [0.0125, 0.025, 0.0375, 0.05, 0.05];
    for (got, want) in lrs.iter().zip(want) {
        assert!((got - want).abs() < 1e-15, "{lrs:?}");
    }
}

fn quiet() -> RunOptions {
    RunOptions {
        progress: Progress::Off,
        ..RunOptions::default()
    }
}

/// Two models, one with a learning rate too small to beat `min_delta` (it plateaus),
/// one that keeps learning; AdamW with weight decay and a warm-up, so every buffer moves.
fn early_stop_config(steps: u64, early_stop: bool) -> RunConfig {
    let mut c = RunConfig::default();
    c.task.p = 11;
    c.model.width = 24;
    c.model.activation = Activation::Relu;
    c.models = 2;
    c.per_model.lr = vec![1e-5, 3e-3];
    c.optimizer.kind = OptimizerKind::Adamw;
    c.optimizer.weight_decay = 0.5;
    c.optimizer.lr_milestones.clear();
    c.optimizer.warmup_steps = 150;
    c.train.regularizer = RegularizerKind::None;
    c.train.steps = steps;
    c.train.eval_every = 20;
    c.train.checkpoint_every = 20;
    c.train.spectra_every = 0;
    if early_stop {
        c.train.early_stop_patience = 60;
        c.train.early_stop_min_delta = 1e-3;
    }
    c
}

fn params_at(dir: &Path, step: u64, config: &RunConfig) -> Vec<f32> {
    checkpoint::load_state::<f32>(&checkpoint::path_for(dir, step), config)
        .unwrap()
        .params
}

fn metrics(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("elapsed_s");
            v.to_string() + "\n"
        })
        .collect()
}

/// The plateaued model is frozen at its stop step (its parameters there are those an
/// unstopped run has at that step, and stay so), the other model is bit-identical to
/// its unstopped run to the end, both are reported with their stop steps, and a run
/// cut in two (inside the warm-up, before the stop) resumes to the same bits.
#[test]
fn early_stop_freezes_exactly_the_plateaued_model() {
    let tmp = tempfile::tempdir().unwrap();
    let steps = 400;
    let reference = tmp.path().join("reference");
    let stopped = tmp.path().join("stopped");
    let split = tmp.path().join("split");
    let plain = early_stop_config(steps, false);
    let config = early_stop_config(steps, true);
    run::start(&plain, &reference, &quiet()).unwrap();
    let summary: RunSummary = run::start(&config, &stopped, &quiet()).unwrap();
    let stop0 = summary.models[0].stopped_at.expect("model 0 plateaus");
    assert_eq!(
        stop0, 60,
        "no improvement by 1e-3 over 60 steps from step 0"
    );
    let stop1 = summary.models[1].stopped_at;
    assert!(stop1.is_none_or(|s| s > stop0), "{stop1:?}");
    assert_eq!(summary.step, stop1.unwrap_or(steps));

    let n = config.model_spec().n_params();
    let last = summary.step;
    let got = params_at(&stopped, last, &config);
    let want0 = params_at(&reference, stop0, &plain);
    let want1 = params_at(&reference, last, &plain);
    assert_eq!(&got[..n], &want0[..n], "model 0 frozen at its stop step");
    assert_eq!(&got[n..], &want1[n..], "model 1 as if alone");

    let lines = metrics(&stopped);
    let after: Vec<&str> = lines
        .lines()
        .filter(|l| l.contains("\"model\":0") && l.contains("stopped_at"))
        .collect();
    assert!(!after.is_empty() && after.iter().all(|l| l.contains("\"stopped_at\":60")));

    // Cut at step 100 (inside the warm-up, after model 0 stopped), resumed to the end.
    run::start(&early_stop_config(100, true), &split, &quiet()).unwrap();
    let resumed = run::resume(&split, Some(steps), &quiet()).unwrap();
    assert_eq!(resumed.step, summary.step);
    assert_eq!(resumed.models, summary.models);
    assert_eq!(params_at(&split, last, &config), got);
    assert_eq!(metrics(&split), metrics(&stopped));
}

/// Bad early-stop and warm-up values are config errors naming the key.
#[test]
fn early_stop_values_are_checked() {
    let bad = |toml: &str, key: &str| {
        let e = RunConfig::from_toml(toml).unwrap_err().to_string();
        assert!(e.contains(key), "{toml}: {e}");
    };
    bad(
        "[train]\neval_every = 100\nearly_stop_patience = 150\n",
        "train.early_stop_patience = 150",
    );
    bad(
        "[train]\nearly_stop_patience = 500\nearly_stop_min_delta = -1.0\n",
        "train.early_stop_min_delta = -1",
    );
    bad(
        "[train]\nearly_stop_patience = 500\nearly_stop_min_delta = nan\n",
        "train.early_stop_min_delta",
    );
    bad(
        "[train]\nearly_stop_min_delta = 0.01\n",
        "train.early_stop_min_delta = 0.01",
    );
    bad("[optimizer]\nwarmup_steps = -3\n", "warmup_steps");
    bad(
        "[train]\nearly_stop_start = 1000\n",
        "train.early_stop_start = 1000",
    );
    let ok = RunConfig::from_toml(
        "[train]\neval_every = 100\nearly_stop_patience = 300\nearly_stop_min_delta = 1e-3\n\
         [optimizer]\nwarmup_steps = 10\n",
    )
    .unwrap();
    assert_eq!(RunConfig::from_toml(&ok.to_toml()).unwrap(), ok);
}

/// A point's `label` names it in the tables and sets nothing; a label that is not a
/// string is refused naming it.
#[test]
fn sweep_point_labels_name_points_and_set_nothing() {
    use clockwork::sweep::{expand::expand, spec::SweepSpec};
    let text = "[base.set]\n\"task.p\" = 7\n\"model.width\" = 8\n\
                [[points]]\nlabel = \"a\"\n\"optimizer.lr\" = 0.1\n\
                [[points]]\nlabel = \"b\"\n\"optimizer.lr\" = 0.2\n";
    let spec = SweepSpec::parse(text, "t", Path::new(".")).unwrap();
    assert_eq!(spec.swept_keys(), vec!["label", "optimizer.lr"]);
    let points = expand(&spec).unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1].settings[0].1.as_str(), Some("b"));
    let mut plain = points[0].config.clone();
    plain.optimizer.lr = 0.2;
    assert_eq!(points[1].config, plain, "the label changes no config key");
    let e = SweepSpec::parse("[[points]]\nlabel = 3\n", "t", Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(e.contains("points[0].label = 3"), "{e}");
}
