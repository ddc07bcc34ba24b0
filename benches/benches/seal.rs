//! What sealing written-back pages costs (issue 11, item 6): the pool's writeback and
//! file-load paths per page, against the bare AEAD calls they make (AES-256-GCM of one 4 KiB
//! page with its 28 bytes of associated data, RustCrypto `aes-gcm`, the same crate and
//! parameters as `pool::seal`), in the same run.
//!
//! * `seal/aead-seal`, `seal/aead-open`: the bare calls on one page.
//! * `seal/writeback`: `Pool::reclaim` of the corpus's pages (lz4: decode, CRC check, seal,
//!   two `pwrite`s, publish), per page; the stores that refill the pool between rounds are
//!   not timed.
//! * `seal/file-load`: keep-copy loads of those written-back pages (two `pread`s, open, CRC
//!   check), per page.
//!
//! The backing file is in `std::env::temp_dir()`: after the first round its pages are in the
//! page cache, so the figures are the CPU's side of the path (system calls and copies, no
//! device wait) — the share the AEAD takes of a path that waits for a disk is smaller.
//!
//! After criterion runs, prints per page: the path, the AEAD call, its share of the path, and
//! the path's cost over the same path without the AEAD (path / (path − AEAD)).
//!
//! Run: `cargo bench -p benches --bench seal`.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use criterion::{criterion_group, Criterion, Throughput};
use pool::{LoadMode, Pool, PoolConfig};
use software_fallback::{CodecSpec, PAGE_SIZE};

const PAGES: usize = 256;

fn pages() -> &'static Vec<Vec<u8>> {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| benches::codec_pages(PAGES, "seal"))
}

/// The associated data the pool binds (format tag, type, slot, sequence): same length.
fn aad(slot: u64, seq: u64) -> [u8; 28] {
    let mut a = [0u8; 28];
    a[..8].copy_from_slice(b"swpacc01");
    a[12..20].copy_from_slice(&slot.to_le_bytes());
    a[20..].copy_from_slice(&seq.to_le_bytes());
    a
}

fn nonce(seq: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n.into()
}

fn bench_aead(c: &mut Criterion) {
    let cipher = Aes256Gcm::new(&[7u8; 32].into());
    let mut page = pages()[0].clone();
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(PAGE_SIZE as u64));
    let mut seq = 0u64;
    g.bench_function("aead-seal", |b| {
        b.iter(|| {
            seq += 1;
            let tag = cipher
                .encrypt_in_place_detached(&nonce(seq), &aad(3, seq), black_box(&mut page))
                .expect("seal");
            black_box(tag);
        })
    });
    let tag = cipher
        .encrypt_in_place_detached(&nonce(1), &aad(3, 1), &mut page)
        .expect("seal");
    let sealed = page.clone();
    g.bench_function("aead-open", |b| {
        b.iter(|| {
            page.copy_from_slice(&sealed);
            cipher
                .decrypt_in_place_detached(&nonce(1), &aad(3, 1), black_box(&mut page), &tag)
                .expect("open");
        })
    });
    g.finish();
}

struct TempPath(std::path::PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn bench_paths(c: &mut Criterion) {
    let pages = pages();
    let n = pages.len();
    let path = TempPath(std::env::temp_dir().join(format!("seal-bench-{}", std::process::id())));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path.0)
        .expect("backing file");
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        ..PoolConfig::default()
    })
    .expect("pool");
    pool.swapon(0, n as u64, Some(file)).expect("swapon");
    let store_all = || {
        for (i, p) in pages.iter().enumerate() {
            pool.store(0, i as u64, p).expect("store");
        }
    };
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes((n * PAGE_SIZE) as u64));
    g.bench_function("writeback", |b| {
        b.iter_custom(|iters| {
            let mut t = Duration::ZERO;
            for _ in 0..iters {
                store_all(); // (not timed)
                let start = Instant::now();
                let w = pool.reclaim(n).expect("reclaim");
                t += start.elapsed();
                assert_eq!(w, n, "every page written back");
            }
            t
        })
    });
    store_all();
    assert_eq!(pool.reclaim(n).expect("reclaim"), n);
    let mut page = vec![0u8; PAGE_SIZE];
    g.bench_function("file-load", |b| {
        b.iter(|| {
            for i in 0..n {
                pool.load(0, i as u64, &mut page, LoadMode::KeepCopy)
                    .expect("file load");
                black_box(&page);
            }
        })
    });
    g.finish();
    assert!(pool.stats().file_loads > 0);
}

/// This thread's CPU time (user + system) in nanoseconds: unlike wall time, not inflated
/// when other processes share the cores.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the struct we own and pass by pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Thread CPU time per page of the same four operations, measured by hand after criterion
/// (the bare calls 20,000 times; the paths over 20 rounds of every page).
fn print_cpu_per_page() {
    let pages = pages();
    let n = pages.len();
    let cipher = Aes256Gcm::new(&[7u8; 32].into());
    let mut page = pages[0].clone();
    let reps = 20_000u64;
    let t = thread_cpu_ns();
    let mut tag = Default::default();
    for seq in 1..=reps {
        tag = cipher
            .encrypt_in_place_detached(&nonce(seq), &aad(3, seq), black_box(&mut page))
            .expect("seal");
    }
    let seal = (thread_cpu_ns() - t) as f64 / reps as f64;
    let sealed = page.clone();
    let t = thread_cpu_ns();
    for _ in 0..reps {
        page.copy_from_slice(&sealed);
        cipher
            .decrypt_in_place_detached(&nonce(reps), &aad(3, reps), black_box(&mut page), &tag)
            .expect("open");
    }
    let open = (thread_cpu_ns() - t) as f64 / reps as f64;

    let path = TempPath(std::env::temp_dir().join(format!("seal-cpu-{}", std::process::id())));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path.0)
        .expect("backing file");
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        ..PoolConfig::default()
    })
    .expect("pool");
    pool.swapon(0, n as u64, Some(file)).expect("swapon");
    let rounds = 20;
    let (mut wb, mut fl) = (0u128, 0u128);
    let mut out = vec![0u8; PAGE_SIZE];
    for _ in 0..rounds {
        for (i, p) in pages.iter().enumerate() {
            pool.store(0, i as u64, p).expect("store");
        }
        let t = thread_cpu_ns();
        assert_eq!(pool.reclaim(n).expect("reclaim"), n);
        wb += thread_cpu_ns() - t;
        let t = thread_cpu_ns();
        for i in 0..n {
            pool.load(0, i as u64, &mut out, LoadMode::KeepCopy)
                .expect("file load");
        }
        fl += thread_cpu_ns() - t;
    }
    let per = |ns: u128| ns as f64 / (rounds * n) as f64;
    println!(
        "
the same, in this thread's CPU time per page (not inflated by other load):"
    );
    for (name, p, a) in [("writeback", per(wb), seal), ("file-load", per(fl), open)] {
        println!(
            "{:<12} {:>10.2} {:>10.2} {:>13.1}% {:>21.2}x",
            name,
            p / 1000.0,
            a / 1000.0,
            a / p * 100.0,
            p / (p - a).max(1.0)
        );
    }
}

fn print_ratios() {
    let n = pages().len() as f64;
    let get = |f: &str| benches::criterion_mean_ns("seal", f);
    println!("\nsealing cost per 4 KiB page (AES-256-GCM, aes-gcm crate):");
    println!(
        "{:<12} {:>10} {:>10} {:>14} {:>22}",
        "path", "path µs", "AEAD µs", "AEAD share", "path / unsealed path"
    );
    for (path, aead) in [("writeback", "aead-seal"), ("file-load", "aead-open")] {
        if let (Some(p), Some(a)) = (get(path), get(aead)) {
            let p = p / n;
            println!(
                "{:<12} {:>10.2} {:>10.2} {:>13.1}% {:>21.2}x",
                path,
                p / 1000.0,
                a / 1000.0,
                a / p * 100.0,
                p / (p - a).max(1.0)
            );
        }
    }
}

criterion_group! {
    name = seal_benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = bench_aead, bench_paths
}

fn main() {
    seal_benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
    print_cpu_per_page();
}
