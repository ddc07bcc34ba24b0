//! What swapd pays per page in the pool, against the bare library call, per codec: the
//! default of `swapd-bench` (zstd:-3), lz4 and deflate:1, on the same real pages in the same
//! run.
//!
//! * store: `Pool::store` of one page (what an eviction costs) against the bare compress call
//!   plus the page's CRC-32 (the least any verified store does);
//! * load: `Pool::load` of one page, keep-copy (what a fault costs) against the bare
//!   decompress call plus the CRC-32 (a page the pool stored raw: a copy plus the CRC-32);
//! * load_run: `Pool::load_run` of 8 consecutive slots (fault-around) against the same bare
//!   calls for its 8 pages.
//!
//! The pages are the bench corpus's pages that the codec has to work on (zero and
//! same-filled pages are left out: the pool does not compress them). Stores overwrite the
//! same slots, so each also frees the entry it replaces (steady state). Each round times the
//! bare calls and the pool's, back to back in an order that rotates; the per-round ratios'
//! medians are printed, so background load on a shared machine shifts both sides alike:
//!
//!   bare µs, pool µs (per page), pool/bare − 1, pool − bare (ns per page: the pool's cost)
//!
//! Run: `cargo bench -p benches --bench pool_path`. For a profile of one path,
//! `perf record -g target/release/deps/pool_path-* --bench store/lz4` (arguments select the
//! rows whose label contains one of them).

use std::hint::black_box;

use benches::direct::{direct, median, time};
use pool::{LoadMode, Pool, PoolConfig};
use software_fallback::{crc32, CodecSpec, PageCodec, DEFAULT_COMPRESS_LIMIT, PAGE_SIZE};

const PAGES: usize = 256;
/// Rounds (`POOL_PATH_ROUNDS` overrides: more for a profile).
fn rounds() -> usize {
    std::env::var("POOL_PATH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(41)
}
const SPECS: [&str; 3] = ["zstd:-3", "lz4", "deflate:1"];
/// Pages per `load_run` call.
const RUN: usize = 8;

fn main() {
    // `cargo bench` passes `--bench`; any other argument selects specs by substring.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let pages = benches::codec_pages(PAGES, "pool_path");
    let n = pages.len() - pages.len() % RUN;
    let pages = &pages[..n];
    println!(
        "\npool path against the bare library (+CRC-32), paired and interleaved \
         ({} rounds of {n} pages; medians):",
        rounds()
    );
    println!(
        "{:<22} {:>9} {:>9} {:>10} {:>14}",
        "", "bare µs", "pool µs", "pool/bare", "pool-bare ns"
    );
    let wanted =
        |label: &str| filters.is_empty() || filters.iter().any(|f| label.contains(f.as_str()));
    for name in SPECS {
        if !["store", "load", "load_run"]
            .iter()
            .any(|path| wanted(&format!("{path}/{name}")))
        {
            continue;
        }
        let spec: CodecSpec = name.parse().expect("valid spec");
        let mut bare = direct(&spec);
        // Each page's compressed form (`None`: the pool stores it raw) for the bare loads.
        let forms: Vec<Option<Vec<u8>>> = {
            let mut codec = spec.build().expect("codec");
            let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
            pages
                .iter()
                .map(|p| {
                    let c = codec.compress(p, &mut dst).expect("compress");
                    c.len.map(|l| dst[..l].to_vec())
                })
                .collect()
        };
        let pool = Pool::new(PoolConfig {
            codec: spec,
            ..PoolConfig::default()
        })
        .expect("pool");
        pool.swapon(0, n as u64, None).expect("swapon");
        for (i, p) in pages.iter().enumerate() {
            pool.store(0, i as u64, p).expect("store");
        }
        let mut out = vec![0u8; bare.out_room.max(PAGE_SIZE)];
        let mut page = vec![0u8; PAGE_SIZE];
        let mut pool_page = vec![0u8; PAGE_SIZE];
        let mut run_buf = vec![0u8; RUN * PAGE_SIZE];
        for path in ["store", "load", "load_run"] {
            if !wanted(&format!("{path}/{name}")) {
                continue;
            }
            let mut bare_round = || {
                time(&mut || {
                    for (i, p) in pages.iter().enumerate() {
                        if path == "store" {
                            black_box(crc32(black_box(p)));
                            black_box((bare.compress)(black_box(p), &mut out));
                        } else {
                            match &forms[i] {
                                Some(src) => {
                                    black_box((bare.decompress)(black_box(src), &mut page));
                                }
                                None => page.copy_from_slice(p),
                            }
                            black_box(crc32(&page));
                        }
                    }
                })
            };
            let mut pool_round = || {
                time(&mut || match path {
                    "store" => {
                        for (i, p) in pages.iter().enumerate() {
                            black_box(pool.store(0, i as u64, black_box(p)).expect("store"));
                        }
                    }
                    "load" => {
                        for i in 0..n {
                            pool.load(0, i as u64, &mut pool_page, LoadMode::KeepCopy)
                                .expect("load");
                            black_box(&pool_page);
                        }
                    }
                    _ => {
                        for first in (0..n).step_by(RUN) {
                            pool.load_run(0, first as u64, &mut run_buf, LoadMode::KeepCopy)
                                .expect("load_run");
                            black_box(&run_buf);
                        }
                    }
                })
            };
            for _ in 0..3 {
                bare_round();
                pool_round();
            }
            let (mut b, mut p, mut r) = (vec![], vec![], vec![]);
            for round in 0..rounds() {
                let (tb, tp) = if round % 2 == 0 {
                    let tb = bare_round();
                    (tb, pool_round())
                } else {
                    let tp = pool_round();
                    (bare_round(), tp)
                };
                b.push(tb);
                p.push(tp);
                r.push(tp / tb);
            }
            let per = |v: &mut Vec<f64>| median(v) / n as f64;
            let (bn, pn) = (per(&mut b), per(&mut p));
            println!(
                "{:<22} {:>9.2} {:>9.2} {:>+9.1}% {:>14.0}",
                format!("{path}/{name}"),
                bn / 1000.0,
                pn / 1000.0,
                (median(&mut r) - 1.0) * 100.0,
                pn - bn
            );
        }
    }
}
