//! Train the default model (a+b mod 31, x², L_{2,3}, doubling learning rate) through the
//! library, then read its weights back as ndarray arrays.
//!
//! `cargo run --release --example quickstart`

use clockwork::prelude::*;

fn main() -> Result<()> {
    let mut config = RunConfig::default();
    config.train.steps = 3000;
    let mut trainer = Trainer::<f32>::from_config(&config)?;
    println!("{} on {}", trainer.task().name, trainer.describe());
    let start = std::time::Instant::now();
    for _ in 0..config.train.steps {
        let report = trainer.step()?;
        if report.step % 500 == 0 {
            let s = &report.train[0];
            println!(
                "step {:>5}  loss {:.4e}  acc {:.3}  lr {}",
                report.step,
                s.loss,
                s.accuracy(),
                report.lr[0]
            );
        }
    }
    let eval = trainer.evaluate()?;
    println!(
        "after {} steps ({:.1}s): train acc {:.3}, normalized margin {:.4e} (γ* = {:.4e})",
        eval.step,
        start.elapsed().as_secs_f64(),
        eval.train[0].accuracy(),
        eval.margin[0],
        eval.gamma_star[0].unwrap_or(f64::NAN)
    );
    let u = trainer.weights()?.u_array(0);
    println!("U is {:?} (neurons × inputs)", u.dim());
    Ok(())
}
