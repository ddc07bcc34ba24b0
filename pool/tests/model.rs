//! Model-based property test: random sequences of swapon, store, load (both modes and runs),
//! invalidate (plain and conditional), reclaim, compaction, compressor switch and swapoff,
//! checked against a plain map of what each slot should hold: after every operation, every
//! slot of every area that is on is read back (keep-copy) and compared with the map, and the
//! statistics' page counts with the map's size. Some stores are made to fail in the codec
//! part-way through the folio, to check that a failed store leaves no entry for its slots.
// Under the `shuttle` feature the pool runs on shuttle primitives: only tests/shuttle.rs runs.
#![cfg(not(feature = "shuttle"))]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use common::{factory, injected, page_for, CodecEnv, TempFile};
use pool::{Generation, LoadMode, Pool, PoolConfig, PoolError, TestTopology};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use software_fallback::{CodecSpec, PAGE_SIZE};

const TYPES: u32 = 2;
const SLOTS: u64 = 24;

#[derive(Clone, Debug)]
enum Op {
    Swapon(u32),
    Swapoff(u32),
    Store {
        ty: u32,
        slot: u64,
        pages: usize,
        version: u64,
        /// Make the codec fail on this compress call of the store (if it gets that far).
        fail_at: Option<i64>,
    },
    Load {
        ty: u32,
        slot: u64,
        exclusive: bool,
    },
    LoadRun {
        ty: u32,
        slot: u64,
        pages: usize,
        exclusive: bool,
    },
    Invalidate {
        ty: u32,
        slot: u64,
    },
    InvalidateIf {
        ty: u32,
        slot: u64,
        stale: bool,
    },
    Reclaim(usize),
    Compact,
    Switch(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let ty = 0..TYPES + 1; // one type that is never on
    let slot = 0..SLOTS + 2; // a little beyond the end
    prop_oneof![
        1 => ty.clone().prop_map(Op::Swapon),
        1 => ty.clone().prop_map(Op::Swapoff),
        8 => (ty.clone(), slot.clone(), 1..12usize, any::<u64>())
            .prop_map(|(ty, slot, pages, version)| Op::Store { ty, slot, pages, version, fail_at: None }),
        2 => (ty.clone(), slot.clone(), 1..12usize, any::<u64>(), 0..10i64)
            .prop_map(|(ty, slot, pages, version, at)| Op::Store { ty, slot, pages, version, fail_at: Some(at) }),
        5 => (ty.clone(), slot.clone(), any::<bool>())
            .prop_map(|(ty, slot, exclusive)| Op::Load { ty, slot, exclusive }),
        2 => (ty.clone(), slot.clone(), 1..4usize, any::<bool>())
            .prop_map(|(ty, slot, pages, exclusive)| Op::LoadRun { ty, slot, pages, exclusive }),
        2 => (ty.clone(), slot.clone()).prop_map(|(ty, slot)| Op::Invalidate { ty, slot }),
        2 => (ty.clone(), slot.clone(), any::<bool>())
            .prop_map(|(ty, slot, stale)| Op::InvalidateIf { ty, slot, stale }),
        2 => (1..16usize).prop_map(Op::Reclaim),
        1 => Just(Op::Compact),
        1 => (0..3u8).prop_map(Op::Switch),
    ]
}

/// Page contents for (slot, version): zero, same-filled, random (incompressible), heap-like,
/// or 2000 random bytes then zeros — which lz4 and zstd compress to 2033..=2048 bytes
/// whatever the bytes: the 2048-byte class, two objects per one-page span, so that a few of
/// them give compaction part-empty spans to merge.
fn content(slot: u64, version: u64) -> Vec<u8> {
    let random = |n: usize| {
        let mut x = version | 1;
        (0..n)
            .map(move |_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
    };
    match version % 5 {
        0 => vec![0; PAGE_SIZE],
        1 => (version | 1).to_ne_bytes().repeat(PAGE_SIZE / 8),
        2 => random(PAGE_SIZE),
        3 => page_for(slot, version),
        _ => [random(2000), vec![0; PAGE_SIZE - 2000]].concat(),
    }
}

#[derive(Default)]
struct Model {
    /// Per type that is on: slot → (contents, generation of its store).
    areas: HashMap<u32, HashMap<u64, (Vec<u8>, Generation)>>,
    /// Last generation seen per (type, slot), for conditional invalidates of stale ones.
    last_gen: HashMap<(u32, u64), Generation>,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let file = TempFile::new("model");
    // While positive, counts down on every compress; the call that brings it to zero fails.
    let countdown = Arc::new(AtomicI64::new(0));
    let cd = countdown.clone();
    let env = CodecEnv {
        on_compress: Box::new(move || match cd.fetch_sub(1, Ordering::SeqCst) {
            1 => Err(injected()),
            _ => Ok(()),
        }),
        ..CodecEnv::default()
    };
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        factory: factory(Arc::new(env)),
        max_pool_bytes: 48 * 1024,
        accept_threshold_percent: 75,
        topology: Arc::new(TestTopology::new(&[0, 1, 3])),
        ..PoolConfig::default()
    })
    .unwrap();
    let mut m = Model::default();
    let codecs = [CodecSpec::LZ4, CodecSpec::ZSTD, CodecSpec::DEFLATE];
    for op in ops {
        match op {
            Op::Swapon(ty) => {
                // (A fresh, truncated file only when the type is off: truncating a live area's file
                // would be the test corrupting it.)
                let backing = (ty == 0 && !m.areas.contains_key(&ty)).then(|| file.open_rw());
                let r = pool.swapon(ty, SLOTS, backing);
                match m.areas.entry(ty) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        prop_assert!(matches!(r, Err(PoolError::SwapTypeBusy { .. })), "{r:?}")
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        r.unwrap();
                        v.insert(HashMap::new());
                    }
                }
            }
            Op::Swapoff(ty) => {
                let r = pool.swapoff(ty);
                if m.areas.remove(&ty).is_some() {
                    r.unwrap();
                } else {
                    prop_assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}");
                }
            }
            Op::Store {
                ty,
                slot,
                pages,
                version,
                fail_at,
            } => {
                let data: Vec<u8> = (0..pages as u64)
                    .flat_map(|i| content(slot + i, version + i))
                    .collect();
                countdown.store(fail_at.map_or(0, |a| a + 1), Ordering::SeqCst);
                let r = pool.store(ty, slot, &data);
                countdown.store(0, Ordering::SeqCst);
                match (m.areas.get_mut(&ty), r) {
                    (None, r) => {
                        prop_assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(area), Err(PoolError::SlotOutOfRange { .. })) => {
                        prop_assert!(slot + pages as u64 > SLOTS);
                        // The slots it covers inside the area lose their older copies.
                        for s in slot..(slot + pages as u64).min(SLOTS) {
                            area.remove(&s);
                        }
                    }
                    (Some(area), Ok(gen)) => {
                        prop_assert!(slot + pages as u64 <= SLOTS);
                        for i in 0..pages {
                            let s = slot + i as u64;
                            area.insert(
                                s,
                                (data[i * PAGE_SIZE..(i + 1) * PAGE_SIZE].to_vec(), gen),
                            );
                            m.last_gen.insert((ty, s), gen);
                        }
                    }
                    (Some(area), Err(PoolError::LimitReached { .. } | PoolError::Codec(_))) => {
                        for i in 0..pages as u64 {
                            area.remove(&(slot + i));
                        }
                    }
                    (Some(_), Err(e)) => prop_assert!(false, "unexpected store error {e}"),
                }
            }
            Op::Load {
                ty,
                slot,
                exclusive,
            } => {
                let mut page = vec![0u8; PAGE_SIZE];
                let mode = if exclusive {
                    LoadMode::Exclusive
                } else {
                    LoadMode::KeepCopy
                };
                let r = pool.load(ty, slot, &mut page, mode);
                match (m.areas.get_mut(&ty), r) {
                    (None, r) => {
                        prop_assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(_), Err(PoolError::SlotOutOfRange { .. })) => prop_assert!(slot >= SLOTS),
                    (Some(area), Err(PoolError::AbsentSlot { .. })) => {
                        prop_assert!(!area.contains_key(&slot), "slot {slot} should be present")
                    }
                    (Some(area), Ok(gen)) => {
                        let Some((want, wgen)) = area.get(&slot) else {
                            return Err(TestCaseError::fail(format!(
                                "load of absent slot {slot} succeeded"
                            )));
                        };
                        prop_assert!(page == *want, "type {ty} slot {slot}: wrong bytes");
                        prop_assert_eq!(gen, *wgen);
                        if exclusive {
                            area.remove(&slot);
                        }
                    }
                    (Some(_), Err(e)) => prop_assert!(false, "unexpected load error {e}"),
                }
            }
            Op::LoadRun {
                ty,
                slot,
                pages,
                exclusive,
            } => {
                let mut buf = vec![0u8; pages * PAGE_SIZE];
                let mode = if exclusive {
                    LoadMode::Exclusive
                } else {
                    LoadMode::KeepCopy
                };
                let r = pool.load_run(ty, slot, &mut buf, mode);
                match (m.areas.get_mut(&ty), r) {
                    (None, r) => {
                        prop_assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(_), Err(PoolError::SlotOutOfRange { .. })) => {
                        prop_assert!(slot + pages as u64 > SLOTS)
                    }
                    (Some(area), Err(PoolError::AbsentSlot { slot: s, .. })) => {
                        prop_assert!(!area.contains_key(&s));
                        prop_assert!((0..s - slot).all(|i| area.contains_key(&(slot + i))));
                    }
                    (Some(area), Ok(())) => {
                        for i in 0..pages as u64 {
                            let want = &area.get(&(slot + i)).expect("run slot present").0;
                            let got = &buf[i as usize * PAGE_SIZE..(i as usize + 1) * PAGE_SIZE];
                            prop_assert!(got == &want[..], "run slot {} wrong bytes", slot + i);
                        }
                        if exclusive {
                            for i in 0..pages as u64 {
                                area.remove(&(slot + i));
                            }
                        }
                    }
                    (Some(_), Err(e)) => prop_assert!(false, "unexpected load_run error {e}"),
                }
            }
            Op::Invalidate { ty, slot } => {
                let r = pool.invalidate(ty, slot);
                match (m.areas.get_mut(&ty), r) {
                    (None, r) => {
                        prop_assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(_), Err(PoolError::SlotOutOfRange { .. })) => prop_assert!(slot >= SLOTS),
                    (Some(area), Ok(gen)) => {
                        prop_assert_eq!(gen, area.remove(&slot).map(|(_, g)| g));
                    }
                    (Some(_), Err(e)) => prop_assert!(false, "unexpected invalidate error {e}"),
                }
            }
            Op::InvalidateIf { ty, slot, stale } => {
                let held = m.areas.get(&ty).and_then(|a| a.get(&slot)).map(|(_, g)| *g);
                let gen = match (stale, held, m.last_gen.get(&(ty, slot))) {
                    (false, Some(g), _) => g,
                    (_, _, Some(g)) if Some(*g) != held => *g,
                    _ => Generation(0),
                };
                let r = pool.invalidate_if(ty, slot, gen);
                match (m.areas.get_mut(&ty), r) {
                    (None, r) => {
                        prop_assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(_), Err(PoolError::SlotOutOfRange { .. })) => prop_assert!(slot >= SLOTS),
                    (Some(area), Ok(())) => {
                        prop_assert_eq!(area.remove(&slot).map(|(_, g)| g), Some(gen));
                    }
                    (Some(area), Err(PoolError::AbsentSlot { .. })) => {
                        prop_assert!(!area.contains_key(&slot))
                    }
                    (Some(area), Err(PoolError::GenerationMismatch { .. })) => {
                        prop_assert!(area.get(&slot).is_some_and(|(_, g)| *g != gen))
                    }
                    (Some(_), Err(e)) => prop_assert!(false, "unexpected invalidate_if error {e}"),
                }
            }
            Op::Reclaim(n) => {
                let written = pool.reclaim(n).unwrap();
                prop_assert!(written <= n);
            }
            Op::Compact => {
                pool.compact();
            }
            Op::Switch(i) => pool.set_compressor(codecs[i as usize]).unwrap(),
        }
        compare(&pool, &m)?;
    }
    let s = pool.stats();
    for (sum, n) in [
        (&WRITTEN_BACK, s.written_back),
        (&FILE_LOADS, s.file_loads),
        (&CODEC_FAILURES, s.reject_compress_fail),
        (&LIMIT_REJECTIONS, s.reject_limit),
        (&COMPACTION_MOVES, s.compaction_moves),
    ] {
        sum.fetch_add(n, Ordering::Relaxed);
    }
    for ty in m.areas.keys() {
        pool.swapoff(*ty).unwrap();
    }
    let s = pool.stats();
    prop_assert_eq!(
        (
            s.stored_pages,
            s.on_disk_pages,
            s.pool_bytes,
            s.compressed_bytes
        ),
        (0, 0, 0, 0)
    );
    Ok(())
}

/// Every slot of every type reads back exactly as the model says (bytes and generation, or
/// absent; a type that is off is unknown), and the page counts agree.
fn compare(pool: &Pool, m: &Model) -> Result<(), TestCaseError> {
    let mut page = vec![0u8; PAGE_SIZE];
    for ty in 0..=TYPES {
        let Some(area) = m.areas.get(&ty) else {
            let r = pool.load(ty, 0, &mut page, LoadMode::KeepCopy);
            prop_assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}");
            continue;
        };
        for slot in 0..SLOTS {
            let r = pool.load(ty, slot, &mut page, LoadMode::KeepCopy);
            match (area.get(&slot), r) {
                (Some((want, gen)), Ok(g)) => {
                    prop_assert!(page == *want, "type {ty} slot {slot}: wrong bytes");
                    prop_assert_eq!(g, *gen, "type {} slot {}: generation", ty, slot);
                }
                (None, Err(PoolError::AbsentSlot { .. })) => {}
                (want, r) => prop_assert!(
                    false,
                    "type {ty} slot {slot}: model holds {:?}, pool says {r:?}",
                    want.map(|w| w.1)
                ),
            }
        }
    }
    let s = pool.stats();
    let held: usize = m.areas.values().map(HashMap::len).sum();
    prop_assert_eq!(s.stored_pages + s.on_disk_pages, held as u64);
    Ok(())
}

/// What the cases exercised, summed over all of them (checked after the run: a model test
/// whose cases never wrote back, failed a store or moved an object would pass for nothing).
static WRITTEN_BACK: AtomicU64 = AtomicU64::new(0);
static FILE_LOADS: AtomicU64 = AtomicU64::new(0);
static CODEC_FAILURES: AtomicU64 = AtomicU64::new(0);
static LIMIT_REJECTIONS: AtomicU64 = AtomicU64::new(0);
static COMPACTION_MOVES: AtomicU64 = AtomicU64::new(0);

#[test]
fn pool_matches_a_plain_map() {
    let cases = std::env::var("POOL_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    });
    if let Err(e) = runner.run(&proptest::collection::vec(op(), 1..80), run) {
        panic!("{e}");
    }
    let seen = [
        ("written back", &WRITTEN_BACK),
        ("loads from the file", &FILE_LOADS),
        ("stores failed in the codec", &CODEC_FAILURES),
        ("stores refused at the limit", &LIMIT_REJECTIONS),
        ("objects moved by compaction", &COMPACTION_MOVES),
    ];
    for (what, n) in seen {
        assert!(n.load(Ordering::Relaxed) > 0, "no case exercised: {what}");
    }
}
