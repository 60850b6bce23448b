//! `neurons_per_frequency`: how many neurons ended on each frequency, how many of them
//! are sinusoidal, the weight each frequency holds (Σ n_i and Σ n_i^{3/2}), and the
//! theory's equal share.

use super::frame::{
    box_legend, dashed_level, legend, whole_label, x_ticks, Area, Axes, Backend, Draw, Figure,
    BLUE, GREEN, GREY, LIGHT_BLUE, ORANGE, RED,
};
use super::{drawable, model0_phrase, Prepared, RunAnalysis};
use plotters::prelude::*;

/// How to read the picture, in the words of the run's basis.
pub(super) fn caption(a: &RunAnalysis) -> String {
    let u = super::units(a);
    let (one, many) = (u.one, u.many);
    format!(
        "Neurons per dominant {one} (in the analysis basis) at the final checkpoint, and how \
         many of them are sinusoidal (u, v and w each above the threshold share at that \
         {one}). Shaded: {many} with no sinusoidal neuron. Dots: each {one}'s share of Σ n_i \
         (orange) and of Σ n_i^{{3/2}} (green), n_i = ‖u_i‖²+‖v_i‖²+‖w_i‖², scaled by m to the \
         neuron axis. For σ = x² a neuron's logits scale as n_i^{{3/2}}: on Z_p the \
         max-margin solution makes the green dots equal (dashed line), not the bars."
    )
}

struct PerFreq {
    /// Index = frequency (0 unused).
    all: Vec<usize>,
    sinusoidal: Vec<usize>,
    /// Share of Σ n_i per frequency (index 0 unused).
    norm_share: Vec<f64>,
    /// Share of Σ n_i^{3/2} per frequency (index 0 unused).
    amplitude_share: Vec<f64>,
    /// The frequency axis of the analysis basis.
    freq_label: String,
    equal_share: f64,
    threshold: f64,
}

pub(super) fn prepare(a: &RunAnalysis) -> Prepared {
    let title = format!(
        "Neurons per dominant {}{} — {}",
        a.summary.basis.unit,
        model0_phrase(a),
        a.summary.task
    );
    let Some(m) = a.summary.models.first() else {
        return (title, Err("no models in the analysis".into()));
    };
    let f = &m.frequencies;
    if f.max_freq == 0 {
        return (title, Err("p < 2: no frequencies".into()));
    }
    let used = f.freqs_used.len();
    drawable(
        format!(
            "{title}: {used} of {} {} used",
            f.max_freq,
            a.summary.basis.units()
        ),
        PerFreq {
            all: f.neurons_per_freq.clone(),
            sinusoidal: f.sinusoidal_per_freq.clone(),
            norm_share: f.norm_share_per_freq.clone(),
            amplitude_share: f.amplitude_share_per_freq.clone(),
            freq_label: format!("dominant {}", a.basis.freq_label()),
            equal_share: f.neurons as f64 / f.max_freq as f64,
            threshold: f.threshold,
        },
    )
}

impl Figure for PerFreq {
    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw {
        let kmax = self.all.len().saturating_sub(1).max(1);
        let top = self.all.iter().copied().max().unwrap_or(1).max(1) as f64;
        let top = top.max(self.equal_share) * 1.4;
        let step = if kmax <= 30 {
            1
        } else if kmax <= 60 {
            5
        } else {
            10
        };
        let keys: Vec<(f64, String)> = (1..=kmax)
            .filter(|k| k % step == 0 || *k == 1)
            .map(|k| (k as f64, k.to_string()))
            .collect();
        let mut chart = Axes::own_x_ticks(&self.freq_label, "neurons")
            .y_labels(whole_label)
            .draw(area, 0.4..kmax as f64 + 0.6, 0.0..top)?;
        let missing: Vec<usize> = (1..=kmax)
            .filter(|&k| self.sinusoidal.get(k).copied().unwrap_or(0) == 0)
            .collect();
        let band = RED.mix(0.12);
        if !missing.is_empty() {
            chart
                .draw_series(missing.iter().map(|&k| {
                    Rectangle::new(
                        [(k as f64 - 0.5, 0.0), (k as f64 + 0.5, top)],
                        band.filled(),
                    )
                }))?
                .label("no sinusoidal neuron")
                .legend(box_legend(band));
        }
        let bar = |k: usize, v: usize, color: RGBColor| {
            Rectangle::new(
                [(k as f64 - 0.38, 0.0), (k as f64 + 0.38, v as f64)],
                color.filled(),
            )
        };
        chart
            .draw_series(
                (1..=kmax).map(|k| bar(k, self.all.get(k).copied().unwrap_or(0), LIGHT_BLUE)),
            )?
            .label("all neurons")
            .legend(box_legend(LIGHT_BLUE.to_rgba()));
        chart
            .draw_series(
                (1..=kmax).map(|k| bar(k, self.sinusoidal.get(k).copied().unwrap_or(0), BLUE)),
            )?
            .label(format!(
                "sinusoidal (u, v, w each ≥ {:.0}% at k)",
                100.0 * self.threshold
            ))
            .legend(box_legend(BLUE.to_rgba()));
        x_ticks(root, &chart, &keys)?;
        let e = self.equal_share;
        dashed_level(
            &mut chart,
            e,
            GREY,
            format!("equal share m/{kmax} = {e:.1}"),
        )?;
        // The weight each frequency holds, on the neuron axis (share × m), so the same
        // equal-share line reads for all: the max-margin solution equalizes Σ n^{3/2},
        // not necessarily the neuron counts or Σ n.
        let neurons = self.all.iter().sum::<usize>() as f64;
        let dots = |shares: &[f64], dx: f64, color: RGBColor| {
            (1..=kmax)
                .filter_map(|k| {
                    let share = shares.get(k).copied()?;
                    (share > 0.0)
                        .then(|| Circle::new((k as f64 + dx, share * neurons), 5, color.filled()))
                })
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(dots(&self.norm_share, -0.15, ORANGE))?
            .label("Σ n_i share × m  (n_i = ‖u_i‖²+‖v_i‖²+‖w_i‖²)")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, ORANGE.filled()));
        chart
            .draw_series(dots(&self.amplitude_share, 0.15, GREEN))?
            .label("Σ n_i^3/2 share × m  (logit amplitude)")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, GREEN.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}
