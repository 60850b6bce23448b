//! What every figure shares: the embedded font, colours and text sizes, the title above
//! the plot, the axes and their tick labels, the legend box, line series with their
//! swatches, and writing a figure as PNG and SVG. Keeping these in one place is what
//! makes the seven pictures read as one set.
//!
//! (Just over 600 lines: the shared pieces are small and many; split, each figure would
//! import from several scaffolding files instead of one.)

use super::PictureFiles;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// DejaVu Sans (see assets/fonts/LICENSE-DejaVu.txt), embedded so pictures render the
/// same on machines without fonts.
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Font family every text style uses.
const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process.
pub(crate) fn ensure_font() -> Result<()> {
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

/// What a drawing step returns: its value or any plotters error, boxed.
pub(crate) type Fallible<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What a drawing function returns.
pub(crate) type Draw = Fallible<()>;

/// A plotters backend whose errors can be boxed into [`Draw`] (both backends written
/// here), so drawing functions need no `where` clause of their own.
pub(crate) trait Backend: DrawingBackend<ErrorType: 'static> {}

impl<T: DrawingBackend<ErrorType: 'static>> Backend for T {}

/// A whole picture or a part of it, in pixels.
pub(crate) type Area<DB> = DrawingArea<DB, Shift>;

/// A chart with an x and a y axis, on an [`Area`].
pub(crate) type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

// ---------------------------------------------------------------------------------------
// Figures and their files

/// A figure's data, drawable on any plotters backend.
pub(crate) trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32) {
        (1000, 600)
    }

    /// Draws `title` on `root` and returns the area left for the figure: by default the
    /// centred title every picture shares, shrunk to fit.
    fn title<DB: Backend>(&self, root: &Area<DB>, title: &str) -> Fallible<Area<DB>> {
        titled(root, title)
    }

    /// Draws the figure on `area`; `root`, the whole picture, takes what is placed by
    /// pixel outside the charts (stage labels, tick labels, group labels).
    fn draw<DB: Backend>(&self, root: &Area<DB>, area: &Area<DB>) -> Draw;
}

/// A [`Figure`] on the two backends [`render`] writes: object safe, so figures of
/// different types share one list.
pub(crate) trait Render: Send + Sync {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// The vector version.
    fn svg(&self, root: &Area<SVGBackend<'_>>, title: &str) -> Draw;
    /// The raster version.
    fn png(&self, root: &Area<BitMapBackend<'_>>, title: &str) -> Draw;
}

impl<F: Figure + Send + Sync> Render for F {
    fn size(&self) -> (u32, u32) {
        Figure::size(self)
    }
    fn svg(&self, root: &Area<SVGBackend<'_>>, title: &str) -> Draw {
        paint(self, root, title)
    }
    fn png(&self, root: &Area<BitMapBackend<'_>>, title: &str) -> Draw {
        paint(self, root, title)
    }
}

/// White background, the title, the figure, and the backend flushed.
fn paint<F: Figure, DB: Backend>(fig: &F, root: &Area<DB>, title: &str) -> Draw {
    root.fill(&WHITE)?;
    let area = fig.title(root, title)?;
    fig.draw(root, &area)?;
    Ok(root.present()?)
}

/// Renders one figure as SVG (in memory) and PNG (temp file), both renamed into place.
pub(crate) fn render(
    fig: &dyn Render,
    title: &str,
    out: &Path,
    name: &str,
) -> Result<PictureFiles> {
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
                fig.svg(&root, title).map_err(|e| failed(&svg, e))?;
            }
            write_atomic(&svg, text.as_bytes())
        },
        || -> Result<()> {
            // BitMapBackend picks the encoder from the extension: keep `.png` last.
            let tmp = out.join(format!(".{name}.tmp-{}.png", std::process::id()));
            let result = (|| -> Result<()> {
                {
                    let root = BitMapBackend::new(&tmp, size).into_drawing_area();
                    fig.png(&root, title).map_err(|e| failed(&png, e))?;
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
// Colours and text

pub(crate) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(crate) const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub(crate) const GREEN: RGBColor = RGBColor(44, 160, 44);
pub(crate) const RED: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub(crate) const GREY: RGBColor = RGBColor(100, 100, 100);
pub(crate) const LIGHT_BLUE: RGBColor = RGBColor(174, 199, 232);
const PALETTE: [RGBColor; 4] = [BLUE, ORANGE, GREEN, PURPLE];

/// Colour and label suffix of model `k` in a picture showing `shown` models: blue and
/// nothing when alone, else a colour of its own and ", model k".
pub(crate) fn model_style(k: usize, shown: usize) -> (RGBColor, String) {
    if shown == 1 {
        (BLUE, String::new())
    } else {
        (PALETTE[k % PALETTE.len()], format!(", model {k}"))
    }
}

// Plotters draws text at 1/1.24 of the nominal size (in both backends): these give
// about 21.8, 16.1 and 14.5 px.
const TITLE_PX: f64 = 27.0;
const DESC_PX: f64 = 20.0;
const LABEL_PX: f64 = 18.0;
/// Smallest nominal title size when a long title is shrunk to fit (about 15.3 px).
const MIN_TITLE_PX: f64 = 19.0;

pub(crate) fn title_style() -> TextStyle<'static> {
    (FAMILY, TITLE_PX).into_font().color(&BLACK)
}
pub(crate) fn desc_style() -> TextStyle<'static> {
    (FAMILY, DESC_PX).into_font().color(&BLACK)
}
pub(crate) fn label_style() -> TextStyle<'static> {
    (FAMILY, LABEL_PX).into_font().color(&BLACK)
}

/// `root` below a centred title, the font shrunk (down to [`MIN_TITLE_PX`]) until the
/// title fits.
fn titled<DB: Backend>(root: &Area<DB>, title: &str) -> Fallible<Area<DB>> {
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

/// The stops of [`viridis`] (also handed to the sweep explorer's page, which colours its
/// heat maps the same way).
pub(crate) const VIRIDIS_STOPS: [(u8, u8, u8); 8] = [
    (68, 1, 84),
    (70, 50, 127),
    (54, 92, 141),
    (39, 127, 143),
    (31, 162, 136),
    (74, 194, 110),
    (160, 219, 57),
    (254, 232, 37),
];

/// Viridis (the heat maps' colour scale), linearly interpolated between 8 stops; `t` is clamped to [0, 1].
pub(crate) fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 8] = VIRIDIS_STOPS;
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

// ---------------------------------------------------------------------------------------
// Numbers and ranges

/// A tick label: plain decimals in [0.01, 1e5), else scientific with a trimmed
/// mantissa; typographic minus.
pub(crate) fn fmt_num(v: f64) -> String {
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
pub(crate) fn fmt_step(v: f64) -> String {
    if v.abs() >= 1e5 {
        format!("{}k", fmt_num(v / 1e3))
    } else {
        format!("{v:.0}")
    }
}

/// Finite min and max of `values`.
pub(crate) fn span(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// A non-empty axis range around [lo, hi] with `frac` of its width added either side.
pub(crate) fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    let w = hi - lo;
    if w > 0.0 {
        (lo - frac * w, hi + frac * w)
    } else {
        let d = if lo != 0.0 { lo.abs() * 0.1 } else { 1.0 };
        (lo - d, hi + d)
    }
}

/// A step axis over every x of `steps`, starting at the first step (0 usually), with a
/// small right margin.
pub(crate) fn step_range(steps: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = span(steps).unwrap_or((0.0, 1.0));
    if hi > lo {
        (lo, hi + 0.01 * (hi - lo))
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

// ---------------------------------------------------------------------------------------
// Axes

/// How the x axis is labelled.
#[derive(Clone, Copy)]
enum XAxis {
    /// Training steps: plotters' ticks, [`fmt_step`] labels, vertical grid lines.
    Steps,
    /// No plotters ticks or vertical grid lines: the figure draws [`x_ticks`] itself.
    Own,
}

/// One chart's axes: the frame, descriptions, tick labels and grid, with the margins
/// every figure shares unless it says otherwise.
pub(crate) struct Axes<'a> {
    x_desc: &'a str,
    y_desc: &'a str,
    x: XAxis,
    /// Draw horizontal grid lines (and vertical ones on a step axis).
    grid: bool,
    /// Tick labels of the y axis; `None`: none at all.
    y_fmt: Option<fn(&f64) -> String>,
    top: u32,
    right: u32,
    y_area: u32,
}

impl<'a> Axes<'a> {
    /// A chart over training steps.
    pub(crate) fn over_steps(y_desc: &'a str) -> Self {
        Axes {
            x_desc: "training step",
            y_desc,
            x: XAxis::Steps,
            grid: true,
            y_fmt: Some(num_label),
            top: 12,
            right: 30,
            y_area: 70,
        }
    }

    /// A chart whose x ticks the figure places itself (frequencies, angles).
    pub(crate) fn own_x_ticks(x_desc: &'a str, y_desc: &'a str) -> Self {
        Axes {
            x: XAxis::Own,
            x_desc,
            ..Axes::over_steps(y_desc)
        }
    }

    /// Labels of the y ticks.
    pub(crate) fn y_labels(self, fmt: fn(&f64) -> String) -> Self {
        Axes {
            y_fmt: Some(fmt),
            ..self
        }
    }

    /// Neither y tick labels nor grid lines (the figure labels its rows itself).
    pub(crate) fn bare_y(self) -> Self {
        Axes {
            y_fmt: None,
            grid: false,
            ..self
        }
    }

    /// Margins in pixels: above the plot, right of it, and the y label area's width.
    pub(crate) fn margins(self, top: u32, right: u32, y_area: u32) -> Self {
        Axes {
            top,
            right,
            y_area,
            ..self
        }
    }

    /// Builds the chart on `area` over `x` × `y` and draws its axes.
    pub(crate) fn draw<'b, DB, X, Y>(
        &self,
        area: &'b Area<DB>,
        x: X,
        y: Y,
    ) -> Fallible<Chart<'b, DB, X::CoordDescType, Y::CoordDescType>>
    where
        DB: Backend,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .margin_top(self.top)
            .margin_right(self.right)
            .x_label_area_size(50)
            .y_label_area_size(self.y_area)
            .build_cartesian_2d(x, y)?;
        let step_label = |v: &f64| fmt_step(*v);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .axis_desc_style(desc_style())
            .label_style(label_style());
        match self.x {
            XAxis::Steps => mesh.x_label_formatter(&step_label),
            XAxis::Own => mesh.disable_x_mesh().x_labels(0),
        };
        match &self.y_fmt {
            Some(f) => mesh.y_label_formatter(f),
            None => mesh.y_labels(0),
        };
        if self.grid {
            mesh.light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.12));
        } else {
            mesh.disable_mesh();
        }
        mesh.draw()?;
        Ok(chart)
    }
}

/// Tick labels by [`fmt_num`].
pub(crate) fn num_label(v: &f64) -> String {
    fmt_num(*v)
}

/// Tick labels as whole numbers (counts, percentages).
pub(crate) fn whole_label(v: &f64) -> String {
    format!("{v:.0}")
}

/// Tick labels with one decimal (shares).
pub(crate) fn tenth_label(v: &f64) -> String {
    format!("{v:.1}")
}

/// Tick marks and labels below the x axis of `chart` at chosen values (plotters picks
/// its own "nice" values otherwise).
pub(crate) fn x_ticks<DB, Y>(
    root: &Area<DB>,
    chart: &Chart<'_, DB, RangedCoordf64, Y>,
    ticks: &[(f64, String)],
) -> Draw
where
    DB: Backend,
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

/// A horizontal dashed line across the chart at `y`, with its legend entry.
pub(crate) fn dashed_level<'a, DB, Y>(
    chart: &mut Chart<'a, DB, RangedCoordf64, Y>,
    y: f64,
    color: RGBColor,
    label: String,
) -> Draw
where
    DB: Backend + 'a,
    Y: Ranged<ValueType = f64>,
{
    let x = chart.x_range();
    chart
        .draw_series(DashedLineSeries::new(
            [(x.start, y), (x.end, y)],
            10,
            6,
            color.stroke_width(2),
        ))?
        .label(label)
        .legend(line_legend(color, 2));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Legends and line series

/// Draws the series labels of `chart` in one style for every picture: a light box with a
/// thin border at `position` (each picture picks the corner its data leaves empty).
pub(crate) fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Draw
where
    DB: Backend + 'a,
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

/// A legend swatch for a line.
pub(crate) fn line_legend(
    color: RGBColor,
    width: u32,
) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(width))
}

/// A legend swatch for a filled box.
pub(crate) fn box_legend(color: RGBAColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], color.filled())
}

/// A line of (x, y) points.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) dashed: bool,
    pub(crate) points: Vec<(f64, f64)>,
}

impl Series {
    /// Draws the line (a dot when it has one point) with its legend entry.
    pub(crate) fn draw<'a, DB, X, Y>(&self, chart: &mut Chart<'a, DB, X, Y>) -> Draw
    where
        DB: Backend + 'a,
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

/// The step axis of figures made of [`Series`].
pub(crate) fn series_steps<'a>(series: impl IntoIterator<Item = &'a Series>) -> (f64, f64) {
    step_range(
        series
            .into_iter()
            .flat_map(|s| s.points.iter().map(|p| p.0)),
    )
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
}
