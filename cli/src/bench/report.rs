//! The table `swapaccel bench` prints.

use std::fmt::Write;

use software_fallback::corpus::{classify, Corpus, PageKind};

use super::BenchReport;

/// What the corpus holds, as a pool would see it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CorpusSummary {
    /// Corpus name.
    pub name: String,
    /// Pages.
    pub pages: usize,
    /// All-zero pages.
    pub zero_pages: usize,
    /// Same-filled (one repeated non-zero 64-bit word) pages.
    pub same_filled_pages: usize,
    /// How the pages were read, where a reader should know (files skipped, a process that
    /// exited mid-read, …).
    pub notes: Vec<String>,
}

impl CorpusSummary {
    /// Classifies every page of `corpus`.
    pub fn of(corpus: &Corpus) -> Self {
        let (mut zero, mut same) = (0, 0);
        for page in corpus.pages() {
            match classify(page) {
                PageKind::Zero => zero += 1,
                PageKind::SameFilled(_) => same += 1,
                PageKind::Other => {}
            }
        }
        CorpusSummary {
            name: corpus.name().to_string(),
            pages: corpus.len(),
            zero_pages: zero,
            same_filled_pages: same,
            notes: corpus.notes().iter().map(|n| n.to_string()).collect(),
        }
    }
}

fn throughput(s: &super::Spread) -> String {
    if s.runs > 1 {
        format!("{:.0}±{:.0}%", s.median, s.plus_minus_pct())
    } else {
        format!("{:.0}", s.median)
    }
}

fn lat(p: &super::Percentiles) -> String {
    format!("{:.1}/{:.1}/{:.1}", p.p50, p.p99, p.p999)
}

/// Renders the machine, the corpus and the backends side by side.
pub fn render_table(r: &BenchReport) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let c = &r.corpus;
    let pct = |n: usize| 100.0 * n as f64 / c.pages.max(1) as f64;
    let _ = writeln!(
        s,
        "swapaccel {} ({}) on {}, {} CPUs, Linux {}",
        m.version, m.commit, m.cpu_model, m.cores, m.kernel
    );
    for line in &m.iaa {
        let _ = writeln!(s, "  {line}");
    }
    let _ = writeln!(
        s,
        "corpus {}: {} pages ({:.1} MiB), {} zero ({:.1} %), {} same-filled ({:.1} %); {} run(s) each",
        c.name,
        c.pages,
        c.pages as f64 * 4096.0 / (1 << 20) as f64,
        c.zero_pages,
        pct(c.zero_pages),
        c.same_filled_pages,
        pct(c.same_filled_pages),
        r.repeat
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<16} {:>3} {:>3} {:>6} {:>8} {:>6} {:>10} {:>10} {:>7} {:>7} {:>20} {:>20}",
        "backend",
        "bat",
        "thr",
        "ratio",
        "ratio-nz",
        "incomp",
        "comp MB/s",
        "dec MB/s",
        "cpu c",
        "cpu d",
        "comp p50/p99/p999",
        "dec p50/p99/p999"
    );
    for x in &r.results {
        // The emulator's speed figures measure it sharing the cores with the caller: neither
        // the device's nor our own overhead alone, so they are not printed (JSON keeps them).
        let speed = |v: String| if x.emulator { "n/a".to_string() } else { v };
        let label = if x.emulator {
            format!("{}*", x.backend)
        } else {
            x.backend.clone()
        };
        let _ = writeln!(
            s,
            "{:<16} {:>3} {:>3} {:>6.2} {:>8.3} {:>5.1}% {:>10} {:>10} {:>7} {:>7} {:>20} {:>20}",
            label,
            x.batch,
            x.threads,
            x.ratio,
            x.ratio_nonzero,
            pct(x.incompressible),
            speed(throughput(&x.compress_mb_s)),
            speed(throughput(&x.decompress_mb_s)),
            speed(format!("{:.2}", x.compress_cpu_us)),
            speed(format!("{:.2}", x.decompress_cpu_us)),
            speed(lat(&x.compress_us)),
            speed(lat(&x.decompress_us)),
        );
    }
    let _ = writeln!(
        s,
        "\nratio: as a pool stores the pages (zero and same-filled pages take no space); \
         ratio-nz: non-zero pages only, all through the codec.\n\
         MB/s: 10^6 raw bytes per second over all threads; cpu c/d: CPU µs per page of the \
         calling threads; latencies in µs per page (a page waits for its whole batch)."
    );
    for n in &r.notes {
        let _ = writeln!(s, "{n}");
    }
    for n in &c.notes {
        let _ = writeln!(s, "corpus: {n}");
    }
    s.push_str(&r.verdict.render(r));
    s
}
