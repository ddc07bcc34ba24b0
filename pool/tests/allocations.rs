//! The pool's data path allocates nothing per page: keep-copy loads and load runs take no
//! heap allocation once the pool is warm, and stores take none but the allocator's spans
//! (memory for objects, which churns when a span fills or empties). Counted with a global
//! allocator that counts the calls made on the calling thread.
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{page_for, pool_with, real_corpus};
use pool::LoadMode;
use software_fallback::corpus::{classify, PageKind};
use software_fallback::{CodecSpec, PAGE_SIZE};

/// The system allocator, counting the allocations of each thread.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator, which upholds
// GlobalAlloc's contract; the counter is a const-initialised thread-local without a
// destructor, so touching it neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout, which the caller guarantees valid.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: `ptr` came from this allocator (so from System) with `layout`: the
        // caller's guarantee, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations this thread makes while running `f`.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

#[test]
fn loads_allocate_nothing_and_stores_only_allocator_spans() {
    // Real heap pages (or the built-in set) that the codec works on, and heap-like ones.
    let mut pages: Vec<Vec<u8>> = real_corpus(64)
        .pages()
        .filter(|p| classify(p) == PageKind::Other)
        .map(<[u8]>::to_vec)
        .collect();
    pages.extend((0..32).map(|s| page_for(s, 1)));
    pages.truncate(pages.len() / 8 * 8);
    let n = pages.len();
    for spec in ["lz4", "zstd:-3", "deflate:1"] {
        let spec: CodecSpec = spec.parse().unwrap();
        let (pool, _) = pool_with(spec, &[0]);
        pool.swapon(0, n as u64, None).unwrap();
        // Warm: every slot stored twice (spans with room for a replacement), loaded once.
        let mut page = vec![0u8; PAGE_SIZE];
        for _ in 0..2 {
            for (i, p) in pages.iter().enumerate() {
                pool.store(0, i as u64, p).unwrap();
            }
        }
        for i in 0..n {
            pool.load(0, i as u64, &mut page, LoadMode::KeepCopy)
                .unwrap();
        }
        let loads = allocations(|| {
            for (i, p) in pages.iter().enumerate() {
                pool.load(0, i as u64, &mut page, LoadMode::KeepCopy)
                    .unwrap();
                assert_eq!(&page, p);
            }
        });
        assert_eq!(loads, 0, "{spec}: allocations in {n} loads");
        let mut run = vec![0u8; 8 * PAGE_SIZE];
        let runs = allocations(|| {
            for first in (0..n).step_by(8) {
                pool.load_run(0, first as u64, &mut run, LoadMode::KeepCopy)
                    .unwrap();
            }
        });
        assert_eq!(runs, 0, "{spec}: allocations in {} load runs", n / 8);
        // Stores: every slot overwritten with the page it holds. What may allocate is the
        // allocator's own spans (a class whose spans are full gets a new one; a span whose
        // last object goes is freed), not the path: with one page everywhere (one class,
        // many objects per span), fewer than one store in 4 may allocate.
        let same = &page_for(1000, 1);
        for _ in 0..2 {
            for i in 0..n {
                pool.store(0, i as u64, same).unwrap();
            }
        }
        let stores = allocations(|| {
            for i in 0..n {
                pool.store(0, i as u64, same).unwrap();
            }
        });
        assert!(
            stores * 4 < n as u64,
            "{spec}: {stores} allocations in {n} stores"
        );
        eprintln!("{spec}: {stores} allocations in {n} stores of one page");
    }
}
