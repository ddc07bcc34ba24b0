//! Shared helpers for the criterion benchmarks in `benches/`: the pages they run on and the
//! ratios they print after criterion has measured.

use std::path::PathBuf;

pub mod direct;

use software_fallback::corpus::{classify, Corpus, PageKind};

/// Pages the benchmarks run on: an even sample of `n` pages of the real py-heap corpus
/// (found as `software_fallback::corpus::shared` says: `SWAPACCEL_CORPUS_DIR`, else
/// `../shared/corpus`), or the built-in synthetic corpus where it is missing (the choice is
/// printed; `SWAPACCEL_REQUIRE_CORPUS=1` makes that a failure).
pub fn bench_corpus(n: usize) -> Corpus {
    let c = software_fallback::corpus::shared::sample_or_builtin("py-heap.pages.zst", n);
    eprintln!("bench corpus: {} ({} pages)", c.name(), c.len());
    c
}

/// The mean time criterion estimated for `group/function`, in nanoseconds, read from its
/// `target/criterion/<group>/<function>/new/estimates.json`; `None` if criterion has not
/// written it (e.g. the benchmark was filtered out).
pub fn criterion_mean_ns(group: &str, function: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let sanitize = |s: &str| s.replace([':', '/', ' '], "_");
    let path = target
        .join("criterion")
        .join(sanitize(group))
        .join(sanitize(function))
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("mean")?.get("point_estimate")?.as_f64()
}

/// `n` pages of the bench corpus that a codec must work on (neither zero nor same-filled,
/// which a pool stores without compressing), owned; `who` names the bench in the log line.
pub fn codec_pages(n: usize, who: &str) -> Vec<Vec<u8>> {
    let c = bench_corpus(n * 2);
    let v: Vec<Vec<u8>> = c
        .pages()
        .filter(|p| classify(p) == PageKind::Other)
        .take(n)
        .map(<[u8]>::to_vec)
        .collect();
    eprintln!("{who} bench: {} pages the codec must compress", v.len());
    v
}
