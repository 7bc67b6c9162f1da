//! The sweep as an SVG chart: mean cosine to the float model against the
//! fraction of multiply-accumulates kept, one line with recovery and one
//! without, each point labelled with its ratio (or MAC budget) and measured
//! speedup.

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;

use super::Point;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// Writes the chart of `points` for `model` to `path`.
pub fn write(path: &Path, points: &[Point], by: &str, model: &Path) -> Result<()> {
    crate::output::write(path, svg(points, by, model).as_bytes())
}

fn svg(points: &[Point], by: &str, model: &Path) -> String {
    let (x0, x1) = (0.0, 1.0);
    let lowest = points.iter().map(|p| p.cosine.0).fold(1.0, f64::min);
    let (y0, y1) = (((lowest - 0.02) * 50.0).floor() / 50.0, 1.0);
    let x = |v: f64| LEFT + (v - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - (v - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = model.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{title}: pruned int8 against the unpruned float model</text>"#,
        WIDTH / 2.0
    );
    // Axes, grid and ticks.
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{4:.0}%</text>"##,
            x(v),
            y(y0),
            y(y1),
            y(y0) + 18.0,
            v * 100.0
        );
    }
    let steps = ((y1 - y0) / 0.01).round() as usize;
    let every = steps.div_ceil(10).max(1);
    for i in (0..=steps).step_by(every) {
        let v = y0 + i as f64 * 0.01;
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#ddd"/><text x="{3}" y="{4}" text-anchor="end">{v:.2}</text>"##,
            x(x0),
            y(v),
            x(x1),
            x(x0) - 6.0,
            y(v) + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">multiply-accumulates kept</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="20" y="{0}" text-anchor="middle" transform="rotate(-90 20 {0})">mean cosine to fp32</text>"#,
        (TOP + HEIGHT - BOTTOM) / 2.0
    );
    for (recovery, colour, label) in [(true, "#1f77b4", "with least-squares recovery"), (false, "#d62728", "without")] {
        let series: Vec<&Point> = points.iter().filter(|p| p.recovery == recovery).collect();
        let line: Vec<String> = series.iter().map(|p| format!("{:.1},{:.1}", x(p.macs), y(p.cosine.0))).collect();
        let _ =
            writeln!(s, r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#, line.join(" "));
        for p in &series {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"/>"#, x(p.macs), y(p.cosine.0));
            if recovery {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{:.1} ({:.2}x)</text>"#,
                    x(p.macs) + 6.0,
                    y(p.cosine.0) - 8.0,
                    p.asked,
                    p.ms.1 / p.ms.0
                );
            }
        }
        let row = if recovery { 0.0 } else { 18.0 };
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="{colour}" stroke-width="2"/><text x="{3}" y="{4}">{label}</text>"#,
            x(0.05),
            y(y0) - 40.0 - row,
            x(0.05) + 24.0,
            x(0.05) + 30.0,
            y(y0) - 36.0 - row
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="11">labels: pruning {by} (int8 speedup over the unpruned int8 model)</text>"#,
        x(0.05),
        y(y0) - 76.0
    );
    s.push_str("</svg>\n");
    s
}
