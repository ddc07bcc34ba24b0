//! Model checks of the three lifetime protocols on the production types, under shuttle's
//! PCT scheduler (depth 3; the pool's locks and atomics are shuttle's when the `shuttle`
//! feature is on). Run:
//!
//! ```text
//! cargo test -p pool --features shuttle --test shuttle
//! ```
//!
//! Build with `RUSTFLAGS='--cfg swapaccel_unprotected="hotplug"'` (or `"writeback"`,
//! `"compaction"`; see pool/README.md) to see the matching check fail. `SHUTTLE_ITERATIONS` sets the
//! iterations per check (default 2000).
#![cfg(feature = "shuttle")]

mod common;

use std::sync::Arc;

use common::{page_for, TempFile};
use pool::alloc::Allocator;
use pool::{LoadMode, Pool, PoolConfig, TestTopology};
use software_fallback::{CodecSpec, PAGE_SIZE};

fn iterations() -> usize {
    std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

fn new_pool(cpus: &[usize]) -> (Arc<Pool>, Arc<TestTopology>) {
    let topo = Arc::new(TestTopology::new(cpus));
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        topology: topo.clone(),
        ..PoolConfig::default()
    })
    .expect("pool");
    (Arc::new(pool), topo)
}

/// Writeback vs store and load of the same slot: the load after a store returns that store's
/// bytes, whatever the reclaimer did in between.
#[test]
fn writeback_vs_store_and_load() {
    shuttle::check_pct(
        || {
            let f = TempFile::new("shuttle-wb");
            let (pool, _) = new_pool(&[0, 1]);
            pool.swapon(0, 4, Some(f.open_rw())).unwrap();
            pool.store(0, 1, &page_for(1, 1)).unwrap();
            let p2 = pool.clone();
            let reclaimer = shuttle::thread::spawn(move || {
                p2.reclaim(1).unwrap();
            });
            pool.store_batch_on(0, 0, 1, &page_for(1, 2)).unwrap();
            let mut out = vec![0u8; PAGE_SIZE];
            pool.load(0, 1, &mut out, LoadMode::KeepCopy).unwrap();
            assert!(out == page_for(1, 2), "load returned stale bytes");
            reclaimer.join().unwrap();
            pool.load(0, 1, &mut out, LoadMode::Exclusive).unwrap();
            assert!(
                out == page_for(1, 2),
                "load returned stale bytes after writeback"
            );
        },
        iterations(),
        3,
    );
}

/// Writeback vs swapoff: once swapoff returns, nothing of the area is held and its file is
/// not written again.
#[test]
fn writeback_vs_swapoff() {
    shuttle::check_pct(
        || {
            let f = TempFile::new("shuttle-off");
            let (pool, _) = new_pool(&[0]);
            pool.swapon(0, 4, Some(f.open_rw())).unwrap();
            pool.store(0, 0, &page_for(0, 1)).unwrap();
            pool.store(0, 2, &page_for(2, 1)).unwrap();
            let p2 = pool.clone();
            let reclaimer = shuttle::thread::spawn(move || {
                let _ = p2.reclaim(2);
            });
            pool.swapoff(0).unwrap();
            let after = std::fs::read(&f.path).unwrap();
            reclaimer.join().unwrap();
            assert!(
                std::fs::read(&f.path).unwrap() == after,
                "file written after swapoff"
            );
            let s = pool.stats();
            assert_eq!((s.stored_pages, s.on_disk_pages, s.pool_bytes), (0, 0, 0));
        },
        iterations(),
        3,
    );
}

/// Compaction vs load and free, on the allocator: while a mover relocates an object, another
/// thread frees that very object and allocates a new one (which may reuse its handle), and
/// the main thread reads the others. Every handle keeps reading its own bytes.
#[test]
fn compaction_vs_load_and_free() {
    shuttle::check_pct(
        || {
            let a = Arc::new(Allocator::new());
            // 2048-byte objects: two per one-page span. Six objects in three spans, then one
            // freed from each: three half-empty spans, and compaction moves object 0 first.
            let obj = |i: u8| vec![i; 2048];
            let h: Vec<_> = (0..6).map(|i| a.alloc_write(&obj(i)).unwrap()).collect();
            for i in [1, 2, 4] {
                a.free(h[i]).unwrap();
            }
            let a2 = a.clone();
            let mover = shuttle::thread::spawn(move || {
                a2.compact();
            });
            let a3 = a.clone();
            let h0 = h[0];
            let freer = shuttle::thread::spawn(move || {
                a3.free(h0).unwrap();
                a3.alloc_write(&obj(9)).unwrap()
            });
            let mut out = vec![0u8; 2048];
            for i in [3, 5] {
                a.read(h[i], &mut out).unwrap();
                assert!(out == obj(i as u8), "object {i} changed under the mover");
            }
            mover.join().unwrap();
            let h9 = freer.join().unwrap();
            a.read(h9, &mut out).unwrap();
            assert!(out == obj(9), "the new object reads wrong bytes");
            for i in [3, 5] {
                a.read(h[i], &mut out).unwrap();
                assert!(out == obj(i as u8), "object {i} changed after compaction");
            }
            for hh in [h9, h[3], h[5]] {
                a.free(hh).unwrap();
            }
            assert_eq!((a.objects(), a.pool_bytes()), (0, 0));
        },
        iterations(),
        3,
    );
}

/// Contexts vs CPU hotplug: a CPU goes offline and comes back while another thread stores
/// with that CPU as its hint. No context is rebuilt and the store's bytes come back.
#[test]
fn contexts_vs_hotplug() {
    shuttle::check_pct(
        || {
            let (pool, topo) = new_pool(&[0, 1]);
            pool.swapon(0, 4, None).unwrap();
            let t2 = topo.clone();
            let p2 = pool.clone();
            let plug = shuttle::thread::spawn(move || {
                t2.offline(1);
                // Any pool call runs the (broken variant's) hotplug callbacks.
                let _ = p2.store_batch_on(0, 0, 3, &page_for(3, 1));
                t2.online(1);
            });
            pool.store_batch_on(1, 0, 1, &page_for(1, 1)).unwrap();
            let mut out = vec![0u8; PAGE_SIZE];
            pool.load_on(1, 0, 1, &mut out, LoadMode::KeepCopy).unwrap();
            assert!(out == page_for(1, 1));
            plug.join().unwrap();
            assert_eq!(pool.stats().contexts_created, 2, "a context was rebuilt");
        },
        iterations(),
        3,
    );
}
