//! The engine against an independent implementation: the same step written in PyTorch
//! (benches/reference/torch_cpu_step.py --check, torch 2.15.0, float64 autograd).
//!
//! The expected numbers below are that script's output for its deterministic init; they
//! come from a different code base (PyTorch's autograd of a materialized hidden matrix),
//! so agreement to ~1e-12 checks the loss, the L_{2,3} regularizer, the fused backward and
//! one gradient-descent step end to end. Regenerate with
//! `benches/reference/.venv/bin/python benches/reference/torch_cpu_step.py --check`.

use clockwork::kinds::RegularizerKind;
use clockwork::train::Trainer;

mod common;

const P: usize = 23;
const M: usize = 96;

// torch_cpu_step.py --check, torch 2.15.0+cu132, float64.
const LOSS_CE: f64 = 3.171975270673997e+00;
const LOSS_REG: f64 = 5.304376608249697e-02;
const GRAD_NORM_U: f64 = 3.834400165179312e-02;
const GRAD_NORM_V: f64 = 3.306197655435902e-02;
const GRAD_NORM_W: f64 = 4.291653978499591e-02;
/// dU[5,7], dV[5,7] (neuron 5, token 7) and dW[7,5] (class 7, neuron 5).
const GRAD_U_5_7: f64 = -2.294091195148117e-03;
const GRAD_V_5_7: f64 = -2.437208429754867e-04;
const GRAD_W_7_5: f64 = 2.250062145279683e-03;
const LOSS_TOTAL_AFTER_STEP: f64 = 3.224798844471235e+00;

fn close(what: &str, got: f64, want: f64) {
    let rel = (got - want).abs() / want.abs();
    assert!(
        rel < 1e-10,
        "{what}: clockwork {got:e}, PyTorch {want:e} (rel {rel:e})"
    );
}

#[test]
fn one_step_matches_pytorch_autograd() {
    let mut config = common::f64_config(P, M);
    config.train.regularizer = RegularizerKind::L23;
    config.train.reg_strength = 1e-4;
    config.optimizer.lr = 0.05;
    config.optimizer.lr_milestones = Vec::new();
    let mut trainer = Trainer::<f64>::from_config(&config).unwrap();

    // Parameter storage is token-major: u[a·m + i], v[b·m + i], then w[c·m + i].
    let mut state = trainer.state().unwrap();
    let (u, rest) = state.params.split_at_mut(P * M);
    let (v, w) = rest.split_at_mut(P * M);
    for i in 0..M {
        let ni = (i + 1) as f64;
        for t in 0..P {
            let nt = (t + 1) as f64;
            u[t * M + i] = 0.3 * (0.1 * ni * nt).sin();
            v[t * M + i] = 0.3 * (0.07 * ni * nt).cos();
            w[t * M + i] = 0.3 * (0.05 * ni * nt + 1.0).sin();
        }
    }
    trainer.restore(state).unwrap();

    let (stats, reg) = trainer.compute_gradients().unwrap();
    close("cross-entropy", stats[0].loss, LOSS_CE);
    close("L_{2,3} regularizer", reg[0], LOSS_REG);
    let g = trainer.param_grads();
    let norm = |s: &[f64]| s.iter().map(|x| x * x).sum::<f64>().sqrt();
    close("|dU|", norm(&g[..P * M]), GRAD_NORM_U);
    close("|dV|", norm(&g[P * M..2 * P * M]), GRAD_NORM_V);
    close("|dW|", norm(&g[2 * P * M..]), GRAD_NORM_W);
    close("dU[5,7]", g[7 * M + 5], GRAD_U_5_7);
    close("dV[5,7]", g[P * M + 7 * M + 5], GRAD_V_5_7);
    close("dW[7,5]", g[2 * P * M + 7 * M + 5], GRAD_W_7_5);

    trainer.step().unwrap();
    let after = trainer.step().unwrap();
    close(
        "total loss after one step",
        after.train[0].loss + after.reg_loss[0],
        LOSS_TOTAL_AFTER_STEP,
    );
}
