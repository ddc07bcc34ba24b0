//! Each software codec through our `PageCodec` interface against the same library called
//! directly on the same pages, the direct call reusing its context and a preallocated output
//! buffer as a careful user would. The CRC-32 our interface computes is measured on its own.
//! Ours is given the destination the pool gives it: the codec's declared worst-case room
//! (`PageCodec::compress_room`: lz4_flex's and zstd's bound, into which they write
//! directly) or, for libdeflate, the page limit.
//!
//! After criterion runs, prints per codec and direction, measured paired and interleaved:
//!   ours/(d+crc) = ours / (direct + crc) - 1   (the wrapper's own cost; goal: ≤ 3 %)
//!   crc/direct   = (direct + crc) / direct - 1 (what the CRC adds)
//!   staged/ours  = ours into a page-limit destination / ours - 1 (compress: what the
//!                  scratch-and-copy costs lz4 and zstd when the room is not given)
//!
//! Run: `cargo bench -p benches --bench codecs`.

use benches::direct::{direct, median, time};
use criterion::{criterion_group, Criterion, Throughput};
use software_fallback::corpus::Corpus;
use software_fallback::{crc32, CodecSpec, PageCodec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};
use std::hint::black_box;
use std::sync::OnceLock;

const PAGES: usize = 256;
const SPECS: [&str; 5] = ["deflate:1", "zstd:1", "zstd:-1", "zstd:-3", "lz4"];

fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| benches::bench_corpus(PAGES))
}

fn bench_codecs(c: &mut Criterion) {
    let corpus = corpus();
    let n = corpus.len();

    let mut g = c.benchmark_group("crc32");
    g.throughput(Throughput::Bytes((n * PAGE_SIZE) as u64));
    g.bench_function("pages", |b| {
        b.iter(|| {
            for p in corpus.pages() {
                black_box(crc32(black_box(p)));
            }
        })
    });
    g.finish();

    for name in SPECS {
        let spec: CodecSpec = name.parse().expect("valid spec");
        let mut ours = spec.build().expect("codec");
        let mut bare = direct(&spec);
        // Compressed forms for the decompression benchmarks (incompressible pages skipped).
        let mut compressed: Vec<Vec<u8>> = Vec::new();
        let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
        for p in corpus.pages() {
            if let Ok(c) = ours.compress(p, &mut dst) {
                if let Some(len) = c.len {
                    compressed.push(dst[..len].to_vec());
                }
            }
        }

        let mut g = c.benchmark_group(format!("compress/{name}"));
        g.throughput(Throughput::Bytes((n * PAGE_SIZE) as u64));
        let mut out = vec![0u8; bare.out_room];
        g.bench_function("direct", |b| {
            b.iter(|| {
                for p in corpus.pages() {
                    black_box((bare.compress)(black_box(p), &mut out));
                }
            })
        });
        g.bench_function("direct+crc", |b| {
            b.iter(|| {
                for p in corpus.pages() {
                    black_box(crc32(p));
                    black_box((bare.compress)(black_box(p), &mut out));
                }
            })
        });
        let mut limit = vec![0u8; ours.compress_room().max(DEFAULT_COMPRESS_LIMIT)];
        g.bench_function("ours", |b| {
            b.iter(|| {
                for p in corpus.pages() {
                    let _ = black_box(ours.compress(black_box(p), &mut limit));
                }
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("decompress/{name}"));
        g.throughput(Throughput::Bytes((compressed.len() * PAGE_SIZE) as u64));
        let mut page = vec![0u8; PAGE_SIZE];
        g.bench_function("direct", |b| {
            b.iter(|| {
                for s in &compressed {
                    black_box((bare.decompress)(black_box(s), &mut page));
                }
            })
        });
        g.bench_function("direct+crc", |b| {
            b.iter(|| {
                for s in &compressed {
                    black_box((bare.decompress)(black_box(s), &mut page));
                    black_box(crc32(&page));
                }
            })
        });
        g.bench_function("ours", |b| {
            b.iter(|| {
                for s in &compressed {
                    let _ = black_box(ours.decompress(black_box(s), &mut page));
                }
            })
        });
        g.finish();
    }
}

/// The overhead figures, measured paired and interleaved: each round times the bare call,
/// the bare call plus the CRC, and ours, back to back in an order that rotates, and the
/// per-round ratios' medians are printed. Background load shifts all three of a round alike,
/// so the ratios hold where separate criterion runs would drift apart.
fn print_ratios() {
    const ROUNDS: usize = 41;
    let corpus = corpus();
    println!(
        "\nwrapper overhead, paired and interleaved ({ROUNDS} rounds of {} pages; medians):",
        corpus.len()
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>14} {:>10} {:>14}",
        "", "direct µs", "+crc µs", "ours µs", "ours/(d+crc)", "crc/direct", "staged/ours"
    );
    for dir in ["compress", "decompress"] {
        for name in SPECS {
            let spec: CodecSpec = name.parse().expect("valid spec");
            let mut ours = spec.build().expect("codec");
            let mut bare = direct(&spec);
            let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
            let mut compressed: Vec<Vec<u8>> = Vec::new();
            for p in corpus.pages() {
                if let Ok(c) = ours.compress(p, &mut dst) {
                    if let Some(len) = c.len {
                        compressed.push(dst[..len].to_vec());
                    }
                }
            }
            let mut out = vec![0u8; bare.out_room.max(PAGE_SIZE)];
            let mut limit = vec![0u8; ours.compress_room().max(DEFAULT_COMPRESS_LIMIT)];
            // A destination of the page limit: lz4 and zstd then compress into their own
            // scratch and copy (what the pool's buffers avoid); measured as `staged`.
            let mut staged = vec![0u8; DEFAULT_COMPRESS_LIMIT];
            let mut page = vec![0u8; PAGE_SIZE];
            let compress = dir == "compress";
            let variants = if compress { 4 } else { 3 };
            let mut run = |which: usize| -> f64 {
                time(&mut || {
                    if compress {
                        for p in corpus.pages() {
                            match which {
                                0 => {
                                    black_box((bare.compress)(black_box(p), &mut out));
                                }
                                1 => {
                                    black_box(crc32(p));
                                    black_box((bare.compress)(black_box(p), &mut out));
                                }
                                2 => {
                                    let _ = black_box(ours.compress(black_box(p), &mut limit));
                                }
                                _ => {
                                    let _ = black_box(ours.compress(black_box(p), &mut staged));
                                }
                            }
                        }
                    } else {
                        for s in &compressed {
                            match which {
                                0 => {
                                    black_box((bare.decompress)(black_box(s), &mut page));
                                }
                                1 => {
                                    black_box((bare.decompress)(black_box(s), &mut page));
                                    black_box(crc32(&page));
                                }
                                _ => {
                                    let _ = black_box(ours.decompress(black_box(s), &mut page));
                                }
                            }
                        }
                    }
                })
            };
            for w in 0..variants {
                run(w); // warm-up
            }
            let (mut d, mut dc, mut o, mut r_ours, mut r_crc, mut r_staged) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            for round in 0..ROUNDS {
                let mut t = [0.0; 4];
                for k in 0..variants {
                    let which = (round + k) % variants;
                    t[which] = run(which);
                }
                d.push(t[0]);
                dc.push(t[1]);
                o.push(t[2]);
                r_ours.push(t[2] / t[1]);
                r_crc.push(t[1] / t[0]);
                r_staged.push(t[3] / t[2]);
            }
            let pages = if compress {
                corpus.len()
            } else {
                compressed.len()
            } as f64;
            let per = |v: &mut Vec<f64>| median(v) / 1000.0 / pages;
            let staged = if compress {
                format!("{:>+13.1}%", (median(&mut r_staged) - 1.0) * 100.0)
            } else {
                format!("{:>14}", "-")
            };
            println!(
                "{:<22} {:>10.2} {:>10.2} {:>10.2} {:>+13.1}% {:>+9.1}% {staged}",
                format!("{dir}/{name}"),
                per(&mut d),
                per(&mut dc),
                per(&mut o),
                (median(&mut r_ours) - 1.0) * 100.0,
                (median(&mut r_crc) - 1.0) * 100.0
            );
        }
    }
}

criterion_group! {
    name = codecs;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench_codecs
}

fn main() {
    codecs();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
}
