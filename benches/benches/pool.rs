//! The pool's store and load against the bare codec (whose `compress`/`decompress` include the
//! CRC-32 of the page) on the same real pages, with 1 and 2 threads, and the pool's memory
//! per stored page against the compressed bytes it holds.
//!
//! The pages are the bench corpus's pages that the codec has to work on (zero and same-filled
//! pages are left out: the pool does not compress them, which would flatter it). The store
//! runs in steady state: each iteration overwrites the same slots, so every store also frees
//! the entry it replaces. Two-thread runs split the pages between two threads; the pool's use
//! two contexts (CPU hints 0 and 1), as a batching layer's workers would.
//!
//! A null codec run through the pool measures the pool's own work per page on its own (a
//! figure that, unlike the side-by-side ratios, survives a noisy machine).
//!
//! After criterion runs, prints per codec:
//!   store/load overhead = pool / bare - 1            (goal: ≤ 10 %)
//!   2-thread scaling    = 1-thread time / 2-thread time, pool against bare
//!   memory              = pool bytes / compressed bytes (goal: ≤ 1.05), metadata per entry
//!
//! Run: `cargo bench -p benches --bench pool`.

use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use pool::{CodecFactory, LoadMode, Pool, PoolConfig, ENTRY_BYTES};
use software_fallback::corpus::Corpus;
use software_fallback::{
    CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec, SoftwareCodec, PAGE_SIZE,
};

const PAGES: usize = 256;
const SPECS: [&str; 3] = ["deflate:1", "zstd:1", "lz4"];

/// The corpus's pages that a codec has to work on.
fn pages() -> &'static Vec<Vec<u8>> {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| benches::codec_pages(PAGES, "pool"))
}

fn new_pool(spec: CodecSpec) -> Arc<Pool> {
    let pool = Pool::new(PoolConfig {
        codec: spec,
        ..PoolConfig::default()
    })
    .expect("pool");
    pool.swapon(0, 4096, None).expect("swapon");
    Arc::new(pool)
}

/// The slot page `i` of `n` is stored at: each half in its own part of the area (its own
/// index chunks), as two daemons' threads working on different swap clusters would be.
fn slot(i: usize, n: usize) -> u64 {
    (i + if i >= n / 2 { 1024 } else { 0 }) as u64
}

/// Runs `per_thread(t, iters)` on `threads` threads at once and returns the wall time.
fn parallel<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, f: F) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let f = &f;
            s.spawn(move || f(t, iters));
        }
    });
    start.elapsed()
}

/// A codec that does (almost) nothing: "compresses" a page to its first 1 KiB and reports a
/// CRC of 0. Run through the pool, what remains is the pool's own work per page (classify,
/// locks, allocation, copies, index, free of the replaced entry, checksum compare).
struct NullCodec;

const NULL_LEN: usize = 1024;

impl PageCodec for NullCodec {
    fn id(&self) -> CodecId {
        CodecId::Lz4
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        dst[..NULL_LEN].copy_from_slice(&page[..NULL_LEN]);
        Ok(Compressed {
            len: Some(NULL_LEN),
            crc32: 0,
        })
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        page[..src.len()].copy_from_slice(src);
        Ok(Decompressed { crc32: 0 })
    }
}

fn bench_pool_own(c: &mut Criterion) {
    let pages = pages();
    let n = pages.len();
    let factory = |_: CodecSpec| -> pool::Result<Box<dyn PageCodec>> { Ok(Box::new(NullCodec)) };
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        factory: Arc::new(factory) as Arc<dyn CodecFactory>,
        ..PoolConfig::default()
    })
    .expect("pool");
    pool.swapon(0, 4096, None).expect("swapon");
    let mut g = c.benchmark_group("pool-own");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("store", |b| {
        b.iter(|| {
            for (i, p) in pages.iter().enumerate() {
                pool.store_batch_on(0, 0, slot(i, n), black_box(p))
                    .expect("store");
            }
        })
    });
    let mut page = vec![0u8; PAGE_SIZE];
    g.bench_function("load", |b| {
        b.iter(|| {
            for i in 0..n {
                pool.load_on(0, 0, slot(i, n), &mut page, LoadMode::KeepCopy)
                    .expect("load");
                black_box(&page);
            }
        })
    });
    g.finish();
}

fn bench_pool(c: &mut Criterion) {
    let pages = pages();
    let n = pages.len();
    for name in SPECS {
        let spec: CodecSpec = name.parse().expect("spec");
        let codecs: Vec<Mutex<SoftwareCodec>> = (0..2)
            .map(|_| Mutex::new(spec.build().expect("codec")))
            .collect();
        let cutoff = PoolConfig::default().incompressible_cutoff;
        // Each page's compressed form for the bare decompression runs (`None`: incompressible,
        // which the pool stores raw and loads with a copy + CRC; bare does the same).
        let forms: Vec<Option<Vec<u8>>> = {
            let mut codec = spec.build().expect("codec");
            let mut dst = vec![0u8; cutoff];
            pages
                .iter()
                .map(|p| {
                    let c = codec.compress(p, &mut dst).expect("compress");
                    c.len.map(|l| dst[..l].to_vec())
                })
                .collect()
        };
        let pool = new_pool(spec);
        for (i, p) in pages.iter().enumerate() {
            pool.store(0, slot(i, n), p).expect("store");
        }

        for threads in [1usize, 2] {
            let share = n / threads;
            let mut g = c.benchmark_group(format!("pool-store/{name}/{threads}t"));
            g.throughput(Throughput::Bytes((share * threads * PAGE_SIZE) as u64));
            g.bench_function("bare", |b| {
                b.iter_custom(|iters| {
                    parallel(threads, iters, |t, iters| {
                        let mut codec = codecs[t].lock().expect("codec");
                        let mut dst = vec![0u8; cutoff];
                        for _ in 0..iters {
                            for p in &pages[t * share..(t + 1) * share] {
                                let _ = black_box(codec.compress(black_box(p), &mut dst));
                            }
                        }
                    })
                })
            });
            g.bench_function("pool", |b| {
                b.iter_custom(|iters| {
                    parallel(threads, iters, |t, iters| {
                        for _ in 0..iters {
                            for (i, p) in pages.iter().enumerate().skip(t * share).take(share) {
                                pool.store_batch_on(t, 0, slot(i, n), black_box(p))
                                    .expect("store");
                            }
                        }
                    })
                })
            });
            g.finish();

            let mut g = c.benchmark_group(format!("pool-load/{name}/{threads}t"));
            g.throughput(Throughput::Bytes((share * threads * PAGE_SIZE) as u64));
            g.bench_function("bare", |b| {
                b.iter_custom(|iters| {
                    parallel(threads, iters, |t, iters| {
                        let mut codec = codecs[t].lock().expect("codec");
                        let mut page = vec![0u8; PAGE_SIZE];
                        for _ in 0..iters {
                            for i in t * share..(t + 1) * share {
                                match &forms[i] {
                                    Some(src) => {
                                        let _ =
                                            black_box(codec.decompress(black_box(src), &mut page));
                                    }
                                    None => {
                                        page.copy_from_slice(&pages[i]);
                                        black_box(software_fallback::crc32(&page));
                                    }
                                }
                            }
                        }
                    })
                })
            });
            g.bench_function("pool", |b| {
                b.iter_custom(|iters| {
                    parallel(threads, iters, |t, iters| {
                        let mut page = vec![0u8; PAGE_SIZE];
                        for _ in 0..iters {
                            for i in t * share..(t + 1) * share {
                                pool.load_on(t, 0, slot(i, n), &mut page, LoadMode::KeepCopy)
                                    .expect("load");
                                black_box(&page);
                            }
                        }
                    })
                })
            });
            g.finish();
        }
    }
}

/// Memory per stored page: the whole corpus stored 8 times over (a pool of realistic size;
/// the last, partly used span of each size class only amortises over many pages).
fn print_memory() {
    let corpus = benches::bench_corpus(usize::MAX);
    println!("\nmemory (whole corpus × 8, folios of 64 pages):");
    for name in SPECS {
        let spec: CodecSpec = name.parse().expect("spec");
        let copies = 8;
        let pool = Pool::new(PoolConfig {
            codec: spec,
            ..PoolConfig::default()
        })
        .expect("pool");
        pool.swapon(0, (corpus.len() * copies) as u64, None)
            .expect("swapon");
        store_corpus(&pool, &corpus, copies);
        let s = pool.stats();
        let objects = s.stored_pages - s.same_filled_pages;
        println!(
            "{name:<10} pages {:>7}  pool {:>10} B  compressed {:>10} B  pool/compressed {:.4}  \
             metadata/entry {:.1} B (index entry {} B + allocator {:.1} B/object)",
            s.stored_pages,
            s.pool_bytes,
            s.compressed_bytes,
            s.overhead_ratio(),
            (s.index_bytes + s.allocator_metadata_bytes) as f64 / s.stored_pages as f64,
            ENTRY_BYTES,
            s.allocator_metadata_bytes as f64 / objects.max(1) as f64,
        );
    }
}

fn store_corpus(pool: &Pool, corpus: &Corpus, copies: usize) {
    for k in 0..copies {
        for (j, folio) in corpus.as_bytes().chunks(64 * PAGE_SIZE).enumerate() {
            pool.store(0, (k * corpus.len() + j * 64) as u64, folio)
                .expect("store");
        }
    }
}

fn print_ratios() {
    let n = pages().len() as f64;
    for (f, dir) in [("store", "pool-store"), ("load", "pool-load")] {
        if let Some(own) = benches::criterion_mean_ns("pool-own", f) {
            let own = own / n;
            print!("\npool's own work per page ({f}, null codec, 1 KiB objects): {own:.0} ns =");
            for name in SPECS {
                if let Some(b) = benches::criterion_mean_ns(&format!("{dir}/{name}/1t"), "bare") {
                    print!("  {:.1} % of bare {name}", own / (b / n) * 100.0);
                }
            }
            println!();
        }
    }
    println!("\npool against bare codec (+CRC), per page; overhead goal ≤ 10 %:");
    println!(
        "{:<24} {:>9} {:>9} {:>9}   {:>14} {:>14}",
        "", "bare µs", "pool µs", "overhead", "bare 2t scale", "pool 2t scale"
    );
    for dir in ["pool-store", "pool-load"] {
        for name in SPECS {
            let get =
                |t: usize, f: &str| benches::criterion_mean_ns(&format!("{dir}/{name}/{t}t"), f);
            let n = pages().len() as f64;
            for t in [1usize, 2] {
                if let (Some(b), Some(p)) = (get(t, "bare"), get(t, "pool")) {
                    // Per page of wall time: each iteration handles n pages in all.
                    let per = |ns: f64| ns / 1000.0 / n;
                    let scale = |f: &str| match (get(1, f), get(2, f)) {
                        (Some(one), Some(two)) if t == 2 => format!("{:.2}x", one / two),
                        _ => String::from("-"),
                    };
                    println!(
                        "{:<24} {:>9.2} {:>9.2} {:>+8.1}%   {:>14} {:>14}",
                        format!("{dir}/{name}/{t}t"),
                        per(b),
                        per(p),
                        (p / b - 1.0) * 100.0,
                        scale("bare"),
                        scale("pool")
                    );
                }
            }
        }
    }
}

criterion_group! {
    name = pool_benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = bench_pool_own, bench_pool
}

fn main() {
    pool_benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
    print_memory();
}
