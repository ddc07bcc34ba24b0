//! Running one backend over one corpus.

use std::time::Instant;

use software_fallback::corpus::{classify, Corpus, PageKind};
use software_fallback::{CodecError, CodecSpec, PageCodec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};

use super::Percentiles;

/// A backend to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A software codec.
    Software(CodecSpec),
}

impl Backend {
    /// The label printed in the table.
    pub fn label(&self) -> String {
        match self {
            Backend::Software(spec) => spec.to_string(),
        }
    }

    fn build(&self) -> Result<Box<dyn PageCodec>, CodecError> {
        match self {
            Backend::Software(spec) => Ok(Box::new(spec.build()?)),
        }
    }
}

/// Why a measurement could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The backend could not be set up.
    #[error("cannot set up backend {backend}: {source}")]
    Setup {
        /// Backend label.
        backend: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// A page failed to compress or decompress, or came back different.
    #[error("backend {backend} failed on page {page}: {reason}")]
    Page {
        /// Backend label.
        backend: String,
        /// Page index in the corpus.
        page: usize,
        /// What went wrong.
        reason: String,
    },
}

/// Everything measured for one backend on one corpus.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackendResult {
    /// Backend label.
    pub backend: String,
    /// Pages measured.
    pub pages: usize,
    /// Pages that did not compress under the limit (stored raw).
    pub incompressible: usize,
    /// Raw bytes over stored bytes, every page through the codec.
    pub ratio: f64,
    /// Raw bytes over stored bytes, non-zero pages only.
    pub ratio_nonzero: f64,
    /// Compression throughput, MB/s of raw pages (10^6 bytes).
    pub compress_mb_s: f64,
    /// Decompression throughput, MB/s of raw pages produced.
    pub decompress_mb_s: f64,
    /// Per-page compression latency.
    pub compress_us: Percentiles,
    /// Per-page decompression latency.
    pub decompress_us: Percentiles,
}

/// Compresses every page of `corpus` with `backend`, decompresses what compressed, checks
/// every page comes back identical with a matching CRC, and reports the figures.
pub fn measure(
    corpus: &Corpus,
    backend: &Backend,
    mut progress: impl FnMut(usize),
) -> Result<BackendResult, MeasureError> {
    let label = backend.label();
    let mut codec = backend.build().map_err(|source| MeasureError::Setup {
        backend: label.clone(),
        source,
    })?;
    let page_err = |page: usize, reason: String| MeasureError::Page {
        backend: label.clone(),
        page,
        reason,
    };
    let n = corpus.len();
    // Compressed pages are kept for the decompression pass: (offset, len) into one buffer.
    let mut store = vec![0u8; n * DEFAULT_COMPRESS_LIMIT];
    let mut lens: Vec<Option<usize>> = Vec::with_capacity(n);
    let mut crcs = Vec::with_capacity(n);
    let mut comp_ns = Vec::with_capacity(n);

    // Warm-up: caches, page faults on the output buffer, library tables.
    let mut scratch = vec![0u8; DEFAULT_COMPRESS_LIMIT];
    for page in corpus.pages().take(32) {
        codec
            .compress(page, &mut scratch)
            .map_err(|e| page_err(0, e.to_string()))?;
    }
    for out in store.chunks_exact_mut(DEFAULT_COMPRESS_LIMIT) {
        out[0] = 0;
    }

    let start = Instant::now();
    for (i, (page, out)) in corpus
        .pages()
        .zip(store.chunks_exact_mut(DEFAULT_COMPRESS_LIMIT))
        .enumerate()
    {
        let t = Instant::now();
        let c = codec
            .compress(page, out)
            .map_err(|e| page_err(i, e.to_string()))?;
        comp_ns.push(t.elapsed().as_nanos() as u64);
        lens.push(c.len);
        crcs.push(c.crc32);
        if i % 256 == 255 {
            progress(256);
        }
    }
    let comp_total = start.elapsed();
    progress(n % 256);

    let mut page_buf = vec![0u8; PAGE_SIZE];
    let mut decomp_ns = Vec::with_capacity(n);
    let mut decomp_bytes = 0usize;
    let start = Instant::now();
    for (i, out) in store.chunks_exact(DEFAULT_COMPRESS_LIMIT).enumerate() {
        let Some(len) = lens[i] else { continue };
        let t = Instant::now();
        let d = codec
            .decompress(&out[..len], &mut page_buf)
            .map_err(|e| page_err(i, e.to_string()))?;
        decomp_ns.push(t.elapsed().as_nanos() as u64);
        decomp_bytes += PAGE_SIZE;
        if d.crc32 != crcs[i] || page_buf != corpus.page(i) {
            return Err(page_err(i, "decompressed page differs from the original".into()));
        }
    }
    let decomp_total = start.elapsed();

    let (mut stored, mut stored_nz, mut raw_nz) = (0usize, 0usize, 0usize);
    for (i, len) in lens.iter().enumerate() {
        let s = len.unwrap_or(PAGE_SIZE);
        stored += s;
        if classify(corpus.page(i)) != PageKind::Zero {
            stored_nz += s;
            raw_nz += PAGE_SIZE;
        }
    }
    let mb_s = |bytes: usize, d: std::time::Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    Ok(BackendResult {
        backend: label.clone(),
        pages: n,
        incompressible: lens.iter().filter(|l| l.is_none()).count(),
        ratio: (n * PAGE_SIZE) as f64 / stored as f64,
        ratio_nonzero: if stored_nz == 0 {
            0.0
        } else {
            raw_nz as f64 / stored_nz as f64
        },
        compress_mb_s: mb_s(n * PAGE_SIZE, comp_total),
        decompress_mb_s: mb_s(decomp_bytes, decomp_total),
        compress_us: Percentiles::from_nanos(&mut comp_ns),
        decompress_us: Percentiles::from_nanos(&mut decomp_ns),
    })
}
