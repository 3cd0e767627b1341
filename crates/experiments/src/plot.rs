//! Curves with 95% bands on a logarithmic x axis, written as PNG and SVG:
//! a metric against the training budget (one line per strategy), robust
//! accuracy against epsilon (one line per attack).

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::summary::SummaryRow;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// The bitmap backend renders text with ab_glyph and needs a font; one is
/// embedded so plots look the same on every machine.
fn register_font() {
    REGISTER.call_once(|| {
        // The font is a compile-time constant known to parse.
        assert!(plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok(), "the embedded font parses");
    });
}

/// Baselines' dashed lines.
const LEVEL_PALETTE: [RGBColor; 4] = [RGBColor(40, 40, 40), RGBColor(140, 20, 60), RGBColor(110, 110, 110), RGBColor(20, 80, 120)];

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One point of a curve: its mean and 95% interval (NaN: no band).
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub x: f64,
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// A labelled line.
#[derive(Debug, Clone)]
pub struct Curve {
    pub label: String,
    pub points: Vec<Point>,
}

/// A horizontal line: a level the curves are compared with (a baseline
/// guard's score).
#[derive(Debug, Clone)]
pub struct Level {
    pub label: String,
    pub value: f64,
}

/// Titles of a figure.
#[derive(Debug, Clone, Copy)]
pub struct Axes<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

/// How the x axis maps values: logarithmic (base 2, labelled with the
/// values themselves: budgets, epsilons) or linear on [0, 1] (rates).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Log2,
    Unit,
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, curves: &[Curve], levels: &[Level], axes: Axes, scale: Scale) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
    // log2(x) on a linear scale, so every doubling gets a tick labelled with x itself.
    let fx = |x: f64| if scale == Scale::Log2 { x.log2() } else { x };
    let points = || curves.iter().flat_map(|c| c.points.iter());
    let xmin = points().map(|p| fx(p.x)).fold(f64::INFINITY, f64::min);
    let xmax = points().map(|p| fx(p.x)).fold(f64::NEG_INFINITY, f64::max).max(xmin + 1.0);
    let (xmin, xmax) = if scale == Scale::Unit {
        (0.0, 1.0)
    } else if xmin.is_finite() {
        (xmin, xmax)
    } else {
        (0.0, 1.0)
    };
    let margin = if scale == Scale::Unit { 0.02 } else { 0.2 };
    let levels_at = || levels.iter().map(|l| l.value).filter(|v| v.is_finite());
    let lo = points()
        .map(|p| if p.ci_low.is_finite() { p.ci_low } else { p.mean })
        .chain(levels_at())
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = points()
        .map(|p| if p.ci_high.is_finite() { p.ci_high } else { p.mean })
        .chain(levels_at())
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((xmin - margin)..(xmax + margin), (lo - pad)..(hi + pad))
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .disable_x_mesh()
        .y_desc(axes.y)
        .x_labels(if scale == Scale::Unit { 6 } else { (xmax - xmin).round() as usize + 1 })
        .x_label_formatter(&|v| {
            if scale == Scale::Unit {
                return format!("{v:.1}");
            }
            let x = 2f64.powf(*v);
            if x >= 1.0 {
                format!("{}", x.round() as u64)
            } else {
                // Three significant digits, trailing zeros dropped: 0.0156, 0.125.
                let digits = (2 - x.log10().floor() as i32).max(0) as usize;
                format!("{x:.digits$}").trim_end_matches('0').to_string()
            }
        })
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    for (k, curve) in curves.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut pts: Vec<&Point> = curve.points.iter().collect();
        pts.sort_by(|a, b| a.x.total_cmp(&b.x));
        if pts.is_empty() {
            continue;
        }
        let band: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.ci_low.is_finite())
            .map(|p| (fx(p.x), p.ci_high))
            .chain(pts.iter().rev().filter(|p| p.ci_low.is_finite()).map(|p| (fx(p.x), p.ci_low)))
            .collect();
        if band.len() >= 4 {
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.18)))).map_err(|e| format!("{e:?}"))?;
        }
        let line: Vec<(f64, f64)> = pts.iter().map(|p| (fx(p.x), p.mean)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|e| format!("{e:?}"))?
            .label(curve.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        if scale == Scale::Log2 {
            chart.draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|e| format!("{e:?}"))?;
        }
    }
    for (k, level) in levels.iter().filter(|l| l.value.is_finite()).enumerate() {
        // Dashed, in greys and darker tones than the curves.
        let color = LEVEL_PALETTE[k % LEVEL_PALETTE.len()];
        let (a, b) = (xmin - margin, xmax + margin);
        let dashes = 24;
        let step = (b - a) / f64::from(dashes);
        let segments: Vec<Vec<(f64, f64)>> = (0..dashes)
            .filter(|i| i % 2 == 0)
            .map(|i| vec![(a + step * f64::from(i), level.value), (a + step * f64::from(i + 1), level.value)])
            .collect();
        for (j, seg) in segments.into_iter().enumerate() {
            let drawn = chart.draw_series(LineSeries::new(seg, color.stroke_width(2))).map_err(|e| format!("{e:?}"))?;
            if j == 0 {
                drawn.label(level.label.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    root.present().map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// Writes `<stem>.png` and `<stem>.svg`: the curves on a logarithmic x
/// axis, and the levels as dashed horizontal lines.
pub fn plot_curves(curves: &[Curve], levels: &[Level], axes: Axes, stem: &Path) -> crate::Result<()> {
    render(curves, levels, axes, Scale::Log2, stem)
}

/// Writes `<stem>.png` and `<stem>.svg`: lines on an x axis of rates in
/// [0, 1] (ROC curves).
pub fn plot_lines(curves: &[Curve], axes: Axes, stem: &Path) -> crate::Result<()> {
    render(curves, &[], axes, Scale::Unit, stem)
}

fn render(curves: &[Curve], levels: &[Level], axes: Axes, scale: Scale, stem: &Path) -> crate::Result<()> {
    struct Lines<'a>(&'a [Curve], &'a [Level], Axes<'a>, Scale);
    impl Figure for Lines<'_> {
        fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
        where
            DB::ErrorType: 'static,
        {
            draw(root, self.0, self.1, self.2, self.3)
        }
    }
    write_figure(&Lines(curves, levels, axes, scale), stem)
}

/// Something drawn the same way on every backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// Writes `<stem>.png` and `<stem>.svg` of a figure, 900 x 560.
fn write_figure(figure: &impl Figure, stem: &Path) -> crate::Result<()> {
    let plot_error = |message: String| crate::Error::Plot { path: stem.to_path_buf(), message };
    register_font();
    let (w, h) = (900u32, 560u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    figure.draw(BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area()).map_err(plot_error)?;
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer matches size");
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)?;
    pairguard_run::write_atomic(&stem.with_extension("png"), &bytes.into_inner())?;
    let mut svg = String::new();
    figure.draw(SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area()).map_err(plot_error)?;
    pairguard_run::write_atomic(&stem.with_extension("svg"), svg.as_bytes())?;
    Ok(())
}

/// A table of values in [0, 1] as coloured cells, each with its value.
#[derive(Debug, Clone)]
pub struct Heatmap<'a> {
    pub title: &'a str,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `values[row][column]`; NaN cells are left blank.
    pub values: Vec<Vec<f64>>,
}

impl Figure for Heatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
        root.fill(&WHITE).map_err(err)?;
        let (nr, nc) = (self.rows.len(), self.columns.len());
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(90)
            .y_label_area_size(160)
            .build_cartesian_2d(0.0..nc as f64, 0.0..nr as f64)
            .map_err(err)?;
        let (columns, rows) = (self.columns.clone(), self.rows.clone());
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nc * 2 + 1)
            .y_labels(nr * 2 + 1)
            .x_label_formatter(&|v| {
                if (v.fract() - 0.5).abs() < 1e-9 { columns.get(*v as usize).cloned().unwrap_or_default() } else { String::new() }
            })
            .y_label_formatter(&|v| {
                if (v.fract() - 0.5).abs() < 1e-9 { rows.get(nr - 1 - *v as usize).cloned().unwrap_or_default() } else { String::new() }
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (i, row) in self.values.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let y = (nr - 1 - i) as f64;
                let (x0, x1) = (j as f64, j as f64 + 1.0);
                if !v.is_finite() {
                    continue;
                }
                // White at 0 to a deep blue at 1.
                let t = v.clamp(0.0, 1.0);
                let shade = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
                let colour = RGBColor(shade(255.0, 31.0), shade(255.0, 90.0), shade(255.0, 160.0));
                chart.draw_series(std::iter::once(Rectangle::new([(x0, y), (x1, y + 1.0)], colour.filled()))).map_err(err)?;
                let ink = if t > 0.55 { WHITE } else { BLACK };
                let label = Text::new(
                    format!("{v:.2}"),
                    (x0 + 0.5, y + 0.5),
                    ("sans-serif", 16).into_font().color(&ink).pos(Pos::new(HPos::Center, VPos::Center)),
                );
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
        }
        root.present().map_err(err)?;
        Ok(())
    }
}

/// Writes `<stem>.png` and `<stem>.svg` of a heatmap.
pub fn plot_heatmap(heatmap: &Heatmap, stem: &Path) -> crate::Result<()> {
    write_figure(heatmap, stem)
}

/// Writes `<stem>.png` and `<stem>.svg` for one (test, metric): the metric
/// against the training budget, one line per strategy, one dashed line per
/// baseline.
pub fn plot_metric(rows: &[&SummaryRow], strategies: &[String], levels: &[Level], title: &str, metric: &str, stem: &Path) -> crate::Result<()> {
    let curves: Vec<Curve> = strategies
        .iter()
        .map(|s| Curve {
            label: s.clone(),
            points: rows
                .iter()
                .filter(|r| &r.strategy == s)
                .map(|r| Point { x: r.budget as f64, mean: r.mean, ci_low: r.ci_low, ci_high: r.ci_high })
                .collect(),
        })
        .collect();
    plot_curves(&curves, levels, Axes { title, x: "training budget (samples, log scale)", y: metric }, stem)
}
