//! Which software codec for a software-only daemon (issue 17, item 4): lz4 against zstd's
//! negative levels, zstd:1 and deflate:1, on swapd-bench's records and on the real heap
//! corpora, all in the same run.
//!
//! Per input and codec: the ratio as a pool stores the pages (zero and same-filled pages take
//! no space, a page not under the 4095-byte cutoff counts as a full page: the `ratio` of
//! `swapaccel bench`), and the CPU per page of compress (what an eviction pays) and
//! decompress (what a fault pays) through our codec, CRC-32 included, each with its multiple
//! of lz4's. Times are CPU time (getrusage, so time other processes hold the CPU is not
//! counted) per page the codec works on (zero and same-filled pages skipped), the median of
//! rounds in which every codec runs back to back. The last lines name, per input, the best ratio among the codecs whose decompress is
//! within 15 % of lz4's (the fault path the program waits on), with its compress multiple.
//!
//! swapd-bench's records are built with its own `record_word` (256-byte records, the
//! default `--value-size`): 2048 pages, 16 records each, at versions 1 to 4.
//!
//! Run: `SWAPACCEL_CORPUS_DIR=/work/shared/corpus cargo bench -p benches --bench codec_choice`
//! (a missing corpus is skipped with the reason, a failure under `SWAPACCEL_REQUIRE_CORPUS=1`).

use std::hint::black_box;

use benches::direct::median;
use software_fallback::corpus::{classify, shared, Corpus, PageKind};
use software_fallback::{CodecSpec, PageCodec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};
use swapd_bench::workload::{cpu_times, record_word};

/// CPU time (user + system, ns) this process spends in `f`: on a shared machine, unlike wall
/// time, it does not count the time other processes hold the CPU.
fn cpu_time(f: &mut dyn FnMut()) -> f64 {
    let (u0, s0) = cpu_times();
    f();
    let (u1, s1) = cpu_times();
    ((u1 + s1).saturating_sub(u0 + s0)).as_nanos() as f64
}

const SPECS: [&str; 8] = [
    "lz4",
    "zstd:-1",
    "zstd:-2",
    "zstd:-3",
    "zstd:-4",
    "zstd:-5",
    "zstd:1",
    "deflate:1",
];
const PAGES: usize = 2048;
const ROUNDS: usize = 9;
/// Decompress within this factor of lz4's counts as "at lz4's speed".
const SPEED_SLACK: f64 = 1.15;
const VALUE_SIZE: usize = 256;

/// `n` pages of swapd-bench records, as its populate and write phases leave them.
fn records(n: usize) -> Corpus {
    let words = VALUE_SIZE / 8;
    let keys = n * PAGE_SIZE / VALUE_SIZE;
    let mut data = Vec::with_capacity(n * PAGE_SIZE);
    for key in 0..keys as u64 {
        let version = 1 + key % 4;
        for i in 0..words {
            data.extend_from_slice(&record_word(key, version, i).to_ne_bytes());
        }
    }
    Corpus::from_bytes("swapd-bench records", data).expect("whole pages")
}

struct Row {
    ratio: f64,
    compress_us: f64,
    decompress_us: f64,
}

fn measure(corpus: &Corpus) -> Vec<Row> {
    let work: Vec<&[u8]> = corpus
        .pages()
        .filter(|p| classify(p) == PageKind::Other)
        .collect();
    let mut codecs: Vec<_> = SPECS
        .iter()
        .map(|s| {
            s.parse::<CodecSpec>()
                .expect("spec")
                .build()
                .expect("codec")
        })
        .collect();
    let mut ratios = Vec::new();
    let mut forms: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut dsts: Vec<Vec<u8>> = Vec::new();
    for codec in &mut codecs {
        let mut dst = vec![0u8; codec.compress_room().max(DEFAULT_COMPRESS_LIMIT)];
        let mut stored = 0usize;
        let mut f = Vec::new();
        for p in &work {
            match codec.compress(p, &mut dst).expect("compress").len {
                Some(l) if l < DEFAULT_COMPRESS_LIMIT => {
                    stored += l;
                    f.push(dst[..l].to_vec());
                }
                _ => stored += PAGE_SIZE,
            }
        }
        ratios.push((corpus.len() * PAGE_SIZE) as f64 / stored.max(1) as f64);
        forms.push(f);
        dsts.push(dst);
    }
    let mut page = vec![0u8; PAGE_SIZE];
    let (mut comp, mut dec) = (vec![vec![]; SPECS.len()], vec![vec![]; SPECS.len()]);
    for round in 0..=ROUNDS {
        for k in 0..SPECS.len() {
            let c = (round + k) % SPECS.len();
            let (codec, dst) = (&mut codecs[c], &mut dsts[c]);
            let tc = cpu_time(&mut || {
                for p in &work {
                    let _ = black_box(codec.compress(black_box(p), dst));
                }
            });
            let td = cpu_time(&mut || {
                for s in &forms[c] {
                    let _ = black_box(codec.decompress(black_box(s), &mut page));
                }
            });
            if round > 0 {
                // Round 0 warms up.
                comp[c].push(tc / work.len().max(1) as f64);
                dec[c].push(td / forms[c].len().max(1) as f64);
            }
        }
    }
    (0..SPECS.len())
        .map(|c| Row {
            ratio: ratios[c],
            compress_us: median(&mut comp[c]) / 1000.0,
            decompress_us: median(&mut dec[c]) / 1000.0,
        })
        .collect()
}

fn report(corpus: &Corpus) {
    let rows = measure(corpus);
    let lz4 = &rows[0];
    println!(
        "\n{} ({} pages): ratio, CPU µs per page (× lz4's), median of {ROUNDS} rounds",
        corpus.name(),
        corpus.len()
    );
    println!(
        "{:<10} {:>7} {:>8} {:>11} {:>8} {:>11}",
        "", "ratio", "comp µs", "comp ×lz4", "dec µs", "dec ×lz4"
    );
    for (name, r) in SPECS.iter().zip(&rows) {
        println!(
            "{:<10} {:>7.2} {:>8.2} {:>10.2}× {:>8.2} {:>10.2}×",
            name,
            r.ratio,
            r.compress_us,
            r.compress_us / lz4.compress_us,
            r.decompress_us,
            r.decompress_us / lz4.decompress_us
        );
    }
    let best = SPECS
        .iter()
        .zip(&rows)
        .filter(|(_, r)| r.decompress_us <= lz4.decompress_us * SPEED_SLACK)
        .max_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio));
    if let Some((name, r)) = best {
        println!(
            "best ratio with decompress within {:.0} % of lz4's: {name} ({:.2}, {:.2}× lz4's ratio; compress {:.2}× lz4's)",
            (SPEED_SLACK - 1.0) * 100.0,
            r.ratio,
            r.ratio / lz4.ratio,
            r.compress_us / lz4.compress_us
        );
    }
}

fn main() {
    report(&records(PAGES));
    for name in ["py-heap.pages.zst", "node-heap.pages.zst"] {
        match shared::load(name) {
            Ok(c) => report(&c.sample(PAGES)),
            Err(why) if shared::required() => panic!("{why}"),
            Err(why) => println!("\n{name}: skipped ({why})"),
        }
    }
}
