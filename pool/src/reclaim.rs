//! Reclaim: writing cold entries back to their area's backing file.
//!
//! **Finding candidates.** A clock hand sweeps the areas' indexes slot by slot (the index is
//! the LRU: no per-entry list links). An in-memory object entry whose referenced bit is set
//! (a keep-copy load touched it) loses the bit and is skipped — its second chance; one whose
//! bit is clear is a candidate. Only the slot and the entry's generation are copied out, under
//! the chunk lock.
//!
//! **Pin, then re-validate.** Writeback of a candidate first pins the slot: it enters the
//! type's gate (so swapoff waits for it, and a swapped-off area is skipped) and takes the
//! area's file lock for writing (so no other writeback or file load of the area runs). Then
//! it re-validates under the chunk lock that the slot still holds that generation's object,
//! copies the object out, and drops the chunk lock for the decode and the write. It publishes
//! the written-back state only if, under the chunk lock again, the entry is still the same; if
//! a store, invalidate or exclusive load changed it meanwhile, the file copy is simply unused.
//! An I/O error leaves the entry in memory, untouched. Reclaimers are serialised by
//! `reclaim_state`'s lock, which also owns their buffers and decoders. A decoder is built
//! before the slot is pinned (no codec is built under the gate or the file lock), and goes
//! when its format's last in-memory entry does.
//!
//! **Background reclaimer.** Holds only a weak reference to the pool, upgraded for one round
//! of work and dropped before it sleeps, so a dropped pool goes at once. A round writes back
//! about as many entries as the excess over the accept threshold is worth, then compacts, and
//! repeats until usage is at the threshold: writeback frees objects, but only compaction
//! turns objects freed all over the spans into memory given back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use software_fallback::{crc32, CodecId, CodecSpec, PageCodec, PAGE_SIZE};

use crate::area::Area;
use crate::context::{decoder_slot, no_decoders, Decoders};
use crate::error::{PoolError, Result};
use crate::index::{Entry, Index, Payload, CHUNK_SLOTS};
use crate::pool::{alloc_err, Pool, MAX_SWAP_TYPES};
use crate::stats::Ctr;
use crate::sync::{Condvar, Mutex};

/// What wakes the pool's background reclaimers: a store that found the pool at its limit, or
/// a handle that asks its reclaimer to stop (each reclaimer has its own stop flag).
#[derive(Default)]
pub(crate) struct Wake {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    /// Wakes the reclaimers (never blocks beyond a short lock).
    pub fn wake(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }

    /// Sleeps until woken, `stop` is set, or `period` passes.
    fn sleep(&self, period: Duration, stop: &AtomicBool) {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        if !*woken && !stop.load(Ordering::Acquire) {
            woken = self
                .cv
                .wait_timeout(woken, period)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *woken = false;
    }
}

/// The reclaimer's own state, behind one lock.
pub(crate) struct ReclaimState {
    hand_ty: u32,
    hand_slot: u64,
    obj: Box<[u8]>,
    page: Box<[u8]>,
    decoders: Decoders,
}

impl ReclaimState {
    pub fn new() -> ReclaimState {
        ReclaimState {
            hand_ty: 0,
            hand_slot: 0,
            obj: vec![0u8; PAGE_SIZE].into_boxed_slice(),
            page: vec![0u8; PAGE_SIZE].into_boxed_slice(),
            decoders: no_decoders(),
        }
    }
}

impl Pool {
    /// Writes back up to `n` cold entries to their areas' backing files (areas without one
    /// are skipped) and returns how many were written. Scans at most two sweeps of the
    /// indexes (second chance). Blocks on file I/O, on building a decoder and on other
    /// reclaimers. On an error (I/O, a decoder that cannot be built, a corrupt entry) the
    /// entry stays in memory and the error is returned.
    pub fn reclaim(&self, n: usize) -> Result<usize> {
        let mut rs = self
            .reclaim_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Decoders of formats with no entry left in memory go (the reclaimer lock is no
        // context lock: dropping a codec here blocks no store or load).
        for id in CodecId::ALL {
            let i = decoder_slot(id);
            if rs.decoders[i].is_some() && self.counters.live(i) == 0 {
                drop(rs.decoders[i].take());
            }
        }
        let areas: Vec<Arc<Area>> = self
            .areas_snapshot()
            .into_iter()
            .filter(|a| a.has_file())
            .collect();
        let total: u64 = areas.iter().map(|a| a.slots).sum();
        let mut budget = total.saturating_mul(2);
        let mut written = 0;
        while written < n && budget > 0 {
            let Some(area) = areas.iter().find(|a| a.ty == rs.hand_ty) else {
                rs.hand_ty = (rs.hand_ty + 1) % MAX_SWAP_TYPES;
                rs.hand_slot = 0;
                continue;
            };
            if rs.hand_slot >= area.slots {
                rs.hand_ty = (rs.hand_ty + 1) % MAX_SWAP_TYPES;
                rs.hand_slot = 0;
                continue;
            }
            let (cand, scanned) = next_candidate(area, rs.hand_slot);
            budget = budget.saturating_sub(scanned);
            rs.hand_slot += scanned;
            let Some((slot, gen, codec)) = cand else {
                continue;
            };
            if let Some(id) = codec {
                // Built before the slot is pinned: no codec is built under the file lock.
                let i = decoder_slot(id);
                if rs.decoders[i].is_none() {
                    rs.decoders[i] = Some(self.factory.build(CodecSpec::default_for(id))?);
                }
            }
            if self.write_back(&mut rs, area, slot, gen)? {
                written += 1;
            }
        }
        Ok(written)
    }

    /// Writes one entry back, re-validating it first. `Ok(false)`: it changed or went.
    fn write_back(&self, rs: &mut ReclaimState, area: &Area, slot: u64, gen: u32) -> Result<bool> {
        // Pin: hold the type's gate (swapoff waits for us) and make sure the area is still the
        // one we found the slot in.
        let protected = !cfg!(swapaccel_unprotected = "writeback");
        let _in = if protected {
            match self.enter(area.ty) {
                Ok(e) if std::ptr::eq(&*e, area) => Some(e),
                _ => return Ok(false),
            }
        } else {
            None // test-only broken variant: no pin, swapoff does not wait for us
        };
        let _file = area.file_write_lock();
        let (chunk, pos) = area.index.lock(slot);
        let e = chunk.get(pos);
        let Some(Payload::Object { handle, len, codec }) = e.payload() else {
            return Ok(false);
        };
        if e.gen() != gen {
            return Ok(false);
        }
        let read = self.alloc.read(handle, &mut rs.obj[..len]);
        drop(chunk);
        read.map_err(alloc_err)?;
        let ty = area.ty;
        let got = match codec {
            None => {
                rs.page.copy_from_slice(&rs.obj[..PAGE_SIZE]);
                crc32(&rs.page)
            }
            Some(id) => {
                let ReclaimState {
                    obj,
                    page,
                    decoders,
                    ..
                } = &mut *rs;
                let decoded = match decoders[decoder_slot(id)].as_mut() {
                    Some(d) => d.decompress(&obj[..len], page),
                    // (Built by `reclaim` before pinning; only a changed entry lacks one.)
                    None => return Ok(false),
                };
                decoded
                    .map_err(|source| self.corrupt(ty, slot, id, source))?
                    .crc32
            }
        };
        if got != e.crc() {
            self.counters.add(Ctr::ChecksumFailures, 1);
            return Err(PoolError::ChecksumMismatch {
                ty,
                slot,
                stored: e.crc(),
                got,
            });
        }
        // Sealed in the reclaimer's buffer (it is scratch: the entry keeps the page until the
        // written-back state is published).
        let (seq, tag) = self.sealer.seal(ty, slot, &mut rs.page)?;
        if let Err(err) = area.write_block(slot, &rs.page, &tag) {
            self.counters.add(Ctr::WritebackIoErrors, 1);
            tracing::warn!(
                ty,
                slot,
                error = &err as &dyn std::error::Error,
                "writeback failed; entry kept"
            );
            return Err(err);
        }
        let on_disk = Entry::new(Payload::OnDisk { seq }, e.crc(), u64::from(gen));
        let (mut chunk, pos) = area.index.lock(slot);
        let mut now = chunk.get(pos);
        if protected {
            if now.is_empty() || !(now.gen() == e.gen() && now.payload() == e.payload()) {
                self.counters.add(Ctr::WritebackRaced, 1);
                return Ok(false); // changed during the write: the file copy is unused
            }
        } else {
            now = e; // test-only broken variant: trusts the stale snapshot
        }
        chunk.put(pos, on_disk);
        drop(chunk);
        self.account(&on_disk, true);
        self.release(now);
        self.counters.add(Ctr::WrittenBack, 1);
        Ok(true)
    }

    /// Background work: while usage is above the accept threshold, write back about as many
    /// entries as the excess is worth, then compact to give the freed memory back.
    fn reclaim_to_accept(&self, stop: &AtomicBool) {
        while self.above_accept() && !stop.load(Ordering::Acquire) {
            let excess = self.alloc.pool_bytes().saturating_sub(self.accept_bytes);
            let c = &self.counters;
            let objects = c
                .get(Ctr::StoredPages)
                .saturating_sub(c.get(Ctr::SameFilledPages));
            let avg = (c.get(Ctr::CompressedBytes) / objects.max(1)).max(64);
            let n = (excess / avg).clamp(8, 1024) as usize;
            let res = self.reclaim(n);
            self.compact();
            match res {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = &e as &dyn std::error::Error, "background reclaim");
                    break;
                }
            }
        }
    }

    /// Starts a background reclaimer thread: whenever a store finds the pool at its limit
    /// (and every `period`), it writes back and compacts until usage is at or below the
    /// accept threshold. It holds the pool only while it works, never while it sleeps;
    /// dropping the returned handle stops and joins it (blocks until its current round of
    /// writeback finishes).
    pub fn spawn_reclaimer(pool: &Arc<Pool>, period: Duration) -> ReclaimerHandle {
        let weak: Weak<Pool> = Arc::downgrade(pool);
        let wake = pool.wake.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (wake2, stop2) = (wake.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("swapaccel-reclaim".into())
            .spawn(move || background(weak, &wake2, &stop2, period))
            .ok();
        if thread.is_none() {
            tracing::error!("cannot spawn the background reclaimer");
        }
        ReclaimerHandle { wake, stop, thread }
    }
}

fn background(weak: Weak<Pool>, wake: &Wake, stop: &AtomicBool, period: Duration) {
    while !stop.load(Ordering::Acquire) {
        // A strong reference only for this round: a pool dropped meanwhile goes now.
        let Some(pool) = weak.upgrade() else {
            return;
        };
        pool.reclaim_to_accept(stop);
        drop(pool);
        wake.sleep(period, stop);
    }
}

/// Owns a background reclaimer thread; dropping it stops the thread and joins it.
pub struct ReclaimerHandle {
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ReclaimerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReclaimerHandle")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for ReclaimerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.wake.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A writeback candidate: slot, generation bits and format, copied out under the chunk lock.
type Candidate = (u64, u32, Option<CodecId>);

/// Scans the chunk holding `from`, from `from` to the chunk's end. Returns a candidate and how
/// many slots were passed (the candidate's included).
fn next_candidate(area: &Area, from: u64) -> (Option<Candidate>, u64) {
    let start = from as usize % CHUNK_SLOTS;
    let c = from as usize / CHUNK_SLOTS;
    if !area.index.has_dir(c) {
        // Nothing was ever stored in this directory's range: pass all of it.
        let next = (Index::next_dir_chunk(c) * CHUNK_SLOTS) as u64;
        return (None, next.min(area.slots) - from);
    }
    let end = (CHUNK_SLOTS as u64).min(area.slots - (from - start as u64)) as usize;
    let (mut chunk, _) = area.index.lock(from);
    if !chunk.has_array() {
        return (None, (end - start) as u64);
    }
    for i in start..end {
        let Some(e) = chunk.get_mut(i) else {
            continue;
        };
        let Some(Payload::Object { codec, .. }) = e.payload() else {
            continue;
        };
        if e.referenced() {
            e.set_referenced(false);
            continue;
        }
        let gen = e.gen();
        return (
            Some((from - start as u64 + i as u64, gen, codec)),
            (i - start + 1) as u64,
        );
    }
    (None, (end - start) as u64)
}
