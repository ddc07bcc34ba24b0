//! Running one backend over one corpus with a batch size and a number of threads.
//!
//! Each thread gets an even share of the pages and its own codec context (as the pool's
//! per-CPU contexts), and runs them in batches of the chosen size through the page-codec
//! interface: all of its pages are compressed, then (after every thread is done) decompressed
//! and compared with the originals outside the timed region. A page's latency is the time of
//! the batch it was in: that is what a caller waiting for it sees. CPU time is that of the
//! measuring threads alone (`CLOCK_THREAD_CPUTIME_ID`): an emulator's engine threads stand
//! in for the device and are not counted.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use software_fallback::corpus::{classify, Corpus, PageKind};
use software_fallback::{PageCodec, DEFAULT_COMPRESS_LIMIT, MAX_BATCH, PAGE_SIZE};

use super::backend::Opened;
use super::stats::Percentiles;

/// How one run is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunShape {
    /// Pages per batch call (1..=8).
    pub batch: usize,
    /// Threads, each with its own context.
    pub threads: usize,
}

/// Why a measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The batch size is outside 1..=8 or threads is 0.
    #[error(
        "batch size must be 1..=8 and threads at least 1 (got batch {batch}, threads {threads})"
    )]
    Shape {
        /// Batch size asked for.
        batch: usize,
        /// Threads asked for.
        threads: usize,
    },
    /// A context could not be made.
    #[error("cannot create a codec context: {0}")]
    Setup(#[from] software_fallback::CodecError),
    /// A page failed, or came back different.
    #[error("page {page}: {reason}")]
    Page {
        /// Page index in the corpus.
        page: usize,
        /// What went wrong.
        reason: String,
    },
    /// A measuring thread panicked.
    #[error("a measuring thread panicked")]
    ThreadPanicked,
}

/// Raw figures of one run.
#[derive(Clone, Debug)]
pub struct RunFigures {
    /// Compressed length of every page (`None` = incompressible).
    pub lens: Vec<Option<usize>>,
    /// Wall time of the compression phase.
    pub compress_wall: Duration,
    /// Wall time of the decompression phase.
    pub decompress_wall: Duration,
    /// Pages decompressed (the compressible ones).
    pub decompressed_pages: usize,
    /// CPU time of the measuring threads while compressing.
    pub compress_cpu: Duration,
    /// CPU time of the measuring threads while decompressing.
    pub decompress_cpu: Duration,
    /// Per-page compression latency samples, ns.
    pub compress_ns: Vec<u64>,
    /// Per-page decompression latency samples, ns.
    pub decompress_ns: Vec<u64>,
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The three phase barriers a measuring thread passes (start compress, start decompress,
/// end). A thread that fails early still passes the ones it has left when this is dropped, so
/// the others and the timer never wait for it forever.
struct Phases<'a> {
    barrier: &'a Barrier,
    left: usize,
}

impl Phases<'_> {
    fn next(&mut self) {
        if self.left > 0 {
            self.left -= 1;
            self.barrier.wait();
        }
    }
}

impl Drop for Phases<'_> {
    fn drop(&mut self) {
        while self.left > 0 {
            self.next();
        }
    }
}

/// Barriers each thread (and the timer) passes.
const PHASES: usize = 3;

struct ThreadOut {
    /// When this thread started and finished compressing, then decompressing.
    comp_span: (Instant, Instant),
    dec_span: (Instant, Instant),
    lens: Vec<Option<usize>>,
    comp_ns: Vec<u64>,
    dec_ns: Vec<u64>,
    comp_cpu: Duration,
    dec_cpu: Duration,
    decompressed: usize,
}

/// One thread's share: compress pages `first..first+count`, wait, decompress them, verify.
fn worker(
    codec: &mut dyn PageCodec,
    corpus: &Corpus,
    first: usize,
    count: usize,
    batch: usize,
    barrier: &Barrier,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ThreadOut, MeasureError> {
    let mut store = vec![0u8; count * DEFAULT_COMPRESS_LIMIT];
    let mut lens: Vec<Option<usize>> = Vec::with_capacity(count);
    let mut crcs = Vec::with_capacity(count);
    let mut comp_ns = Vec::with_capacity(count);
    // Touch the output memory before timing.
    store.iter_mut().step_by(4096).for_each(|b| *b = 1);
    let page_err = |i: usize, reason: String| MeasureError::Page {
        page: first + i,
        reason,
    };

    let mut phases = Phases {
        barrier,
        left: PHASES,
    };
    phases.next();
    let comp_start = Instant::now();
    let cpu0 = thread_cpu();
    for (chunk_no, outs) in store.chunks_mut(batch * DEFAULT_COMPRESS_LIMIT).enumerate() {
        let base = chunk_no * batch;
        let pages: Vec<&[u8]> = (base..(base + batch).min(count))
            .map(|i| corpus.page(first + i))
            .collect();
        let mut dsts: Vec<&mut [u8]> = outs.chunks_mut(DEFAULT_COMPRESS_LIMIT).collect();
        let t = Instant::now();
        let results = codec
            .compress_batch(&pages, &mut dsts)
            .map_err(|e| page_err(base, e.to_string()))?;
        let ns = t.elapsed().as_nanos() as u64;
        for (k, r) in results.into_iter().enumerate() {
            let c = r.map_err(|e| page_err(base + k, e.to_string()))?;
            lens.push(c.len);
            crcs.push(c.crc32);
            comp_ns.push(ns);
        }
        progress(pages.len() as u64);
    }
    let comp_cpu = thread_cpu() - cpu0;
    let comp_span = (comp_start, Instant::now());

    let mut out = vec![0u8; count * PAGE_SIZE];
    let todo: Vec<usize> = (0..count).filter(|&i| lens[i].is_some()).collect();
    let mut dec_ns = Vec::with_capacity(todo.len());
    phases.next();
    let dec_start = Instant::now();
    let cpu0 = thread_cpu();
    let mut out_chunks: Vec<Option<&mut [u8]>> = out.chunks_mut(PAGE_SIZE).map(Some).collect();
    for group in todo.chunks(batch) {
        let srcs: Vec<&[u8]> = group
            .iter()
            .map(|&i| {
                let at = i * DEFAULT_COMPRESS_LIMIT;
                &store[at..at + lens[i].unwrap_or(0)]
            })
            .collect();
        let mut pages: Vec<&mut [u8]> =
            group.iter().filter_map(|&i| out_chunks[i].take()).collect();
        let t = Instant::now();
        let results = codec
            .decompress_batch(&srcs, &mut pages)
            .map_err(|e| page_err(group[0], e.to_string()))?;
        let ns = t.elapsed().as_nanos() as u64;
        for (k, r) in results.into_iter().enumerate() {
            let d = r.map_err(|e| page_err(group[k], e.to_string()))?;
            if d.crc32 != crcs[group[k]] {
                return Err(page_err(group[k], "CRC after decompression differs".into()));
            }
            dec_ns.push(ns);
        }
    }
    let dec_cpu = thread_cpu() - cpu0;
    let dec_span = (dec_start, Instant::now());
    phases.next();

    for &i in &todo {
        if out[i * PAGE_SIZE..(i + 1) * PAGE_SIZE] != *corpus.page(first + i) {
            return Err(page_err(
                i,
                "decompressed page differs from the original".into(),
            ));
        }
    }
    Ok(ThreadOut {
        comp_span,
        dec_span,
        lens,
        comp_ns,
        dec_ns,
        comp_cpu,
        dec_cpu,
        decompressed: todo.len(),
    })
}

/// Runs `opened` over `corpus` with `shape`, calling `progress` with pages done.
pub fn run(
    opened: &Opened,
    corpus: &Corpus,
    shape: RunShape,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RunFigures, MeasureError> {
    if !(1..=MAX_BATCH).contains(&shape.batch) || shape.threads == 0 {
        return Err(MeasureError::Shape {
            batch: shape.batch,
            threads: shape.threads,
        });
    }
    let n = corpus.len();
    let threads = shape.threads.min(n);
    let mut codecs = (0..threads)
        .map(|_| opened.codec())
        .collect::<Result<Vec<_>, _>>()?;
    // Warm-up: library tables, first-touch of context memory.
    for c in codecs.iter_mut() {
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        for p in corpus.pages().take(16) {
            let _ = c.compress(p, &mut dst);
        }
    }
    let barrier = Barrier::new(threads + 1);
    let outs = std::thread::scope(|s| {
        let handles: Vec<_> = codecs
            .iter_mut()
            .enumerate()
            .map(|(t, codec)| {
                let first = t * n / threads;
                let count = (t + 1) * n / threads - first;
                let barrier = &barrier;
                s.spawn(move || {
                    worker(
                        codec.as_mut(),
                        corpus,
                        first,
                        count,
                        shape.batch,
                        barrier,
                        progress,
                    )
                })
            })
            .collect();
        // The timer thread only releases the phases; each measuring thread times its own
        // span (a descheduled timer would otherwise shorten the wall time).
        drop(Phases {
            barrier: &barrier,
            left: PHASES,
        });
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let mut fig = RunFigures {
        lens: Vec::with_capacity(n),
        compress_wall: Duration::ZERO,
        decompress_wall: Duration::ZERO,
        decompressed_pages: 0,
        compress_cpu: Duration::ZERO,
        decompress_cpu: Duration::ZERO,
        compress_ns: Vec::with_capacity(n),
        decompress_ns: Vec::with_capacity(n),
    };
    let mut comp_span: Option<(Instant, Instant)> = None;
    let mut dec_span: Option<(Instant, Instant)> = None;
    let widen = |span: &mut Option<(Instant, Instant)>, (a, b): (Instant, Instant)| {
        *span = Some(match *span {
            None => (a, b),
            Some((x, y)) => (x.min(a), y.max(b)),
        });
    };
    for o in outs {
        let o = o.map_err(|_| MeasureError::ThreadPanicked)??;
        widen(&mut comp_span, o.comp_span);
        widen(&mut dec_span, o.dec_span);
        fig.lens.extend(o.lens);
        fig.compress_ns.extend(o.comp_ns);
        fig.decompress_ns.extend(o.dec_ns);
        fig.compress_cpu += o.comp_cpu;
        fig.decompress_cpu += o.dec_cpu;
        fig.decompressed_pages += o.decompressed;
    }
    // Wall time of a phase: from the first thread's start to the last thread's end.
    let wall = |s: Option<(Instant, Instant)>| s.map_or(Duration::ZERO, |(a, b)| b - a);
    fig.compress_wall = wall(comp_span);
    fig.decompress_wall = wall(dec_span);
    Ok(fig)
}

/// Ratios of a run: (pool view, non-zero pages through the codec).
///
/// * pool view: all pages; zero and same-filled pages cost nothing (a pool keeps them in the
///   index entry), others their compressed size, an incompressible page a full page;
/// * non-zero: the non-zero pages only, every one through the codec (the figure the corpus
///   README quotes).
pub fn ratios(corpus: &Corpus, lens: &[Option<usize>]) -> (f64, f64) {
    let (mut stored_pool, mut stored_nz, mut raw_nz) = (0usize, 0usize, 0usize);
    for (i, len) in lens.iter().enumerate() {
        let stored = len.unwrap_or(PAGE_SIZE);
        match classify(corpus.page(i)) {
            PageKind::Zero => {}
            PageKind::SameFilled(_) => {
                stored_nz += stored;
                raw_nz += PAGE_SIZE;
            }
            PageKind::Other => {
                stored_pool += stored;
                stored_nz += stored;
                raw_nz += PAGE_SIZE;
            }
        }
    }
    let div = |a: usize, b: usize| {
        if b == 0 {
            f64::INFINITY
        } else {
            a as f64 / b as f64
        }
    };
    (
        div(lens.len() * PAGE_SIZE, stored_pool),
        div(raw_nz, stored_nz),
    )
}

/// Summary figures of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunSummary {
    /// Compression throughput, MB/s (10^6 bytes of raw pages).
    pub compress_mb_s: f64,
    /// Decompression throughput, MB/s of pages produced.
    pub decompress_mb_s: f64,
    /// CPU µs per page compressed (measuring threads only).
    pub compress_cpu_us: f64,
    /// CPU µs per page decompressed (measuring threads only).
    pub decompress_cpu_us: f64,
}

impl RunFigures {
    /// Throughput and CPU cost.
    pub fn summary(&self) -> RunSummary {
        let pages = self.lens.len();
        let mb = |p: usize, d: Duration| (p * PAGE_SIZE) as f64 / d.as_secs_f64().max(1e-9) / 1e6;
        let us = |d: Duration, p: usize| d.as_secs_f64() * 1e6 / p.max(1) as f64;
        RunSummary {
            compress_mb_s: mb(pages, self.compress_wall),
            decompress_mb_s: mb(self.decompressed_pages, self.decompress_wall),
            compress_cpu_us: us(self.compress_cpu, pages),
            decompress_cpu_us: us(self.decompress_cpu, self.decompressed_pages),
        }
    }

    /// Latency percentiles (compress, decompress), µs.
    pub fn latencies(&mut self) -> (Percentiles, Percentiles) {
        (
            Percentiles::from_nanos(&mut self.compress_ns),
            Percentiles::from_nanos(&mut self.decompress_ns),
        )
    }
}
