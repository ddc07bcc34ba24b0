//! The measurements behind `swapaccel bench`: backends over a corpus, page by page through
//! the page-codec interface, as a swap daemon's contexts would call them.
//!
//! Ratios are total raw bytes over total stored bytes, an incompressible page counting as a
//! full page, in two views: the pool's (zero and same-filled pages cost nothing, as a pool
//! stores them in the index) and the non-zero pages alone, every one through the codec (the
//! figure `shared/corpus/README.md` quotes).

mod backend;
mod export;
mod labels;
mod machine;
mod measure;
mod plot;
mod queue_room;
mod report;
mod stats;
mod verdict;

pub use backend::{discover, iaa_backends, resolve, Backend, BackendError, Opened};
pub use export::{write_csv, write_json};
pub use machine::MachineInfo;
pub use measure::{ratios, run, MeasureError, RunFigures, RunShape, RunSummary};
pub use plot::write_svg;
pub use report::{render_table, CorpusSummary};
pub use stats::{Percentiles, Spread};
pub use verdict::{Verdict, VerdictRow, EMULATOR_RATIO_LABEL};

use software_fallback::corpus::Corpus;

/// Everything measured for one backend and one run shape, over the repeats.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackendResult {
    /// Backend label.
    pub backend: String,
    /// True for the device emulator (figures measure our overhead only).
    pub emulator: bool,
    /// Pages per batch call.
    pub batch: usize,
    /// Threads.
    pub threads: usize,
    /// Pages per run.
    pub pages: usize,
    /// Pages that did not compress below the limit (stored raw).
    pub incompressible: usize,
    /// Ratio as a pool stores the pages (zero and same-filled pages free).
    pub ratio: f64,
    /// Ratio of the non-zero pages, every one through the codec.
    pub ratio_nonzero: f64,
    /// For the emulator, [`EMULATOR_RATIO_LABEL`]: its ratios are not the device's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_note: Option<String>,
    /// Compression throughput, MB/s, over the repeats.
    pub compress_mb_s: Spread,
    /// Decompression throughput, MB/s, over the repeats.
    pub decompress_mb_s: Spread,
    /// CPU µs per page compressed (measuring threads), median over the repeats.
    pub compress_cpu_us: f64,
    /// CPU µs per page decompressed (measuring threads), median over the repeats.
    pub decompress_cpu_us: f64,
    /// Per-page compression latency, µs, over all repeats.
    pub compress_us: Percentiles,
    /// Per-page decompression latency, µs, over all repeats.
    pub decompress_us: Percentiles,
}

/// A whole benchmark: where, on what, and the results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    /// The machine.
    pub machine: MachineInfo,
    /// The corpus.
    pub corpus: CorpusSummary,
    /// Runs per configuration.
    pub repeat: usize,
    /// One entry per backend, batch size and thread count.
    pub results: Vec<BackendResult>,
    /// Remarks printed under the table (e.g. what the emulator's figures mean).
    pub notes: Vec<String>,
    /// What the figures mean for a swap daemon, per backend (printed after the table).
    pub verdict: Verdict,
}

/// Measures `backend` with `shape`, `repeat` times.
pub fn measure_backend(
    opened: &Opened,
    backend: &Backend,
    corpus: &Corpus,
    shape: RunShape,
    repeat: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<BackendResult, MeasureError> {
    let mut comp_mb = Vec::new();
    let mut dec_mb = Vec::new();
    let mut comp_cpu = Vec::new();
    let mut dec_cpu = Vec::new();
    let mut comp_ns = Vec::new();
    let mut dec_ns = Vec::new();
    let mut lens = Vec::new();
    for _ in 0..repeat.max(1) {
        let fig = run(opened, corpus, shape, progress)?;
        let s = fig.summary();
        comp_mb.push(s.compress_mb_s);
        dec_mb.push(s.decompress_mb_s);
        comp_cpu.push(s.compress_cpu_us);
        dec_cpu.push(s.decompress_cpu_us);
        comp_ns.extend_from_slice(&fig.compress_ns);
        dec_ns.extend_from_slice(&fig.decompress_ns);
        lens = fig.lens;
    }
    let (ratio, ratio_nonzero) = ratios(corpus, &lens);
    Ok(BackendResult {
        backend: backend.label(),
        emulator: backend.is_emulator(),
        batch: shape.batch,
        threads: shape.threads,
        pages: corpus.len(),
        incompressible: lens.iter().filter(|l| l.is_none()).count(),
        ratio,
        ratio_nonzero,
        ratio_note: backend
            .is_emulator()
            .then(|| EMULATOR_RATIO_LABEL.to_string()),
        compress_mb_s: Spread::of(&comp_mb),
        decompress_mb_s: Spread::of(&dec_mb),
        compress_cpu_us: Spread::of(&comp_cpu).median,
        decompress_cpu_us: Spread::of(&dec_cpu).median,
        compress_us: Percentiles::from_nanos(&mut comp_ns),
        decompress_us: Percentiles::from_nanos(&mut dec_ns),
    })
}
