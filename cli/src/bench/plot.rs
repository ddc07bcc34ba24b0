//! `--plot FILE.svg`: ratio against compression throughput, and latency percentiles, per
//! backend (the first run shape of each). Plain SVG, no dependencies.

use std::fmt::Write as _;
use std::path::Path;

use super::{BackendResult, BenchReport};

const W: f64 = 960.0;
const H: f64 = 420.0;
const PAD: f64 = 70.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" upper bound for an axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let e = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * e >= v {
            return m * e;
        }
    }
    10.0 * e
}

/// A plotting area: top-left corner and size, in SVG units.
#[derive(Clone, Copy)]
struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
}

/// Frame, grid, ticks (0..max in quarters) and axis labels; an empty `xl` draws no x ticks.
fn axes(s: &mut String, p: Panel, (xmax, xl): (f64, &str), (ymax, yl): (f64, &str)) {
    let Panel { x0, y0, w, h } = p;
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##
    );
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let y = y0 + h - f * h;
        let x = x0 + f * w;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            x0 + w
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"#,
            x0 - 4.0,
            y + 4.0,
            trim(f * ymax)
        );
        if !xl.is_empty() {
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
                y0 + h + 14.0,
                trim(f * xmax)
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        x0 + w / 2.0,
        y0 + h + 32.0,
        esc(xl)
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
        x0 - 54.0,
        y0 + h / 2.0,
        x0 - 54.0,
        y0 + h / 2.0,
        esc(yl)
    );
}

fn trim(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Draws the report; one point / bar group per backend (its first run shape).
pub fn write_svg(report: &BenchReport, path: &Path) -> std::io::Result<()> {
    let mut firsts: Vec<&BackendResult> = Vec::new();
    for r in &report.results {
        if !firsts.iter().any(|f| f.backend == r.backend) {
            firsts.push(r);
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" font-size="14" text-anchor="middle">swapaccel bench — {} ({} pages) on {}</text>"#,
        W / 2.0,
        esc(&report.corpus.name),
        report.corpus.pages,
        esc(&report.machine.cpu_model)
    );

    // Left: ratio (y) against compression throughput (x).
    let (x0, y0, w, h) = (PAD, 50.0, W / 2.0 - PAD - 20.0, H - 110.0);
    let xmax = nice_max(
        firsts
            .iter()
            .map(|r| r.compress_mb_s.median)
            .fold(0.0, f64::max),
    );
    let ymax = nice_max(
        firsts
            .iter()
            .map(|r| r.ratio_nonzero)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    axes(
        &mut s,
        Panel { x0, y0, w, h },
        (xmax, "compress MB/s"),
        (ymax, "ratio (non-zero pages)"),
    );
    for (i, r) in firsts.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let x = x0 + r.compress_mb_s.median / xmax * w;
        let y = y0 + h - r.ratio_nonzero.min(ymax) / ymax * h;
        let _ = writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="5" fill="{c}"/>"#);
        let label = if r.emulator {
            format!("{} (emulator)", r.backend)
        } else {
            r.backend.clone()
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" fill="{c}">{}</text>"#,
            x + 7.0,
            y - 6.0,
            esc(&label)
        );
    }

    // Right: compression latency p50 / p99 / p999 per backend, grouped bars.
    let (x0, w) = (W / 2.0 + PAD, W / 2.0 - PAD - 20.0);
    let ymax = nice_max(
        firsts
            .iter()
            .map(|r| r.compress_us.p999)
            .fold(0.0, f64::max),
    );
    axes(
        &mut s,
        Panel { x0, y0, w, h },
        (0.0, ""),
        (ymax, "compress latency µs (p50, p99, p999)"),
    );
    let group = w / firsts.len().max(1) as f64;
    for (i, r) in firsts.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let bw = group / 4.0;
        for (k, (v, op)) in [
            (r.compress_us.p50, 1.0),
            (r.compress_us.p99, 0.65),
            (r.compress_us.p999, 0.35),
        ]
        .iter()
        .enumerate()
        {
            let bh = v.min(ymax) / ymax * h;
            let x = x0 + i as f64 * group + bw * (k as f64 + 0.5);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{c}" fill-opacity="{op}"/>"#,
                y0 + h - bh,
                bw * 0.9
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            x0 + (i as f64 + 0.5) * group,
            y0 + h + 14.0,
            esc(&r.backend)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="end">bars: p50 (solid), p99, p999 (faintest)</text>"#,
        W - 25.0,
        y0 + 14.0
    );
    let _ = writeln!(s, "</svg>");
    std::fs::write(path, s)
}
