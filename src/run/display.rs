//! Progress on stderr: a bar on a terminal, else a line per evaluation.

use super::metrics::Measured;
use super::Progress;
use crate::train::StepReport;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How progress is being shown.
enum Mode {
    Off,
    /// One line per evaluation, at most one a second (plus the last); `last` is when the
    /// previous one was printed.
    Lines {
        last: Option<Instant>,
    },
    /// `drawn` is when the bar was last updated between evaluations.
    Bar {
        bar: ProgressBar,
        drawn: Instant,
    },
}

/// The progress display of one training call.
pub(super) struct Display {
    mode: Mode,
    total: u64,
    /// Test accuracy of the latest evaluation, shown until the next one.
    test_acc: Option<f64>,
}

impl Display {
    /// A display for a run at step `done` of `total`.
    pub fn new(progress: Progress, done: u64, total: u64) -> Display {
        let progress = match progress {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Lines,
            p => p,
        };
        let mode = match progress {
            Progress::Off => Mode::Off,
            Progress::Lines | Progress::Auto => Mode::Lines { last: None },
            Progress::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{wide_bar:.cyan/blue} {pos}/{len} {msg} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("█▉▊▋▌▍▎▏ "),
                );
                bar.set_position(done);
                bar.reset_elapsed();
                Mode::Bar {
                    bar,
                    drawn: Instant::now() - Duration::from_secs(1),
                }
            }
        };
        Display {
            mode,
            total,
            test_acc: None,
        }
    }

    /// After steps up to `done`: moves the bar, at most every 100 ms (redraws are
    /// throttled anyway, but touching the bar every step is not free). `rate` is only
    /// called when it is drawn.
    pub fn show_steps(&mut self, done: u64, report: &StepReport, rate: impl FnOnce() -> f64) {
        let Mode::Bar { bar, drawn } = &mut self.mode else {
            return;
        };
        if done == self.total || drawn.elapsed() >= Duration::from_millis(100) {
            *drawn = Instant::now();
            bar.set_position(done);
            bar.set_message(bar_message(
                mean(report.train.iter().map(|s| s.loss)),
                mean(report.train.iter().map(|s| s.accuracy())),
                self.test_acc,
                rate(),
            ));
        }
    }

    /// After an evaluation at step `done`, `rate` steps/s into the call.
    pub fn show_eval(&mut self, m: &Measured, done: u64, rate: f64) {
        let e = &m.eval;
        let loss = mean(e.train.iter().map(|s| s.loss));
        let acc = mean(e.train.iter().map(|s| s.accuracy()));
        self.test_acc = e
            .test
            .as_ref()
            .map(|_| mean((0..e.train.len()).filter_map(|k| e.test_of(k).map(|s| s.accuracy()))));
        let test = self.test_acc;
        match &mut self.mode {
            Mode::Off => {}
            Mode::Bar { bar, .. } => bar.set_message(bar_message(loss, acc, test, rate)),
            Mode::Lines { last } => {
                if done != self.total && last.is_some_and(|t| t.elapsed() < Duration::from_secs(1))
                {
                    return;
                }
                *last = Some(Instant::now());
                // γ* depends only on the task and shape: one number when every model
                // has one.
                let common = e.gamma_star.iter().copied().collect::<Option<Vec<f64>>>();
                let margin = match common.and_then(|g| g.first().copied()) {
                    Some(g) => format!("  γ/γ* {:.4}", mean(e.margin.iter().copied()) / g),
                    None => format!("  margin {:.3e}", mean(e.margin.iter().copied())),
                };
                let test = test.map_or(String::new(), |t| format!("  test {}", pct(t)));
                eprintln!(
                    "step {done:>7}/{}  loss {loss:.4e}  train {}{test}{margin}  {rate:.0} steps/s",
                    self.total,
                    pct(acc)
                );
            }
        }
    }

    /// Leaves the bar where it is and shows nothing more.
    pub fn finish(&mut self) {
        if let Mode::Bar { bar, .. } = &self.mode {
            bar.abandon();
        }
        self.mode = Mode::Off;
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn bar_message(loss: f64, train_acc: f64, test_acc: Option<f64>, rate: f64) -> String {
    let test = test_acc.map_or(String::new(), |t| format!(" test {}", pct(t)));
    format!(
        "loss {loss:.3e} train {}{test} {rate:.0} steps/s",
        pct(train_acc)
    )
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}
