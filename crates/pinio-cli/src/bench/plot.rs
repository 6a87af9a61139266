//! The SVG plot: throughput and CPU time per byte against block size, one
//! line per configuration (read workloads; the deepest queue per size).

use super::report::Results;
use super::runner::Sample;
use crate::CliResult;
use pinio::Direction;
use plotters::prelude::*;
use std::path::Path;

/// One line: label and `(block size, median)` points.
type Line = (String, Vec<(f64, f64)>);

fn size_label(b: f64) -> String {
    let b = b as u64;
    if b >= 1 << 20 { format!("{}M", b >> 20) } else if b >= 1024 { format!("{}k", b >> 10) } else { b.to_string() }
}

fn panel(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, title: &str, lines: &[Line]) -> CliResult {
    let xs: Vec<f64> = lines.iter().flat_map(|l| l.1.iter().map(|p| p.0)).collect();
    let ys: Vec<f64> = lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)).filter(|y| y.is_finite() && *y > 0.0).collect();
    if xs.is_empty() || ys.is_empty() {
        return Ok(());
    }
    let (x0, x1) = (xs.iter().cloned().fold(f64::MAX, f64::min).log2() - 0.5, xs.iter().cloned().fold(0.0, f64::max).log2() + 0.5);
    let (y0, y1) = (ys.iter().cloned().fold(f64::MAX, f64::min), ys.iter().cloned().fold(0.0, f64::max));
    let (ly0, ly1) = (y0.log10().floor(), y1.log10().ceil().max(y0.log10().floor() + 1.0));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, ly0..ly1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("block size (log scale)")
        .x_label_formatter(&|x| size_label(2f64.powf(x.round())))
        .y_label_formatter(&|y| format!("{:.3}", 10f64.powf(*y)))
        .y_desc("log scale")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, pts)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f64, f64)> = pts.iter().filter(|p| p.1 > 0.0 && p.1.is_finite()).map(|p| (p.0.log2(), p.1.log10())).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes the plot of `results` to `path`.
pub fn write(results: &Results, path: &Path) -> CliResult {
    let lines = |f: fn(&Sample) -> f64| -> Vec<Line> { results.lines(Direction::Read, f) };
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(600);
    panel(&left, "read throughput, GB/s (median)", &lines(Sample::gbps))?;
    panel(&right, "CPU time per byte, ns (median; lower is better)", &lines(Sample::cpu_ns_per_byte))?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
