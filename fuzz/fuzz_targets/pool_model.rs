//! Pool operation sequences against a model: swapon/swapoff, stores of folios, loads (keep
//! and exclusive, single and runs), invalidations, writeback to a file, compaction and a
//! compressor switch, on a small pool whose limit is reached often. Every successful load
//! must return the bytes the model says the slot holds; every refusal must be one the model
//! expects.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pool::{LoadMode, Pool, PoolConfig, PoolError, TestTopology};
use software_fallback::{CodecSpec, PAGE_SIZE};

const TYPES: u8 = 2;
const SLOTS: u64 = 16;

#[derive(Arbitrary, Debug)]
enum Op {
    Swapon {
        ty: u8,
        file: bool,
    },
    Swapoff {
        ty: u8,
    },
    Store {
        ty: u8,
        slot: u8,
        pages: u8,
        version: u16,
    },
    Load {
        ty: u8,
        slot: u8,
        exclusive: bool,
    },
    LoadRun {
        ty: u8,
        slot: u8,
        pages: u8,
        exclusive: bool,
    },
    Invalidate {
        ty: u8,
        slot: u8,
    },
    Reclaim {
        n: u8,
    },
    Compact,
    Switch {
        codec: u8,
    },
}

/// Page contents for (slot, version): zero, same-filled, random, or text-like.
fn content(slot: u64, version: u16) -> Vec<u8> {
    let seed = (slot << 16 | version as u64) | 1;
    match version % 4 {
        0 => vec![0; PAGE_SIZE],
        1 => seed.to_ne_bytes().repeat(PAGE_SIZE / 8),
        2 => {
            let mut x = seed;
            (0..PAGE_SIZE)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        }
        _ => format!("slot {slot} version {version}; ")
            .into_bytes()
            .into_iter()
            .cycle()
            .take(PAGE_SIZE)
            .collect(),
    }
}

fn scratch() -> &'static std::path::PathBuf {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("swapaccel-fuzz-pool-{}", std::process::id()))
    })
}

fn backing() -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(scratch())
        .expect("backing file")
}

fuzz_target!(|ops: Vec<Op>| {
    if ops.len() > 64 {
        return;
    }
    let pool = Pool::new(PoolConfig {
        codec: CodecSpec::LZ4,
        max_pool_bytes: 24 * 1024,
        accept_threshold_percent: 75,
        topology: Arc::new(TestTopology::new(&[0, 1])),
        ..PoolConfig::default()
    })
    .expect("pool");
    let codecs = [CodecSpec::LZ4, CodecSpec::ZSTD, CodecSpec::DEFLATE];
    // Per type that is on: slot → contents.
    let mut m: HashMap<u32, HashMap<u64, Vec<u8>>> = HashMap::new();
    let mut file_used = false;
    for op in ops {
        match op {
            Op::Swapon { ty, file } => {
                let ty = (ty % (TYPES + 1)) as u32;
                // One area only gets the (single) backing file, and only while it is off.
                let f = (file && !file_used && !m.contains_key(&ty)).then(backing);
                let had_file = f.is_some();
                let r = pool.swapon(ty, SLOTS, f);
                if m.contains_key(&ty) {
                    assert!(matches!(r, Err(PoolError::SwapTypeBusy { .. })), "{r:?}");
                } else {
                    r.expect("swapon");
                    file_used |= had_file;
                    m.insert(ty, HashMap::new());
                }
            }
            Op::Swapoff { ty } => {
                let ty = (ty % (TYPES + 1)) as u32;
                let r = pool.swapoff(ty);
                if m.remove(&ty).is_some() {
                    r.expect("swapoff");
                } else {
                    assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}");
                }
            }
            Op::Store {
                ty,
                slot,
                pages,
                version,
            } => {
                let (ty, slot, pages) = (
                    (ty % (TYPES + 1)) as u32,
                    slot as u64 % (SLOTS + 2),
                    (pages % 4 + 1) as u64,
                );
                let data: Vec<u8> = (0..pages)
                    .flat_map(|i| content(slot + i, version.wrapping_add(i as u16)))
                    .collect();
                let r = pool.store(ty, slot, &data);
                match (m.get_mut(&ty), r) {
                    (None, r) => {
                        assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(area), Ok(_)) => {
                        assert!(slot + pages <= SLOTS);
                        for i in 0..pages {
                            let p = i as usize * PAGE_SIZE;
                            area.insert(slot + i, data[p..p + PAGE_SIZE].to_vec());
                        }
                    }
                    (Some(area), Err(PoolError::SlotOutOfRange { .. })) => {
                        assert!(slot + pages > SLOTS);
                        for s in slot..(slot + pages).min(SLOTS) {
                            area.remove(&s);
                        }
                    }
                    (Some(area), Err(PoolError::LimitReached { .. })) => {
                        for i in 0..pages {
                            area.remove(&(slot + i));
                        }
                    }
                    (Some(_), Err(e)) => panic!("unexpected store error {e}"),
                }
            }
            Op::Load {
                ty,
                slot,
                exclusive,
            } => {
                let (ty, slot) = ((ty % (TYPES + 1)) as u32, slot as u64 % (SLOTS + 2));
                let mode = if exclusive {
                    LoadMode::Exclusive
                } else {
                    LoadMode::KeepCopy
                };
                let mut page = vec![0u8; PAGE_SIZE];
                let r = pool.load(ty, slot, &mut page, mode);
                match (m.get_mut(&ty), r) {
                    (None, r) => {
                        assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(_), Err(PoolError::SlotOutOfRange { .. })) => assert!(slot >= SLOTS),
                    (Some(area), Err(PoolError::AbsentSlot { .. })) => {
                        assert!(!area.contains_key(&slot), "slot {slot} lost")
                    }
                    (Some(area), Ok(_)) => {
                        let want = area.get(&slot).expect("load of an absent slot succeeded");
                        assert!(page == *want, "type {ty} slot {slot}: wrong bytes");
                        if exclusive {
                            area.remove(&slot);
                        }
                    }
                    (Some(_), Err(e)) => panic!("unexpected load error {e}"),
                }
            }
            Op::LoadRun {
                ty,
                slot,
                pages,
                exclusive,
            } => {
                let (ty, slot, pages) = (
                    (ty % (TYPES + 1)) as u32,
                    slot as u64 % (SLOTS + 2),
                    (pages % 4 + 1) as u64,
                );
                let mode = if exclusive {
                    LoadMode::Exclusive
                } else {
                    LoadMode::KeepCopy
                };
                let mut buf = vec![0u8; pages as usize * PAGE_SIZE];
                let r = pool.load_run(ty, slot, &mut buf, mode);
                match (m.get_mut(&ty), r) {
                    (None, r) => {
                        assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(_), Err(PoolError::SlotOutOfRange { .. })) => {
                        assert!(slot + pages > SLOTS)
                    }
                    (Some(area), Err(PoolError::AbsentSlot { slot: s, .. })) => {
                        assert!(!area.contains_key(&s), "slot {s} lost");
                    }
                    (Some(area), Ok(())) => {
                        for i in 0..pages {
                            let want = area.get(&(slot + i)).expect("run slot present");
                            let p = i as usize * PAGE_SIZE;
                            assert!(
                                buf[p..p + PAGE_SIZE] == want[..],
                                "run slot {} wrong bytes",
                                slot + i
                            );
                        }
                        if exclusive {
                            for i in 0..pages {
                                area.remove(&(slot + i));
                            }
                        }
                    }
                    (Some(_), Err(e)) => panic!("unexpected load_run error {e}"),
                }
            }
            Op::Invalidate { ty, slot } => {
                let (ty, slot) = ((ty % (TYPES + 1)) as u32, slot as u64 % (SLOTS + 2));
                let r = pool.invalidate(ty, slot);
                match (m.get_mut(&ty), r) {
                    (None, r) => {
                        assert!(matches!(r, Err(PoolError::UnknownSwapType { .. })), "{r:?}")
                    }
                    (Some(_), Err(PoolError::SlotOutOfRange { .. })) => assert!(slot >= SLOTS),
                    (Some(area), Ok(g)) => assert_eq!(g.is_some(), area.remove(&slot).is_some()),
                    (Some(_), Err(e)) => panic!("unexpected invalidate error {e}"),
                }
            }
            Op::Reclaim { n } => {
                let n = n as usize % 8 + 1;
                let written = pool.reclaim(n).expect("reclaim");
                assert!(written <= n);
            }
            Op::Compact => {
                pool.compact();
            }
            Op::Switch { codec } => pool
                .set_compressor(codecs[codec as usize % codecs.len()])
                .expect("switch"),
        }
    }
});
