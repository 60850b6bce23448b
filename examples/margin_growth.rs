//! Watch the normalized margin climb toward the theory's maximum γ* while a model trains
//! with the blog's recipe (x², L_{2,3}, doubling learning rate).
//!
//! `cargo run --release --example margin_growth -- [p] [width] [steps] [init_scale]`

use clockwork::prelude::*;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| {
        args.get(i)
            .map(|s| s.parse::<f64>().expect("numeric argument"))
            .unwrap_or(default)
    };
    let mut config = RunConfig::default();
    config.task.p = arg(0, 23.0) as usize;
    config.model.width = arg(1, 4.0 * (config.task.p as f64 - 1.0)) as usize;
    config.train.steps = arg(2, 20_000.0) as u64;
    config.model.init_scale = arg(3, config.model.init_scale);
    let mut trainer = Trainer::<f32>::from_config(&config)?;
    let start = std::time::Instant::now();
    println!(
        "{:>7} {:>10} {:>7} {:>8} {:>10}",
        "step", "loss", "acc", "γ/γ*", "lr"
    );
    for _ in 0..config.train.steps {
        let report = trainer.step()?;
        if report.step % (config.train.steps / 20).max(1) == 0 {
            let eval = trainer.evaluate()?;
            println!(
                "{:>7} {:>10.3e} {:>7.3} {:>8.4} {:>10}",
                report.step,
                report.train[0].loss + report.reg_loss[0],
                eval.train[0].accuracy(),
                eval.margin[0] / eval.gamma_star[0].unwrap_or(f64::NAN),
                report.lr[0]
            );
        }
    }
    let eval = trainer.evaluate()?;
    println!(
        "final: acc {:.3}, γ/γ* = {:.4} after {} steps in {:.1}s",
        eval.train[0].accuracy(),
        eval.margin[0] / eval.gamma_star[0].unwrap_or(f64::NAN),
        eval.step,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
