//! `--plot FILE.svg`: the figures that decide whether offload pays, drawn so they read right.
//! Plain SVG, no dependencies.
//!
//! * Top: CPU µs per page against ratio, for swap-out (compress) and swap-in (decompress):
//!   the offload figure. Every configuration measured is a point labelled
//!   `backend bBATCH tTHREADS`. Labels are placed greedily around their point so that none
//!   overlaps another label or any point; a label moved away gets a leader line.
//! * Middle: per-page latency p50 / p99 / p999 of every configuration on a log axis, one row
//!   each, so one outlier cannot flatten the others.
//! * Bottom, only when `iaa-emu` was measured: its own marked panel with its ratios, labelled
//!   as not the device's. The emulator's speed is drawn nowhere (it measures the emulator
//!   sharing the cores with the caller, not the device).

use std::fmt::Write as _;
use std::path::Path;

use super::labels::{Labeler, Rect, FONT};
use super::verdict::EMULATOR_RATIO_LABEL;
use super::{BackendResult, BenchReport, Percentiles};

const W: f64 = 1100.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A step of 1, 2 or 5 × 10^k giving about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let e = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * e >= raw {
            return m * e;
        }
    }
    10.0 * e
}

/// A tick value with as many decimals as `step` needs (none for 1, one for 0.5, two for 0.25).
fn fmt_tick(v: f64, step: f64) -> String {
    let mut decimals = 0usize;
    while decimals < 6
        && ((step * 10f64.powi(decimals as i32)).round() - step * 10f64.powi(decimals as i32)).abs()
            > 1e-6
    {
        decimals += 1;
    }
    format!("{v:.decimals$}")
}

/// A log-axis tick: compact for large values (10k, 1M).
fn fmt_log_tick(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A linear range from `lo` to `hi` rounded out to its ticks.
fn linear(lo: f64, hi: f64) -> (f64, f64, f64) {
    let step = nice_step(hi - lo, 5.0);
    let a = (lo / step).floor() * step;
    let b = (hi / step).ceil() * step;
    (a, if b > a { b } else { a + step }, step)
}

fn label_of(r: &BackendResult) -> String {
    format!("{} b{} t{}", r.backend, r.batch, r.threads)
}

/// Colour of a backend, by its first appearance.
fn color(results: &[&BackendResult], backend: &str) -> &'static str {
    let mut seen: Vec<&str> = Vec::new();
    for r in results {
        if !seen.contains(&r.backend.as_str()) {
            seen.push(&r.backend);
        }
    }
    let i = seen.iter().position(|b| *b == backend).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

fn text(s: &mut String, x: f64, y: f64, size: f64, anchor: &str, fill: &str, t: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">{}</text>"#,
        esc(t)
    );
}

/// One scatter panel: `y(r)` CPU µs per page against the pool ratio.
fn scatter(
    s: &mut String,
    panel: Rect,
    title: &str,
    rows: &[&BackendResult],
    y: impl Fn(&BackendResult) -> f64,
) {
    let Rect { x: x0, y: y0, w, h } = panel;
    let pts: Vec<(&BackendResult, f64, f64)> = rows
        .iter()
        .map(|r| (*r, r.ratio, y(r)))
        .filter(|(_, a, b)| a.is_finite() && b.is_finite())
        .collect();
    text(s, x0 + w / 2.0, y0 - 10.0, 13.0, "middle", "#000", title);
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##
    );
    if pts.is_empty() {
        text(
            s,
            x0 + w / 2.0,
            y0 + h / 2.0,
            12.0,
            "middle",
            "#444",
            if rows.is_empty() {
                "no software or IAA backend measured"
            } else {
                "no finite figures to draw"
            },
        );
        return;
    }
    let (xmin, xmax) = pts
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let ymax = pts.iter().fold(0f64, |a, p| a.max(p.2));
    let pad = ((xmax - xmin) * 0.08).max(0.1);
    let (xa, xb, xs) = linear((xmin - pad).max(0.0), xmax + pad);
    let (ya, yb, ys) = linear(0.0, ymax * 1.08);
    let sx = |v: f64| x0 + (v - xa) / (xb - xa) * w;
    let sy = |v: f64| y0 + h - (v - ya) / (yb - ya) * h;
    let mut v = xa;
    while v <= xb + xs * 0.01 {
        let x = sx(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{}" stroke="#e4e4e4"/>"##,
            y0 + h
        );
        text(
            s,
            x,
            y0 + h + 15.0,
            11.0,
            "middle",
            "#000",
            &fmt_tick(v, xs),
        );
        v += xs;
    }
    let mut v = ya;
    while v <= yb + ys * 0.01 {
        let y = sy(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
            x0 + w
        );
        text(s, x0 - 5.0, y + 4.0, 11.0, "end", "#000", &fmt_tick(v, ys));
        v += ys;
    }
    text(
        s,
        x0 + w / 2.0,
        y0 + h + 33.0,
        12.0,
        "middle",
        "#000",
        "ratio (as a pool stores the pages; right is better)",
    );
    let (lx, ly) = (x0 - 42.0, y0 + h / 2.0);
    let _ = writeln!(
        s,
        r#"<text x="{lx}" y="{ly}" font-size="12" text-anchor="middle" transform="rotate(-90 {lx} {ly})">CPU µs per page (lower is better)</text>"#
    );
    let mut lab = Labeler {
        taken: pts
            .iter()
            .map(|(_, a, b)| Rect {
                x: sx(*a) - 5.0,
                y: sy(*b) - 5.0,
                w: 10.0,
                h: 10.0,
            })
            .collect(),
        bounds: Rect {
            x: x0 + 2.0,
            y: y0 + 2.0,
            w: w - 4.0,
            h: h - 4.0,
        },
    };
    for (r, a, b) in &pts {
        let c = color(rows, &r.backend);
        let (px, py) = (sx(*a), sy(*b));
        let _ = writeln!(
            s,
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="4.5" fill="{c}"/>"#
        );
        let t = label_of(r);
        let p = lab.place(px, py, &t);
        if p.leader {
            // From the point to the nearest edge of the label's box.
            let lx = px.clamp(p.rect.x, p.rect.x + p.rect.w);
            let ly = py.clamp(p.rect.y, p.rect.y + p.rect.h);
            let _ = writeln!(
                s,
                r#"<line x1="{px:.1}" y1="{py:.1}" x2="{lx:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="0.8"/>"#
            );
        }
        text(s, p.x, p.y, FONT, "start", c, &t);
    }
}

/// Latency rows on a log axis; returns the panel's height.
fn latency(
    s: &mut String,
    x0: f64,
    y0: f64,
    w: f64,
    title: &str,
    rows: &[&BackendResult],
    pick: impl Fn(&BackendResult) -> Percentiles,
) -> f64 {
    let row_h = 18.0;
    let h = rows.len().max(1) as f64 * row_h + 8.0;
    text(s, x0 + w / 2.0, y0 - 8.0, 13.0, "middle", "#000", title);
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##
    );
    let vals: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            let p = pick(r);
            [p.p50, p.p99, p.p999]
        })
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    if vals.is_empty() {
        return h;
    }
    let lo = vals
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor();
    let hi = vals
        .iter()
        .cloned()
        .fold(0f64, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let sx = |v: f64| x0 + (v.log10() - lo) / (hi - lo) * w;
    // 2 and 5 get labels only where there is room for them between the decades.
    let per_decade = w / (hi - lo);
    let minor_labels = per_decade * (5f64.log10() - 2f64.log10()) > 34.0;
    let mut e = lo;
    while e <= hi + 1e-9 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(e);
            if v.log10() > hi + 1e-9 {
                break;
            }
            let x = sx(v);
            let stroke = if m == 1.0 { "#cfcfcf" } else { "#eeeeee" };
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{}" stroke="{stroke}"/>"#,
                y0 + h
            );
            if m == 1.0 || minor_labels {
                text(
                    s,
                    x,
                    y0 + h + 14.0,
                    10.5,
                    "middle",
                    "#000",
                    &fmt_log_tick(v),
                );
            }
        }
        e += 1.0;
    }
    text(
        s,
        x0 + w / 2.0,
        y0 + h + 30.0,
        12.0,
        "middle",
        "#000",
        "µs per page, log scale (a page waits for its whole batch)",
    );
    for (i, r) in rows.iter().enumerate() {
        let c = color(rows, &r.backend);
        let y = y0 + 4.0 + (i as f64 + 0.5) * row_h;
        let p = pick(r);
        text(s, x0 - 6.0, y + 4.0, FONT, "end", c, &label_of(r));
        if p.p50 <= 0.0 {
            continue;
        }
        let (a, b, d) = (sx(p.p50), sx(p.p99.max(p.p50)), sx(p.p999.max(p.p50)));
        let _ = writeln!(
            s,
            r#"<line x1="{a:.1}" y1="{y:.1}" x2="{d:.1}" y2="{y:.1}" stroke="{c}" stroke-width="1"/>"#
        );
        let _ = writeln!(s, r#"<circle cx="{a:.1}" cy="{y:.1}" r="4" fill="{c}"/>"#);
        let _ = writeln!(
            s,
            r##"<circle cx="{b:.1}" cy="{y:.1}" r="4" fill="#fff" stroke="{c}" stroke-width="1.5"/>"##
        );
        let _ = writeln!(
            s,
            r#"<path d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="{c}" stroke-width="1.5"/>"#,
            d - 4.0,
            y - 4.0
        );
    }
    h
}

/// Draws the report (see the file's comment for what and why).
pub fn write_svg(report: &BenchReport, path: &Path) -> std::io::Result<()> {
    std::fs::write(path, render(report))
}

/// The SVG text of the report.
pub fn render(report: &BenchReport) -> String {
    let real: Vec<&BackendResult> = report.results.iter().filter(|r| !r.emulator).collect();
    let emu: Vec<&BackendResult> = report.results.iter().filter(|r| r.emulator).collect();
    let mut body = String::new();
    let m = &report.machine;
    text(
        &mut body,
        W / 2.0,
        22.0,
        15.0,
        "middle",
        "#000",
        &format!(
            "swapaccel bench: {} ({} pages) on {}, {} CPUs, swapaccel {} ({})",
            report.corpus.name, report.corpus.pages, m.cpu_model, m.cores, m.version, m.commit
        ),
    );
    text(
        &mut body,
        W / 2.0,
        40.0,
        11.5,
        "middle",
        "#333",
        "labels: backend bBATCH tTHREADS. CPU: the calling threads only (what a swap daemon pays; a device's own work is free to the CPUs)",
    );
    let top = 80.0;
    let (pw, ph) = (W / 2.0 - 95.0, 360.0);
    scatter(
        &mut body,
        Rect {
            x: 70.0,
            y: top,
            w: pw,
            h: ph,
        },
        "swap-out: compress CPU µs per page vs ratio",
        &real,
        |r| r.compress_cpu_us,
    );
    scatter(
        &mut body,
        Rect {
            x: W / 2.0 + 70.0,
            y: top,
            w: pw,
            h: ph,
        },
        "swap-in: decompress CPU µs per page vs ratio",
        &real,
        |r| r.decompress_cpu_us,
    );
    let mut y = top + ph + 80.0;
    let lw = W / 2.0 - 180.0;
    let h1 = latency(
        &mut body,
        160.0,
        y,
        lw,
        "compress latency per page",
        &real,
        |r| r.compress_us,
    );
    let h2 = latency(
        &mut body,
        W / 2.0 + 160.0,
        y,
        lw,
        "decompress latency per page",
        &real,
        |r| r.decompress_us,
    );
    text(
        &mut body,
        W / 2.0,
        y + h1.max(h2) + 50.0,
        11.5,
        "middle",
        "#333",
        "● p50   ○ p99   × p99.9 (nearest rank over every page of every run)",
    );
    y += h1.max(h2) + 80.0;
    if !emu.is_empty() {
        let h = 46.0 + emu.len() as f64 * 18.0;
        let _ = writeln!(
            body,
            r##"<rect x="40" y="{y}" width="{}" height="{h}" fill="#f6f6f6" stroke="#888" stroke-dasharray="6 4"/>"##,
            W - 80.0
        );
        text(
            &mut body,
            55.0,
            y + 20.0,
            13.0,
            "start",
            "#000",
            &format!("device emulator (accel::emu), not hardware. Ratios only; {EMULATOR_RATIO_LABEL}. Its speed is not drawn."),
        );
        for (i, r) in emu.iter().enumerate() {
            text(
                &mut body,
                70.0,
                y + 42.0 + i as f64 * 18.0,
                FONT,
                "start",
                "#444",
                &format!(
                    "{}: ratio {:.2} (non-zero pages {:.3}) — {EMULATOR_RATIO_LABEL}",
                    label_of(r),
                    r.ratio,
                    r.ratio_nonzero
                ),
            );
        }
        y += h + 20.0;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{y}" viewBox="0 0 {W} {y}" font-family="DejaVu Sans, Arial, sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    s.push_str(&body);
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(linear(2.7, 6.1), (2.0, 7.0, 1.0));
        assert_eq!(linear(0.0, 17.3), (0.0, 20.0, 5.0));
        assert_eq!(fmt_tick(2.5, 0.5), "2.5");
        assert_eq!(fmt_tick(2.4000000000000004, 0.2), "2.4");
        assert_eq!(fmt_tick(6.0, 1.0), "6");
        assert_eq!(fmt_tick(0.75, 0.25), "0.75");
        assert_eq!(fmt_log_tick(20000.0), "20k");
    }
}
