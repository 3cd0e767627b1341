//! Sample-efficiency plots: a metric against the training budget (log
//! axis), one line per strategy with its 95% interval as a band, written as
//! PNG and SVG.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

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

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[&SummaryRow],
    strategies: &[String],
    title: &str,
    metric: &str,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
    // The x axis is log2(budget) on a linear scale, so every doubling gets a
    // tick labelled with the budget itself.
    let lx = |b: usize| (b as f64).log2();
    let bmin = lx(rows.iter().map(|r| r.budget).min().unwrap_or(1));
    let bmax = lx(rows.iter().map(|r| r.budget).max().unwrap_or(2)).max(bmin + 1.0);
    let lo = rows.iter().map(|r| if r.ci_low.is_finite() { r.ci_low } else { r.mean }).fold(f64::INFINITY, f64::min);
    let hi = rows.iter().map(|r| if r.ci_high.is_finite() { r.ci_high } else { r.mean }).fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.08).max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((bmin - 0.2)..(bmax + 0.2), (lo - pad)..(hi + pad))
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc("training budget (samples, log scale)")
        .disable_x_mesh()
        .y_desc(metric)
        .x_labels((bmax - bmin).round() as usize + 1)
        .x_label_formatter(&|v| format!("{}", 2f64.powf(*v).round() as u64))
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    for (k, s) in strategies.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut pts: Vec<&&SummaryRow> = rows.iter().filter(|r| &r.strategy == s).collect();
        pts.sort_by_key(|r| r.budget);
        if pts.is_empty() {
            continue;
        }
        let band: Vec<(f64, f64)> = pts
            .iter()
            .filter(|r| r.ci_low.is_finite())
            .map(|r| (lx(r.budget), r.ci_high))
            .chain(pts.iter().rev().filter(|r| r.ci_low.is_finite()).map(|r| (lx(r.budget), r.ci_low)))
            .collect();
        if band.len() >= 4 {
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.18)))).map_err(|e| format!("{e:?}"))?;
        }
        let line: Vec<(f64, f64)> = pts.iter().map(|r| (lx(r.budget), r.mean)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|e| format!("{e:?}"))?
            .label(s.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        chart.draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|e| format!("{e:?}"))?;
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

/// Writes `<stem>.png` and `<stem>.svg` for one (test, metric).
pub fn plot_metric(rows: &[&SummaryRow], strategies: &[String], title: &str, metric: &str, stem: &Path) -> crate::Result<()> {
    let plot_error = |message: String| crate::Error::Plot { path: stem.to_path_buf(), message };
    register_font();
    let (w, h) = (900u32, 560u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(root, rows, strategies, title, metric).map_err(plot_error)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer matches size");
    let png = stem.with_extension("png");
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)?;
    pairguard_data::hash::write_atomic(&png, &bytes.into_inner())?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        draw(root, rows, strategies, title, metric).map_err(plot_error)?;
    }
    pairguard_data::hash::write_atomic(&stem.with_extension("svg"), svg.as_bytes())?;
    Ok(())
}
