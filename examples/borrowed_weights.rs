//! Run the engine on weights the caller owns: plain `Vec<f32>`s here, standing in for a
//! NumPy array's memory or any other buffer. The engine reads them through a
//! `WeightsView` and writes gradients into the caller's buffers through a
//! `WeightsViewMut`; nothing is copied on the host. The loop below is plain gradient
//! descent written by the caller, a+b mod 23 with x², so the engine is only asked for
//! passes, as a binding to another language would ask it.
//!
//! `cargo run --release --example borrowed_weights`

use clockwork::config::RunConfig;
use clockwork::engine::{self, CoreSpec, FrozenPairs, Loss};
use clockwork::kinds::{Device, Precision};
use clockwork::model::{Params, Weights};
use clockwork::model::{WeightsShape, WeightsView, WeightsViewMut};
use clockwork::task::{Op, Task};

fn main() -> clockwork::Result<()> {
    let p = 23;
    let mut config = RunConfig::default();
    config.task.p = p;
    config.model.width = 4 * (p - 1);
    let spec = config.model_spec();
    // The caller's buffers, in the engine's layout (token-major u and v: n_in × m rows;
    // w: n_out × m), filled once by the library's seeded initializer and owned from
    // then on by the caller.
    let Weights {
        mut u,
        mut v,
        mut w,
        ..
    } = Params::<f32>::init(&spec, 1, 0)?.effective();
    let (mut gu, mut gv, mut gw) = (vec![0.0; u.len()], vec![0.0; v.len()], vec![0.0; w.len()]);
    let shape = WeightsShape::of(&spec, 1);

    let backend = engine::open::<f32>(Device::Cpu, Precision::Fp32, 0)?;
    let task = Task::modular(Op::Add, p)?;
    // Frozen: a GPU backend keeps these pairs on the device across the calls.
    let pairs = FrozenPairs::new(task.pairs.clone());
    let core = CoreSpec {
        activation: spec.activation,
        loss: Loss::CrossEntropy,
    };
    println!(
        "a+b mod {p}, width {}, on {}",
        spec.width,
        backend.describe()
    );
    let lr = 0.05;
    for step in 0..=1500 {
        let weights = WeightsView::new(shape, &u, &v, &w)?;
        let mut grads = WeightsViewMut::new(shape, &mut gu, &mut gv, &mut gw)?;
        let stats = backend.loss_and_grad(core, &weights, &pairs, &mut grads)?;
        if step % 250 == 0 {
            println!(
                "step {step:>4}  loss {:.4e}  acc {:.3}",
                stats[0].loss,
                stats[0].accuracy()
            );
        }
        for (x, g) in [(&mut u, &gu), (&mut v, &gv), (&mut w, &gw)] {
            for (x, g) in x.iter_mut().zip(g.iter()) {
                *x -= lr * g;
            }
        }
    }
    // A slice of the wrong length is an error naming it, not a panic.
    if let Err(e) = WeightsView::new(shape, &u[1..], &v, &w) {
        println!("a short u is refused: {e}");
    }
    Ok(())
}
