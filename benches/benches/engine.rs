//! The batching engine against calling the pool directly, on real pages (the bench corpus's
//! pages that the codec has to work on).
//!
//! * **Added cost per page, throughput**: 256 single-page stores of consecutive slots,
//!   submitted at once through the engine (one worker; the producer reuses its buffers, which
//!   come back in the completions) against the same pages stored by direct
//!   `Pool::store_batch_on` calls, one page per call and eight pages per call (what the
//!   engine's coalescing turns them into). Once with raw DEFLATE (libdeflate level 1), once
//!   with a null codec, where what remains is the engine's and the pool's own work.
//! * **A lone request's latency**: one single-page store, waited for, against one direct
//!   call (the engine's figure includes waking a parked worker).
//! * **2 workers against 1**, next to the bare codec's own 2-thread scaling in the same run:
//!   256 pages as 32 eight-page stores through the engine with 1 and 2 workers; the bare
//!   codec compressing the same pages on 1 and 2 threads.
//! * **On the IAA device emulator**: the same store through the engine, and the histogram
//!   of descriptors in flight per device submission round, with the engine's batch-size
//!   histogram. The emulator models no device latency: its figures measure this project's
//!   software and the emulator's own work, never IAA.
//!
//! After criterion runs it prints the ratios. Run: `cargo bench -p benches --bench engine`.

use std::hint::black_box;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use accel::emu::{Emulator, EmulatorConfig};
use accel::ContextConfig;
use batching::{DeviceBackend, Engine, EngineConfig, Request, Ticket, Workers};
use criterion::{criterion_group, Criterion, Throughput};
use pool::{CodecFactory, CpuTopology, Pool, PoolConfig, TestTopology};
use software_fallback::{
    CodecError, CodecId, CodecSpec, Compressed, Decompressed, PageCodec, SoftwareCodec,
    DEFAULT_COMPRESS_LIMIT, MAX_BATCH, PAGE_SIZE,
};

const PAGES: usize = 256;

/// The corpus's pages that a codec has to work on.
fn pages() -> &'static Vec<Vec<u8>> {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| benches::codec_pages(PAGES, "engine"))
}

/// The same pages as one contiguous run (for 8-page direct calls).
fn contiguous() -> &'static Vec<u8> {
    static C: OnceLock<Vec<u8>> = OnceLock::new();
    C.get_or_init(|| pages().concat())
}

/// A codec that does almost nothing (a 1 KiB copy), so that what remains of a store is the
/// pool's and the engine's own work.
struct NullCodec;

impl PageCodec for NullCodec {
    fn id(&self) -> CodecId {
        CodecId::Lz4
    }
    fn compress(&mut self, page: &[u8], dst: &mut [u8]) -> Result<Compressed, CodecError> {
        dst[..1024].copy_from_slice(&page[..1024]);
        Ok(Compressed {
            len: Some(1024),
            crc32: 0,
        })
    }
    fn decompress(&mut self, src: &[u8], page: &mut [u8]) -> Result<Decompressed, CodecError> {
        page[..src.len()].copy_from_slice(src);
        Ok(Decompressed { crc32: 0 })
    }
}

fn topology() -> Arc<TestTopology> {
    Arc::new(TestTopology::new(&[0, 1]))
}

fn new_pool(null: bool, factory: Option<Arc<dyn CodecFactory>>) -> Arc<Pool> {
    let topo = topology();
    let mut cfg = PoolConfig {
        topology: topo as Arc<dyn CpuTopology>,
        ..PoolConfig::default()
    };
    if null {
        cfg.codec = CodecSpec::LZ4;
        let f = |_: CodecSpec| -> pool::Result<Box<dyn PageCodec>> { Ok(Box::new(NullCodec)) };
        cfg.factory = Arc::new(f);
    }
    if let Some(f) = factory {
        cfg.factory = f;
    }
    let pool = Pool::new(cfg).expect("pool");
    pool.swapon(0, 1 << 16, None).expect("swapon");
    Arc::new(pool)
}

fn new_engine(pool: &Arc<Pool>, workers: usize, device: Option<Arc<DeviceBackend>>) -> Engine {
    // The workers follow the pool's own CPU topology.
    let mut cfg = EngineConfig::for_pool(pool);
    cfg.workers = Workers::Fixed(workers);
    cfg.device = device;
    Engine::start(Arc::clone(pool), cfg).expect("engine")
}

/// Submits `bufs` as stores of `per` pages at consecutive slots, waits for all, and puts
/// the buffers (returned in the completions, in order) back.
fn engine_round(e: &Engine, bufs: &mut Vec<Vec<u8>>, per: usize) {
    let tickets: Vec<Ticket> = bufs
        .drain(..)
        .enumerate()
        .map(|(i, data)| {
            e.submit(Request::Store {
                ty: 0,
                slot: (i * per) as u64,
                data,
            })
            .expect("submit")
        })
        .collect();
    for c in Ticket::wait_all(tickets) {
        assert!(c.is_ok(), "{:?}", c.outcome);
        bufs.push(c.buffer);
    }
}

fn single_page_bufs() -> Vec<Vec<u8>> {
    pages().clone()
}

fn folio_bufs() -> Vec<Vec<u8>> {
    contiguous()
        .chunks(MAX_BATCH * PAGE_SIZE)
        .map(<[u8]>::to_vec)
        .collect()
}

fn bench_added_cost(c: &mut Criterion) {
    for (label, null) in [("deflate:1", false), ("null", true)] {
        let pool = new_pool(null, None);
        let n = pages().len();
        let mut g = c.benchmark_group(format!("engine-store/{label}"));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("pool-1page", |b| {
            b.iter(|| {
                for (i, p) in pages().iter().enumerate() {
                    pool.store_batch_on(0, 0, i as u64, black_box(p))
                        .expect("store");
                }
            })
        });
        g.bench_function("pool-8pages", |b| {
            b.iter(|| {
                for (k, f) in contiguous().chunks(MAX_BATCH * PAGE_SIZE).enumerate() {
                    pool.store_batch_on(0, 0, (k * MAX_BATCH) as u64, black_box(f))
                        .expect("store");
                }
            })
        });
        let e = new_engine(&pool, 1, None);
        let mut bufs = single_page_bufs();
        g.bench_function("engine-1page", |b| {
            b.iter(|| engine_round(&e, &mut bufs, 1))
        });
        let m = e.metrics();
        eprintln!(
            "engine-store/{label}: mean coalesced batch {:.2} pages, {} pool calls for {} pages",
            m.mean_batch_pages(),
            m.pool_calls,
            m.pages_of(batching::Op::Store)
        );
        drop(e);
        g.finish();

        let mut g = c.benchmark_group(format!("engine-lone/{label}"));
        g.throughput(Throughput::Elements(1));
        let p = &pages()[0];
        g.bench_function("pool", |b| {
            b.iter(|| pool.store_batch_on(0, 0, 0, black_box(p)).expect("store"))
        });
        let e = new_engine(&pool, 1, None);
        let mut buf = Some(p.clone());
        g.bench_function("engine", |b| {
            b.iter(|| {
                let data = buf.take().expect("buffer");
                let done = e.store(0, 0, data).expect("submit").wait();
                assert!(done.is_ok());
                buf = Some(done.buffer);
            })
        });
        g.finish();
    }
}

fn bench_scaling(c: &mut Criterion) {
    let pool = new_pool(false, None);
    let n = pages().len();
    let mut g = c.benchmark_group("engine-scaling/deflate:1");
    g.throughput(Throughput::Elements(n as u64));
    let codecs: Vec<Mutex<SoftwareCodec>> = (0..2)
        .map(|_| Mutex::new(CodecSpec::DEFLATE.build().expect("codec")))
        .collect();
    for threads in [1usize, 2] {
        let share = n / threads;
        g.bench_function(format!("bare-{threads}t"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let codecs = &codecs;
                        s.spawn(move || {
                            let mut codec = codecs[t].lock().expect("codec");
                            let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
                            for _ in 0..iters {
                                for p in &pages()[t * share..(t + 1) * share] {
                                    let _ = black_box(codec.compress(black_box(p), &mut dst));
                                }
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    for workers in [1usize, 2] {
        let e = new_engine(&pool, workers, None);
        let mut bufs = folio_bufs();
        g.bench_function(format!("engine-{workers}w"), |b| {
            b.iter(|| engine_round(&e, &mut bufs, MAX_BATCH))
        });
    }
    g.finish();
}

fn bench_emulator(c: &mut Criterion) {
    let emu = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let backend = DeviceBackend::new(
        emu.work_queue(),
        ContextConfig::default(),
        Duration::from_millis(100),
    );
    let pool = new_pool(false, Some(backend.factory()));
    let n = pages().len();
    let mut g = c.benchmark_group("engine-emulator/deflate");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("pool-8pages", |b| {
        b.iter(|| {
            for (k, f) in contiguous().chunks(MAX_BATCH * PAGE_SIZE).enumerate() {
                pool.store_batch_on(0, 0, (k * MAX_BATCH) as u64, black_box(f))
                    .expect("store");
            }
        })
    });
    let e = new_engine(&pool, 1, Some(Arc::clone(&backend)));
    let before = backend.snapshot();
    let mut bufs = single_page_bufs();
    g.bench_function("engine-1page", |b| {
        b.iter(|| engine_round(&e, &mut bufs, 1))
    });
    g.finish();
    let after = backend.snapshot();
    let m = e.metrics();
    println!(
        "\nIAA DEVICE EMULATOR ({}): no device latency is modelled; these figures measure \
         this project's software and the emulator's own work, never IAA.",
        after.work_queue
    );
    println!("descriptors in flight per device submission round (engine run, compress + verify):");
    for k in 1..=MAX_BATCH {
        let rounds = after.in_flight[k] - before.in_flight[k];
        println!("  {k} in flight: {rounds:>8} rounds");
    }
    println!("engine batch sizes (pages per worker batch):");
    for k in 1..=MAX_BATCH {
        println!("  {k} pages: {:>8} batches", m.batch_pages[k]);
    }
    println!(
        "device pages {:?} software pages {:?} fallbacks {}",
        after.device_pages,
        after.software_pages,
        after.fallbacks_total()
    );
}

/// CPU time of this whole process (every thread, the engine's workers included), in ns.
fn process_cpu_ns() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64)
}

/// Median wall time and median process CPU time of one closure, in ns.
#[derive(Clone, Copy)]
struct Med {
    wall: f64,
    cpu: Option<f64>,
}

/// Times each closure once per round, the closures interleaved (rotating which goes first),
/// and returns each one's medians: a load that comes and goes on a shared machine hits
/// every closure alike, which back-to-back criterion groups cannot promise. CPU time counts
/// the work of every thread of this process (the engine's workers included) and none of
/// other processes', so it shows the engine's added work even on a loaded machine.
fn interleaved(rounds: usize, fns: &mut [&mut dyn FnMut()]) -> Vec<Med> {
    let k = fns.len();
    let mut wall: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); k];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); k];
    for r in 0..rounds {
        for j in 0..k {
            let i = (r + j) % k;
            let c0 = process_cpu_ns();
            let start = Instant::now();
            (fns[i])();
            wall[i].push(start.elapsed().as_nanos() as f64);
            if let (Some(a), Some(b)) = (c0, process_cpu_ns()) {
                cpu[i].push(b - a);
            }
        }
    }
    let median = |mut t: Vec<f64>| {
        if t.is_empty() {
            return None;
        }
        t.sort_by(f64::total_cmp);
        Some(t[t.len() / 2])
    };
    wall.into_iter()
        .zip(cpu)
        .map(|(w, c)| Med {
            wall: median(w).unwrap_or(f64::NAN),
            cpu: median(c),
        })
        .collect()
}

/// The headline ratios, measured paired and interleaved (medians of 41 rounds).
fn paired_report() {
    let n = pages().len();
    let nf = n as f64;
    let rounds = 41;
    println!(
        "\npaired, interleaved medians ({rounds} rounds; robust to load from other processes):"
    );
    for (label, null) in [("deflate:1", false), ("null", true)] {
        let pool = new_pool(null, None);
        let e = new_engine(&pool, 1, None);
        let mut bufs = single_page_bufs();
        let mut lone = Some(pages()[0].clone());
        let mut direct1 = || {
            for (i, p) in pages().iter().enumerate() {
                pool.store_batch_on(0, 0, i as u64, black_box(p))
                    .expect("store");
            }
        };
        let mut direct8 = || {
            for (k, f) in contiguous().chunks(MAX_BATCH * PAGE_SIZE).enumerate() {
                pool.store_batch_on(0, 0, (k * MAX_BATCH) as u64, black_box(f))
                    .expect("store");
            }
        };
        let mut eng = || engine_round(&e, &mut bufs, 1);
        let t = interleaved(rounds, &mut [&mut direct1, &mut direct8, &mut eng]);
        let per = |x: f64| x / 1000.0 / nf;
        println!(
            "  {label:<10} wall µs/page: pool 1-page calls {:.3}, pool 8-page calls {:.3}, \
             engine {:.3}; engine adds {:+.3}",
            per(t[0].wall),
            per(t[1].wall),
            per(t[2].wall),
            per(t[2].wall - t[0].wall)
        );
        if let (Some(c0), Some(c1), Some(c2)) = (t[0].cpu, t[1].cpu, t[2].cpu) {
            println!(
                "  {label:<10} CPU µs/page (all threads): pool 1-page calls {:.3}, pool 8-page \
                 calls {:.3}, engine {:.3}; engine adds {:+.3} (goal < 1 µs)",
                per(c0),
                per(c1),
                per(c2),
                per(c2 - c0)
            );
        }
        let p0 = &pages()[0];
        let mut lone_pool = || {
            for _ in 0..32 {
                pool.store_batch_on(0, 0, 0, black_box(p0)).expect("store");
            }
        };
        let mut lone_engine = || {
            for _ in 0..32 {
                let data = lone.take().expect("buffer");
                let done = e.store(0, 0, data).expect("submit").wait();
                lone = Some(done.buffer);
            }
        };
        let t = interleaved(rounds, &mut [&mut lone_pool, &mut lone_engine]);
        println!(
            "  {label:<10} lone request latency: pool {:.2} µs, engine {:.2} µs, added {:+.2} µs",
            t[0].wall / 1000.0 / 32.0,
            t[1].wall / 1000.0 / 32.0,
            (t[1].wall - t[0].wall) / 1000.0 / 32.0
        );
    }
    // 2 against 1, next to the bare codec's own scaling, all four interleaved.
    let pool = new_pool(false, None);
    let e1 = new_engine(&pool, 1, None);
    let pool2 = new_pool(false, None);
    let e2 = new_engine(&pool2, 2, None);
    let codecs: Vec<Mutex<SoftwareCodec>> = (0..2)
        .map(|_| Mutex::new(CodecSpec::DEFLATE.build().expect("codec")))
        .collect();
    let bare = |threads: usize| {
        let share = n / threads;
        std::thread::scope(|s| {
            for t in 0..threads {
                let codecs = &codecs;
                s.spawn(move || {
                    let mut codec = codecs[t].lock().expect("codec");
                    let mut dst = vec![0u8; DEFAULT_COMPRESS_LIMIT];
                    for p in &pages()[t * share..(t + 1) * share] {
                        let _ = black_box(codec.compress(black_box(p), &mut dst));
                    }
                });
            }
        });
    };
    let mut b1 = || bare(1);
    let mut b2 = || bare(2);
    let mut bufs1 = folio_bufs();
    let mut bufs2 = folio_bufs();
    let mut w1 = || engine_round(&e1, &mut bufs1, MAX_BATCH);
    let mut w2 = || engine_round(&e2, &mut bufs2, MAX_BATCH);
    let t: Vec<f64> = interleaved(rounds, &mut [&mut b1, &mut b2, &mut w1, &mut w2])
        .into_iter()
        .map(|m| m.wall)
        .collect();
    let (bs, es) = (t[0] / t[1], t[2] / t[3]);
    println!(
        "  2 against 1 (deflate:1, 8-page stores): bare codec {bs:.2}x, engine {es:.2}x = {:.0} % \
         of the codec's own scaling (goal ≥ 90 %); engine 1 worker {:.2} µs/page vs bare {:.2}",
        es / bs * 100.0,
        t[2] / 1000.0 / nf,
        t[0] / 1000.0 / nf
    );
}

fn ns(group: &str, f: &str) -> Option<f64> {
    benches::criterion_mean_ns(group, f)
}

fn print_ratios() {
    let n = pages().len() as f64;
    println!("\nengine's added cost per page (1 worker, 256 single-page stores; µs per page):");
    for label in ["deflate:1", "null"] {
        let g = format!("engine-store/{label}");
        if let (Some(p1), Some(p8), Some(e)) = (
            ns(&g, "pool-1page"),
            ns(&g, "pool-8pages"),
            ns(&g, "engine-1page"),
        ) {
            println!(
                "  {label:<10} pool 1-page calls {:>7.3}  pool 8-page calls {:>7.3}  engine {:>7.3}  \
                 added vs 1-page {:>+7.3}  added vs 8-page {:>+7.3}  (goal < 1 µs)",
                p1 / 1000.0 / n,
                p8 / 1000.0 / n,
                e / 1000.0 / n,
                (e - p1) / 1000.0 / n,
                (e - p8) / 1000.0 / n,
            );
        }
        let g = format!("engine-lone/{label}");
        if let (Some(p), Some(e)) = (ns(&g, "pool"), ns(&g, "engine")) {
            println!(
                "  {label:<10} lone request: pool {:>7.2} µs  engine {:>7.2} µs  added {:>+7.2} µs",
                p / 1000.0,
                e / 1000.0,
                (e - p) / 1000.0
            );
        }
    }
    let g = "engine-scaling/deflate:1";
    if let (Some(b1), Some(b2), Some(e1), Some(e2)) = (
        ns(g, "bare-1t"),
        ns(g, "bare-2t"),
        ns(g, "engine-1w"),
        ns(g, "engine-2w"),
    ) {
        let bare = b1 / b2;
        let eng = e1 / e2;
        println!(
            "\n2 against 1: bare codec 2-thread scaling {bare:.2}x, engine 2 workers vs 1 \
             {eng:.2}x = {:.0} % of the codec's own scaling (goal ≥ 90 %)",
            eng / bare * 100.0
        );
    }
    let g = "engine-emulator/deflate";
    if let (Some(p), Some(e)) = (ns(g, "pool-8pages"), ns(g, "engine-1page")) {
        println!(
            "emulator (no device latency): pool 8-page calls {:.2} µs/page, engine single-page \
             requests {:.2} µs/page",
            p / 1000.0 / n,
            e / 1000.0 / n
        );
    }
}

criterion_group! {
    name = engine_benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = bench_added_cost, bench_scaling, bench_emulator
}

fn main() {
    engine_benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
    paired_report();
}
