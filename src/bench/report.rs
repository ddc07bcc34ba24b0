//! The table `swapaccel bench` prints.

use std::fmt::Write;

use software_fallback::corpus::{classify, Corpus, PageKind};

use super::BackendResult;

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
        }
    }
}

/// Renders the backends side by side.
pub fn render_table(corpus: &CorpusSummary, results: &[BackendResult]) -> String {
    let mut s = String::new();
    let pct = |n: usize| 100.0 * n as f64 / corpus.pages.max(1) as f64;
    let _ = writeln!(
        s,
        "corpus {}: {} pages ({} MiB), {} zero ({:.1} %), {} same-filled ({:.1} %)",
        corpus.name,
        corpus.pages,
        corpus.pages * 4096 / (1 << 20),
        corpus.zero_pages,
        pct(corpus.zero_pages),
        corpus.same_filled_pages,
        pct(corpus.same_filled_pages),
    );
    let _ = writeln!(
        s,
        "{:<12} {:>7} {:>9} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "backend",
        "ratio",
        "ratio-nz",
        "incomp",
        "comp MB/s",
        "dec MB/s",
        "comp p50",
        "comp p99",
        "dec p50",
        "dec p99"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<12} {:>7.3} {:>9.3} {:>6.1}% {:>10.0} {:>10.0} {:>8.2}µ {:>8.2}µ {:>8.2}µ {:>8.2}µ",
            r.backend,
            r.ratio,
            r.ratio_nonzero,
            pct(r.incompressible),
            r.compress_mb_s,
            r.decompress_mb_s,
            r.compress_us.p50,
            r.compress_us.p99,
            r.decompress_us.p50,
            r.decompress_us.p99,
        );
    }
    s
}
