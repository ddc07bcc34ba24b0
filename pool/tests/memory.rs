//! Memory grows with use, not with promises (issue 11, item 5): a swap area's index costs
//! memory only for the slots in use, allocation failure is a typed error and never an abort
//! (checked in a child process under an address-space limit, `RLIMIT_AS`, which changes
//! nothing outside that child), and a pool with no CPU is refused at creation.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::pool_with;
use pool::{LoadMode, Pool, PoolConfig, PoolError, TestTopology, MAX_AREA_SLOTS, MAX_SWAP_TYPES};
use software_fallback::{CodecSpec, PAGE_SIZE};

#[test]
fn a_pool_with_no_cpu_is_refused_at_creation() {
    let r = Pool::new(PoolConfig {
        topology: Arc::new(TestTopology::new(&[])),
        ..PoolConfig::default()
    });
    assert!(matches!(r, Err(PoolError::Topology(_))), "{r:?}");
}

#[test]
fn the_index_of_a_huge_area_follows_the_slots_in_use() {
    let (p, _) = pool_with(CodecSpec::LZ4, &[0]);
    for ty in 0..MAX_SWAP_TYPES {
        p.swapon(ty, MAX_AREA_SLOTS, None).unwrap();
    }
    assert_eq!(
        p.stats().index_bytes,
        0,
        "nothing stored, nothing allocated"
    );
    let page = vec![7u8; PAGE_SIZE];
    let mut incompressible = vec![0u8; PAGE_SIZE];
    fill_random(&mut incompressible, 1);
    p.store(5, MAX_AREA_SLOTS - 1, &incompressible).unwrap();
    p.store(5, 0, &page).unwrap();
    // Two directories (16 KiB each), two chunk arrays (8 KiB each).
    assert_eq!(p.stats().index_bytes, 2 * 16384 + 2 * 8192);
    let mut back = vec![0u8; PAGE_SIZE];
    p.load(5, MAX_AREA_SLOTS - 1, &mut back, LoadMode::Exclusive)
        .unwrap();
    assert_eq!(back, incompressible);
    p.load(5, 0, &mut back, LoadMode::Exclusive).unwrap();
    assert_eq!(back, page);
    // Chunk arrays go with their last entry; directories stay until swapoff.
    assert_eq!(p.stats().index_bytes, 2 * 16384);
    // Nothing stored elsewhere reads as absent, in ranges with and without a directory.
    for (ty, slot) in [(5, 1), (5, MAX_AREA_SLOTS - 2), (6, 1 << 31)] {
        let r = p.load(ty, slot, &mut back, LoadMode::KeepCopy);
        assert!(matches!(r, Err(PoolError::AbsentSlot { .. })), "{r:?}");
    }
    for ty in 0..MAX_SWAP_TYPES {
        p.swapoff(ty).unwrap();
    }
}

/// xorshift bytes, different per `seed`: a page no codec can shrink.
fn fill_random(page: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for w in page.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
}

const CHILD: &str = "POOL_MEMORY_LIMIT_CHILD";
/// Address space the child may add beyond what it has when the limit is set.
const HEADROOM: u64 = 192 << 20;

/// Re-runs this test binary on `test` alone, in a child process that sets its own limit.
fn run_child(test: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("spawn child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("child: done"),
        "child under RLIMIT_AS failed ({:?}):\n{text}",
        out.status
    );
}

/// Limits this process's address space to what it uses now plus `HEADROOM`.
fn limit_address_space() {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize");
    let lim = libc::rlimit {
        rlim_cur: kib * 1024 + HEADROOM,
        rlim_max: kib * 1024 + HEADROOM,
    };
    // SAFETY: setrlimit reads the struct we pass; it changes only this (child) process.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Under an address-space limit: every swap type on with 2^32 slots (the old index took
/// 256 MiB for each up front and aborted), then stores until memory runs out — that store
/// fails with `OutOfMemory` and leaves its slot empty — and the pool still works: what was
/// stored reads back, memory freed is usable again, every type swaps off.
#[test]
fn allocation_failure_is_an_error_never_an_abort() {
    if std::env::var_os(CHILD).is_none() {
        run_child("allocation_failure_is_an_error_never_an_abort");
        return;
    }
    // (DEFLATE: libdeflate compresses without allocating. lz4_flex allocates a hash table on
    // every compress call, which aborts under a limit like this one: the codec's, not the
    // pool's.)
    let (p, _) = pool_with(CodecSpec::DEFLATE, &[0]);
    let mut page = vec![0u8; PAGE_SIZE];
    let mut back = vec![0u8; PAGE_SIZE];
    let mut stored: Vec<u64> = Vec::with_capacity(1 << 20);
    limit_address_space();
    for ty in 0..MAX_SWAP_TYPES {
        p.swapon(ty, MAX_AREA_SLOTS, None)
            .unwrap_or_else(|e| panic!("swapon {ty}: {e}"));
    }
    // Each store lands in a fresh chunk (and every 512th in a fresh directory), so index
    // arrays, directories and allocator spans all compete for the memory left.
    let slot_of = |k: u64| (k * 512 + k % 7) % MAX_AREA_SLOTS;
    let mut k = 0u64;
    let oom = loop {
        fill_random(&mut page, k + 1);
        match p.store(1, slot_of(k), &page) {
            Ok(_) => stored.push(k),
            Err(e) => break e,
        }
        k += 1;
        assert!(k < 1 << 20, "the limit never bit");
    };
    assert!(
        matches!(oom, PoolError::OutOfMemory { .. }),
        "first failure: {oom:?}"
    );
    let r = p.load(1, slot_of(k), &mut back, LoadMode::KeepCopy);
    assert!(
        matches!(r, Err(PoolError::AbsentSlot { .. })),
        "the failed store left its slot empty: {r:?}"
    );
    // Free half of what was stored (checking it), then store again into the room made.
    let half = stored.len() / 2;
    for &j in &stored[..half] {
        p.load(1, slot_of(j), &mut back, LoadMode::Exclusive)
            .unwrap_or_else(|e| panic!("load {j}: {e}"));
        fill_random(&mut page, j + 1);
        assert!(back == page, "page {j} read back wrong");
    }
    for &j in &stored[..half.min(64)] {
        fill_random(&mut page, j + 1);
        p.store(1, slot_of(j), &page)
            .unwrap_or_else(|e| panic!("store after freeing: {e}"));
    }
    for &j in stored[half..].iter().step_by(97) {
        p.load(1, slot_of(j), &mut back, LoadMode::KeepCopy)
            .unwrap_or_else(|e| panic!("load {j}: {e}"));
        fill_random(&mut page, j + 1);
        assert!(back == page, "page {j} read back wrong");
    }
    for ty in 0..MAX_SWAP_TYPES {
        p.swapoff(ty).unwrap();
    }
    println!("child: done ({} pages stored before {oom})", stored.len());
}
