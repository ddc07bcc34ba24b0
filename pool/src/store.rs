//! Storing folios: compress on a context in batches of up to 8, allocate, publish in order.
//!
//! A store enters the swap type's gate, takes its generation, checks the memory limit before
//! every batch, compresses and allocates a batch under its context's lock, then publishes the
//! batch's fully initialised entries into the index and frees the entries they replace. If
//! anything fails, every slot the buffer covers is emptied (older copies included) before the
//! error returns, so the caller, who still owns its data, can never later read something
//! older than it wrote. (Concurrent stores of one slot are ordered by when they publish, and
//! a failed store by when it empties its slots: an entry there then is older than it. No
//! decision depends on comparing generations, whose 29 stored bits wrap.)
//! Lock order and lifetimes: see `pool.rs`.

use std::sync::atomic::Ordering;

use software_fallback::corpus::{classify, PageKind};
use software_fallback::{crc32, CodecError, MAX_BATCH, PAGE_SIZE};

use crate::area::Area;
use crate::attribution::Attribution;
use crate::context::{Context, Contexts, CtxInner, DST_LEN};
use crate::error::{PoolError, Result};
use crate::index::{Entry, Payload, CHUNK_SLOTS};
use crate::pool::{alloc_err, whole_pages, zero_crc, Generation, Pool, MAX_FOLIO_PAGES};
use crate::stats::Ctr;

impl Pool {
    /// Stores a folio of 1 to 512 pages at consecutive slots from `slot`, compressing in
    /// batches of up to 8 on the current CPU's context. On success every page is stored (older
    /// entries replaced) and the store's generation is returned. On any error the pool holds
    /// no entry for any slot the buffer covers inside the area (older copies included; a
    /// misuse such as a folio running past the area's end too), and the caller still owns its
    /// data. Blocks in the codec (a device) and on the locks of `pool.rs`.
    pub fn store(&self, ty: u32, slot: u64, folio: &[u8]) -> Result<Generation> {
        let mut attr = Attribution::default();
        self.store_with(ty, slot, folio, MAX_FOLIO_PAGES, &mut attr, |c| c.current())
    }

    /// Stores up to 8 pages (one codec batch) on the context of CPU `cpu_hint` — the entry
    /// point for a batching layer's workers. Same guarantees and blocking as [`Pool::store`].
    pub fn store_batch_on(
        &self,
        cpu_hint: usize,
        ty: u32,
        slot: u64,
        pages: &[u8],
    ) -> Result<Generation> {
        self.store_batch_on_attributed(cpu_hint, ty, slot, pages).0
    }

    /// [`Pool::store_batch_on`], also returning which engine compressed the pages
    /// ([`Attribution`], summed over the codec calls made, failed calls included: a store
    /// that fails after the device did some pages says so). Zero-filled and same-filled
    /// pages need no codec and count as neither. Same guarantees and blocking.
    pub fn store_batch_on_attributed(
        &self,
        cpu_hint: usize,
        ty: u32,
        slot: u64,
        pages: &[u8],
    ) -> (Result<Generation>, Attribution) {
        let mut attr = Attribution::default();
        let res = self.store_with(ty, slot, pages, MAX_BATCH, &mut attr, |c| c.get(cpu_hint));
        (res, attr)
    }

    /// Enters the type, takes a generation, then validates, picks a context and stores. Every
    /// failure after the type was entered — validation and context lookup included — empties
    /// the slots the buffer covers inside the area.
    fn store_with<'a>(
        &'a self,
        ty: u32,
        slot: u64,
        folio: &[u8],
        max_pages: usize,
        attr: &mut Attribution,
        pick: impl FnOnce(&'a Contexts) -> Result<&'a Context>,
    ) -> Result<Generation> {
        let area = self.enter(ty)?;
        let gen = area.next_gen();
        let res = whole_pages(folio.len(), max_pages).and_then(|n| {
            area.check_range(slot, n)?;
            self.store_on(&area, pick(&self.contexts)?, slot, folio, gen, attr)
        });
        if let Err(e) = &res {
            let covered = folio.len().div_ceil(PAGE_SIZE) as u64;
            let end = slot.saturating_add(covered).min(area.slots);
            tracing::debug!(
                ty,
                slot,
                covered,
                error = e as &dyn std::error::Error,
                "store failed; slots emptied"
            );
            for s in slot..end {
                self.remove_if(&area, s, None);
            }
        }
        res.map(|()| Generation(gen))
    }

    fn store_on(
        &self,
        area: &Area,
        ctx: &Context,
        slot: u64,
        folio: &[u8],
        gen: u64,
        attr: &mut Attribution,
    ) -> Result<()> {
        for (b, batch) in folio.chunks(MAX_BATCH * PAGE_SIZE).enumerate() {
            // The limit is checked before every batch: a large folio that crosses it fails
            // as a whole.
            self.check_limit()?;
            let mut entries = [Entry::default(); MAX_BATCH];
            let k = batch.len() / PAGE_SIZE;
            self.compress_batch(ctx, batch, gen, &mut entries[..k], attr)?;
            self.publish(area, slot + (b * MAX_BATCH) as u64, &entries[..k])?;
        }
        Ok(())
    }

    fn check_limit(&self) -> Result<()> {
        if self.max_pool_bytes == u64::MAX {
            return Ok(());
        }
        let used = self.alloc.pool_bytes();
        let refuse = || {
            self.counters.add(Ctr::RejectLimit, 1);
            Err(PoolError::LimitReached {
                used,
                limit: self.max_pool_bytes,
            })
        };
        if self.limit_hit.load(Ordering::Relaxed) {
            if used > self.accept_bytes {
                self.wake_reclaimer();
                return refuse();
            }
            self.limit_hit.store(false, Ordering::Relaxed);
        }
        if used >= self.max_pool_bytes {
            if !self.limit_hit.swap(true, Ordering::Relaxed) {
                self.counters.add(Ctr::LimitHits, 1);
                tracing::debug!(used, "pool limit hit");
            }
            self.wake_reclaimer();
            return refuse();
        }
        Ok(())
    }

    /// True when usage is above the accept threshold (what background reclaim works toward).
    pub(crate) fn above_accept(&self) -> bool {
        self.alloc.pool_bytes() > self.accept_bytes
    }

    fn wake_reclaimer(&self) {
        self.wake.wake();
    }

    /// Compresses and allocates the pages of `batch` (≤ 8) on `ctx`; fills `out`; adds the
    /// codec call's pages to `attr`. On error frees whatever it allocated.
    fn compress_batch(
        &self,
        ctx: &Context,
        batch: &[u8],
        gen: u64,
        out: &mut [Entry],
        attr: &mut Attribution,
    ) -> Result<()> {
        let k = out.len();
        let page = |i: usize| &batch[i * PAGE_SIZE..(i + 1) * PAGE_SIZE];
        let mut kinds = [PageKind::Other; MAX_BATCH];
        let mut srcs: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
        let mut which = [0usize; MAX_BATCH];
        let mut m = 0;
        for (i, kind) in kinds.iter_mut().enumerate().take(k) {
            *kind = classify(page(i));
            if *kind == PageKind::Other {
                srcs[m] = page(i);
                which[i] = m;
                m += 1;
            }
        }
        let mut g = self.contexts.lock_ready(ctx, None, true)?;
        let inner: &mut CtxInner = &mut g;
        let codec_id = inner.codec.id();
        let cutoff = self.cutoff;
        // The codec's worst-case room when the buffers have it (the library then writes
        // straight into them; a length at or past the cutoff is stored raw below), else
        // the cutoff itself as the limit. Either way ≥ cutoff and ≤ DST_LEN.
        let room = inner.codec.compress_room();
        let dst_len = if room <= DST_LEN {
            room.max(cutoff)
        } else {
            cutoff
        };
        let results = if m > 0 {
            let [d0, d1, d2, d3, d4, d5, d6, d7] = &mut inner.dst;
            let mut dsts: [&mut [u8]; MAX_BATCH] = [
                &mut d0[..dst_len],
                &mut d1[..dst_len],
                &mut d2[..dst_len],
                &mut d3[..dst_len],
                &mut d4[..dst_len],
                &mut d5[..dst_len],
                &mut d6[..dst_len],
                &mut d7[..dst_len],
            ];
            match inner.codec.compress_batch(&srcs[..m], &mut dsts[..m]) {
                Ok(r) => {
                    attr.add_call(m, r.on_device());
                    Some(r)
                }
                Err(e) => {
                    self.counters.add(Ctr::RejectCompressFail, 1);
                    return Err(e.into());
                }
            }
        } else {
            None
        };
        for i in 0..k {
            let made = match kinds[i] {
                PageKind::Zero => Ok(Entry::new(Payload::SameFilled(0), zero_crc(), gen)),
                PageKind::SameFilled(v) => {
                    Ok(Entry::new(Payload::SameFilled(v), crc32(page(i)), gen))
                }
                PageKind::Other => {
                    let j = which[i];
                    match results.as_ref().and_then(|r| r.get(j)) {
                        Some(Ok(c)) => {
                            // `l < cutoff ≤ dst_len`: in bounds whatever the codec says.
                            let (bytes, codec) = match c.len {
                                Some(l) if l < cutoff => (&inner.dst[j][..l], Some(codec_id)),
                                _ => (page(i), None),
                            };
                            self.alloc
                                .alloc_write(bytes)
                                .map(|handle| {
                                    let len = bytes.len();
                                    Entry::new(Payload::Object { handle, len, codec }, c.crc32, gen)
                                })
                                .map_err(|e| {
                                    self.counters.add(Ctr::RejectAllocFail, 1);
                                    alloc_err(e)
                                })
                        }
                        Some(Err(e)) => {
                            self.counters.add(Ctr::RejectCompressFail, 1);
                            Err(PoolError::Codec(e.clone()))
                        }
                        None => {
                            self.counters.add(Ctr::RejectCompressFail, 1);
                            Err(PoolError::Codec(CodecError::BatchMismatch {
                                pages: m,
                                buffers: results.as_ref().map_or(0, |r| r.len()),
                            }))
                        }
                    }
                }
            };
            match made {
                Ok(e) => out[i] = e,
                Err(err) => {
                    drop(g);
                    for e in &mut out[..i] {
                        self.free_object(std::mem::take(e));
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Inserts fully initialised entries at consecutive slots; frees what they replace (the
    /// last store to publish a slot wins). If the index cannot get memory for a chunk, the
    /// entries not yet published are freed and `OutOfMemory` returned (the caller then
    /// empties every slot of the store, those published here included).
    fn publish(&self, area: &Area, first: u64, entries: &[Entry]) -> Result<()> {
        let mut replaced = [Entry::default(); MAX_BATCH];
        let mut i = 0;
        let mut res = Ok(());
        while i < entries.len() {
            let (mut chunk, mut pos) = match area.index.lock_for_store(first + i as u64) {
                Ok(locked) => locked,
                Err(e) => {
                    res = Err(e);
                    break;
                }
            };
            while i < entries.len() && pos < CHUNK_SLOTS {
                self.account(&entries[i], true);
                replaced[i] = chunk.put(pos, entries[i]);
                i += 1;
                pos += 1;
            }
        }
        for e in &entries[i..] {
            self.free_object(*e);
        }
        for e in &replaced[..i] {
            self.release(*e);
        }
        res
    }
}

// The unit tests use the primitives directly; under `shuttle` they need a shuttle runtime.
#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use std::sync::Arc;

    use software_fallback::{CodecSpec, PAGE_SIZE};

    use crate::alloc::FAIL_ALLOC_IN;
    use crate::{LoadMode, Pool, PoolConfig, PoolError, TestTopology};

    /// A compressible page that differs per (slot, version).
    fn page(slot: u64, version: u64) -> Vec<u8> {
        let mut x = (slot << 32 | version) | 1;
        (0..PAGE_SIZE / 8)
            .flat_map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (if i % 4 == 0 { x } else { i as u64 }).to_le_bytes()
            })
            .collect()
    }

    /// An allocation failure in the folio's second batch: every slot of the folio is emptied
    /// (the first batch's new entries and the older copies of the rest), nothing leaks, and a
    /// neighbour survives.
    #[test]
    fn allocation_failure_mid_folio_leaves_no_entry() {
        let pool = Pool::new(PoolConfig {
            codec: CodecSpec::LZ4,
            topology: Arc::new(TestTopology::new(&[0])),
            ..PoolConfig::default()
        })
        .unwrap();
        pool.swapon(0, 64, None).unwrap();
        let old: Vec<u8> = (0..20).flat_map(|s| page(s, 1)).collect();
        pool.store(0, 0, &old).unwrap();
        pool.store(0, 40, &page(40, 1)).unwrap();
        let new: Vec<u8> = (0..20).flat_map(|s| page(s, 2)).collect();
        FAIL_ALLOC_IN.with(|c| c.set(12));
        let err = pool.store(0, 0, &new).unwrap_err();
        FAIL_ALLOC_IN.with(|c| c.set(0));
        assert!(matches!(err, PoolError::AllocExhausted { .. }), "{err}");
        let mut out = vec![0u8; PAGE_SIZE];
        for s in 0..20 {
            assert!(
                matches!(
                    pool.load(0, s, &mut out, LoadMode::KeepCopy),
                    Err(PoolError::AbsentSlot { .. })
                ),
                "slot {s}"
            );
        }
        pool.load(0, 40, &mut out, LoadMode::KeepCopy).unwrap();
        assert_eq!(out, page(40, 1));
        let st = pool.stats();
        assert_eq!((st.stored_pages, st.reject_alloc_fail), (1, 1));
        assert_eq!(
            pool.alloc.objects(),
            1,
            "objects leaked by the failed store"
        );
    }
}
