//! The pictures of one analyzed run, each written as `NAME.png` and `NAME.svg`:
//!
//! - `curves`: train/test loss (log scale) and accuracy over training, with the grokking
//!   stages of a split run marked,
//! - `margin`: normalized margin γ over training against the theory's γ*,
//! - `power_heatmap`: every neuron's share of power at its final frequency over
//!   training (rows = neurons grouped by final frequency, columns = steps),
//! - `spectra_grid`: the final power spectrum of a sample of neurons, grouped by
//!   frequency,
//! - `neurons_per_frequency`: how many neurons ended on each frequency,
//! - `phase_residuals`: histogram of θu + θv − θw over sinusoidal neurons (0 for the
//!   max-margin solution),
//! - `ipr`: mean inverse participation ratio of the neurons' spectra over training,
//! - `irrep_power`: every neuron's final power share per component (irreps of a group,
//!   frequencies of Z_p), rows grouped by dominant component.
//!
//! A picture whose data the run lacks (no `metrics.jsonl`, a single snapshot, ...) is
//! skipped with a reason, which `index.html` shows instead. Text is drawn with the
//! embedded DejaVu Sans, so rendering needs no system fonts. Files are written under a
//! temporary name and renamed into place.
//!
//! Each picture has its own file (the data it takes from the analysis, its caption and
//! how it is drawn); `frame.rs` holds what they all share.

mod curves;
pub(crate) mod frame;
pub(crate) mod head_accuracy;
mod ipr;
mod irrep_power;
mod margin;
mod neurons_per_frequency;
mod phase_residuals;
mod power_heatmap;
mod spectra_grid;

use super::pipeline::RunAnalysis;
use super::record::SpectraRecord;
use crate::error::Result;
use frame::{Figure, Render};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Names of the pictures, in the order the report shows them.
pub const PICTURES: [&str; 8] = [
    "curves",
    "margin",
    "power_heatmap",
    "spectra_grid",
    "neurons_per_frequency",
    "phase_residuals",
    "ipr",
    "irrep_power",
];

/// Most neurons drawn in `spectra_grid`.
pub const MAX_GRID_PANELS: usize = 64;

/// Most models overlaid in the pictures that overlay models (more: model 0 only).
const MAX_OVERLAID: usize = 4;

/// One picture of the report.
#[derive(Clone, Debug)]
pub struct Picture {
    /// File stem (`NAME.png`, `NAME.svg`), one of [`PICTURES`].
    pub name: &'static str,
    /// What it shows, one line.
    pub title: String,
    /// How to read it.
    pub caption: String,
    /// The files written, or why the picture was skipped.
    pub outcome: std::result::Result<PictureFiles, String>,
}

/// The files of a drawn picture.
#[derive(Clone, Debug)]
pub struct PictureFiles {
    /// The raster version.
    pub png: PathBuf,
    /// The vector version.
    pub svg: PathBuf,
    /// Width and height in pixels (of both).
    pub size: (u32, u32),
}

/// Draws every picture of [`PICTURES`] that the run has data for into `out` (which must
/// exist), in parallel; returns them in [`PICTURES`] order, skipped ones with a reason.
pub fn render_all(a: &RunAnalysis, out: &Path) -> Result<Vec<Picture>> {
    frame::ensure_font()?;
    prepare(a)
        .into_par_iter()
        .map(|spec| {
            let outcome = match spec.fig {
                Ok(fig) => Ok(frame::render(fig.as_ref(), &spec.title, out, spec.name)?),
                Err(reason) => Err(reason),
            };
            Ok(Picture {
                name: spec.name,
                title: spec.title,
                caption: spec.caption,
                outcome,
            })
        })
        .collect()
}

/// A figure's title and its data ready to draw, or why the run cannot show it.
type Prepared = (String, std::result::Result<Box<dyn Render>, String>);

/// The [`Prepared`] of a figure that has its data.
fn drawable(title: String, fig: impl Figure + Send + Sync + 'static) -> Prepared {
    (title, Ok(Box::new(fig)))
}

/// A picture to draw (or why not), with its texts.
struct Spec {
    name: &'static str,
    title: String,
    caption: String,
    fig: std::result::Result<Box<dyn Render>, String>,
}

impl Spec {
    fn new(name: &'static str, (title, fig): Prepared, caption: String) -> Spec {
        Spec {
            name,
            title,
            caption,
            fig,
        }
    }
}

/// Every figure's data from the analysis, in [`PICTURES`] order.
fn prepare(a: &RunAnalysis) -> Vec<Spec> {
    vec![
        Spec::new("curves", curves::prepare(a), curves::CAPTION.into()),
        Spec::new("margin", margin::prepare(a), margin::CAPTION.into()),
        Spec::new(
            "power_heatmap",
            power_heatmap::prepare(a),
            power_heatmap::caption(a),
        ),
        Spec::new(
            "spectra_grid",
            spectra_grid::prepare(a),
            spectra_grid::caption(a),
        ),
        Spec::new(
            "neurons_per_frequency",
            neurons_per_frequency::prepare(a),
            neurons_per_frequency::caption(a),
        ),
        Spec::new(
            "phase_residuals",
            phase_residuals::prepare(a),
            phase_residuals::CAPTION.into(),
        ),
        Spec::new("ipr", ipr::prepare(a), ipr::caption(a)),
        Spec::new(
            "irrep_power",
            irrep_power::prepare(a),
            irrep_power::caption(a),
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// What several figures read from the analysis

/// Why the timeline pictures are skipped when a run has fewer than two snapshots.
fn timeline_reason(a: &RunAnalysis) -> Option<String> {
    let n = a.timeline.first().map_or(0, Vec::len);
    (n < 2).then(|| {
        let recorded = a.dir.spectra.iter().filter(|r| r.model == 0).count();
        format!(
            "needs at least two spectra snapshots over training; this run has {n} ({} record{} in {}, \
             {} checkpoint{})",
            recorded,
            plural(recorded),
            super::record::SPECTRA_FILE,
            a.summary.checkpoints,
            plural(a.summary.checkpoints)
        )
    })
}

/// What the captions call the basis's components, singular and plural: `frequency`
/// (a DFT) or `irrep` (a group's irreps), and how the spectrum is named.
struct Units {
    one: &'static str,
    many: &'static str,
    spectrum: &'static str,
}

fn units(a: &RunAnalysis) -> Units {
    if a.basis.irreps().is_some() {
        Units {
            one: "irrep",
            many: "irreps",
            spectrum: "power over the group's irreps",
        }
    } else {
        Units {
            one: "frequency",
            many: "frequencies",
            spectrum: "Fourier power spectrum",
        }
    }
}

/// The "s" of a count of `n`.
fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The models a picture that overlays models draws, and its title: `what` for the
/// run's task, saying which models are shown.
fn overlaid(a: &RunAnalysis, what: &str) -> (Vec<usize>, String) {
    let b = a.summary.models.len();
    let (models, phrase) = if b <= 1 {
        (vec![0], String::new())
    } else if b <= MAX_OVERLAID {
        ((0..b).collect(), format!(" ({b} models overlaid)"))
    } else {
        (vec![0], format!(" (model 0 of {b})"))
    };
    (models, format!("{what} — {}{phrase}", a.summary.task))
}

/// Title suffix of pictures that always show model 0.
fn model0_phrase(a: &RunAnalysis) -> String {
    let b = a.summary.models.len();
    if b > 1 {
        format!(" (model 0 of {b})")
    } else {
        String::new()
    }
}

/// Neurons of `last` ordered by (dominant frequency, −share), as (neuron, freq).
fn ordered_neurons(last: &SpectraRecord) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize, f64)> = (0..last.width())
        .map(|i| (i, last.freq[i], last.frac.get(i).copied().unwrap_or(0.0)))
        .collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)));
    order.into_iter().map(|(i, k, _)| (i, k)).collect()
}

/// The q-quantile (0..1) of sorted values, linearly interpolated.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let x = q * (sorted.len() - 1) as f64;
    let i = x.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] + (sorted[j] - sorted[i]) * (x - i as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert!((quantile(&v, 0.1) - 0.4).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
