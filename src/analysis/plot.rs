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
//! - `ipr`: mean inverse participation ratio of the neurons' spectra over training.
//!
//! A picture whose data the run lacks (no `metrics.jsonl`, a single snapshot, ...) is
//! skipped with a reason, which `index.html` shows instead. Text is drawn with the
//! embedded DejaVu Sans, so rendering needs no system fonts. Files are written under a
//! temporary name and renamed into place.

use super::pipeline::RunAnalysis;
use super::progress;
use super::record::SpectraRecord;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rayon::prelude::*;
use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// DejaVu Sans (see assets/fonts/LICENSE-DejaVu.txt), embedded so pictures render the
/// same on machines without fonts.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Font family every text style uses.
const FAMILY: &str = "sans-serif";

/// Names of the pictures, in the order the report shows them.
pub const PICTURES: [&str; 7] = [
    "curves",
    "margin",
    "power_heatmap",
    "spectra_grid",
    "neurons_per_frequency",
    "phase_residuals",
    "ipr",
];

/// Most neurons drawn in `spectra_grid`.
pub const MAX_GRID_PANELS: usize = 64;

/// Most models overlaid in the pictures that overlay models (more: model 0 only).
const MAX_OVERLAID: usize = 4;

/// Most snapshot columns of `power_heatmap` (more are subsampled evenly).
const MAX_HEATMAP_COLUMNS: usize = 300;

/// Most neuron rows of `power_heatmap` (about one pixel each; wider models are sampled
/// evenly along the sorted order).
const MAX_HEATMAP_ROWS: usize = 768;

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
    ensure_font()?;
    let specs = prepare(a);
    specs
        .into_par_iter()
        .map(|spec| {
            let outcome = match spec.fig {
                Ok(fig) => Ok(render(&fig, out, spec.name)?),
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

/// Registers the embedded font once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::BadFile {
            path: PathBuf::from("assets/fonts/DejaVuSans.ttf"),
            reason: "the embedded font cannot be parsed".into(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Rendering

/// What a drawing function returns: any plotters error, boxed.
type Draw = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Draws the series labels of `chart` in one style for every picture: a light box with a
/// thin border at `position` (each picture picks the corner its data leaves empty).
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, position: SeriesLabelPosition) -> Draw
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font(label_style())
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Renders one figure as SVG (in memory) and PNG (temp file), both renamed into place.
fn render(fig: &Fig, out: &Path, name: &str) -> Result<PictureFiles> {
    let size = fig.size();
    let png = out.join(format!("{name}.png"));
    let svg = out.join(format!("{name}.svg"));
    let failed = |path: &Path, e: Box<dyn std::error::Error + Send + Sync>| {
        Error::io(
            path,
            std::io::Error::other(format!("cannot draw the picture: {e}")),
        )
    };
    let (svg_result, png_result) = rayon::join(
        || -> Result<()> {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
                let drawn: Draw = fig.draw(&root).and_then(|()| Ok(root.present()?));
                drawn.map_err(|e| failed(&svg, e))?;
            }
            write_atomic(&svg, text.as_bytes())
        },
        || -> Result<()> {
            // BitMapBackend picks the encoder from the extension: keep `.png` last.
            let tmp = out.join(format!(".{name}.tmp-{}.png", std::process::id()));
            let result = (|| -> Result<()> {
                {
                    let root = BitMapBackend::new(&tmp, size).into_drawing_area();
                    let drawn: Draw = fig.draw(&root).and_then(|()| Ok(root.present()?));
                    drawn.map_err(|e| failed(&png, e))?;
                }
                std::fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| std::fs::rename(&tmp, &png))
                    .map_err(|e| Error::io(&png, e))
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        },
    );
    svg_result?;
    png_result?;
    Ok(PictureFiles { png, svg, size })
}

// ---------------------------------------------------------------------------------------
// Styles and small helpers

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const GREY: RGBColor = RGBColor(100, 100, 100);
const LIGHT_BLUE: RGBColor = RGBColor(174, 199, 232);
const PALETTE: [RGBColor; 4] = [BLUE, ORANGE, GREEN, PURPLE];

// Plotters draws text at 1/1.24 of the nominal size (in both backends): these give
// about 21.8, 16.1 and 14.5 px.
const TITLE_PX: f64 = 27.0;
const DESC_PX: f64 = 20.0;
const LABEL_PX: f64 = 18.0;
/// Smallest nominal title size when a long title is shrunk to fit (about 15.3 px).
const MIN_TITLE_PX: f64 = 19.0;

fn title_style() -> TextStyle<'static> {
    (FAMILY, TITLE_PX).into_font().color(&BLACK)
}
fn desc_style() -> TextStyle<'static> {
    (FAMILY, DESC_PX).into_font().color(&BLACK)
}
fn label_style() -> TextStyle<'static> {
    (FAMILY, LABEL_PX).into_font().color(&BLACK)
}

/// `root` below a centred title, the font shrunk (down to [`MIN_TITLE_PX`]) until the
/// title fits.
fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> std::result::Result<DrawingArea<DB, Shift>, Box<dyn std::error::Error + Send + Sync>>
where
    DB::ErrorType: 'static,
{
    let width = root.dim_in_pixel().0;
    let mut px = TITLE_PX;
    while px > MIN_TITLE_PX {
        let style: TextStyle = (FAMILY, px).into_font().into();
        let (w, _) = root.estimate_text_size(title, &style)?;
        // The estimate runs a few percent short of what is drawn.
        if w + w / 10 + 40 <= width {
            break;
        }
        px -= 1.0;
    }
    Ok(root.titled(title, (FAMILY, px).into_font().color(&BLACK))?)
}

/// Viridis, linearly interpolated between 8 stops; `t` is clamped to [0, 1].
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 8] = [
        (68, 1, 84),
        (70, 50, 127),
        (54, 92, 141),
        (39, 127, 143),
        (31, 162, 136),
        (74, 194, 110),
        (160, 219, 57),
        (254, 232, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// A tick label: plain decimals in [0.01, 1e5), else scientific with a trimmed
/// mantissa; typographic minus.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    let s = if a == 0.0 || !v.is_finite() {
        "0".to_string()
    } else if (1e-2..1e5).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        let s = format!("{v:.2e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{e}")
            }
            None => s,
        }
    };
    s.replace('-', "\u{2212}")
}

/// A step count: plain below 1e5, else `120k`.
fn fmt_step(v: f64) -> String {
    if v.abs() >= 1e5 {
        format!("{}k", fmt_num(v / 1e3))
    } else {
        format!("{v:.0}")
    }
}

/// Finite min and max of `values`.
fn span(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// A non-empty axis range around [lo, hi] with `frac` of its width added either side.
fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let w = hi - lo;
    if w > 0.0 {
        (lo - frac * w, hi + frac * w)
    } else {
        let d = if lo != 0.0 { lo.abs() * 0.1 } else { 1.0 };
        (lo - d, hi + d)
    }
}

/// A step axis starting at the first step (0 usually), with a small right margin.
fn step_range(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi + 0.01 * (hi - lo))
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// Models drawn in overlaid pictures, and a phrase for the title.
fn shown_models(a: &RunAnalysis) -> (Vec<usize>, String) {
    let b = a.summary.models.len();
    if b <= 1 {
        (vec![0], String::new())
    } else if b <= MAX_OVERLAID {
        ((0..b).collect(), format!(" ({b} models overlaid)"))
    } else {
        (vec![0], format!(" (model 0 of {b})"))
    }
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

/// Tick marks and labels below the x axis of `chart` at chosen values (plotters picks
/// its own "nice" values otherwise).
fn x_ticks<DB, Y>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    ticks: &[(f64, String)],
) -> Draw
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let (_, ys) = chart.plotting_area().get_pixel_range();
    let y = ys.end;
    for (v, label) in ticks {
        let x = chart.backend_coord(&(*v, 0.0)).0;
        root.draw(&PathElement::new(
            vec![(x, y), (x, y + 5)],
            BLACK.stroke_width(1),
        ))?;
        root.draw(&Text::new(
            label.clone(),
            (x, y + 8),
            label_style().pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    Ok(())
}

/// A legend swatch for a line.
fn line_legend(color: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(width))
}

/// A legend swatch for a filled box.
fn box_legend(color: RGBAColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], color.filled())
}

// ---------------------------------------------------------------------------------------
// Figures

/// A picture to draw (or why not), with its texts.
struct Spec {
    name: &'static str,
    title: String,
    caption: String,
    fig: std::result::Result<Fig, String>,
}

/// The data of one figure, ready to draw on any backend.
enum Fig {
    Curves(Curves),
    Margin(MarginFig),
    Heatmap(Heatmap),
    Grid(Grid),
    PerFreq(PerFreq),
    Phases(Phases),
    Ipr(IprFig),
}

impl Fig {
    fn size(&self) -> (u32, u32) {
        match self {
            Fig::Curves(_) => (1400, 600),
            Fig::Phases(p) if p.zoom.is_some() => (1400, 600),
            Fig::Heatmap(_) => (1200, 860),
            Fig::Grid(g) => g.size(),
            _ => (1000, 600),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        match self {
            Fig::Curves(f) => f.draw(root),
            Fig::Margin(f) => f.draw(root),
            Fig::Heatmap(f) => f.draw(root),
            Fig::Grid(f) => f.draw(root),
            Fig::PerFreq(f) => f.draw(root),
            Fig::Phases(f) => f.draw(root),
            Fig::Ipr(f) => f.draw(root),
        }
    }
}

/// Every figure's data from the analysis.
fn prepare(a: &RunAnalysis) -> Vec<Spec> {
    let p = a.summary.p;
    let spec = |name, title: String, caption: String, fig| Spec {
        name,
        title,
        caption,
        fig,
    };
    let (curves_title, curves) = prep_curves(a);
    let (margin_title, margin) = prep_margin(a);
    let (heat_title, heat) = prep_heatmap(a);
    let (grid_title, grid) = prep_grid(a);
    let (freq_title, freq) = prep_per_freq(a);
    let (phase_title, phase) = prep_phases(a);
    let (ipr_title, ipr) = prep_ipr(a);
    vec![
        spec(
            "curves",
            curves_title,
            "Cross-entropy loss (log scale) and accuracy on the training pairs and, for a split run, the \
             held-out pairs, from metrics.jsonl. Dashed vertical lines: end of memorization (train \
             accuracy ≥ 95%) and of generalization (test accuracy ≥ 95%)."
                .into(),
            curves,
        ),
        spec(
            "margin",
            margin_title,
            "Normalized margin γ = min over pairs of (f_y − max_{c≠y} f_c) / Σ_i (‖u_i‖² + ‖v_i‖² + \
             ‖w_i‖²)^{h/2}. The dashed line is the maximum γ* of the theory where it applies \
             (x², a+b mod p, all pairs)."
                .into(),
            margin,
        ),
        spec(
            "power_heatmap",
            heat_title,
            format!(
                "Each row is a neuron, each column a snapshot; colour = share of the neuron's combined \
                 u, v, w Fourier power at the frequency it ends on. Rows are grouped by final frequency \
                 k (1…{}), strongest first within a group.",
                p / 2
            ),
            heat,
        ),
        spec(
            "spectra_grid",
            grid_title,
            "Final Fourier power spectrum of individual neurons (combined u, v, w power per \
             frequency k, as shares of the neuron's total); the dominant frequency is highlighted. \
             Panels are grouped by dominant frequency and sampled evenly across each group."
                .into(),
            grid,
        ),
        spec(
            "neurons_per_frequency",
            freq_title,
            "Neurons per dominant frequency at the final checkpoint, and how many of them are \
             sinusoidal (u, v and w each above the threshold share at that frequency). Shaded: \
             frequencies with no sinusoidal neuron. The theory's max-margin solution uses every \
             frequency about equally (dashed line)."
                .into(),
            freq,
        ),
        spec(
            "phase_residuals",
            phase_title,
            "θu + θv − θw wrapped to (−π, π] over sinusoidal neurons at their frequency; the \
             max-margin solution has θu + θv = θw, i.e. a spike at 0."
                .into(),
            phase,
        ),
        spec(
            "ipr",
            ipr_title,
            "Inverse participation ratio Σ P_k² / (Σ P_k)² of each neuron's combined power spectrum \
             (1 = all power at one frequency); line = mean over neurons, band = 10th to 90th \
             percentile."
                .into(),
            ipr,
        ),
    ]
}

/// Why the timeline pictures are skipped when a run has fewer than two snapshots.
fn timeline_reason(a: &RunAnalysis) -> Option<String> {
    let n = a.timeline.first().map_or(0, Vec::len);
    (n < 2).then(|| {
        let recorded = a.dir.spectra.iter().filter(|r| r.model == 0).count();
        format!(
            "needs at least two spectra snapshots over training; this run has {n} ({} record{} in {}, \
             {} checkpoint{})",
            recorded,
            if recorded == 1 { "" } else { "s" },
            super::record::SPECTRA_FILE,
            a.summary.checkpoints,
            if a.summary.checkpoints == 1 { "" } else { "s" }
        )
    })
}

// --- curves -----------------------------------------------------------------------------

/// A line of (x, y) points.
struct Series {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

impl Series {
    fn draw<'a, DB, X, Y>(&self, chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>) -> Draw
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        if self.points.is_empty() {
            return Ok(());
        }
        let style = self.color.stroke_width(2);
        if self.points.len() == 1 {
            chart.draw_series(
                self.points
                    .iter()
                    .map(|&pt| Circle::new(pt, 4, self.color.filled())),
            )?;
        }
        let anno = if self.dashed {
            chart.draw_series(DashedLineSeries::new(
                self.points.iter().copied(),
                8,
                5,
                style,
            ))?
        } else {
            chart.draw_series(LineSeries::new(self.points.iter().copied(), style))?
        };
        // A dashed swatch is two segments with a gap, a solid one two touching ones.
        let (a, b) = if self.dashed { (9, 15) } else { (12, 12) };
        anno.label(self.label.clone()).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (a, 0)], style)
                + PathElement::new(vec![(b, 0), (24, 0)], style)
        });
        Ok(())
    }
}

struct Curves {
    title: String,
    loss: Vec<Series>,
    acc: Vec<Series>,
    /// (step, label) of the grokking stages.
    stages: Vec<(f64, String)>,
    steps: (f64, f64),
}

fn prep_curves(a: &RunAnalysis) -> (String, std::result::Result<Fig, String>) {
    let (models, phrase) = shown_models(a);
    let title = format!(
        "Loss and accuracy over training — {}{phrase}",
        a.summary.task
    );
    if a.dir.metrics.is_empty() {
        return (title, Err("no metrics.jsonl in this run".into()));
    }
    let mut evaluated: Vec<u64> = a.dir.metrics.iter().map(|r| r.step).collect();
    evaluated.sort_unstable();
    evaluated.dedup();
    if evaluated.len() < 2 {
        return (
            title,
            Err(format!(
                "metrics.jsonl has a single evaluation (step {}), nothing to follow over training",
                evaluated.first().copied().unwrap_or(0)
            )),
        );
    }
    let split = a
        .dir
        .metrics
        .iter()
        .any(|r| r.test_acc.is_some() || r.test_loss.is_some());
    let mut loss = Vec::new();
    let mut acc = Vec::new();
    for &k in &models {
        let rows = a.dir.metrics_of(k);
        let (train_color, test_color, suffix) = if models.len() == 1 {
            (BLUE, ORANGE, String::new())
        } else {
            (
                PALETTE[k % PALETTE.len()],
                PALETTE[k % PALETTE.len()],
                format!(", model {k}"),
            )
        };
        let pts =
            |f: &dyn Fn(&super::rundir::MetricsRow) -> Option<f64>, scale: f64, positive: bool| {
                rows.iter()
                    .filter_map(|r| f(r).map(|v| (r.step as f64, v * scale)))
                    .filter(|&(_, v)| v.is_finite() && (!positive || v > 0.0))
                    .collect::<Vec<_>>()
            };
        let push = |to: &mut Vec<Series>, label: &str, color, dashed, points: Vec<(f64, f64)>| {
            if !points.is_empty() {
                to.push(Series {
                    label: format!("{label}{suffix}"),
                    color,
                    dashed,
                    points,
                });
            }
        };
        let multi = models.len() > 1;
        push(
            &mut loss,
            "train",
            train_color,
            false,
            pts(&|r| r.train_loss, 1.0, true),
        );
        push(
            &mut loss,
            "test",
            test_color,
            multi,
            pts(&|r| r.test_loss, 1.0, true),
        );
        push(
            &mut acc,
            "train",
            train_color,
            false,
            pts(&|r| r.train_acc, 100.0, false),
        );
        push(
            &mut acc,
            "test",
            test_color,
            multi,
            pts(&|r| r.test_acc, 100.0, false),
        );
    }
    if loss.is_empty() && acc.is_empty() {
        return (
            title,
            Err("metrics.jsonl has no finite loss or accuracy values".into()),
        );
    }
    let mut stages = Vec::new();
    if split {
        let s = a
            .summary
            .models
            .first()
            .map(|m| m.stages)
            .unwrap_or_default();
        let who = if models.len() > 1 { "model 0 " } else { "" };
        if let Some(step) = s.memorized {
            stages.push((step as f64, format!("{who}memorized · step {step}")));
        }
        if let Some(step) = s.generalized {
            stages.push((step as f64, format!("{who}generalized · step {step}")));
        }
    }
    let (lo, hi) = span(
        loss.iter()
            .chain(&acc)
            .flat_map(|s| s.points.iter().map(|p| p.0)),
    )
    .unwrap_or((0.0, 1.0));
    (
        title.clone(),
        Ok(Fig::Curves(Curves {
            title,
            loss,
            acc,
            stages,
            steps: step_range(lo, hi),
        })),
    )
}

impl Curves {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, &self.title)?;
        let (left, right) = area.split_horizontally(area.dim_in_pixel().0 / 2);
        let (x0, x1) = self.steps;

        // Loss, log scale.
        let (lo, hi) = span(self.loss.iter().flat_map(|s| s.points.iter().map(|p| p.1)))
            .unwrap_or((1e-3, 1.0));
        let (lo, hi) = if hi > lo {
            (lo / 1.6, hi * 1.6)
        } else {
            (lo / 10.0, hi * 10.0)
        };
        let mut chart = ChartBuilder::on(&left)
            .margin(12)
            .margin_top(self.stage_room())
            .margin_right(24)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc("cross-entropy loss (nats, log scale)")
            .x_label_formatter(&|v| fmt_step(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for s in &self.loss {
            s.draw(&mut chart)?;
        }
        self.draw_stages(root, &chart, lo, hi)?;
        if !self.loss.is_empty() {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }

        // Accuracy.
        let mut chart = ChartBuilder::on(&right)
            .margin(12)
            .margin_top(self.stage_room())
            .margin_right(24)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, -2.0..102.0)?;
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc("accuracy (%)")
            .x_label_formatter(&|v| fmt_step(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for s in &self.acc {
            s.draw(&mut chart)?;
        }
        self.draw_stages(root, &chart, -2.0, 102.0)?;
        if !self.acc.is_empty() {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        Ok(())
    }

    /// Space above the panels for the stage labels, pixels.
    fn stage_room(&self) -> u32 {
        12 + STAGE_ROW * self.stages.len() as u32
    }

    /// Dashed vertical lines at the stages, labelled above the panel (one row each, so
    /// labels never overlap each other or the curves).
    fn draw_stages<DB, Y>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
        y_lo: f64,
        y_hi: f64,
    ) -> Draw
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        let (x0, x1) = self.steps;
        let n = self.stages.len() as i32;
        for (j, (x, label)) in self.stages.iter().enumerate() {
            let top = chart.backend_coord(&(*x, y_hi));
            let bottom = chart.backend_coord(&(*x, y_lo));
            let label_y = top.1 - STAGE_ROW as i32 * (n - j as i32);
            dashed_segment(root, (top.0, label_y + 4), bottom, GREY)?;
            let right_half = (*x - x0) > 0.6 * (x1 - x0);
            let (dx, h) = if right_half {
                (-6, HPos::Right)
            } else {
                (6, HPos::Left)
            };
            root.draw(&Text::new(
                label.clone(),
                (top.0 + dx, label_y),
                label_style().color(&GREY).pos(Pos::new(h, VPos::Top)),
            ))?;
        }
        Ok(())
    }
}

/// Height of one row of stage labels above the curves, pixels.
const STAGE_ROW: u32 = 24;

/// A dashed segment between two backend pixels (plotters dashes only series in chart
/// coordinates).
fn dashed_segment<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    a: (i32, i32),
    b: (i32, i32),
    color: RGBColor,
) -> Draw
where
    DB::ErrorType: 'static,
{
    let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
    let len = (dx * dx + dy * dy).sqrt();
    let (dash, gap) = (7.0, 5.0);
    let at = |s: f64| {
        (
            a.0 + (dx * s / len).round() as i32,
            a.1 + (dy * s / len).round() as i32,
        )
    };
    let mut t = 0.0;
    while t < len {
        let e = (t + dash).min(len);
        root.draw(&PathElement::new(vec![at(t), at(e)], color.stroke_width(2)))?;
        t += dash + gap;
    }
    Ok(())
}

// --- margin -----------------------------------------------------------------------------

struct MarginFig {
    title: String,
    lines: Vec<Series>,
    /// Checkpoint margins over all pairs, as markers.
    marks: Vec<Series>,
    gamma_star: Option<f64>,
    /// Trained on a subset of the pairs (γ over the training pairs may exceed γ*).
    split: bool,
    steps: (f64, f64),
}

fn prep_margin(a: &RunAnalysis) -> (String, std::result::Result<Fig, String>) {
    let (models, phrase) = shown_models(a);
    let title = format!(
        "Normalized margin over training — {}{phrase}",
        a.summary.task
    );
    let split = a.summary.train_fraction < 1.0;
    let mut lines = Vec::new();
    let mut marks = Vec::new();
    for &k in &models {
        let color = if models.len() == 1 {
            BLUE
        } else {
            PALETTE[k % PALETTE.len()]
        };
        let suffix = if models.len() == 1 {
            String::new()
        } else {
            format!(", model {k}")
        };
        let from_metrics: Vec<(f64, f64)> = a
            .dir
            .metrics_of(k)
            .iter()
            .filter_map(|r| r.margin.map(|m| (r.step as f64, m)))
            .filter(|p| p.1.is_finite())
            .collect();
        let from_timeline: Vec<(f64, f64)> = a
            .timeline
            .get(k)
            .map(|t| {
                t.iter()
                    .filter_map(|r| r.margin.map(|m| (r.step as f64, m)))
                    .filter(|p| p.1.is_finite())
                    .collect()
            })
            .unwrap_or_default();
        let ckpts: Vec<(f64, f64)> = a
            .checkpoints
            .iter()
            .filter(|r| r.model == k && r.gamma.is_finite())
            .map(|r| (r.step as f64, r.gamma))
            .collect();
        let pairs = if split { "training pairs" } else { "all pairs" };
        let (line, label) = if from_metrics.len() >= from_timeline.len() && from_metrics.len() >= 2
        {
            (
                from_metrics,
                format!("γ over {pairs} (metrics.jsonl){suffix}"),
            )
        } else if from_timeline.len() >= 2 {
            (from_timeline, format!("γ (spectra.jsonl){suffix}"))
        } else if ckpts.len() >= 2 {
            (
                ckpts.clone(),
                format!("γ over all pairs at checkpoints{suffix}"),
            )
        } else {
            (Vec::new(), String::new())
        };
        let line_is_ckpts = label.starts_with("γ over all pairs at checkpoints");
        if !line.is_empty() {
            lines.push(Series {
                label,
                color,
                dashed: false,
                points: line,
            });
        }
        if !line_is_ckpts && !ckpts.is_empty() {
            marks.push(Series {
                label: format!("γ over all pairs at checkpoints{suffix}"),
                color,
                dashed: false,
                points: ckpts,
            });
        }
    }
    if lines.is_empty() {
        let count = |n: usize| format!("{n} value{}", if n == 1 { "" } else { "s" });
        let in_metrics = a.dir.metrics.iter().filter(|r| r.margin.is_some()).count();
        let in_spectra = a.dir.spectra.iter().filter(|r| r.margin.is_some()).count();
        return (
            title,
            Err(format!(
                "a margin curve needs two steps; this run has {} in metrics.jsonl, {} in {} and {} \
                 checkpoint{}",
                count(in_metrics),
                count(in_spectra),
                super::record::SPECTRA_FILE,
                a.summary.checkpoints,
                if a.summary.checkpoints == 1 { "" } else { "s" }
            )),
        );
    }
    let (lo, hi) = span(
        lines
            .iter()
            .chain(&marks)
            .flat_map(|s| s.points.iter().map(|p| p.0)),
    )
    .unwrap_or((0.0, 1.0));
    (
        title.clone(),
        Ok(Fig::Margin(MarginFig {
            title,
            lines,
            marks,
            gamma_star: a.gamma_star.filter(|g| g.is_finite()),
            split,
            steps: step_range(lo, hi),
        })),
    )
}

impl MarginFig {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, &self.title)?;
        let (x0, x1) = self.steps;
        let (lo, hi) = span(
            self.lines
                .iter()
                .chain(&self.marks)
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .chain(self.gamma_star),
        )
        .unwrap_or((0.0, 1.0));
        let (lo, hi) = padded(lo, hi, 0.06);
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(x0..x1, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc("normalized margin γ")
            .x_label_formatter(&|v| fmt_step(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        if lo < 0.0 && hi > 0.0 {
            chart.draw_series(LineSeries::new(
                [(x0, 0.0), (x1, 0.0)],
                BLACK.mix(0.5).stroke_width(1),
            ))?;
        }
        if let Some(g) = self.gamma_star {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0, g), (x1, g)],
                    10,
                    6,
                    RED.stroke_width(2),
                ))?
                .label(if self.split {
                    format!("γ* (theory; bounds γ over all pairs) = {}", fmt_num(g))
                } else {
                    format!("γ* (theory) = {}", fmt_num(g))
                })
                .legend(line_legend(RED, 2));
            let at = chart.backend_coord(&(x0, g));
            root.draw(&Text::new(
                "γ* (theory)",
                (at.0 + 10, at.1 - 6),
                label_style()
                    .color(&RED)
                    .pos(Pos::new(HPos::Left, VPos::Bottom)),
            ))?;
        }
        for s in &self.lines {
            s.draw(&mut chart)?;
        }
        for s in &self.marks {
            let color = s.color;
            chart
                .draw_series(s.points.iter().map(|&pt| {
                    EmptyElement::at(pt)
                        + Circle::new((0, 0), 5, color.filled())
                        + Circle::new((0, 0), 5, BLACK.stroke_width(1))
                }))?
                .label(s.label.clone())
                .legend(move |(x, y)| Circle::new((x + 12, y), 5, color.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}

// --- power heat map ---------------------------------------------------------------------

struct Heatmap {
    title: String,
    /// Column edges in steps (len = columns + 1).
    edges: Vec<f64>,
    /// Per row (top to bottom): the values per column (NaN = no data).
    values: Vec<Vec<f64>>,
    /// (frequency, first row, end row) of each group, top to bottom.
    groups: Vec<(usize, usize, usize)>,
}

/// Records of a timeline subsampled evenly to at most `max` (first and last kept).
fn subsample(records: &[SpectraRecord], max: usize) -> Vec<&SpectraRecord> {
    let n = records.len();
    if n <= max || max < 2 {
        return records.iter().collect();
    }
    let mut idx: Vec<usize> = (0..max)
        .map(|j| ((j as f64) * (n - 1) as f64 / (max - 1) as f64).round() as usize)
        .collect();
    idx.dedup();
    idx.into_iter().filter_map(|i| records.get(i)).collect()
}

/// Neurons of `last` ordered by (dominant frequency, −share), as (neuron, freq).
fn ordered_neurons(last: &SpectraRecord) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize, f64)> = (0..last.width())
        .map(|i| (i, last.freq[i], last.frac.get(i).copied().unwrap_or(0.0)))
        .collect();
    order.sort_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)));
    order.into_iter().map(|(i, k, _)| (i, k)).collect()
}

fn prep_heatmap(a: &RunAnalysis) -> (String, std::result::Result<Fig, String>) {
    let title = format!(
        "Power share at each neuron's final frequency{} — {}",
        model0_phrase(a),
        a.summary.task
    );
    if let Some(reason) = timeline_reason(a) {
        return (title, Err(reason));
    }
    let records = subsample(&a.timeline[0], MAX_HEATMAP_COLUMNS);
    let Some(last) = records.last() else {
        return (title, Err("no spectra snapshots".into()));
    };
    let all = ordered_neurons(last);
    let width = all.len();
    // Evenly spaced rows of the sorted order keep every group, in proportion.
    let order: Vec<(usize, usize)> = if width > MAX_HEATMAP_ROWS {
        (0..MAX_HEATMAP_ROWS)
            .filter_map(|r| all.get(r * width / MAX_HEATMAP_ROWS).copied())
            .collect()
    } else {
        all
    };
    let steps: Vec<f64> = records.iter().map(|r| r.step as f64).collect();
    let n = steps.len();
    let mut edges = Vec::with_capacity(n + 1);
    edges.push(steps[0]);
    for j in 1..n {
        edges.push(0.5 * (steps[j - 1] + steps[j]));
    }
    edges.push(steps[n - 1]);
    let values = order
        .iter()
        .map(|&(i, k)| {
            records
                .iter()
                .map(|r| {
                    r.power
                        .get(i)
                        .and_then(|row| row.get(k))
                        .copied()
                        .unwrap_or(f64::NAN)
                })
                .collect()
        })
        .collect();
    let mut groups: Vec<(usize, usize, usize)> = Vec::new();
    for (row, &(_, k)) in order.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.0 == k => g.2 = row + 1,
            _ => groups.push((k, row, row + 1)),
        }
    }
    let title = if order.len() < width {
        format!(
            "{title} ({} of {width} neurons × {} snapshots)",
            order.len(),
            records.len()
        )
    } else {
        format!("{title} ({width} neurons × {} snapshots)", records.len())
    };
    (
        title.clone(),
        Ok(Fig::Heatmap(Heatmap {
            title,
            edges,
            values,
            groups,
        })),
    )
}

/// Colour levels of the heat map; equal neighbouring cells are merged into one
/// rectangle, which keeps the SVG small.
const LEVELS: f64 = 64.0;

impl Heatmap {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, &self.title)?;
        let (w, _) = area.dim_in_pixel();
        let (main, bar) = area.split_horizontally(w.saturating_sub(150));
        let rows = self.values.len().max(1) as f64;
        let x0 = self.edges.first().copied().unwrap_or(0.0);
        let x1 = self.edges.last().copied().unwrap_or(1.0);
        let (x0, x1) = if x1 > x0 {
            (x0, x1)
        } else {
            (x0 - 1.0, x1 + 1.0)
        };
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .margin_right(20)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(x0..x1, 0.0..rows)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .y_labels(0)
            .x_desc("training step")
            .y_desc("neurons, grouped by final frequency k")
            .x_label_formatter(&|v| fmt_step(*v))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .draw()?;
        // Row r (0 = top) spans y in [rows − r − 1, rows − r].
        let mut cells = Vec::new();
        for (r, row) in self.values.iter().enumerate() {
            let y_top = rows - r as f64;
            let mut j = 0;
            while j < row.len() {
                let level = |v: f64| {
                    if v.is_finite() {
                        Some((v.clamp(0.0, 1.0) * (LEVELS - 1.0)).round() as i64)
                    } else {
                        None
                    }
                };
                let here = level(row[j]);
                let mut e = j + 1;
                while e < row.len() && level(row[e]) == here {
                    e += 1;
                }
                let color = match here {
                    Some(l) => viridis(l as f64 / (LEVELS - 1.0)),
                    None => RGBColor(220, 220, 220),
                };
                if let (Some(&xa), Some(&xb)) = (self.edges.get(j), self.edges.get(e)) {
                    cells.push(Rectangle::new(
                        [(xa, y_top), (xb, y_top - 1.0)],
                        color.filled(),
                    ));
                }
                j = e;
            }
        }
        chart.draw_series(cells)?;
        // Group separators and labels (a label only where there is room for it).
        let mut last_label_y: Option<i32> = None;
        for (g, &(k, start, end)) in self.groups.iter().enumerate() {
            if g > 0 {
                let y = rows - start as f64;
                chart.draw_series(LineSeries::new(
                    [(x0, y), (x1, y)],
                    WHITE.mix(0.7).stroke_width(1),
                ))?;
            }
            let mid = rows - 0.5 * (start + end) as f64;
            let at = chart.backend_coord(&(x0, mid));
            if last_label_y.is_none_or(|y| at.1 - y >= 17) {
                root.draw(&Text::new(
                    format!("k={k}"),
                    (at.0 - 8, at.1),
                    label_style().pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
                last_label_y = Some(at.1);
            }
        }
        // Colour bar.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(12)
            .margin_bottom(62)
            .margin_left(10)
            .margin_right(10)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .y_desc("power share at final k")
            .y_label_formatter(&|v| format!("{v:.1}"))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .draw()?;
        let n = 100;
        cb.draw_series((0..n).map(|i| {
            let (a, b) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            Rectangle::new([(0.0, a), (0.6, b)], viridis(0.5 * (a + b)).filled())
        }))?;
        Ok(())
    }
}

// --- spectra grid -----------------------------------------------------------------------

struct Panel {
    neuron: usize,
    freq: usize,
    frac: f64,
    power: Vec<f64>,
}

struct Grid {
    title: String,
    panels: Vec<Panel>,
    /// Rows of panel indices; with `row_labels`, one row per frequency group.
    rows: Vec<Vec<usize>>,
    row_labels: Option<Vec<String>>,
    cols: usize,
    max_freq: usize,
}

fn prep_grid(a: &RunAnalysis) -> (String, std::result::Result<Fig, String>) {
    let base = format!("Final power spectra of neurons{}", model0_phrase(a));
    let Some(last) = a.timeline.first().and_then(|t| t.last()) else {
        return (base, Err("no spectra of the final checkpoint".into()));
    };
    let m = last.width();
    if m == 0 {
        return (base, Err("the model has no neurons".into()));
    }
    let order = ordered_neurons(last);
    // Groups of neuron indices in `order`.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for &(i, k) in &order {
        match groups.last_mut() {
            Some(g) if g.0 == k => g.1.push(i),
            _ => groups.push((k, vec![i])),
        }
    }
    let cap = MAX_GRID_PANELS.min(m);
    // Quotas: as even as possible across groups, never more than a group has; with more
    // groups than panels, one neuron from each of `cap` evenly spaced groups.
    let mut quota = vec![0usize; groups.len()];
    if groups.len() > cap {
        for j in 0..cap {
            if let Some(q) = quota.get_mut(j * groups.len() / cap) {
                *q = 1;
            }
        }
    } else {
        let mut left = cap;
        while left > 0 {
            let mut gave = false;
            for (q, g) in quota.iter_mut().zip(&groups) {
                if left > 0 && *q < g.1.len() {
                    *q += 1;
                    left -= 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
    }
    let by_group = groups.len() <= 16;
    let mut panels = Vec::new();
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for ((k, members), &q) in groups.iter().zip(&quota) {
        // Evenly across the group (sorted strongest first), so the worst show too.
        let picked: Vec<usize> = (0..q)
            .map(|j| {
                if q == 1 {
                    0
                } else {
                    ((j as f64) * (members.len() - 1) as f64 / (q - 1) as f64).round() as usize
                }
            })
            .filter_map(|j| members.get(j).copied())
            .collect();
        let mut row = Vec::new();
        for i in picked {
            row.push(panels.len());
            panels.push(Panel {
                neuron: i,
                freq: *k,
                frac: last.frac.get(i).copied().unwrap_or(0.0),
                power: last.power.get(i).cloned().unwrap_or_default(),
            });
        }
        labels.push(format!("k={k}\n{} neurons", members.len()));
        rows.push(row);
    }
    let n = panels.len();
    let (rows, row_labels, cols) = if by_group {
        let cols = rows.iter().map(Vec::len).max().unwrap_or(1).clamp(1, 8);
        // A group with more panels than columns wraps onto extra rows.
        let mut wrapped = Vec::new();
        let mut wrapped_labels = Vec::new();
        for (row, label) in rows.into_iter().zip(labels) {
            for (c, chunk) in row.chunks(cols).enumerate() {
                wrapped.push(chunk.to_vec());
                wrapped_labels.push(if c == 0 { label.clone() } else { String::new() });
            }
        }
        (wrapped, Some(wrapped_labels), cols)
    } else {
        let cols = 6.min(n.max(1));
        let rows = (0..n)
            .collect::<Vec<_>>()
            .chunks(cols)
            .map(|c| c.to_vec())
            .collect();
        (rows, None, cols)
    };
    let title = format!(
        "{base} at step {} — showing {n} of {m} neurons, grouped by dominant frequency",
        last.step
    );
    (
        title.clone(),
        Ok(Fig::Grid(Grid {
            title,
            panels,
            rows,
            row_labels,
            cols,
            max_freq: last.p / 2,
        })),
    )
}

/// Left label column and bottom axis strip of the grid, pixels.
const GRID_LEFT: u32 = 150;
const GRID_BOTTOM: u32 = 70;
const GRID_TOP: u32 = 50;

impl Grid {
    fn row_height(&self) -> u32 {
        let r = self.rows.len().max(1) as u32;
        (1500 / r).clamp(95, 170)
    }

    fn size(&self) -> (u32, u32) {
        let w = 1400;
        let h = GRID_TOP + GRID_BOTTOM + self.row_height() * self.rows.len().max(1) as u32;
        (w, h)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let (w, h) = root.dim_in_pixel();
        root.draw(&Text::new(
            self.title.clone(),
            (w as i32 / 2, 12),
            title_style().pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        let rh = self.row_height() as i32;
        let cols = self.cols.max(1) as i32;
        let cw = (w as i32 - GRID_LEFT as i32 - 20) / cols;
        let kmax = self.max_freq as f64;
        // At most four ticks per panel, at round numbers.
        let ticks: Vec<usize> = {
            let raw = (self.max_freq / 3).max(1);
            let step = [1, 2, 5]
                .iter()
                .flat_map(|&b| (0..7).map(move |e| b * 10usize.pow(e)))
                .filter(|&s| s >= raw)
                .min()
                .unwrap_or(raw);
            (0..=self.max_freq).filter(|k| k % step == 0).collect()
        };
        for (r, row) in self.rows.iter().enumerate() {
            let y0 = GRID_TOP as i32 + r as i32 * rh;
            if let Some(label) = self.row_labels.as_ref().and_then(|l| l.get(r)) {
                for (line, text) in label.lines().enumerate() {
                    root.draw(&Text::new(
                        text.to_string(),
                        (GRID_LEFT as i32 - 46, y0 + rh / 2 - 10 + 20 * line as i32),
                        (if line == 0 {
                            desc_style()
                        } else {
                            label_style().color(&GREY)
                        })
                        .pos(Pos::new(HPos::Right, VPos::Center)),
                    ))?;
                }
            }
            for (c, &pi) in row.iter().enumerate() {
                let Some(panel) = self.panels.get(pi) else {
                    continue;
                };
                let x0 = GRID_LEFT as i32 + c as i32 * cw;
                let cell = root.clone().shrink((x0, y0), (cw as u32, rh as u32));
                let mut chart = ChartBuilder::on(&cell)
                    .margin(6)
                    .margin_top(24)
                    .build_cartesian_2d(-0.7..(kmax + 0.7), 0.0..1.05)?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .y_labels(3)
                    .x_labels(0)
                    .bold_line_style(BLACK.mix(0.08))
                    .light_line_style(WHITE.mix(0.0))
                    .draw()?;
                // Bars under half a pixel are left out (they would not show, and at
                // large p they would make the SVG huge).
                let min_share = 0.5 / f64::from(rh.max(1) as u32);
                // Bars at least ~2 pixels wide, however many frequencies share the panel.
                let (px_range, _) = chart.plotting_area().get_pixel_range();
                let px_per_k = f64::from((px_range.end - px_range.start).max(1)) / (kmax + 1.4);
                let half = (1.0 / px_per_k).max(0.42);
                chart.draw_series(
                    panel
                        .power
                        .iter()
                        .enumerate()
                        .filter(|&(k, &v)| k == panel.freq || v >= min_share)
                        .map(|(k, &v)| {
                            let color = if k == panel.freq { ORANGE } else { BLUE };
                            Rectangle::new(
                                [
                                    (k as f64 - half, 0.0),
                                    (k as f64 + half, v.clamp(0.0, 1.05)),
                                ],
                                color.filled(),
                            )
                        }),
                )?;
                let (px, py) = chart.plotting_area().get_pixel_range();
                root.draw(&Rectangle::new(
                    [(px.start, py.start), (px.end, py.end)],
                    BLACK.mix(0.35).stroke_width(1),
                ))?;
                root.draw(&Text::new(
                    if self.row_labels.is_some() {
                        format!("#{} · {:.0}%", panel.neuron, 100.0 * panel.frac)
                    } else {
                        format!(
                            "#{} · k={} · {:.0}%",
                            panel.neuron,
                            panel.freq,
                            100.0 * panel.frac
                        )
                    },
                    ((px.start + px.end) / 2, py.start - 3),
                    label_style().pos(Pos::new(HPos::Center, VPos::Bottom)),
                ))?;
                // x ticks under every panel with no panel below it.
                let last_row = self.rows.get(r + 1).is_none_or(|next| next.len() <= c);
                if c == 0 {
                    for (v, s) in [(0.0, "0"), (1.0, "1")] {
                        let at = chart.backend_coord(&(-0.7, v));
                        root.draw(&Text::new(
                            s,
                            (at.0 - 5, at.1),
                            label_style().pos(Pos::new(HPos::Right, VPos::Center)),
                        ))?;
                    }
                }
                if last_row {
                    for &k in &ticks {
                        let at = chart.backend_coord(&(k as f64, 0.0));
                        root.draw(&PathElement::new(
                            vec![at, (at.0, at.1 + 4)],
                            BLACK.stroke_width(1),
                        ))?;
                        root.draw(&Text::new(
                            k.to_string(),
                            (at.0, at.1 + 6),
                            label_style().pos(Pos::new(HPos::Center, VPos::Top)),
                        ))?;
                    }
                }
            }
        }
        let bottom = h as i32 - 16;
        root.draw(&Text::new(
            format!("frequency k (0 … {}); bar height = share of the neuron's power; orange = dominant k", self.max_freq),
            (GRID_LEFT as i32 + (w as i32 - GRID_LEFT as i32) / 2, bottom),
            desc_style().pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
        Ok(())
    }
}

// --- neurons per frequency --------------------------------------------------------------

struct PerFreq {
    title: String,
    /// Index = frequency (0 unused).
    all: Vec<usize>,
    sinusoidal: Vec<usize>,
    /// Share of the weight norm² per frequency (index 0 unused).
    norm_share: Vec<f64>,
    equal_share: f64,
    threshold: f64,
}

fn prep_per_freq(a: &RunAnalysis) -> (String, std::result::Result<Fig, String>) {
    let title = format!(
        "Neurons per dominant frequency{} — {}",
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
    let title = format!("{title}: {used} of {} frequencies used", f.max_freq);
    (
        title.clone(),
        Ok(Fig::PerFreq(PerFreq {
            title,
            all: f.neurons_per_freq.clone(),
            sinusoidal: f.sinusoidal_per_freq.clone(),
            norm_share: f.norm_share_per_freq.clone(),
            equal_share: f.neurons as f64 / f.max_freq as f64,
            threshold: f.threshold,
        })),
    )
}

impl PerFreq {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, &self.title)?;
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
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.4..kmax as f64 + 0.6, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc("dominant frequency k")
            .y_desc("neurons")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
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
        chart
            .draw_series(DashedLineSeries::new(
                [(0.4, e), (kmax as f64 + 0.6, e)],
                10,
                6,
                GREY.stroke_width(2),
            ))?
            .label(format!("equal share m/⌊p/2⌋ = {e:.1}"))
            .legend(line_legend(GREY, 2));
        // The weight each frequency holds, on the neuron axis (share × m), so the same
        // equal-share line reads for both: the max-margin solution equalizes the weight,
        // not necessarily the neuron counts.
        let neurons: usize = self.all.iter().sum();
        let dot = ORANGE;
        chart
            .draw_series((1..=kmax).filter_map(|k| {
                let share = self.norm_share.get(k).copied()?;
                (share > 0.0)
                    .then(|| Circle::new((k as f64, share * neurons as f64), 5, dot.filled()))
            }))?
            .label("weight ‖u‖²+‖v‖²+‖w‖² share × m")
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, dot.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

// --- phase residuals --------------------------------------------------------------------

struct Phases {
    title: String,
    /// θu + θv − θw of the sinusoidal neurons, in (−π, π].
    residuals: Vec<f64>,
    /// Half-width of the zoomed panel, when the residuals are concentrated enough for
    /// one to help.
    zoom: Option<f64>,
}

/// Bins of the full-range residual histogram (and of the zoomed one).
const PHASE_BINS: usize = 72;
const ZOOM_BINS: usize = 40;

fn prep_phases(a: &RunAnalysis) -> (String, std::result::Result<Fig, String>) {
    let base = format!(
        "Phase residual θu + θv − θw of sinusoidal neurons{}",
        model0_phrase(a)
    );
    let Some(neurons) = a.neurons.first() else {
        return (base, Err("no models in the analysis".into()));
    };
    let residuals: Vec<f64> = neurons
        .iter()
        .filter(|f| f.sinusoidal && f.residual.is_finite())
        .map(|f| f.residual)
        .collect();
    if residuals.is_empty() {
        return (
            base,
            Err(format!(
                "no sinusoidal neurons (each of u, v, w ≥ {} of its power at one frequency) in model 0",
                a.summary.threshold
            )),
        );
    }
    let mut abs: Vec<f64> = residuals.iter().map(|r| r.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let mean = abs.iter().sum::<f64>() / abs.len() as f64;
    // Zoom on the central 98% when it is much narrower than the full circle.
    let q = quantile(&abs, 0.98);
    let zoom = (q < PI / 8.0).then(|| {
        let half = (1.3 * q).max(1e-3);
        // A round number of the scale of `half`, so the zoomed axis has clean ticks.
        let scale = 10f64.powf(half.log10().floor());
        (half / scale).ceil() * scale
    });
    let title = format!(
        "{base}: {} of {} neurons, mean |θu + θv − θw| = {} rad",
        residuals.len(),
        neurons.len(),
        fmt_num(mean)
    );
    (
        title.clone(),
        Ok(Fig::Phases(Phases {
            title,
            residuals,
            zoom,
        })),
    )
}

/// Counts of `values` in `bins` equal bins over (lo, hi] (values outside are dropped).
fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        if v < lo || v > hi {
            continue;
        }
        // (lo, hi] → bins; lo itself goes to the first.
        let b = (((v - lo) / width).ceil() as isize - 1).clamp(0, bins as isize - 1);
        counts[b as usize] += 1;
    }
    counts
}

impl Phases {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, &self.title)?;
        let full_ticks: Vec<(f64, String)> = [
            (-PI, "−π"),
            (-PI / 2.0, "−π/2"),
            (0.0, "0"),
            (PI / 2.0, "π/2"),
            (PI, "π"),
        ]
        .iter()
        .map(|&(v, s)| (v, s.to_string()))
        .collect();
        match self.zoom {
            None => self.panel(
                root,
                &area,
                (-PI, PI),
                PHASE_BINS,
                &full_ticks,
                "θu + θv − θw (radians, wrapped to (−π, π])",
            ),
            Some(half) => {
                let (left, right) = area.split_horizontally(area.dim_in_pixel().0 * 11 / 20);
                self.panel(
                    root,
                    &left,
                    (-PI, PI),
                    PHASE_BINS,
                    &full_ticks,
                    "θu + θv − θw (radians, wrapped to (−π, π])",
                )?;
                let ticks: Vec<(f64, String)> = [-1.0, -0.5, 0.0, 0.5, 1.0]
                    .iter()
                    .map(|&f| (f * half, fmt_num(f * half)))
                    .collect();
                let outside = self.residuals.iter().filter(|r| r.abs() > half).count();
                let desc = if outside > 0 {
                    format!(
                        "zoom: |θu + θv − θw| ≤ {} rad ({outside} outside)",
                        fmt_num(half)
                    )
                } else {
                    format!("zoom: |θu + θv − θw| ≤ {} rad", fmt_num(half))
                };
                self.panel(
                    root,
                    &right,
                    (-1.08 * half, 1.08 * half),
                    ZOOM_BINS,
                    &ticks,
                    &desc,
                )
            }
        }
    }

    fn panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        area: &DrawingArea<DB, Shift>,
        (lo, hi): (f64, f64),
        bins: usize,
        ticks: &[(f64, String)],
        desc: &str,
    ) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let counts = histogram(&self.residuals, lo, hi, bins);
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .margin_right(40)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(lo..hi, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(desc)
            .y_desc("neurons")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        x_ticks(root, &chart, ticks)?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (0.0, top)],
            8,
            6,
            GREY.stroke_width(1),
        ))?;
        let width = (hi - lo) / bins as f64;
        chart.draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(b, &c)| {
                    let x = lo + b as f64 * width;
                    Rectangle::new([(x, 0.0), (x + width, c as f64)], BLUE.filled())
                }),
        )?;
        Ok(())
    }
}

// --- IPR over training ------------------------------------------------------------------

struct IprLine {
    label: String,
    color: RGBColor,
    /// (step, mean, p10, p90).
    points: Vec<(f64, f64, f64, f64)>,
}

struct IprFig {
    title: String,
    lines: Vec<IprLine>,
    /// IPR of a spectrum spread evenly over all ⌊p/2⌋ + 1 frequencies.
    uniform: f64,
    steps: (f64, f64),
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

fn prep_ipr(a: &RunAnalysis) -> (String, std::result::Result<Fig, String>) {
    let (models, phrase) = shown_models(a);
    let title = format!(
        "Concentration of neuron spectra (IPR) over training — {}{phrase}",
        a.summary.task
    );
    if let Some(reason) = timeline_reason(a) {
        return (title, Err(reason));
    }
    let mut lines = Vec::new();
    for &k in &models {
        let Some(records) = a.timeline.get(k) else {
            continue;
        };
        let points: Vec<(f64, f64, f64, f64)> = records
            .iter()
            .filter(|r| r.width() > 0)
            .map(|r| {
                let mut v: Vec<f64> = r.power.iter().map(|p| progress::ipr(p)).collect();
                v.sort_by(f64::total_cmp);
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                (r.step as f64, mean, quantile(&v, 0.1), quantile(&v, 0.9))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let (color, label) = if models.len() == 1 {
            (
                BLUE,
                "mean IPR over neurons (band: 10th–90th percentile)".to_string(),
            )
        } else {
            (
                PALETTE[k % PALETTE.len()],
                format!("model {k}: mean (band: 10th–90th pct.)"),
            )
        };
        lines.push(IprLine {
            label,
            color,
            points,
        });
    }
    if lines.is_empty() {
        return (title, Err("the spectra snapshots have no neurons".into()));
    }
    let (lo, hi) =
        span(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0))).unwrap_or((0.0, 1.0));
    (
        title.clone(),
        Ok(Fig::Ipr(IprFig {
            title,
            lines,
            uniform: 1.0 / (a.summary.p / 2 + 1) as f64,
            steps: step_range(lo, hi),
        })),
    )
}

impl IprFig {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Draw
    where
        DB::ErrorType: 'static,
    {
        let area = titled(root, &self.title)?;
        let (x0, x1) = self.steps;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0.0..1.05)?;
        chart
            .configure_mesh()
            .x_desc("training step")
            .y_desc("inverse participation ratio")
            .x_label_formatter(&|v| fmt_step(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .axis_desc_style(desc_style())
            .label_style(label_style())
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for l in &self.lines {
            let mut band: Vec<(f64, f64)> = l.points.iter().map(|p| (p.0, p.3)).collect();
            band.extend(l.points.iter().rev().map(|p| (p.0, p.2)));
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                l.color.mix(0.2).filled(),
            )))?;
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().map(|p| (p.0, p.1)),
                    l.color.stroke_width(2),
                ))?
                .label(l.label.clone())
                .legend(line_legend(l.color, 2));
        }
        let u = self.uniform;
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, u), (x1, u)],
                10,
                6,
                GREY.stroke_width(2),
            ))?
            .label(format!("power spread evenly over all k: {}", fmt_num(u)))
            .legend(line_legend(GREY, 2));
        // The mean climbs from the bottom left to the top right and the uniform line runs
        // along the bottom: the middle right is the one place a legend covers neither.
        legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(-0.0015), "\u{2212}1.5e\u{2212}3");
        assert_eq!(fmt_num(1000.0), "1000");
        assert_eq!(fmt_step(40000.0), "40000");
        assert_eq!(fmt_step(200000.0), "200k");
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(254, 232, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }

    #[test]
    fn quantiles() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert!((quantile(&v, 0.1) - 0.4).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
